//go:build !noasm && gc

package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// TestAMD64Kernels checks that every kernel the CPU's features call for is
// registered, in order of preference, and that Limit(avx2) picks the best
// tier-1 one: avxvnni where the CPU has it, else avx2.
func TestAMD64Kernels(t *testing.T) {
	c := cpuid.CPU
	avx2 := c.Supports(cpuid.AVX2, cpuid.FMA3)
	avx512 := avx2 && c.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL, cpuid.BMI2)
	vnni := avx512 && c.Supports(cpuid.AVX512VNNI)
	vnni256 := avx2 && c.Supports(cpuid.AVXVNNI)
	t.Logf("avx2+fma %v, avx512 f/bw/vl %v, avx512vnni %v, avxvnni %v", avx2, avx512, vnni, vnni256)

	have := map[string]bool{"avx512": avx512, "avx512vnni": vnni, "avxvnni": vnni256, "avx2": avx2, "vek": avx2}
	list := func(names ...string) []string {
		var s []string
		for _, n := range names {
			if have[n] {
				s = append(s, n)
			}
		}
		return append(s, "generic")
	}
	float := list("avx512", "avx2")
	want := map[string][]string{
		OpDotF32:       list("avx512", "avx2", "vek"),
		OpAxpyF32:      float,
		OpScaleAddF32:  float,
		OpGemvF32:      list("avx512", "avx2", "vek"),
		OpQuantizeQ8:   float,
		OpDequantizeQ8: float,
		OpDotQ8:        list("avx512vnni", "avxvnni", "avx512", "avx2"),
		OpDotQ4:        list("avx512vnni", "avx512", "avxvnni", "avx2"),
	}
	for op, w := range want {
		if got := Available(op); !slices.Equal(got, w) {
			t.Errorf("%s: available %v, want %v", op, got, w)
		}
	}
	if !avx2 {
		return
	}
	defer Reset()
	if err := Limit("avx2"); err != nil {
		t.Fatal(err)
	}
	for op, k := range Kernels() {
		want := "avx2"
		if vnni256 && (op == OpDotQ8 || op == OpDotQ4) {
			want = "avxvnni"
		}
		if k != want {
			t.Errorf("after Limit(avx2) %s runs %s, want %s", op, k, want)
		}
	}
}

// TestQuantizedNaN checks that a block with a NaN scale, as QuantizeQ8
// stores a non-finite block, makes every int8 dot NaN, wherever the block
// sits in a group of 16 and however many blocks follow.
func TestQuantizedNaN(t *testing.T) {
	nan := float32(math.NaN())
	for _, nb := range []int{1, 2, 3, 7, 15, 16, 17, 31, 32, 33} {
		for bad := range nb {
			n := nb * BlockSize
			a, b := NewQ8(n), NewQ8(n)
			w := NewQ4(n)
			for k := range nb {
				a.Scales[k], b.Scales[k], w.Scales[k] = 1, 1, 1
			}
			a.Scales[bad], w.Scales[bad] = nan, nan
			for _, im := range dotQ8.impls {
				if got := im.fn(a, b); !math.IsNaN(float64(got)) {
					t.Errorf("dot_q8 %s: %d blocks, NaN scale in block %d: got %v", im.name, nb, bad, got)
				}
			}
			for _, im := range dotQ4.impls {
				if got := im.fn(w, b); !math.IsNaN(float64(got)) {
					t.Errorf("dot_q4 %s: %d blocks, NaN scale in block %d: got %v", im.name, nb, bad, got)
				}
			}
		}
	}
}

// TestQuantizeQ8Groups puts non-finite and tiny blocks at every position of
// the groups of 16 blocks that the AVX-512 kernel quantizes at once, and
// checks every kernel bit for bit against the generic one.
func TestQuantizeQ8Groups(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-30, 0}
	for _, n := range []int{512, 1024, 1024 + 32, 1536 + 7, 2048 - 1} {
		for bad := -1; bad < Blocks(n); bad += 3 {
			for _, sp := range specials {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64() * math.Exp(rng.NormFloat64()*3))
				}
				if bad >= 0 {
					lo := bad * BlockSize
					hi := min(lo+BlockSize, n)
					if sp == 1e-30 || sp == 0 {
						for i := lo; i < hi; i++ {
							x[i] = sp * float32(rng.NormFloat64())
						}
					} else {
						x[lo+rng.IntN(hi-lo)] = sp
					}
				}
				want := guardedQ8(n)
				quantizeQ8Generic(want.Q, want.Scales, want.Sums, x)
				for _, im := range quantizeQ8.impls {
					got := guardedQ8(n)
					im.fn(got.Q, got.Scales, got.Sums, x)
					sameQ8(t, fmt.Sprintf("%s n=%d bad block %d (%v)", im.name, n, bad, sp), got, want)
					q8GuardsIntact(t, got)
				}
			}
		}
	}
}
