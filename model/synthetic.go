package model

import (
	"math/rand/v2"
)

// SyntheticReadings returns n readings drawn from the training statistics m
// carries: each feature uniform over its training range [Min, Max] when
// known, else normal around Mean with Std (clipped to 3 Std). An OTA shadow
// run uses them when no real reading has been seen yet (after a restart):
// a candidate whose predictions on them are not finite, or far outside the
// serving model's, is refused before it serves. It returns nil for a model
// that carries no statistics (identity scaling and no ranges). The same
// seed gives the same readings.
func SyntheticReadings(m *Model, n int, seed uint64) [][]float32 {
	d := len(m.Features)
	ranged := len(m.Min) == d && len(m.Max) == d
	if d == 0 || n <= 0 || !ranged && m.identityScaling() {
		return nil
	}
	r := rand.New(rand.NewPCG(seed, 0x73796e7468))
	rows := make([][]float32, n)
	for i := range rows {
		x := make([]float32, d)
		for j := range x {
			if ranged && m.Max[j] >= m.Min[j] {
				x[j] = m.Min[j] + float32(r.Float64())*(m.Max[j]-m.Min[j])
				continue
			}
			z := max(-3, min(3, r.NormFloat64()))
			x[j] = m.Mean[j] + float32(z)*m.Std[j]
		}
		rows[i] = x
	}
	return rows
}
