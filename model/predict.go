package model

import (
	"fmt"
	"math"
	"sync"

	"github.com/linnet-edge/linnet/simd"
)

// ExpandWidth is the widest q8 or q4 model a Predictor expands to float32
// weights at load; wider models stay quantized and keep a quarter (q8) or an
// eighth (q4) of the weight memory.
//
// Speed alone never favours the quantized path for one reading: the raw
// reading arrives as float32, so the q8 path reads it, standardizes it,
// quantizes it and then runs the integer dot product, where the expanded
// path runs one float32 dot product over the raw reading (the scaling is
// folded into the weights). BenchmarkPredictWidth compares the two paths
// from 13 to 65536 features. The threshold is set on memory: 16384 float32
// weights are 64 KiB, what a gateway core's L2 holds comfortably beside
// everything else; a wider model stays quantized (65,536 q8 weights are
// 64 KiB, as float32 they would be 256 KiB).
const ExpandWidth = 16384

// foldLimit bounds |Mean/Std| for folding the standardization into the
// weights. Folding computes bias - sum w*mean/std once, then a dot product
// over raw x; when a feature's mean is many standard deviations from zero
// (a timestamp, a year) that sum cancels large float32 terms and loses the
// digits that matter, so such models standardize each reading instead.
const foldLimit = 64

// A Predictor serves one model. It is immutable after NewPredictor and safe
// for concurrent use; it copies what it needs, so the Model may change or be
// dropped afterwards.
type Predictor struct {
	n        int
	logistic bool
	kind     predictKind

	// folded: z = bias + w·x over raw x. standardize, q8, q4: z = bias +
	// w·u with u = (x - mean) * inv.
	w         []float32
	bias      float32
	mean, inv []float32
	q8        simd.Q8
	q4        simd.Q4

	scratch sync.Pool // *predictScratch
}

type predictKind uint8

const (
	kindFolded      predictKind = iota // f32 weights folded with the scaling
	kindStandardize                    // f32 weights, reading standardized first
	kindQ8                             // q8 weights, reading quantized to q8
	kindQ4                             // q4 weights, reading quantized to q8
)

func (k predictKind) String() string {
	return [...]string{"f32-folded", "f32", "q8", "q4"}[k]
}

type predictScratch struct {
	u []float32
	q simd.Q8
}

// NewPredictor prepares m for serving. A q8 or q4 model no wider than
// ExpandWidth is served from its dequantized float32 weights (identical
// values, a faster kernel for narrow models); wider ones stay quantized.
// It panics if m is inconsistent (Decode and Quantize never return such a
// model).
func NewPredictor(m *Model) *Predictor {
	if err := m.validate(); err != nil {
		panic(fmt.Sprintf("model: NewPredictor: %v", err))
	}
	return newPredictor(m, len(m.Features) <= ExpandWidth)
}

func newPredictor(m *Model, expand bool) *Predictor {
	n := len(m.Features)
	p := &Predictor{n: n, logistic: m.Loss == Logistic, bias: m.Bias}
	p.mean = append([]float32(nil), m.Mean...)
	p.inv = make([]float32, n)
	fold := true
	for i, s := range m.Std {
		p.inv[i] = 1 / s
		if math.Abs(float64(m.Mean[i])/float64(s)) > foldLimit {
			fold = false
		}
	}
	switch {
	case m.Scheme == Q8 && !expand:
		p.kind = kindQ8
		p.q8 = m.Clone().Q8
	case m.Scheme == Q4 && !expand:
		p.kind = kindQ4
		p.q4 = m.Clone().Q4
	case fold:
		p.kind = kindFolded
		p.w = make([]float32, n)
		b := float64(m.Bias)
		for i, w := range m.Weights {
			p.w[i] = w / m.Std[i]
			b -= float64(w) * float64(m.Mean[i]) / float64(m.Std[i])
		}
		p.bias = float32(b)
	default:
		p.kind = kindStandardize
		p.w = append([]float32(nil), m.Weights...)
	}
	p.scratch.New = func() any {
		s := &predictScratch{u: make([]float32, n)}
		if p.kind == kindQ8 || p.kind == kindQ4 {
			s.q = simd.NewQ8(n)
		}
		return s
	}
	return p
}

// Width returns the number of features a reading must have.
func (p *Predictor) Width() int { return p.n }

// Kernel names how p computes: "f32-folded", "f32", "q8" or "q4".
func (p *Predictor) Kernel() string { return p.kind.String() }

// Predict returns the model's prediction for one reading of raw (not
// standardized) features in model order: the regression value, or P(class
// 1) for a logistic model. It panics if len(x) != Width(); check untrusted
// input with Model.CheckVector first. A NaN in x gives NaN. Predict does
// not allocate.
func (p *Predictor) Predict(x []float32) float32 {
	if len(x) != p.n {
		panic(fmt.Sprintf("model: Predict: reading of %d values for %d features", len(x), p.n))
	}
	if p.kind == kindFolded {
		return p.link(p.bias + simd.DotF32(p.w, x))
	}
	s := p.scratch.Get().(*predictScratch)
	z := p.standardized(s, x)
	p.scratch.Put(s)
	return p.link(z)
}

// standardized computes z for the kinds that standardize the reading first.
func (p *Predictor) standardized(s *predictScratch, x []float32) float32 {
	u := s.u
	for i, v := range x {
		u[i] = (v - p.mean[i]) * p.inv[i]
	}
	switch p.kind {
	case kindQ8:
		simd.QuantizeQ8(s.q, u)
		return p.bias + simd.DotQ8(p.q8, s.q)
	case kindQ4:
		simd.QuantizeQ8(s.q, u)
		return p.bias + simd.DotQ4(p.q4, s.q)
	}
	return p.bias + simd.DotF32(p.w, u)
}

// PredictBatch writes to dst[r] the prediction for row r of rows, a
// row-major matrix of len(dst) readings of Width() raw features. It panics
// if len(rows) != len(dst)*Width(). It does not allocate.
func (p *Predictor) PredictBatch(dst, rows []float32) {
	if len(rows) != len(dst)*p.n {
		panic(fmt.Sprintf("model: PredictBatch: %d values are not %d rows of %d", len(rows), len(dst), p.n))
	}
	if p.kind == kindFolded {
		simd.Gemv(dst, rows, p.w)
		for i, z := range dst {
			dst[i] = p.link(p.bias + z)
		}
		return
	}
	s := p.scratch.Get().(*predictScratch)
	for r := range dst {
		dst[r] = p.link(p.standardized(s, rows[r*p.n:(r+1)*p.n]))
	}
	p.scratch.Put(s)
}

func (p *Predictor) link(z float32) float32 {
	if p.logistic {
		return sigmoid(z)
	}
	return z
}

// sigmoid is 1/(1+e^-z), computed so neither tail overflows.
func sigmoid(z float32) float32 {
	if z >= 0 {
		return float32(1 / (1 + math.Exp(-float64(z))))
	}
	e := math.Exp(float64(z))
	return float32(e / (1 + e))
}
