package simd

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// GemvRows is the batch that gemv_f32 is measured with: n is the row width.
const GemvRows = 64

// Measure runs kernel of op on inputs of n values until at least minTime has
// passed and returns nanoseconds per call. It is what `linnet bench` prints;
// the inputs are random and the same for every kernel.
func Measure(op, kernel string, n int, minTime time.Duration) (float64, error) {
	call, err := benchCall(op, kernel, n)
	if err != nil {
		return 0, err
	}
	call() // warm caches and the branch predictor
	iters := 1
	for {
		start := time.Now()
		for range iters {
			call()
		}
		el := time.Since(start)
		if el >= minTime || iters >= 1<<30 {
			return float64(el.Nanoseconds()) / float64(iters), nil
		}
		// Aim past minTime from the rate seen so far, growing at most 100x.
		next := iters * 100
		if el > 0 {
			next = min(next, int(float64(iters)*1.2*float64(minTime)/float64(el))+1)
		}
		iters = max(next, iters+1)
	}
}

var sink float32

func benchCall(op, kernel string, n int) (func(), error) {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	q8 := func(n int) Q8 {
		v := NewQ8(n)
		quantizeQ8Generic(v.Q, v.Scales, v.Sums, vec(n))
		return v
	}
	missing := fmt.Errorf("simd: %s has no kernel %q on this CPU", op, kernel)
	switch op {
	case OpDotF32:
		fn, ok := dotF32.find(kernel)
		if !ok {
			return nil, missing
		}
		a, b := vec(n), vec(n)
		return func() { sink += fn(a, b) }, nil
	case OpAxpyF32:
		fn, ok := axpyF32.find(kernel)
		if !ok {
			return nil, missing
		}
		x, y := vec(n), vec(n)
		return func() { fn(1e-9, x, y) }, nil
	case OpScaleAddF32:
		fn, ok := scaleAddF32.find(kernel)
		if !ok {
			return nil, missing
		}
		x, y := vec(n), vec(n)
		return func() { fn(1e-9, x, 1, y) }, nil
	case OpGemvF32:
		fn, ok := gemvF32.find(kernel)
		if !ok {
			return nil, missing
		}
		m, x, dst := vec(GemvRows*n), vec(n), vec(GemvRows)
		return func() { fn(dst, m, x) }, nil
	case OpQuantizeQ8:
		fn, ok := quantizeQ8.find(kernel)
		if !ok {
			return nil, missing
		}
		x, v := vec(n), NewQ8(n)
		return func() { fn(v.Q, v.Scales, v.Sums, x) }, nil
	case OpDequantizeQ8:
		fn, ok := dequantizeQ8.find(kernel)
		if !ok {
			return nil, missing
		}
		v, dst := q8(n), vec(n)
		return func() { fn(dst, v.Q[:n], v.Scales) }, nil
	case OpDotQ8:
		fn, ok := dotQ8.find(kernel)
		if !ok {
			return nil, missing
		}
		a, b := q8(n), q8(n)
		return func() { sink += fn(a, b) }, nil
	case OpDotQ4:
		fn, ok := dotQ4.find(kernel)
		if !ok {
			return nil, missing
		}
		w, x := NewQ4(n), q8(n)
		QuantizeQ4(w, vec(n))
		return func() { sink += fn(w, x) }, nil
	}
	return nil, fmt.Errorf("simd: unknown operation %q", op)
}
