//go:build !noasm && gc

package simd

import "github.com/klauspost/cpuid/v2"

// archInit registers the arm64 kernels this CPU can run, fastest measured first.
//
// Detection trusts only ASIMD and ASIMDDP, which cpuid reads from the first
// HWCAP word: /proc/cpuinfo is no use under emulation, and
// the second HWCAP word is unreliable in some versions. ASIMD is the arm64
// baseline, so neon is always there in practice; sdot needs ARMv8.2 dot
// product (Cortex-A76, Neoverse; not Cortex-A53/A72).
func archInit() {
	c := cpuid.CPU
	neon := c.Supports(cpuid.ASIMD)
	sdot := neon && c.Supports(cpuid.ASIMDDP)

	dotF32.add("neon", Tier1, neon, dotF32NEON)
	axpyF32.add("neon", Tier1, neon, axpyF32NEON)
	scaleAddF32.add("neon", Tier1, neon, scaleAddF32NEON)
	gemvF32.add("neon", Tier1, neon, gemvF32NEON)
	quantizeQ8.add("neon", Tier1, neon, quantizeQ8NEON)
	dequantizeQ8.add("neon", Tier1, neon, dequantizeQ8NEON)
	dotQ8.add("sdot", Tier2, sdot, dotQ8SDOT)
	dotQ8.add("neon", Tier1, neon, dotQ8NEON)
	dotQ4.add("sdot", Tier2, sdot, dotQ4SDOT)
	dotQ4.add("neon", Tier1, neon, dotQ4NEON)
}
