package model

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/linnet-edge/linnet/simd"
)

// compensateWithBias is compensate for weights w whose last entry is an
// unquantized bias, with hess the Hessian over all of them (row-major,
// upper triangle, without the penalty lambda on the weights): the bias is
// eliminated (the Schur complement) so it absorbs what it can, then moved
// to its best value for the rounded weights.
func compensateWithBias(w, hess []float64, lambda float64, s Scheme) []float64 {
	m1 := len(w)
	d := m1 - 1
	at := func(i, j int) float64 {
		if i > j {
			i, j = j, i
		}
		return hess[i*m1+j]
	}
	hbb := at(d, d)
	if !(hbb > 0) {
		return w
	}
	h := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			h.SetSym(i, j, at(i, j)-at(i, d)*at(j, d)/hbb)
		}
		h.SetSym(i, i, h.At(i, i)+lambda)
	}
	q := compensate(w[:d], h, s)
	if q == nil {
		return w
	}
	out := append(q, w[d])
	for j := range d {
		out[d] -= at(d, j) * (q[j] - w[j]) / hbb
	}
	return out
}

// maxCompensated bounds the width for which quantization compensates
// rounding errors (the work grows as the cube of the width); up to
// maxScaleSearch the block scales are searched too.
const (
	maxCompensated = 1024
	maxScaleSearch = 128
)

// compensate rounds standardized weights w to scheme s's grid (blocks of
// simd.BlockSize sharing a scale, the block's largest |weight| / qmax) so
// that the loss grows as little as it can: each weight's rounding error is
// carried by the weights not yet rounded, through the inverse of h, the
// Hessian of the squared loss (GPTQ's idea). Within a block the largest
// weight is rounded first, to the grid's end, so Quantize keeps the block's
// scale and quantizing the result again changes nothing; for narrow models
// that end is searched around the weight (a coarse q4 grid then fits the
// other weights better). It returns nil if h cannot be inverted.
func compensate(w []float64, h *mat.SymDense, s Scheme) []float64 {
	d := len(w)
	qmax := 127.0
	if s == Q4 {
		qmax = 7
	}
	beta := w
	hj := mat.NewSymDense(d, nil)
	tr := 0.0
	for i := range d {
		tr += h.At(i, i)
	}
	for i := range d {
		for j := i; j < d; j++ {
			hj.SetSym(i, j, h.At(i, j))
		}
		hj.SetSym(i, i, h.At(i, i)+1e-6*tr/float64(d)+1e-12)
	}
	var ch mat.Cholesky
	if !ch.Factorize(hj) {
		return nil
	}
	var inv mat.SymDense
	if err := ch.InverseTo(&inv); err != nil {
		return nil
	}
	st := &roundState{w: append([]float64(nil), w...), hinv: mat.DenseCopyOf(&inv), free: make([]bool, d)}
	for i := range st.free {
		st.free[i] = true
	}
	loss := func(w []float64) float64 {
		var l float64
		for i := range d {
			for j := range d {
				l += (w[i] - beta[i]) * h.At(i, j) * (w[j] - beta[j])
			}
		}
		return l
	}
	bs := simd.BlockSize
	for lo := 0; lo < d; lo += bs {
		hi := min(lo+bs, d)
		amax := 0.0
		for i := lo; i < hi; i++ {
			amax = max(amax, math.Abs(st.w[i]))
		}
		if amax == 0 {
			continue
		}
		if d > maxScaleSearch {
			st.block(lo, hi, amax/qmax, qmax)
			continue
		}
		var best *roundState
		bestLoss := math.Inf(1)
		for k := -12; k <= 12; k++ {
			c := st.clone()
			c.block(lo, hi, amax*(1+float64(k)/40)/qmax, qmax)
			if l := loss(c.w); l < bestLoss {
				best, bestLoss = c, l
			}
		}
		st = best
	}
	return st.w
}

// roundState is compensate's progress: the weights, the inverse Hessian
// of the weights still free, and which are.
type roundState struct {
	w    []float64
	hinv *mat.Dense
	free []bool
}

func (st *roundState) clone() *roundState {
	return &roundState{w: append([]float64(nil), st.w...), hinv: mat.DenseCopyOf(st.hinv), free: append([]bool(nil), st.free...)}
}

// block rounds weights lo..hi-1 to multiples of scale (at most qmax of
// them), the largest first, which goes to the grid's end.
func (st *roundState) block(lo, hi int, scale, qmax float64) {
	d := len(st.w)
	scale = float64(float32(scale))
	order := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		order = append(order, i)
	}
	sortByAbs(order, st.w)
	col := make([]float64, d)
	for n, j := range order {
		q := math.Max(-qmax, math.Min(qmax, math.RoundToEven(st.w[j]/scale))) * scale
		if n == 0 {
			q = math.Copysign(qmax*scale, st.w[j])
		}
		djj := st.hinv.At(j, j)
		e := (st.w[j] - q) / djj
		st.w[j] = q
		st.free[j] = false
		for i := range d {
			col[i] = st.hinv.At(i, j)
			if st.free[i] {
				st.w[i] -= e * col[i]
			}
		}
		// Remove j from the inverse Hessian of the free weights.
		for i := range d {
			if !st.free[i] || col[i] == 0 {
				continue
			}
			for k := range d {
				if st.free[k] {
					st.hinv.Set(i, k, st.hinv.At(i, k)-col[i]*col[k]/djj)
				}
			}
		}
	}
}

func sortByAbs(idx []int, w []float64) {
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && math.Abs(w[idx[j]]) > math.Abs(w[idx[j-1]]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}
