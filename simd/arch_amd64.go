//go:build !noasm && gc

package simd

import (
	"github.com/klauspost/cpuid/v2"
	"github.com/viterin/vek/vek32"
)

// archInit registers the amd64 kernels this CPU can run, fastest measured first.
func archInit() {
	c := cpuid.CPU
	avx2 := c.Supports(cpuid.AVX2, cpuid.FMA3)

	dotF32.add("vek", Tier1, avx2, dotF32Vek)
}

// dotF32Vek calls vek32.Dot, which panics on empty slices.
func dotF32Vek(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return vek32.Dot(a, b)
}
