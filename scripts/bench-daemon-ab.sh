#!/usr/bin/env bash
# Before/after daemon throughput in one run (issue 11): the daemon of a
# base revision and of the working tree take turns against one mosquitto,
# driven by the same linnet send; each reports single readings at full
# speed (predictions/s) and single readings at 5,000/s (p99 latency).
#
#   scripts/bench-daemon-ab.sh main        # base revision (default main)
#   ROWS=100000 ROUNDS=2 scripts/bench-daemon-ab.sh HEAD~3
#   BEFORE_ENV=LINNET_DRIFT_ENABLED=false scripts/bench-daemon-ab.sh HEAD
#                                          # one build, a setting off and on
#
# Needs go, git and mosquitto.
set -euo pipefail

BASE=${1:-main}
ROWS=${ROWS:-100000}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18885}
METRICS=${METRICS:-127.0.0.1:19466}
. scripts/bench-lib.sh

mkdir -p "$work/base"
git archive "$BASE" | tar -x -C "$work/base"
(cd "$work/base" && go build -o "$work/linnet-base" ./cmd/linnet)
go build -o "$work/linnet" ./cmd/linnet
go run ./scripts/gendata -kind houses -rows "$ROWS" -seed 1 -out "$work/houses.csv"
# The base build trains the model: a newer build reads every older .lnm
# format, an older one may not read a newer file.
"$work/linnet-base" train --data "$work/houses.csv" --target price_k --quantize q8 --epochs 2 --version 1 --out "$work/houses.lnm" >/dev/null

start_mosquitto

send() { "$work/linnet" send --broker "tcp://127.0.0.1:$PORT" --data "$work/houses.csv" --target price_k --positional --json "$@"; }
field() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

run() { # name binary [VAR=value: the daemon's environment]
	rm -rf "$work/data"
	env ${3:-} "$2" run --broker "tcp://127.0.0.1:$PORT" --model "$work/houses.lnm" --gateway bench \
		--data-dir "$work/data" --metrics "$METRICS" > "$work/daemon-$1.log" 2>&1 &
	local d=$!
	for _ in $(seq 200); do curl -fs "http://$METRICS/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
	send --rate 20000 > /dev/null || true
	local out full p99
	out=$(send --window 1000 || true) # non-zero when a reading was unanswered: the figures still count
	full=$(echo "$out" | field 'r["predictions_per_sec"]')
	out=$(send --rate 5000 || true)
	p99=$(echo "$out" | field 'r["latency_ms"]["p99"]')
	kill "$d"; wait "$d" 2>/dev/null || true
	printf '%-6s full speed %8.0f predictions/s   p99 at 5,000/s %8.2f ms\n' "$1" "$full" "$p99"
}

for r in $(seq "$ROUNDS"); do
	echo "== round $r"
	run before "$work/linnet-base" "${BEFORE_ENV:-}"
	run after "$work/linnet" "${AFTER_ENV:-}"
done
