package simd

import (
	"fmt"
	"math"
	"testing"
)

// Edge cases the random differential tests in dot_test.go are unlikely to
// hit, first written for the arm64 kernels (int16 products and pairwise
// widening, FCVTNS ties, the lanes of the UMAX tree) and run against every
// kernel this CPU has, generic included. The fuzz targets are in
// fuzz_test.go.

// fillQ8 sets every value of v (padding excluded) with f and fixes Sums;
// scales are 1, so dot products stay exact up to exactLimit values.
func fillQ8(v Q8, f func(i int) int8) {
	for k := range v.Scales {
		var s int32
		for i := k * BlockSize; i < (k+1)*BlockSize; i++ {
			v.Q[i] = 0
			if i < v.N {
				v.Q[i] = f(i)
			}
			s += int32(v.Q[i])
		}
		v.Sums[k], v.Scales[k] = s, 1
	}
}

func TestDotQ8Extremes(t *testing.T) {
	patterns := []struct {
		name string
		a, b func(i int) int8
	}{
		{"-128*-128", func(int) int8 { return -128 }, func(int) int8 { return -128 }},
		{"-128*127", func(int) int8 { return -128 }, func(int) int8 { return 127 }},
		{"127*127", func(int) int8 { return 127 }, func(int) int8 { return 127 }},
		{"alternating", func(i int) int8 { return int8(-128 + 255*(i&1)) }, func(i int) int8 { return int8(-128 + 255*(i>>1&1)) }},
	}
	forEach(t, dotQ8, func(t *testing.T, name string, fn func(a, b Q8) float32) {
		for _, p := range patterns {
			for _, n := range []int{1, 16, 31, 32, 33, 64, 100, exactLimit} {
				a, b := guardedQ8(n), guardedQ8(n)
				fillQ8(a, p.a)
				fillQ8(b, p.b)
				if got, want := fn(a, b), dotQ8Generic(a, b); got != want {
					t.Errorf("%s n=%d: got %v, want %v", p.name, n, got, want)
				}
			}
		}
	})
}

func TestDotQ4Extremes(t *testing.T) {
	nibbles := []struct {
		name string
		b    uint8 // both nibbles of every byte
	}{{"-8", 0x00}, {"7", 0xff}, {"-8|7", 0xf0}, {"7|-8", 0x0f}}
	xs := []struct {
		name string
		f    func(i int) int8
	}{
		{"-128", func(int) int8 { return -128 }},
		{"127", func(int) int8 { return 127 }},
		{"halves", func(i int) int8 { return int8(-128 + 255*(i/16&1)) }},
	}
	forEach(t, dotQ4, func(t *testing.T, name string, fn func(w Q4, x Q8) float32) {
		for _, nb := range nibbles {
			for _, xp := range xs {
				for _, n := range []int{32, 64, 96, exactLimit} {
					w := NewQ4(n)
					for i := range w.Q {
						w.Q[i] = nb.b
					}
					for k := range w.Scales {
						w.Scales[k] = 1
					}
					x := guardedQ8(n)
					fillQ8(x, xp.f)
					if got, want := fn(w, x), dotQ4Generic(w, x); got != want {
						t.Errorf("w %s x %s n=%d: got %v, want %v", nb.name, xp.name, n, got, want)
					}
				}
			}
		}
	})
}

// quantizeCases returns blocks that test the edges of quantize_q8: ties of
// the round to even, the tiny and non-finite thresholds on either side, and
// the block maximum, a NaN or an infinity in each of the 32 lanes.
func quantizeCases() map[string][]float32 {
	c := map[string][]float32{}
	block := func(f func(i int) float32) []float32 {
		x := make([]float32, BlockSize)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	// amax 127 gives d = 1 and id = 1, so x is rounded as it is: ties.
	// amax 63.5 gives d = 0.5 and id = 2: x*id is a tie again.
	c["ties"] = block(func(i int) float32 {
		if i == 31 {
			return 127
		}
		return float32(i) - 15.5
	})
	c["ties near 127"] = block(func(i int) float32 {
		if i == 0 {
			return -127
		}
		return float32(i) + 95.5
	})
	c["ties id=2"] = block(func(i int) float32 {
		if i == 31 {
			return 63.5
		}
		return float32(i)*0.5 + 0.25 - 8
	})
	c["-0"] = block(func(i int) float32 { return float32(math.Copysign(0, -1)) })
	c["zero"] = block(func(i int) float32 { return 0 })
	c["tiny edge"] = block(func(i int) float32 { return math.Float32frombits(tinyBits) * float32(1-i%2*2) })
	c["below tiny"] = block(func(i int) float32 { return math.Float32frombits(tinyBits - 1) })
	c["denormal"] = block(func(i int) float32 { return math.Float32frombits(uint32(i + 1)) })
	c["max finite"] = block(func(i int) float32 { return math.Float32frombits(0x7f7fffff-uint32(i)*0x10000) * float32(1-i%2*2) })
	c["-NaN"] = block(func(i int) float32 { return math.Float32frombits(0xffc00001) })
	for lane := range BlockSize {
		c[fmt.Sprintf("max in lane %d", lane)] = block(func(i int) float32 {
			if i == lane {
				return -3.25
			}
			return float32(i%7) * 0.1
		})
		c[fmt.Sprintf("+Inf in lane %d", lane)] = block(func(i int) float32 {
			if i == lane {
				return float32(math.Inf(1))
			}
			return 1
		})
		c[fmt.Sprintf("NaN in lane %d", lane)] = block(func(i int) float32 {
			if i == lane {
				return float32(math.NaN())
			}
			return -1
		})
	}
	return c
}

func TestQuantizeQ8Edges(t *testing.T) {
	forEach(t, quantizeQ8, func(t *testing.T, name string, fn func(q []int8, scales []float32, sums []int32, x []float32)) {
		for what, x := range quantizeCases() {
			// Whole blocks, and the same values as a partial last block.
			for _, n := range []int{len(x), len(x) - 1, 7} {
				if n <= 0 || n > len(x) {
					continue
				}
				got, want := guardedQ8(n), guardedQ8(n)
				fn(got.Q, got.Scales, got.Sums, x[:n])
				quantizeQ8Generic(want.Q, want.Scales, want.Sums, x[:n])
				sameQ8(t, fmt.Sprintf("%s n=%d", what, n), got, want)
				q8GuardsIntact(t, got)
			}
		}
	})
}
