package model

import (
	"fmt"

	"github.com/linnet-edge/linnet/simd"
)

// Quantize returns a copy of m whose weights are stored with scheme s:
// block-wise int8 (Q8), 4-bit (Q4) or float32 (F32). The weights are those
// of the standardized space, so features of very different scales share a
// block's scale fairly; Bias, Mean and Std stay float32. The copy's Weights
// are the dequantized values, what a Predictor computes with. Quantize
// changes nothing else: Version, Parent and Metrics are m's (the quantize
// command sets a new version). Quantizing a q8 or q4 model again starts
// from its dequantized weights, so precision lost once is not regained.
func (m *Model) Quantize(s Scheme) (*Model, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	c := m.Clone()
	c.Scheme = s
	c.Q8, c.Q4 = simd.Q8{}, simd.Q4{}
	n := len(m.Weights)
	switch s {
	case F32:
	case Q8:
		c.Q8 = simd.NewQ8(n)
		simd.QuantizeQ8(c.Q8, m.Weights)
		simd.DequantizeQ8(c.Weights, c.Q8)
	case Q4:
		c.Q4 = simd.NewQ4(n)
		simd.QuantizeQ4(c.Q4, m.Weights)
		simd.DequantizeQ4(c.Weights, c.Q4)
	default:
		return nil, fmt.Errorf("%w: unknown scheme %q (want f32, q8 or q4)", ErrInvalidModel, s)
	}
	return c, nil
}

// ParseScheme returns the Scheme a name stands for ("f32", "q8", "q4").
func ParseScheme(name string) (Scheme, error) {
	switch s := Scheme(name); s {
	case F32, Q8, Q4:
		return s, nil
	}
	return "", fmt.Errorf("unknown scheme %q (want f32, q8 or q4)", name)
}
