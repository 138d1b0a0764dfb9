package onnx

import "math"

// kind says what a value of the graph is, symbolically.
type kind uint8

const (
	kConst   kind = iota // a constant tensor
	kCols                // columns, each an input feature standardized: (x - m) / s
	kLin                 // affine forms over registered columns, one per output column
	kSig                 // the sigmoid of each affine form
	kProb                // a binary classifier's probabilities [1-sigmoid(z), sigmoid(z)]
	kMap                 // the same, through ZipMap
	kLabel               // a binary classifier's predicted class
	kStrings             // string input columns, before one-hot encoding
	kUnit                // a column of ones: the L1 norm of a binary probability pair
	kCodes               // numeric input columns cast to integers, before one-hot encoding
)

func (k kind) String() string {
	return [...]string{"a constant", "features", "linear scores", "sigmoids", "probabilities", "a probability map", "class labels", "text columns", "the sum of two probabilities", "integer codes"}[k]
}

// col is one standardized column: (x[base] - m) / s, or the constant k
// when base < 0.
type col struct {
	base int
	m, s float64
	k    float64
}

// shift adds b to the column.
func (c *col) shift(b float64) {
	if c.base < 0 {
		c.k += b
		return
	}
	c.m -= b * c.s
}

// scale multiplies the column by a.
func (c *col) scale(a float64) {
	if c.base < 0 {
		c.k *= a
		return
	}
	if a == 0 {
		*c = col{base: -1}
		return
	}
	c.s /= a
}

// divide divides the column by d (not 0), keeping s exact for a Div by a
// standard deviation.
func (c *col) divide(d float64) {
	if c.base < 0 {
		c.k /= d
		return
	}
	c.s *= d
}

// form is the affine form b + sum_j w[j] * col[off+j] over the graph's
// registered columns.
type form struct {
	off int
	w   []float64
	b   float64
}

// scaled returns a*f.
func (f form) scaled(a float64) form {
	w := make([]float64, len(f.w))
	for i, v := range f.w {
		w[i] = a * v
	}
	return form{off: f.off, w: w, b: a * f.b}
}

// combine returns sum_i a[i]*fs[i] + b over the union of their ranges.
func combine(fs []form, a []float64, b float64) form {
	lo, hi := math.MaxInt, 0
	for i, f := range fs {
		if a[i] == 0 || len(f.w) == 0 {
			continue
		}
		lo = min(lo, f.off)
		hi = max(hi, f.off+len(f.w))
	}
	out := form{b: b}
	if lo < hi {
		out.off, out.w = lo, make([]float64, hi-lo)
	}
	for i, f := range fs {
		if a[i] == 0 {
			continue
		}
		out.b += a[i] * f.b
		for j, v := range f.w {
			out.w[f.off-lo+j] += a[i] * v
		}
	}
	return out
}

// negates reports whether f == -g (the two rows skl2onnx writes for a
// binary classifier).
func (f form) negates(g form) bool {
	if f.b != -g.b {
		return false
	}
	get := func(h form, i int) float64 {
		if i < h.off || i >= h.off+len(h.w) {
			return 0
		}
		return h.w[i-h.off]
	}
	lo, hi := min(f.off, g.off), max(f.off+len(f.w), g.off+len(g.w))
	for i := lo; i < hi; i++ {
		if get(f, i) != -get(g, i) {
			return false
		}
	}
	return true
}

// value is what one name of the graph holds.
type value struct {
	kind    kind
	c       *tensor // kConst
	cols    []col   // kCols
	forms   []form  // kLin, kSig
	strs    []int   // kStrings, kCodes: input column indices
	flat    bool    // shape [N] rather than [N, width]
	extra   bool    // shape [N, 1, width] (what OneHotEncoder makes of [N, 1])
	z       *form   // kProb, kMap, kLabel; kLin from a classifier without post_transform
	classes []string
}

// width is the number of columns of a data value.
func (v *value) width() int {
	switch v.kind {
	case kCols:
		return len(v.cols)
	case kLin, kSig:
		return len(v.forms)
	case kProb, kMap:
		return 2
	case kStrings, kCodes:
		return len(v.strs)
	case kConst:
		if len(v.c.dims) == 0 {
			return 1
		}
		return int(v.c.dims[len(v.c.dims)-1])
	}
	return 1
}
