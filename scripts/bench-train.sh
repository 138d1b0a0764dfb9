#!/bin/sh
# Times, side by side in one run, `linnet train` with default flags (in
# memory and --stream) against pandas.read_csv + StandardScaler +
# SGDRegressor(max_iter=5) on the same generated CSV, and reports wall time
# and peak RSS (GNU time). Needs python3-sklearn, python3-pandas and time
# (Debian packages); uses the Debian python, /usr/bin/python3.
#
#   scripts/bench-train.sh [ROWS] [RUNS]     (default 1000000 rows, 3 runs)
#
# Each figure is the median of RUNS runs; the ratio compares medians taken
# in the same run, so a busy machine slows both sides alike.
set -eu
ROWS=${1:-1000000}
RUNS=${2:-3}
PY=/usr/bin/python3
cd "$(dirname "$0")/.."
for need in "$PY" /usr/bin/time; do
	[ -x "$need" ] || { echo "bench-train: $need is missing (apt-get install python3-sklearn python3-pandas time)" >&2; exit 1; }
done
"$PY" -c 'import pandas, sklearn' 2>/dev/null || { echo "bench-train: apt-get install python3-sklearn python3-pandas" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/linnet" ./cmd/linnet
go run ./scripts/gendata -kind bench -rows "$ROWS" -seed 1 -out "$dir/data.csv"
cols=$(head -n1 "$dir/data.csv" | tr ',' '\n' | wc -l)
features=$((cols - 1))
bytes=$(wc -c < "$dir/data.csv")

cat > "$dir/sk.py" <<'PY'
import sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import SGDRegressor
df = pd.read_csv(sys.argv[1])
y = df.pop("y").to_numpy()
X = StandardScaler().fit_transform(df.to_numpy())
SGDRegressor(max_iter=5).fit(X, y)
PY

# measure NAME CMD...: runs CMD RUNS times and prints "NAME seconds peak_kb"
# (medians).
measure() {
	name=$1
	shift
	: > "$dir/$name.txt"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		/usr/bin/time -v -o "$dir/time.txt" "$@" > /dev/null 2>&1
		s=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.txt" | awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
		kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt")
		echo "$s $kb" >> "$dir/$name.txt"
		i=$((i + 1))
	done
	echo "$name $(sort -n "$dir/$name.txt" | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }') $(sort -n -k2 "$dir/$name.txt" | awk '{ m[NR] = $2 } END { print m[int((NR + 1) / 2)] }')"
}

{
	measure linnet "$dir/linnet" train --data "$dir/data.csv" --target y --out "$dir/m.lnm"
	measure linnet-stream "$dir/linnet" train --data "$dir/data.csv" --target y --stream --out "$dir/m.lnm"
	measure sklearn "$PY" "$dir/sk.py" "$dir/data.csv"
} > "$dir/results.txt"

awk -v rows="$ROWS" -v feats="$features" -v bytes="$bytes" -v runs="$RUNS" '
	{ t[$1] = $2; kb[$1] = $3 }
	END {
		data = rows * feats * 4 / 1048576
		printf "%d rows x %d features, CSV %.0f MB, float32 data %.0f MB; median of %d runs\n", rows, feats, bytes / 1048576, data, runs
		printf "%-44s %8s %10s %9s %11s\n", "pipeline", "seconds", "peak MB", "x sklearn", "x f32 data"
		split("linnet linnet-stream sklearn", order, " ")
		name["linnet"] = "linnet train (default flags, in memory)"
		name["linnet-stream"] = "linnet train --stream"
		name["sklearn"] = "pandas + StandardScaler + SGDRegressor(5)"
		for (i = 1; i <= 3; i++) {
			k = order[i]
			printf "%-44s %8.2f %10.0f %9.2f %11.2f\n", name[k], t[k], kb[k] / 1024, t[k] / t["sklearn"], kb[k] / 1024 / data
		}
	}' "$dir/results.txt"
