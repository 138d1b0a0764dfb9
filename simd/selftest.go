package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// The self-test checks, on the machine that will run them, that every kernel
// the CPU claims computes what the generic kernel computes. It exists because
// a CPU (or a VM, or an emulator) can report a feature it cannot run: that
// kernel then dies with SIGILL, which Go cannot recover from, or quietly
// returns wrong numbers. Check runs one kernel in the calling process; a
// caller that must survive SIGILL runs the checks in a child process
// (`linnet selftest` re-executes its own binary, one child for all of
// Selectable, started again past a kernel that kills it).
//
// What a daemon does with the result (cmd/linnet's kernelSelfTest does
// this, checkIsolated standing for its child process):
//
//	if f := checkIsolated(simd.Selectable(), seed); len(f) > 0 {
//		simd.Limit("generic") // before any other goroutine uses the package
//		log.Warn("kernel self-test failed, running generic kernels", "failed", f)
//	}
//
// and it reports simd.Kernels() (all "generic" then) wherever it reports the
// kernels in use.

// Failure is one kernel that did not pass the self-test.
type Failure struct {
	Op     string `json:"op"`
	Kernel string `json:"kernel"`
	Reason string `json:"reason"`
}

// String returns op/kernel: reason.
func (f Failure) String() string { return f.Op + "/" + f.Kernel + ": " + f.Reason }

// Checker checks one kernel of one operation and returns why it failed, or
// nil. Check is the in-process Checker.
type Checker func(op, kernel string, seed uint64) error

// Claimed returns every kernel this CPU claims, as op/kernel, in Ops order and
// best first within an operation; generic kernels, the reference, are left
// out.
func Claimed() []string { return claimed(Tier2) }

// Selectable returns the kernels of Claimed that the dispatch may choose
// under the current cap (LINNET_KERNELS at init, then Limit or Reset): the
// ones worth checking before serving. With the cap at generic it is empty.
func Selectable() []string { return claimed(capTier) }

func claimed(tier int) []string {
	var s []string
	for _, o := range ops {
		for _, k := range o.kernels() {
			if k.name != "generic" && k.tier <= tier {
				s = append(s, o.opName()+"/"+k.name)
			}
		}
	}
	return s
}

// SelfTest runs check on every kernel Selectable returns, all with the same
// seed, and returns the failures. A nil check means Check, in this process:
// a kernel that raises SIGILL then kills the caller.
func SelfTest(check Checker, seed uint64) []Failure {
	if check == nil {
		check = Check
	}
	var fails []Failure
	for _, c := range Selectable() {
		op, k, _ := strings.Cut(c, "/")
		if err := check(op, k, seed); err != nil {
			fails = append(fails, Failure{Op: op, Kernel: k, Reason: err.Error()})
		}
	}
	return fails
}

// Check compares kernel of op with the generic kernel on random inputs drawn
// from seed: every length up to 300, lengths around block and vector sizes,
// start offsets 0..3, and guard values after every slice a kernel writes.
// Integer results and quantization must match bit for bit; float results
// within the bound the package comment states. It returns nil when the
// kernel passes. The calling process dies if the kernel executes an
// instruction the CPU lacks.
func Check(op, kernel string, seed uint64) error { return check(op, kernel, seed, false) }

// CheckCorrupted is Check with the kernel's results made wrong before they
// are compared: what a test of the failure path (selftest's break hook)
// runs to watch a failure travel to the exit status and the fallback.
func CheckCorrupted(op, kernel string, seed uint64) error { return check(op, kernel, seed, true) }

func check(op, kernel string, seed uint64, broken bool) error {
	c := &stChecker{rng: rand.New(rand.NewPCG(seed, 0x5e1f7e57)), broken: broken}
	missing := fmt.Errorf("no kernel %q for %s on this CPU", kernel, op)
	switch op {
	case OpDotF32:
		fn, ok := dotF32.find(kernel)
		if !ok {
			return missing
		}
		return c.dotF32(fn)
	case OpAxpyF32:
		fn, ok := axpyF32.find(kernel)
		if !ok {
			return missing
		}
		return c.axpy(fn)
	case OpScaleAddF32:
		fn, ok := scaleAddF32.find(kernel)
		if !ok {
			return missing
		}
		return c.scaleAdd(fn)
	case OpGemvF32:
		fn, ok := gemvF32.find(kernel)
		if !ok {
			return missing
		}
		return c.gemv(fn)
	case OpQuantizeQ8:
		fn, ok := quantizeQ8.find(kernel)
		if !ok {
			return missing
		}
		return c.quantize(fn)
	case OpDequantizeQ8:
		fn, ok := dequantizeQ8.find(kernel)
		if !ok {
			return missing
		}
		return c.dequantize(fn)
	case OpDotQ8:
		fn, ok := dotQ8.find(kernel)
		if !ok {
			return missing
		}
		return c.dotQ8(fn)
	case OpDotQ4:
		fn, ok := dotQ4.find(kernel)
		if !ok {
			return missing
		}
		return c.dotQ4(fn)
	}
	// An operation added to the package without a check here fails rather
	// than passing untested; selftest_test.go catches it first.
	return fmt.Errorf("no self-test for operation %q", op)
}

// stChecker holds the random source of one check and whether it corrupts
// the results (CheckCorrupted).
type stChecker struct {
	rng    *rand.Rand
	broken bool
}

// stLengths covers every tail length of 4-, 8-, 16- and 32-wide loops,
// both sides of each block and unrolled-loop boundary, and a long vector.
func stLengths() []int {
	ns := make([]int, 0, 340)
	for n := 0; n <= 300; n++ {
		ns = append(ns, n)
	}
	for _, b := range []int{512, 1024, 4096} {
		ns = append(ns, b-33, b-1, b, b+1, b+17, b+33)
	}
	return append(ns, 10007)
}

const stGuard = 16 // guard values after each slice

// stSlice returns n values at offset off of a buffer holding guard after
// them.
func stSlice(n, off int, guard float32) []float32 {
	buf := make([]float32, off+n+stGuard)
	for i := range buf {
		buf[i] = guard
	}
	return buf[off : off+n]
}

// vec returns n random values starting at offset off of a buffer whose
// values after the slice are guard.
func (c *stChecker) vec(n, off int, guard float32) []float32 {
	s := stSlice(n, off, guard)
	for i := 0; i < n; i += 2 {
		// Two values in [-2, 2) from one draw: the random numbers, not the
		// kernels, are most of a check's time.
		u := c.rng.Uint64()
		s[i] = float32(int32(u)) * 0x1p-30
		if i+1 < n {
			s[i+1] = float32(int32(u>>32)) * 0x1p-30
		}
	}
	return s
}

// wide returns n values of either sign, exponents spread over 2^-17..2^17,
// starting at offset off of a buffer holding NaN after the slice.
func (c *stChecker) wide(n, off int) []float32 {
	s := stSlice(n, off, float32(math.NaN()))
	for i := range s {
		u := c.rng.Uint64()
		exp := uint32(127-17) + uint32(u>>32)%35
		s[i] = math.Float32frombits(uint32(u)&(1<<31) | exp<<23 | uint32(u>>8)&(1<<23-1))
	}
	return s
}

// stBytes fills b with random bytes, eight from each draw.
func stBytes[T ~int8 | ~uint8](c *stChecker, b []T) {
	for i := 0; i < len(b); i += 8 {
		u := c.rng.Uint64()
		for j := i; j < min(i+8, len(b)); j++ {
			b[j] = T(u)
			u >>= 8
		}
	}
}

// corrupt makes a result wrong when the break hook names this kernel.
func (c *stChecker) corrupt(v float32) float32 {
	if c.broken {
		return v*1.5 + 1
	}
	return v
}

func (c *stChecker) corruptSlice(s []float32) {
	if c.broken && len(s) > 0 {
		s[len(s)/2] = c.corrupt(s[len(s)/2])
	}
}

func stBits(v float32) uint32 { return math.Float32bits(v) }

// stGuardsKept reports the first guard after s that no longer holds guard.
func stGuardsKept(s []float32, guard float32) error {
	for i, v := range s[len(s):cap(s)] {
		if stBits(v) != stBits(guard) {
			return fmt.Errorf("wrote past the end of its output: guard %d is %#x", i, stBits(v))
		}
	}
	return nil
}

// stDotTol is the allowed difference between two float32 dot products of n
// terms whose absolute products sum to abs: each may be off the exact value
// by a few ulps per add.
func stDotTol(n int, abs float64) float64 { return 2 * (float64(n+4)*0x1p-23*abs + 1e-30) }

func stAbsDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i]) * float64(b[i]))
	}
	return s
}

func (c *stChecker) dotF32(fn func(a, b []float32) float32) error {
	nan := float32(math.NaN())
	for _, n := range stLengths() {
		for off := range 4 {
			a, b := c.vec(n, off, nan), c.vec(n, (off+1)%4, nan)
			got, want := c.corrupt(fn(a, b)), dotF32Generic(a, b)
			if d := math.Abs(float64(got) - float64(want)); !(d <= stDotTol(n, stAbsDot(a, b))) {
				return fmt.Errorf("n=%d offset %d: got %v, generic %v", n, off, got, want)
			}
		}
	}
	return nil
}

func (c *stChecker) axpy(fn func(alpha float32, x, y []float32)) error {
	nan, guard := float32(math.NaN()), math.Float32frombits(0x7fc0beef)
	for _, n := range stLengths() {
		for off := range 4 {
			x, y := c.vec(n, off, nan), c.vec(n, (off+3)%4, guard)
			want := append([]float32(nil), y...)
			alpha := float32(c.rng.NormFloat64())
			fn(alpha, x, y)
			c.corruptSlice(y)
			axpyF32Generic(alpha, x, want)
			for i := range y {
				tol := 0x1p-22 * (math.Abs(float64(want[i])) + math.Abs(float64(alpha)*float64(x[i])))
				if d := math.Abs(float64(y[i]) - float64(want[i])); !(d <= tol) {
					return fmt.Errorf("n=%d offset %d: y[%d] = %v, generic %v", n, off, i, y[i], want[i])
				}
			}
			if err := stGuardsKept(y, guard); err != nil {
				return fmt.Errorf("n=%d offset %d: %w", n, off, err)
			}
		}
	}
	return nil
}

func (c *stChecker) scaleAdd(fn func(a float32, x []float32, b float32, y []float32)) error {
	nan, guard := float32(math.NaN()), math.Float32frombits(0x7fc0f00d)
	for _, n := range stLengths() {
		for off := range 4 {
			x, y := c.vec(n, off, nan), c.vec(n, (off+1)%4, guard)
			y0 := append([]float32(nil), y...)
			want := append([]float32(nil), y...)
			a, b := float32(c.rng.NormFloat64()), float32(c.rng.NormFloat64())
			fn(a, x, b, y)
			c.corruptSlice(y)
			scaleAddF32Generic(a, x, b, want)
			for i := range y {
				tol := 0x1p-21 * (math.Abs(float64(a)*float64(x[i])) + math.Abs(float64(b)*float64(y0[i])))
				if d := math.Abs(float64(y[i]) - float64(want[i])); !(d <= tol) {
					return fmt.Errorf("n=%d offset %d: y[%d] = %v, generic %v", n, off, i, y[i], want[i])
				}
			}
			if err := stGuardsKept(y, guard); err != nil {
				return fmt.Errorf("n=%d offset %d: %w", n, off, err)
			}
		}
	}
	return nil
}

func (c *stChecker) gemv(fn func(dst, m, x []float32)) error {
	nan, guard := float32(math.NaN()), math.Float32frombits(0x7fc0dead)
	for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 64} {
		for _, n := range []int{1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 257, 1000} {
			off := c.rng.IntN(4)
			m, x := c.vec(rows*n, off, nan), c.vec(n, (off+2)%4, nan)
			dst := c.vec(rows, off, guard)
			fn(dst, m, x)
			c.corruptSlice(dst)
			for r := range dst {
				row := m[r*n : r*n+n]
				want := dotF32Generic(row, x)
				if d := math.Abs(float64(dst[r]) - float64(want)); !(d <= stDotTol(n, stAbsDot(row, x))) {
					return fmt.Errorf("%d rows of %d: row %d = %v, generic %v", rows, n, r, dst[r], want)
				}
			}
			if err := stGuardsKept(dst, guard); err != nil {
				return fmt.Errorf("%d rows of %d: %w", rows, n, err)
			}
		}
	}
	return nil
}

// stQ8 returns a Q8 of n values whose slices are followed by guards: 0x5a
// after Q and Sums, NaN after Scales.
func stQ8(n int) Q8 {
	b := Blocks(n)
	q := make([]int8, b*BlockSize+stGuard)
	s := make([]float32, b+stGuard)
	m := make([]int32, b+stGuard)
	for i := range q {
		q[i] = 0x5a
	}
	for i := range s {
		s[i] = float32(math.NaN())
		m[i] = 0x5a5a5a5a
	}
	return Q8{N: n, Q: q[:b*BlockSize], Scales: s[:b], Sums: m[:b]}
}

// stSameQ8 compares got with want bit for bit, guards after got included.
func stSameQ8(got, want Q8) error {
	for i := range want.Q {
		if got.Q[i] != want.Q[i] {
			return fmt.Errorf("Q[%d] = %d, generic %d", i, got.Q[i], want.Q[i])
		}
	}
	for k := range want.Scales {
		if stBits(got.Scales[k]) != stBits(want.Scales[k]) || got.Sums[k] != want.Sums[k] {
			return fmt.Errorf("block %d: scale %v sum %d, generic %v %d", k, got.Scales[k], got.Sums[k], want.Scales[k], want.Sums[k])
		}
	}
	for _, g := range got.Q[len(got.Q):cap(got.Q)] {
		if g != 0x5a {
			return fmt.Errorf("wrote past the end of Q")
		}
	}
	for i, g := range got.Scales[len(got.Scales):cap(got.Scales)] {
		if !math.IsNaN(float64(g)) || got.Sums[len(got.Sums):cap(got.Sums)][i] != 0x5a5a5a5a {
			return fmt.Errorf("wrote past the end of Scales or Sums")
		}
	}
	return nil
}

// randQ8 fills v with full-range int8 values, -128 included. Unit scales
// keep every partial sum of a dot product an exact float32 integer while
// N*128*128 < 2^24, so any summation order gives the same bits.
func (c *stChecker) randQ8(v Q8, unit bool) {
	for k := range v.Scales {
		blk := v.Q[k*BlockSize : (k+1)*BlockSize]
		stBytes(c, blk)
		var sum int32
		for i := range blk {
			if k*BlockSize+i >= v.N {
				blk[i] = 0
			}
			sum += int32(blk[i])
		}
		v.Sums[k] = sum
		v.Scales[k] = 1
		if !unit {
			v.Scales[k] = float32(c.rng.ExpFloat64() * 1e-2)
		}
	}
}

// randQ4 returns random 4-bit weights whose padding decodes to zero.
func (c *stChecker) randQ4(n int, unit bool) Q4 {
	w := NewQ4(n)
	stBytes(c, w.Q)
	for k := range w.Scales {
		w.Scales[k] = 1
		if !unit {
			w.Scales[k] = float32(c.rng.ExpFloat64() * 1e-1)
		}
	}
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

// stExact is the longest vector whose unit-scale q8 dot products are exact
// in float32 whatever the order of the adds.
const stExact = 1 << 24 / (128 * 128)

func (c *stChecker) quantize(fn func(q []int8, scales []float32, sums []int32, x []float32)) error {
	for _, n := range stLengths() {
		for off := range 4 {
			x := c.wide(n, off)
			if n > 40 && off == 1 {
				x[n/3] = float32(math.Inf(1)) // a non-finite block: NaN scale, zero values
				x[n-1] = 1e-30
			}
			got, want := stQ8(n), stQ8(n)
			fn(got.Q, got.Scales, got.Sums, x)
			if c.broken && len(got.Q) > 0 {
				got.Q[0] ^= 1
			}
			quantizeQ8Generic(want.Q, want.Scales, want.Sums, x)
			if err := stSameQ8(got, want); err != nil {
				return fmt.Errorf("n=%d offset %d: %w", n, off, err)
			}
		}
	}
	return nil
}

func (c *stChecker) dequantize(fn func(dst []float32, q []int8, scales []float32)) error {
	guard := math.Float32frombits(0x7fc0abcd)
	for _, n := range stLengths() {
		for off := range 4 {
			v := stQ8(n)
			c.randQ8(v, false)
			got, want := c.vec(n, off, guard), make([]float32, n)
			fn(got, v.Q[:n], v.Scales)
			c.corruptSlice(got)
			dequantizeQ8Generic(want, v.Q[:n], v.Scales)
			for i := range want {
				if stBits(got[i]) != stBits(want[i]) {
					return fmt.Errorf("n=%d offset %d: dst[%d] = %v, generic %v", n, off, i, got[i], want[i])
				}
			}
			if err := stGuardsKept(got, guard); err != nil {
				return fmt.Errorf("n=%d offset %d: %w", n, off, err)
			}
		}
	}
	return nil
}

func (c *stChecker) dotQ8(fn func(a, b Q8) float32) error {
	for _, n := range stLengths() {
		for _, unit := range []bool{true, false} {
			if unit && n > stExact {
				continue
			}
			a, b := stQ8(n), stQ8(n)
			c.randQ8(a, unit)
			c.randQ8(b, unit)
			got, want := c.corrupt(fn(a, b)), dotQ8Generic(a, b)
			if unit {
				if stBits(got) != stBits(want) {
					return fmt.Errorf("n=%d unit scales: got %v, generic %v exactly", n, got, want)
				}
				continue
			}
			var abs float64
			for k := range a.Scales {
				var s int64
				for i := k * BlockSize; i < (k+1)*BlockSize; i++ {
					s += int64(a.Q[i]) * int64(b.Q[i])
				}
				abs += math.Abs(float64(s) * float64(a.Scales[k]*b.Scales[k]))
			}
			if d := math.Abs(float64(got) - float64(want)); !(d <= stDotTol(Blocks(n), abs)) {
				return fmt.Errorf("n=%d: got %v, generic %v", n, got, want)
			}
		}
	}
	return nil
}

func (c *stChecker) dotQ4(fn func(w Q4, x Q8) float32) error {
	for _, n := range stLengths() {
		for _, unit := range []bool{true, false} {
			if unit && n > stExact {
				continue
			}
			w := c.randQ4(n, unit)
			x := stQ8(n)
			c.randQ8(x, unit)
			got, want := c.corrupt(fn(w, x)), dotQ4Generic(w, x)
			if unit {
				if stBits(got) != stBits(want) {
					return fmt.Errorf("n=%d unit scales: got %v, generic %v exactly", n, got, want)
				}
				continue
			}
			var abs float64
			for k, ws := range w.Scales {
				var s int64
				for j, v := range w.Q[k*BlockSize/2 : (k+1)*BlockSize/2] {
					s += int64(int32(v&15)-8) * int64(x.Q[k*BlockSize+j])
					s += int64(int32(v>>4)-8) * int64(x.Q[k*BlockSize+j+BlockSize/2])
				}
				abs += math.Abs(float64(s) * float64(ws*x.Scales[k]))
			}
			if d := math.Abs(float64(got) - float64(want)); !(d <= stDotTol(Blocks(n), abs)) {
				return fmt.Errorf("n=%d: got %v, generic %v", n, got, want)
			}
		}
	}
	return nil
}
