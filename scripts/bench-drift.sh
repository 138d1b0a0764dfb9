#!/bin/sh
# Measures the drift detectors of daemon/monitor on synthetic streams and
# prints the README's drift table: false alarms per million readings of
# stationary streams at the default thresholds, and the detection delay
# (readings from the change to the alert) for mean shifts of 0.5, 1 and
# 2 sd in one feature of a 32-feature model, a change of category
# frequencies, and a 20% rise of the loss. Then the per-reading cost of
# the detectors beside one prediction of the same 32-feature model, from
# the Go benchmark in the same run.
#
#   scripts/bench-drift.sh [-readings N] [-trials N] [-sweep]
#
# -sweep adds other windows and thresholds: how the defaults were chosen.
set -eu
cd "$(dirname "$0")/.."
go run ./scripts/benchdrift "$@"
echo
go test ./daemon/monitor -run '^$' -bench Observe -count 3 | grep '^Benchmark'
