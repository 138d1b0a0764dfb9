#!/usr/bin/env bash
# Start-up cost of the service: the kernel self-test and `linnet run` from
# exec to its retained "online" status on the embedded broker, with and
# without the self-test (medians of N runs, default 10).
#
#   scripts/startup-time.sh [N]           # from the repository root
#   BIN=path/to/linnet scripts/startup-time.sh   # measure another build
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=${BIN:-}
if [ -z "$bin" ]; then
	bin=$work/linnet
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin" ./cmd/linnet
fi
go build -o "$work/startuptime" ./scripts/startuptime
"$work/startuptime" -bin "$bin" -n "${1:-10}"
