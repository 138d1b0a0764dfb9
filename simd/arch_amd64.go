//go:build !noasm && gc

package simd

import (
	"github.com/klauspost/cpuid/v2"
	"github.com/viterin/vek/vek32"
)

// archInit registers the amd64 kernels this CPU can run, fastest measured
// first (Xeon with AVX-512 VNNI and AVX-VNNI). vek comes after our own
// kernels: it is not the fastest dot_f32 at any size there (avx512 is), and
// against our avx2 kernel it ties from 64 to 256 values and at 65536 and
// loses at 16 (slower than the Go loop), 1000 and 4096. It stays registered
// so that `linnet bench` keeps measuring it against ours.
func archInit() {
	c := cpuid.CPU
	avx2 := c.Supports(cpuid.AVX2, cpuid.FMA3)
	avx512 := avx2 && c.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL)
	// The AVX-512 kernels build masks with BZHI, which every AVX-512 CPU has.
	avx512 = avx512 && c.Supports(cpuid.BMI2)
	vnni512 := avx512 && c.Supports(cpuid.AVX512VNNI)
	vnni256 := avx2 && c.Supports(cpuid.AVXVNNI)

	dotF32.add("avx512", Tier2, avx512, dotF32AVX512)
	dotF32.add("avx2", Tier1, avx2, dotF32AVX2Go)
	dotF32.add("vek", Tier1, avx2, dotF32Vek)

	axpyF32.add("avx512", Tier2, avx512, axpyF32AVX512)
	axpyF32.add("avx2", Tier1, avx2, axpyF32AVX2Go)

	scaleAddF32.add("avx512", Tier2, avx512, scaleAddF32AVX512)
	scaleAddF32.add("avx2", Tier1, avx2, scaleAddF32AVX2Go)

	gemvF32.add("avx512", Tier2, avx512, gemvF32AVX512)
	gemvF32.add("avx2", Tier1, avx2, gemvF32AVX2Go)
	gemvF32.add("vek", Tier1, avx2, gemvF32Vek)

	quantizeQ8.add("avx512", Tier2, avx512, quantizeQ8AVX512)
	quantizeQ8.add("avx2", Tier1, avx2, quantizeQ8AVX2Go)

	dequantizeQ8.add("avx512", Tier2, avx512, dequantizeQ8AVX512)
	dequantizeQ8.add("avx2", Tier1, avx2, dequantizeQ8AVX2Go)

	// A CPU has either both VNNIs or neither, so the order of avx512 and
	// avxvnni below only sorts the list; it follows the measurements.
	dotQ8.add("avx512vnni", Tier2, vnni512, dotQ8VNNI512)
	dotQ8.add("avxvnni", Tier1, vnni256, dotQ8VNNI256)
	dotQ8.add("avx512", Tier2, avx512, dotQ8AVX512Go)
	dotQ8.add("avx2", Tier1, avx2, dotQ8AVX2Go)

	dotQ4.add("avx512vnni", Tier2, vnni512, dotQ4VNNI512)
	dotQ4.add("avx512", Tier2, avx512, dotQ4AVX512Go)
	dotQ4.add("avxvnni", Tier1, vnni256, dotQ4VNNI256)
	dotQ4.add("avx2", Tier1, avx2, dotQ4AVX2Go)
}

// dotF32Vek calls vek32.Dot, which panics on empty slices.
func dotF32Vek(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return vek32.Dot(a, b)
}

// gemvF32Vek is vek32.MatMul of the rows by x as a one-column matrix.
func gemvF32Vek(dst, m, x []float32) {
	if len(x) == 0 {
		clear(dst)
		return
	}
	vek32.MatMul_Into(dst, m, x, len(x))
}
