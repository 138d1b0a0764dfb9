package model

import (
	"bytes"
	"context"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/linnet-edge/linnet/scripts/gendata/synth"
)

// synthData generates rows of a synth kind through the CSV reader, so every
// training test also reads CSV.
func synthData(t testing.TB, kind string, rows int, seed uint64) (*Dataset, synth.Truth) {
	t.Helper()
	var buf bytes.Buffer
	truth, err := synth.WriteCSV(&buf, kind, rows, seed)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewCSVReader(&buf, CSVOptions{Target: truth.Target})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadDataset(r)
	if err != nil {
		t.Fatal(err)
	}
	return d, truth
}

// score computes a model's prediction from its float32 weights, the
// reference the trainer's own maths is checked against.
func score(m *Model, x []float32) float32 {
	z := float64(m.Bias)
	for i, w := range m.Weights {
		z += float64(w) * float64((x[i]-m.Mean[i])/m.Std[i])
	}
	if m.Loss == Logistic {
		return Sigmoid(float32(z))
	}
	return float32(z)
}

func scoreData(m *Model, d *Dataset) Metrics {
	s := NewScorer(m.Loss)
	for i := range d.Len() {
		s.Add(score(m, d.Row(i)), d.Y[i])
	}
	return s.Metrics()
}

// rawCoef returns a model's coefficients on unscaled features and its
// intercept.
func rawCoef(m *Model) ([]float64, float64) {
	c := make([]float64, len(m.Weights))
	b := float64(m.Bias)
	for i, w := range m.Weights {
		c[i] = float64(w) / float64(m.Std[i])
		b -= c[i] * float64(m.Mean[i])
	}
	return c, b
}

// ols fits ordinary least squares with an intercept in float64 (QR) and
// returns the coefficients and intercept.
func ols(t testing.TB, d *Dataset) ([]float64, float64) {
	t.Helper()
	n, p := d.Len(), len(d.Names)
	a := mat.NewDense(n, p+1, nil)
	b := mat.NewVecDense(n, nil)
	for i := range n {
		for j, v := range d.Row(i) {
			a.Set(i, j, float64(v))
		}
		a.Set(i, p, 1)
		b.SetVec(i, float64(d.Y[i]))
	}
	var qr mat.QR
	qr.Factorize(a)
	var x mat.VecDense
	if err := qr.SolveVecTo(&x, false, b); err != nil {
		t.Fatal(err)
	}
	c := make([]float64, p)
	for j := range c {
		c[j] = x.AtVec(j)
	}
	return c, x.AtVec(p)
}

func olsRMSE(d *Dataset, c []float64, b float64) float64 {
	s := NewScorer(Squared)
	for i := range d.Len() {
		z := b
		for j, v := range d.Row(i) {
			z += c[j] * float64(v)
		}
		s.Add(float32(z), d.Y[i])
	}
	return s.Metrics().RMSE
}

func train(t testing.TB, d *Dataset, cfg TrainConfig) (*Model, *TrainReport) {
	t.Helper()
	d.Reset()
	m, rep, err := Train(context.Background(), d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, rep
}
