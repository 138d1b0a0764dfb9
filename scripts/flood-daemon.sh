#!/usr/bin/env bash
# Memory under a flood of big batches (issue 11): 3 clients send
# 4,096-reading batch messages as fast as they can for 30 s; reports the
# daemon's peak resident memory (VmHWM) against pipeline.queue_bytes + 64 MB.
#
#   scripts/flood-daemon.sh                 # embedded broker (in the daemon's process)
#   BROKER=mosquitto scripts/flood-daemon.sh
#   SECONDS_=30 CLIENTS=3 scripts/flood-daemon.sh
#
# Needs go (and mosquitto for BROKER=mosquitto).
set -euo pipefail

BROKER=${BROKER:-embedded}
CLIENTS=${CLIENTS:-3}
DURATION=${SECONDS_:-30}
PORT=${PORT:-18893}
METRICS=${METRICS:-127.0.0.1:19474}
BUDGET=${BUDGET:-67108864} # pipeline.queue_bytes: the default
. scripts/bench-lib.sh

go build -o "$work/linnet" ./cmd/linnet
go run ./scripts/gendata -kind houses -rows 245760 -seed 1 -out "$work/houses.csv"
"$work/linnet" train --data "$work/houses.csv" --target price_k --quantize q8 --epochs 1 --version 1 --out "$work/houses.lnm" >/dev/null

args=(--model "$work/houses.lnm" --gateway flood --data-dir "$work/data" --metrics "$METRICS")
if [ "$BROKER" = mosquitto ]; then
	start_mosquitto
	args+=(--broker "tcp://127.0.0.1:$PORT")
else
	printf '[mqtt]\nembedded_listen = "127.0.0.1:%s"\n[pipeline]\nqueue_bytes = %s\n' "$PORT" "$BUDGET" > "$work/linnet.toml"
	args+=(--config "$work/linnet.toml")
fi
LINNET_PIPELINE_QUEUE_BYTES=$BUDGET "$work/linnet" run "${args[@]}" > "$work/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
wait_healthy "$work/daemon.log"
grep -E '^VmRSS' "/proc/$daemon/status" | sed 's/^/before: /'

senders=()
for c in $(seq "$CLIENTS"); do
	( while :; do "$work/linnet" send --broker "tcp://127.0.0.1:$PORT" --data "$work/houses.csv" --target price_k \
		--positional --batch 4096 --window 1000000 --wait 2s --device "flood$c" >/dev/null 2>&1 || true; done ) &
	senders+=($!)
	pids+=($!)
done
peak=0 unacked=0 held=0
for i in $(seq $((DURATION * 10))); do
	peak=$(awk '/^VmHWM/ {print $2}' "/proc/$daemon/status")
	if [ $((i % 10)) = 0 ]; then
		read -r u h < <(curl -fs "http://$METRICS/metrics" | awk '/^linnet_unacked_messages/ {u=$2} /^linnet_unacked_bytes/ {h=$2} END {printf "%d %d\n", u, h}') || true
		[ "${u:-0}" -gt "$unacked" ] && unacked=$u
		[ "${h:-0}" -gt "$held" ] && held=$h
	fi
	sleep 0.1
done
for p in "${senders[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
sleep 1
echo "== after ${DURATION}s of $CLIENTS clients x 4096-reading batches ($BROKER broker)"
grep -E '^(VmRSS|VmHWM)' "/proc/$daemon/status"
limit=$(( (BUDGET + 64 * 1024 * 1024) / 1024 ))
echo "peak ${peak} kB, budget + 64 MB = ${limit} kB; most unacknowledged (sampled each second): $unacked messages, $((held / 1024)) kB"
curl -fs "http://$METRICS/metrics" | grep -E '^linnet_(messages_in_total|predictions_total|rejected_total\{reason="queue_full"\}|broker_dropped_total|broker_refused_total|error_reports_dropped_total)'
[ "$peak" -le "$limit" ] && echo "PASS: peak under budget + 64 MB" || { echo "FAIL: peak over budget + 64 MB"; exit 1; }
