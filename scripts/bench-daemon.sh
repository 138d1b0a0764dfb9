#!/usr/bin/env bash
# Daemon throughput benchmark (README.md, Performance): linnet send against
# mosquitto on this machine, the daemon as a separate process.
#
#   scripts/bench-daemon.sh            # from the repository root
#   ROWS=200000 PORT=18883 scripts/bench-daemon.sh
#
# Reports, for single readings at full speed, single readings at 5,000/s and
# batches of 100: predictions/s and latency percentiles (send to prediction,
# measured by linnet send), then the daemon's resident memory (VmRSS and its
# peak VmHWM from /proc). Needs go and mosquitto (apt-get install mosquitto).
set -euo pipefail

ROWS=${ROWS:-200000}
PORT=${PORT:-18883}
METRICS=${METRICS:-127.0.0.1:19464}
. scripts/bench-lib.sh


go build -o "$work/linnet" ./cmd/linnet
go run ./scripts/gendata -kind houses -rows "$ROWS" -seed 1 -out "$work/houses.csv"
"$work/linnet" train --data "$work/houses.csv" --target price_k --quantize q8 --epochs 2 --version 1 --out "$work/houses.lnm" >/dev/null

# The reference configuration, on a private port and without persistence.
start_mosquitto

"$work/linnet" run --broker "tcp://127.0.0.1:$PORT" --model "$work/houses.lnm" --gateway bench \
	--data-dir "$work/data" --metrics "$METRICS" > "$work/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
for _ in $(seq 200); do
	curl -fs "http://$METRICS/healthz" >/dev/null 2>&1 && break
	sleep 0.05
done
curl -fs "http://$METRICS/healthz" >/dev/null || { cat "$work/daemon.log" >&2; exit 1; }

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
