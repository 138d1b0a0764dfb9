package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Every kernel this CPU can run is compared with the generic one and with a
// float64 reference, at lengths around every cut-off, at start offsets 0..3,
// with guard values after each slice.

const guardLen = 16

// testLengths returns 0..300 and the lengths around each block boundary up
// to 70000.
func testLengths(short bool) []int {
	var ns []int
	for n := 0; n <= 300; n++ {
		ns = append(ns, n)
	}
	for _, b := range []int{320, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536} {
		ns = append(ns, b-33, b-32, b-31, b-17, b-16, b-15, b-1, b, b+1, b+15, b+16, b+17, b+31, b+32, b+33)
		if short && b >= 4096 {
			break
		}
	}
	return append(ns, 70000)
}

var offsets = []int{0, 1, 2, 3}

// guarded returns a slice of n values starting at offset off in a buffer
// whose values after the slice are guard.
func guarded(rng *rand.Rand, n, off int, guard float32) []float32 {
	buf := make([]float32, off+n+guardLen)
	for i := range buf {
		buf[i] = guard
	}
	s := buf[off : off+n]
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func guardsIntact(t *testing.T, what string, s []float32, guard float32) {
	t.Helper()
	g := s[len(s):cap(s)]
	for i, v := range g {
		if math.Float32bits(v) != math.Float32bits(guard) {
			t.Fatalf("%s: guard %d after the slice overwritten: %#x", what, i, math.Float32bits(v))
		}
	}
}

// dotBound is the error allowed for a float32 dot product of n terms whose
// absolute products sum to abs: a few ulps per add.
func dotBound(n int, abs float64) float64 {
	return float64(n+4)*0x1p-23*abs + 1e-30
}

func refDot(a, b []float32) (dot, abs float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		dot += p
		abs += math.Abs(p)
	}
	return
}

func forEach[F any](t *testing.T, o *op[F], f func(t *testing.T, name string, fn F)) {
	for _, im := range o.impls {
		t.Run(im.name, func(t *testing.T) { f(t, im.name, im.fn) })
	}
}

func TestDotF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nan := float32(math.NaN())
	forEach(t, dotF32, func(t *testing.T, name string, fn func(a, b []float32) float32) {
		for _, n := range testLengths(testing.Short()) {
			for _, off := range offsets {
				a := guarded(rng, n, off, nan)
				b := guarded(rng, n, (off+1)%4, nan)
				got := fn(a, b)
				want, abs := refDot(a, b)
				if d := math.Abs(float64(got) - want); !(d <= dotBound(n, abs)) {
					t.Fatalf("n=%d off=%d: got %v, want %v (error %g > %g)", n, off, got, want, d, dotBound(n, abs))
				}
			}
		}
	})
}

func TestGemvF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nan := float32(math.NaN())
	const guardBits = 0x7fc0dead
	guard := math.Float32frombits(guardBits)
	forEach(t, gemvF32, func(t *testing.T, name string, fn func(dst, m, x []float32)) {
		for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 64} {
			for _, n := range []int{0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 257, 1000} {
				for _, off := range offsets {
					m := guarded(rng, rows*n, off, nan)
					x := guarded(rng, n, (off+2)%4, nan)
					dst := guarded(rng, rows, off, guard)
					fn(dst, m, x)
					for r := range dst {
						want, abs := refDot(m[r*n:r*n+n], x)
						if d := math.Abs(float64(dst[r]) - want); !(d <= dotBound(n, abs)) {
							t.Fatalf("rows=%d n=%d off=%d row %d: got %v, want %v", rows, n, off, r, dst[r], want)
						}
					}
					guardsIntact(t, fmt.Sprintf("rows=%d n=%d off=%d", rows, n, off), dst, guard)
				}
			}
		}
	})
}

func TestAxpyF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	nan := float32(math.NaN())
	guard := math.Float32frombits(0x7fc0beef)
	forEach(t, axpyF32, func(t *testing.T, name string, fn func(alpha float32, x, y []float32)) {
		for _, n := range testLengths(true) {
			for _, off := range offsets {
				x := guarded(rng, n, off, nan)
				y := guarded(rng, n, (off+3)%4, guard)
				y0 := append([]float32(nil), y...)
				alpha := float32(rng.NormFloat64())
				fn(alpha, x, y)
				for i := range y {
					want := float64(y0[i]) + float64(alpha)*float64(x[i])
					tol := 0x1p-23 * (math.Abs(float64(y0[i])) + math.Abs(float64(alpha)*float64(x[i])))
					if d := math.Abs(float64(y[i]) - want); !(d <= tol) {
						t.Fatalf("n=%d off=%d i=%d: got %v, want %v", n, off, i, y[i], want)
					}
				}
				guardsIntact(t, fmt.Sprintf("n=%d off=%d", n, off), y, guard)
			}
		}
	})
}

func TestScaleAddF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	nan := float32(math.NaN())
	guard := math.Float32frombits(0x7fc0f00d)
	forEach(t, scaleAddF32, func(t *testing.T, name string, fn func(a float32, x []float32, b float32, y []float32)) {
		for _, n := range testLengths(true) {
			for _, off := range offsets {
				x := guarded(rng, n, off, nan)
				y := guarded(rng, n, (off+1)%4, guard)
				y0 := append([]float32(nil), y...)
				a, b := float32(rng.NormFloat64()), float32(rng.NormFloat64())
				fn(a, x, b, y)
				for i := range y {
					want := float64(a)*float64(x[i]) + float64(b)*float64(y0[i])
					tol := 0x1p-22 * (math.Abs(float64(a)*float64(x[i])) + math.Abs(float64(b)*float64(y0[i])))
					if d := math.Abs(float64(y[i]) - want); !(d <= tol) {
						t.Fatalf("n=%d off=%d i=%d: got %v, want %v", n, off, i, y[i], want)
					}
				}
				guardsIntact(t, fmt.Sprintf("n=%d off=%d", n, off), y, guard)
			}
		}
	})
}

// guardedQ8 returns a Q8 of n values whose slices are followed by guards:
// 0x5a bytes after Q, NaN after Scales, 0x5a5a5a5a after Sums.
func guardedQ8(n int) Q8 {
	b := Blocks(n)
	q := make([]int8, b*BlockSize+guardLen)
	s := make([]float32, b+guardLen)
	m := make([]int32, b+guardLen)
	for i := range q {
		q[i] = 0x5a
	}
	for i := range s {
		s[i] = float32(math.NaN())
		m[i] = 0x5a5a5a5a
	}
	return Q8{N: n, Q: q[:b*BlockSize], Scales: s[:b], Sums: m[:b]}
}

func q8GuardsIntact(t *testing.T, v Q8) {
	t.Helper()
	for _, g := range v.Q[len(v.Q):cap(v.Q)] {
		if g != 0x5a {
			t.Fatalf("N=%d: guard after Q overwritten", v.N)
		}
	}
	for i, g := range v.Scales[len(v.Scales):cap(v.Scales)] {
		if !math.IsNaN(float64(g)) || v.Sums[len(v.Sums):cap(v.Sums)][i] != 0x5a5a5a5a {
			t.Fatalf("N=%d: guard after Scales or Sums overwritten", v.N)
		}
	}
}

// randomQ8 fills v with full-range int8 values (-128 included) and scales.
// Unit scales make every partial sum an exact float32 integer while
// N*128*128 < 2^24, so any summation order gives the same bits.
func randomQ8(rng *rand.Rand, v Q8, unit bool) {
	for k := range v.Scales {
		var sum int32
		for i := k * BlockSize; i < (k+1)*BlockSize; i++ {
			v.Q[i] = 0
			if i < v.N {
				v.Q[i] = int8(rng.IntN(256) - 128)
			}
			sum += int32(v.Q[i])
		}
		v.Sums[k] = sum
		v.Scales[k] = 1
		if !unit {
			v.Scales[k] = float32(rng.ExpFloat64() * 1e-2)
		}
	}
}

func randomQ4(rng *rand.Rand, n int, unit bool) Q4 {
	w := NewQ4(n)
	for i := range w.Q {
		w.Q[i] = uint8(rng.IntN(256))
	}
	for k := range w.Scales {
		w.Scales[k] = 1
		if !unit {
			w.Scales[k] = float32(rng.ExpFloat64() * 1e-1)
		}
	}
	// The padding of the last block must decode to zero.
	for i := n; i < len(w.Scales)*BlockSize; i++ {
		k, j := i/BlockSize, i%BlockSize
		p := &w.Q[k*BlockSize/2+j%(BlockSize/2)]
		if j < BlockSize/2 {
			*p = *p&0xf0 | 8
		} else {
			*p = *p&0x0f | 0x80
		}
	}
	return w
}

func TestQuantizeQ8(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	nan := float32(math.NaN())
	forEach(t, quantizeQ8, func(t *testing.T, name string, fn func(q []int8, scales []float32, sums []int32, x []float32)) {
		for _, n := range testLengths(testing.Short()) {
			for _, off := range offsets {
				x := guarded(rng, n, off, nan)
				for i := range x {
					x[i] *= float32(math.Exp(rng.NormFloat64() * 4)) // wide dynamic range
				}
				got, want := guardedQ8(n), guardedQ8(n)
				fn(got.Q, got.Scales, got.Sums, x)
				quantizeQ8Generic(want.Q, want.Scales, want.Sums, x)
				sameQ8(t, fmt.Sprintf("n=%d off=%d", n, off), got, want)
				q8GuardsIntact(t, got)
			}
		}
	})
}

func sameQ8(t *testing.T, what string, got, want Q8) {
	t.Helper()
	for i := range want.Q {
		if got.Q[i] != want.Q[i] {
			t.Fatalf("%s: Q[%d] = %d, want %d", what, i, got.Q[i], want.Q[i])
		}
	}
	for k := range want.Scales {
		if math.Float32bits(got.Scales[k]) != math.Float32bits(want.Scales[k]) || got.Sums[k] != want.Sums[k] {
			t.Fatalf("%s: block %d: scale %v sum %d, want %v %d", what, k, got.Scales[k], got.Sums[k], want.Scales[k], want.Sums[k])
		}
	}
}

func TestQuantizeQ8Contract(t *testing.T) {
	x := make([]float32, 100)
	for i := range x {
		x[i] = float32(i - 50)
	}
	x[40] = float32(math.Inf(1))
	x[70] = float32(math.NaN())
	for i := 96; i < 100; i++ {
		x[i] = 1e-30 // a tiny block is stored as zero
	}
	forEach(t, quantizeQ8, func(t *testing.T, name string, fn func(q []int8, scales []float32, sums []int32, x []float32)) {
		v := NewQ8(len(x))
		fn(v.Q, v.Scales, v.Sums, x)
		// Block 0 holds -50..-19: its scale is 50/127 and -50 maps to -127.
		if v.Scales[0] != float32(50)/127 || v.Q[0] != -127 || v.Q[31] != -48 || v.Sums[0] != sumInt8(v.Q[:32]) {
			t.Errorf("block 0: scale %v, q[0] %d, q[31] %d, sum %d", v.Scales[0], v.Q[0], v.Q[31], v.Sums[0])
		}
		for k := 1; k <= 2; k++ {
			if !math.IsNaN(float64(v.Scales[k])) || v.Sums[k] != 0 {
				t.Errorf("non-finite block %d: scale %v sum %d, want NaN 0", k, v.Scales[k], v.Sums[k])
			}
			for _, q := range v.Q[k*BlockSize : (k+1)*BlockSize] {
				if q != 0 {
					t.Fatalf("non-finite block %d holds %d, want 0", k, q)
				}
			}
		}
		if v.Scales[3] != 0 || v.Sums[3] != 0 {
			t.Errorf("tiny block: scale %v sum %d, want 0 0", v.Scales[3], v.Sums[3])
		}
		w := NewQ8(len(x))
		for i := range w.Q[:w.N] {
			w.Q[i] = 1
		}
		for k := range w.Scales {
			w.Scales[k] = 1
			w.Sums[k] = BlockSize
		}
		if d := dotQ8Generic(v, w); !math.IsNaN(float64(d)) {
			t.Errorf("dot with a non-finite block = %v, want NaN", d)
		}
	})
}

func TestQuantizeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x := guarded(rng, 1000, 0, 0)
	v := NewQ8(len(x))
	QuantizeQ8(v, x)
	y := make([]float32, len(x))
	DequantizeQ8(y, v)
	for i := range x {
		if d := math.Abs(float64(x[i] - y[i])); d > float64(v.Scales[i/BlockSize])/2*1.0001 {
			t.Fatalf("q8 x[%d]=%v came back %v: error above half a step", i, x[i], y[i])
		}
	}
	w := NewQ4(len(x))
	QuantizeQ4(w, x)
	DequantizeQ4(y, w)
	for i := range x {
		if d := math.Abs(float64(x[i] - y[i])); d > float64(w.Scales[i/BlockSize])/2*1.0001 {
			t.Fatalf("q4 x[%d]=%v came back %v: error above half a step", i, x[i], y[i])
		}
	}
}

func TestDequantizeQ8(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	guard := math.Float32frombits(0x7fc0abcd)
	forEach(t, dequantizeQ8, func(t *testing.T, name string, fn func(dst []float32, q []int8, scales []float32)) {
		for _, n := range testLengths(true) {
			for _, off := range offsets {
				v := guardedQ8(n)
				randomQ8(rng, v, false)
				got := guarded(rng, n, off, guard)
				want := make([]float32, n)
				fn(got, v.Q[:n], v.Scales)
				dequantizeQ8Generic(want, v.Q[:n], v.Scales)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("n=%d off=%d: dst[%d] = %v, want %v", n, off, i, got[i], want[i])
					}
				}
				guardsIntact(t, fmt.Sprintf("n=%d off=%d", n, off), got, guard)
			}
		}
	})
}

// exactLimit is the largest length at which unit-scale q8 dot products stay
// exact in float32 whatever the summation order.
const exactLimit = 1 << 24 / (128 * 128)

func TestDotQ8(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	forEach(t, dotQ8, func(t *testing.T, name string, fn func(a, b Q8) float32) {
		for _, n := range testLengths(testing.Short()) {
			a, b := guardedQ8(n), guardedQ8(n)
			unit := n <= exactLimit
			randomQ8(rng, a, unit)
			randomQ8(rng, b, unit)
			got, want := fn(a, b), dotQ8Generic(a, b)
			if unit {
				if got != want {
					t.Fatalf("n=%d unit scales: got %v, want %v exactly", n, got, want)
				}
				continue
			}
			ref, abs := refQ8(a, b)
			if d := math.Abs(float64(got) - ref); !(d <= dotBound(Blocks(n), abs)) {
				t.Fatalf("n=%d: got %v, want %v", n, got, ref)
			}
		}
	})
}

func refQ8(a, b Q8) (dot, abs float64) {
	for k := range a.Scales {
		var s int64
		for i := k * BlockSize; i < (k+1)*BlockSize; i++ {
			s += int64(a.Q[i]) * int64(b.Q[i])
		}
		p := float64(s) * float64(a.Scales[k]*b.Scales[k])
		dot += p
		abs += math.Abs(p)
	}
	return
}

func TestDotQ4(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	forEach(t, dotQ4, func(t *testing.T, name string, fn func(w Q4, x Q8) float32) {
		for _, n := range testLengths(testing.Short()) {
			unit := n <= exactLimit
			w := randomQ4(rng, n, unit)
			x := guardedQ8(n)
			randomQ8(rng, x, unit)
			got, want := fn(w, x), dotQ4Generic(w, x)
			if unit {
				if got != want {
					t.Fatalf("n=%d unit scales: got %v, want %v exactly", n, got, want)
				}
				continue
			}
			if d := math.Abs(float64(got - want)); !(d <= dotBound(Blocks(n), math.Abs(float64(want))+1)*4) {
				t.Fatalf("n=%d: got %v, want %v", n, got, want)
			}
		}
	})
}

func TestNonFinite(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, n := range []int{1, 7, 16, 33, 100, 1000} {
		a := make([]float32, n)
		b := make([]float32, n)
		for i := range a {
			a[i], b[i] = 1, 1
		}
		forEach(t, dotF32, func(t *testing.T, name string, fn func(a, b []float32) float32) {
			a[n/2] = float32(math.NaN())
			if got := fn(a, b); !math.IsNaN(float64(got)) {
				t.Errorf("n=%d: dot with a NaN = %v, want NaN", n, got)
			}
			a[n/2] = inf
			if got := fn(a, b); !math.IsInf(float64(got), 1) {
				t.Errorf("n=%d: dot with +Inf = %v, want +Inf", n, got)
			}
			a[n/2] = 1
		})
	}
}

func TestPanicsOnMismatch(t *testing.T) {
	for name, f := range map[string]func(){
		"DotF32":   func() { DotF32(make([]float32, 3), make([]float32, 4)) },
		"Axpy":     func() { Axpy(1, make([]float32, 3), make([]float32, 4)) },
		"ScaleAdd": func() { ScaleAdd(1, make([]float32, 3), 1, make([]float32, 4)) },
		"Gemv":     func() { Gemv(make([]float32, 2), make([]float32, 7), make([]float32, 4)) },
		"DotQ8":    func() { DotQ8(NewQ8(3), NewQ8(40)) },
		"DotQ4":    func() { DotQ4(NewQ4(3), NewQ8(4)) },
		"ShortQ8":  func() { v := NewQ8(40); v.Scales = v.Scales[:1]; DotQ8(v, NewQ8(40)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic on mismatched lengths", name)
				}
			}()
			f()
		}()
	}
}

func TestDispatch(t *testing.T) {
	defer Reset()
	if err := Limit("generic"); err != nil {
		t.Fatal(err)
	}
	for op, k := range Kernels() {
		if k != "generic" {
			t.Errorf("after Limit(generic) %s runs %s", op, k)
		}
	}
	Reset()
	for _, op := range Ops() {
		av := Available(op)
		if len(av) == 0 || av[len(av)-1] != "generic" {
			t.Errorf("%s: available %v does not end with generic", op, av)
		}
		if Kernels()[op] != av[0] {
			t.Errorf("%s: default %s is not the best available %s", op, Kernels()[op], av[0])
		}
		if err := Use(op, "generic"); err != nil {
			t.Error(err)
		}
	}
	if err := Use(OpDotF32, "no-such-kernel"); err == nil {
		t.Error("Use accepted an unknown kernel")
	}
	if err := Limit("turbo"); err == nil {
		t.Error("Limit accepted an unknown tier")
	}
}

func sumInt8(q []int8) int32 {
	var s int32
	for _, v := range q {
		s += int32(v)
	}
	return s
}
