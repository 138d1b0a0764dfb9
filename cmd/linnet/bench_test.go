package main

import (
	"slices"
	"testing"

	"github.com/linnet-edge/linnet/simd"
)

// cpu --json and bench --json keep the shapes README.md promises: every
// operation has a kernel, and bench has one row per op, size and kernel
// this CPU can run, generic included.
func TestCPUAndBenchJSON(t *testing.T) {
	cpu := decode[cpuReport](t, must(linnet(t, "cpu", "--json")))
	if cpu.Arch != simd.Arch || cpu.Features == nil || len(cpu.Kernels) != len(simd.Ops()) {
		t.Fatalf("cpu --json: %+v", cpu)
	}
	out := must(linnet(t, "bench", "--json", "--ops", "dot_f32,dot_q8", "--sizes", "16,100", "--time", "1ms", "--repeat", "3"))
	rep := decode[struct{ Results []benchRow }](t, out)
	want := 0
	for _, op := range []string{"dot_f32", "dot_q8"} {
		want += 2 * len(simd.Available(op))
	}
	if len(rep.Results) != want {
		t.Fatalf("bench: %d rows, want %d: %s", len(rep.Results), want, out)
	}
	for _, r := range rep.Results {
		if !slices.Contains(simd.Available(r.Op), r.Kernel) || (r.N != 16 && r.N != 100) || !(r.NsPerOp > 0) {
			t.Errorf("bench row %+v", r)
		}
	}
	for _, bad := range [][]string{{"--repeat", "0"}, {"--ops", "dot_f64"}, {"--sizes", "0"}} {
		if _, err := linnet(t, append([]string{"bench", "--time", "1ms"}, bad...)...); err == nil {
			t.Errorf("bench %v: no error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median %v = %v, want %v", c.in, got, c.want)
		}
	}
}
