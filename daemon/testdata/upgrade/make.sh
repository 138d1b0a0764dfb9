#!/bin/bash
# Regenerates the upgrade fixture (see README.txt) with the linnet binary
# built from the commit under test. Run from the repository root:
#
#	go build -o bin/linnet ./cmd/linnet
#	bash daemon/testdata/upgrade/make.sh
#
# It needs mosquitto_sub (mosquitto-clients) and a free loopback port
# ($PORT, default 18831). It rewrites the fixture in place, all but
# linnet.toml, which it runs (with embedded_listen on $PORT).
set -eu
root=$(pwd)
LINNET=${LINNET:-$root/bin/linnet}
PORT=${PORT:-18831}
out=$root/daemon/testdata/upgrade
url=tcp://127.0.0.1:$PORT
work=$(mktemp -d)
trap 'kill $daemon 2>/dev/null || true; kill $sub 2>/dev/null || true; rm -rf "$work"' EXIT
daemon= sub=

gen() { go run ./scripts/gendata -kind houses -rows "$1" -seed "$2" -out "$3"; }
gen 4000 101 "$work/train100.csv"
gen 4000 102 "$work/train200.csv"
gen 4000 103 "$work/train300.csv"
gen 2000 104 "$work/learn.csv"
gen 200 105 "$work/features.csv"
# The field drifted: prices 15% higher plus 10k, so the learner moves away
# from the model and a daemon that did not resume its checkpoint answers
# differently.
awk -F, 'NR == 1 { print; next } { OFS = ","; $7 = sprintf("%.2f", $7 * 1.15 + 10); print }' \
	"$work/learn.csv" >"$work/drifted.csv"

cd "$work"
mkdir -p gw/models
"$LINNET" train --data train100.csv --target price_k --quantize q8 --version 100 --seed 1 --out gw/models/v100.lnm >/dev/null
"$LINNET" train --data train200.csv --target price_k --quantize q8 --version 200 --seed 2 --out v200.lnm >/dev/null
"$LINNET" train --data train300.csv --target price_k --quantize q4 --version 300 --seed 3 --out v300.lnm >/dev/null
"$LINNET" keygen --out fleet.key >/dev/null
cp fleet.key.pub gw/fleet.key.pub
sed "s/127.0.0.1:18831/127.0.0.1:$PORT/" "$out/linnet.toml" >gw/linnet.toml

waitport() {
	i=0
	until (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "nothing listens on $PORT" >&2; exit 1; }
		sleep 0.1
	done
	# the retained status says online once the daemon has subscribed
	i=0
	until mosquitto_sub -h 127.0.0.1 -p "$PORT" -C 1 -W 2 -t linnet/gw-upgrade/status 2>/dev/null | grep -q '"online"'; do
		i=$((i + 1)); [ $i -lt 30 ] || { echo "the daemon did not come online" >&2; exit 1; }
	done
}
send() { "$LINNET" send --broker "$url" --rate 0 "$@" >/dev/null; }
push() { "$LINNET" push --broker "$url" --key fleet.key --gateway gw-upgrade --json "$@" | grep -q '"accepted": true'; }

# Run 1 writes the state: v100 from the config's model key, v200 and v300
# over the air, a signed rollback from v300 to v200 (v300 withdrawn), and
# labelled readings before and after, then SIGTERM (final checkpoint).
cd gw
"$LINNET" run --config linnet.toml >../run1.log 2>&1 &
daemon=$!
cd ..
waitport
head -301 drifted.csv >learn-a.csv
send --data learn-a.csv --target price_k --learn --device house-a
push --model v200.lnm
push --model v300.lnm
push --model v200.lnm --rollback --from 300
{ head -1 drifted.csv; sed -n '302,2001p' drifted.csv; } >learn-b.csv
for d in house-b house-c house-d; do send --data learn-b.csv --target price_k --learn --device "$d"; done
kill -TERM $daemon
wait $daemon
daemon=

# The fixture is the state run 1 left; run 2 starts a copy of it and
# records what it answers to features.csv (unlabelled: nothing changes).
rm -rf "$out/data" "$out/models"
cp -r gw/data gw/models "$out/"
cp gw/fleet.key.pub features.csv "$out/"
cp -r gw rec
cd rec
"$LINNET" run --config linnet.toml >../run2.log 2>&1 &
daemon=$!
cd ..
waitport
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -F '{"topic":"%t","payload":%p}' \
	-t 'linnet/+/features' -t 'linnet/+/prediction' -t 'linnet/gw-upgrade/status' -t 'linnet/gw-upgrade/errors' >traffic.jsonl 2>/dev/null &
sub=$!
sleep 1
send --data features.csv --target price_k --device house-z
sleep 1
kill -TERM $daemon
wait $daemon
daemon=
# mosquitto_sub ends with the embedded broker
wait $sub || true
sub=
grep '/features"' traffic.jsonl >"$out/readings.jsonl"
grep '/prediction"' traffic.jsonl >"$out/predictions.jsonl"
grep '/status"' traffic.jsonl | head -1 >"$out/status.jsonl"
if grep -q '/errors"' traffic.jsonl; then echo "errors during the recording:" >&2; grep '/errors"' traffic.jsonl >&2; exit 1; fi
echo "readings $(wc -l <"$out/readings.jsonl"), predictions $(wc -l <"$out/predictions.jsonl")"
# What the CLI of this commit reads from the fixture's store.
"$LINNET" models history --db "$out/data/linnet.db" --json >"$out/history.json"
"$LINNET" models list --db "$out/data/linnet.db" --json >"$out/list.json"
"$LINNET" models history --db "$out/data/linnet.db"
cat "$out/status.jsonl"
