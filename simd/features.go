package simd

import (
	"runtime"
	"sort"

	"github.com/klauspost/cpuid/v2"
	"golang.org/x/sys/cpu"
)

// Arch is the architecture this binary was built for.
const Arch = runtime.GOARCH

// interesting lists the CPU features the kernels care about, by cpuid name.
var interesting = []cpuid.FeatureID{
	cpuid.SSE2, cpuid.SSE4, cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.BMI2,
	cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512DQ, cpuid.AVX512VL, cpuid.AVX512VNNI, cpuid.AVXVNNI,
	cpuid.ASIMD, cpuid.ASIMDDP, cpuid.FP, cpuid.ASIMDHP,
}

// Features returns the CPU features relevant to the kernels, sorted. On
// GOARCH=arm, which cpuid does not cover, it asks golang.org/x/sys/cpu.
func Features() []string {
	var f []string
	if runtime.GOARCH == "arm" {
		if cpu.ARM.HasNEON {
			f = append(f, "NEON")
		}
		if cpu.ARM.HasVFPv4 {
			f = append(f, "VFPv4")
		}
		return f
	}
	for _, id := range interesting {
		if cpuid.CPU.Supports(id) {
			f = append(f, id.String())
		}
	}
	sort.Strings(f)
	return f
}

// CPUName returns the processor's brand string, where the CPU reports one.
func CPUName() string { return cpuid.CPU.BrandName }
