#!/usr/bin/env bash
# Daemon throughput benchmark (README.md, Performance): linnet send against
# mosquitto on this machine, the daemon as a separate process.
#
#   scripts/bench-daemon.sh            # from the repository root
#   ROWS=200000 PORT=18883 scripts/bench-daemon.sh
#   DEVICES=10000 scripts/bench-daemon.sh   # learning modes side by side
#
# Reports, for single readings at full speed, single readings at 5,000/s and
# batches of 100: predictions/s and latency percentiles (send to prediction,
# measured by linnet send), then the daemon's resident memory (VmRSS and its
# peak VmHWM from /proc). Needs go and mosquitto (apt-get install mosquitto).
#
# With DEVICES=N it compares the learning modes of $LEARNING instead
# (default "shared per_device"), one fresh daemon each: a 32-feature model,
# ROWS labelled readings spread over N devices in turn, and for each mode
# the readings/s, the daemon's peak RSS (VmHWM) and the ratio to the first.
# Both checkpoint every $CHECKPOINT (default 5s), so the peak includes
# writing every device's state to the store. The modes take turns for
# $ROUNDS rounds (default 3); the summary keeps each mode's best
# throughput and highest peak.
set -euo pipefail

ROWS=${ROWS:-200000}
PORT=${PORT:-18883}
METRICS=${METRICS:-127.0.0.1:19464}
DEVICES=${DEVICES:-0}
LEARNING=${LEARNING:-shared per_device}
CHECKPOINT=${CHECKPOINT:-5s}
ROUNDS=${ROUNDS:-3}
. scripts/bench-lib.sh

# start_daemon runs linnet on the test broker with a fresh store in
# $work/data-$1 (other arguments: environment settings) and waits for it.
start_daemon() {
	local name=$1
	shift
	env "$@" "$work/linnet" run --broker "tcp://127.0.0.1:$PORT" --model "$model" --gateway bench \
		--data-dir "$work/data-$name" --metrics "$METRICS" > "$work/daemon-$name.log" 2>&1 &
	daemon=$!
	pids+=($daemon)
	wait_healthy "$work/daemon-$name.log"
}

if [ "$DEVICES" -gt 0 ]; then
	go build -o "$work/linnet" ./cmd/linnet
	go run ./scripts/gendata -kind bench -rows "$ROWS" -seed 1 -out "$work/bench.csv"
	model=$work/bench.lnm
	"$work/linnet" train --data "$work/bench.csv" --target y --quantize q8 --epochs 2 --version 1 --out "$model" >/dev/null
	start_mosquitto
	echo "== $ROWS labelled readings of 32 features over $DEVICES devices, learning: $LEARNING, $ROUNDS rounds"
	printf '%-12s %12s %12s\n' learning readings/s "peak RSS MB"
	for round in $(seq "$ROUNDS"); do
		for mode in $LEARNING; do
			start_daemon "$mode-$round" LINNET_LEARNING_MODE="$mode" LINNET_LEARNING_CHECKPOINT_INTERVAL="$CHECKPOINT"
			"$work/linnet" send --broker "tcp://127.0.0.1:$PORT" --data "$work/bench.csv" --target y --learn \
				--positional --devices "$DEVICES" --window 1000 > "$work/send.txt"
			rate=$(sed -n 's/.* s: .* readings\/s sent, \([0-9]*\) predictions\/s/\1/p' "$work/send.txt")
			hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$daemon/status")
			kill "$daemon"
			wait "$daemon" 2>/dev/null || true
			echo "$mode $rate $hwm" | tee -a "$work/runs.txt" | awk '{ printf "%-12s %12d %12.1f\n", $1, $2, $3 / 1024 }'
		done
	done
	# The best throughput of each mode (the run least disturbed by the
	# rest of the machine) and its highest peak.
	echo "== best readings/s, highest peak RSS; ratio to $(echo "$LEARNING" | awk '{print $1}')"
	awk -v modes="$LEARNING" '{ if ($2 > best[$1]) best[$1] = $2; if ($3 > peak[$1]) peak[$1] = $3 }
		END { n = split(modes, m, " "); for (i = 1; i <= n; i++)
			printf "%-12s %12d %12.1f %8.2f\n", m[i], best[m[i]], peak[m[i]] / 1024, best[m[i]] / best[m[1]] }' "$work/runs.txt"
	exit 0
fi

go build -o "$work/linnet" ./cmd/linnet
go run ./scripts/gendata -kind houses -rows "$ROWS" -seed 1 -out "$work/houses.csv"
model=$work/houses.lnm
"$work/linnet" train --data "$work/houses.csv" --target price_k --quantize q8 --epochs 2 --version 1 --out "$model" >/dev/null

# The reference configuration, on a private port and without persistence.
start_mosquitto
start_daemon shared

send() { "$work/linnet" send --broker "tcp://127.0.0.1:$PORT" --data "$work/houses.csv" --target price_k --positional "$@"; }

echo "== warm-up"
send --rate 20000 > /dev/null || true
echo "== single readings, as fast as possible (window 1000)"
send --window 1000
echo "== single readings at 5,000/s"
send --rate 5000
echo "== batches of 100 readings"
send --batch 100 --window 5000
echo "== daemon memory"
grep -E '^(VmRSS|VmHWM)' "/proc/$daemon/status"
echo "== daemon counters"
curl -fs "http://$METRICS/metrics" | grep -E '^linnet_(messages_in_total|predictions_total|rejected_total\{reason="queue_full"\}|publish_errors_total)'
grep -c "being dropped" "$work/mosquitto.log" | sed 's/^/mosquitto drop warnings: /'
