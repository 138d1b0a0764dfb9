package model

import (
	"context"
	"math"
	"testing"
)

// Acceptance 1, quantized: served as q8 and q4, the houses model's test
// RMSE stays within 2% and 5% of the least-squares optimum. The file size
// of each is logged (train reports it too).
func TestQuantizedHousesRMSE(t *testing.T) {
	tr, _ := synthData(t, "houses", 40000, 1)
	te, _ := synthData(t, "houses", 10000, 2)
	c, b := ols(t, tr)
	opt := olsRMSE(te, c, b)
	m, _ := train(t, tr, TrainConfig{})
	for _, q := range []struct {
		s   Scheme
		tol float64
	}{{F32, 1.01}, {Q8, 1.02}, {Q4, 1.05}} {
		qm, err := m.Quantize(q.s)
		if err != nil {
			t.Fatal(err)
		}
		file, err := qm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		te.Reset()
		got, err := Evaluate(context.Background(), qm, te)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: test RMSE %.4f, least squares %.4f, ratio %.5f, file %d bytes", q.s, got.RMSE, opt, got.RMSE/opt, len(file))
		if got.RMSE > q.tol*opt {
			t.Errorf("%s: test RMSE %.4f is above %.2f x least squares %.4f", q.s, got.RMSE, q.tol, opt)
		}
		if got.Rows != int64(te.Len()) {
			t.Errorf("%s: scored %d rows of %d", q.s, got.Rows, te.Len())
		}
	}
}

func TestEvaluateSplitMatchesTrain(t *testing.T) {
	d, _ := synthData(t, "logistic-noisy", 5000, 3)
	m, rep := train(t, d, TrainConfig{Loss: Logistic, Holdout: 0.3, Seed: 9})
	d.Reset()
	rest, hold, err := EvaluateSplit(context.Background(), m, d, 9, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	if rest.Rows != rep.RowsTrain || hold.Rows != rep.RowsHoldout {
		t.Errorf("split %d/%d, trainer %d/%d", rest.Rows, hold.Rows, rep.RowsTrain, rep.RowsHoldout)
	}
	if hold.Accuracy < 0.8 || hold.AUC < 0.85 {
		t.Errorf("holdout %+v", hold)
	}
	d.Reset()
	if _, err := Evaluate(context.Background(), m, &Dataset{Names: []string{"x"}}); err == nil {
		t.Error("features that are not the model's accepted")
	}
}

func TestMetrics(t *testing.T) {
	s := NewScorer(Squared)
	for _, p := range [][2]float32{{1, 1}, {2, 3}, {5, 3}} {
		s.Add(p[0], p[1])
	}
	m := s.Metrics()
	// Errors 0, -1, 2: MSE 5/3, MAE 1; y has mean 7/3 and SS 8/3, so R² = 1 - 5/(8/3).
	if d, e := m.RMSE*m.RMSE-5.0/3, m.R2+0.875; d*d > 1e-12 || e*e > 1e-12 || m.MAE != 1 {
		t.Errorf("%+v", m)
	}
	l := NewScorer(Logistic)
	for _, p := range [][2]float32{{0.9, 1}, {0.8, 0}, {0.3, 1}, {0.1, 0}} {
		l.Add(p[0], p[1])
	}
	lm := l.Metrics()
	// Positives score 0.9 and 0.3, negatives 0.8 and 0.1: 3 of 4 pairs ordered.
	if lm.AUC != 0.75 || lm.Accuracy != 0.5 {
		t.Errorf("%+v", lm)
	}
	one := NewScorer(Logistic)
	one.Add(0.5, 1)
	if _, ok := one.Metrics().Map(Logistic)["auc"]; ok {
		t.Error("AUC of one class reported")
	}
}

// Past exactAUC rows the AUC comes from a histogram; it stays within a
// hair of the exact value.
func TestBinnedAUC(t *testing.T) {
	d, _ := synthData(t, "logistic-noisy", 20000, 71)
	m, _ := train(t, d, TrainConfig{Loss: Logistic})
	exact := NewScorer(Logistic)
	binned := NewScorer(Logistic)
	binned.pos, binned.neg = make([]uint64, aucBins), make([]uint64, aucBins)
	for i := range d.Len() {
		p := score(m, d.Row(i))
		exact.Add(p, d.Y[i])
		binned.Add(p, d.Y[i])
	}
	a, b := exact.Metrics(), binned.Metrics()
	if math.Abs(a.AUC-b.AUC) > 1e-4 || a.Accuracy != b.Accuracy || a.LogLoss != b.LogLoss {
		t.Errorf("exact %+v, binned %+v", a, b)
	}
}

func TestAUCOverflowToHistogram(t *testing.T) {
	s := NewScorer(Logistic)
	var all []scored
	for i := range exactAUC + 1000 {
		y := i%3 == 0
		p := float32(i%997) / 997
		if y {
			p = float32(math.Min(1, float64(p)+0.2))
		}
		s.Add(p, map[bool]float32{true: 1, false: 0}[y])
		all = append(all, scored{p, y})
	}
	if s.pos == nil || s.pairs != nil {
		t.Fatal("did not switch to the histogram")
	}
	if got, want := s.Metrics().AUC, auc(all); math.Abs(got-want) > 1e-3 {
		t.Errorf("binned AUC %v, exact %v", got, want)
	}
}
