#!/usr/bin/env bash
# qemu-test.sh runs the tests of the given packages (default ./simd/) as ARM
# binaries under qemu user-mode emulation, one run per emulated CPU:
#
#   arm64 -cpu cortex-a72    ASIMD, no dot product   expects neon kernels
#   arm64 -cpu neoverse-n1   ASIMD + ASIMDDP          expects sdot for dot_q8/dot_q4
#   arm   -cpu cortex-a15    ARMv7 (GOARM=7)          expects generic kernels
#
# qemu's default CPU ("max") has every extension, so an SDOT kernel would
# pass there on a CPU that has none: the CPUs are named, and
# LINNET_EXPECT_KERNELS makes simd's TestExpectKernels assert which kernels
# ran (other packages ignore it). Emulation is slow, so the runs pass
# -test.short and nothing here measures time.
#
# Usage: scripts/qemu-test.sh [package...]   (paths or patterns such as ./...,
# relative to the module root)
# It installs nothing: it needs qemu-aarch64-static and qemu-arm-static
# (Debian/Ubuntu package qemu-user-static) and calls them explicitly, so
# binfmt_misc need not be set up.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
	set -- ./simd/
fi

missing=()
for q in qemu-aarch64-static qemu-arm-static; do
	command -v "$q" >/dev/null 2>&1 || missing+=("$q")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "qemu-test: ${missing[*]} not found; install qemu-user-static (e.g. apt-get install qemu-user-static)" >&2
	exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Each run: label, qemu binary, CPU, GOARCH of the binary, expected kernels.
runs=(
	"arm64/cortex-a72|qemu-aarch64-static|cortex-a72|arm64|neon"
	"arm64/neoverse-n1|qemu-aarch64-static|neoverse-n1|arm64|neon,dot_q8=sdot,dot_q4=sdot"
	"armv7/cortex-a15|qemu-arm-static|cortex-a15|arm|generic"
)

# Expand patterns first, so a bad one fails before anything is built. The
# loop reads this list on stdin, so nothing inside it may read stdin.
listed=$(go list -f '{{.ImportPath}}|{{.Dir}}' "$@")

failed=()
passed=0
start=$SECONDS
while IFS='|' read -r name dir; do
	base=$tmp/$(echo "$name" | tr '/.' '__')

	echo "== build $name (arm64, armv7)"
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go test -c -o "$base.arm64.test" "$name" </dev/null
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go test -c -o "$base.arm.test" "$name" </dev/null

	for run in "${runs[@]}"; do
		IFS='|' read -r label qemu cpu goarch expect <<<"$run"
		bin=$base.$goarch.test
		if [ ! -f "$bin" ]; then
			echo "== $name on $label: no test files"
			continue
		fi
		echo "== $name on $label (expect kernels: $expect)"
		t0=$SECONDS
		# Tests run in their package directory, as go test runs them. -v shows
		# the kernel log of TestExpectKernels; the filter drops the RUN/PASS
		# noise and keeps logs, failures and the verdict.
		# LINNET_TEST_EXEC lets tests that re-execute their own binary (the
		# store's crash test) start the child under the same emulator.
		if (cd "$dir" && env -u LINNET_KERNELS LINNET_EXPECT_KERNELS="$expect" \
			LINNET_TEST_EXEC="$qemu -cpu $cpu" \
			"$qemu" -cpu "$cpu" "$bin" -test.short -test.v -test.timeout 10m </dev/null 2>&1 |
			sed -E '/^ *(=== (RUN|PAUSE|CONT|NAME)|--- (PASS|SKIP))/d'); then
			passed=$((passed + 1))
			echo "== $name on $label: ok ($((SECONDS - t0))s)"
		else
			failed+=("$name on $label")
			echo "== $name on $label: FAIL ($((SECONDS - t0))s)"
		fi
	done
done <<<"$listed"

echo "== qemu-test: $passed passed, ${#failed[@]} failed, $((SECONDS - start))s"
if [ "${#failed[@]}" -gt 0 ]; then
	printf '   FAIL %s\n' "${failed[@]}" >&2
	exit 1
fi
