package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// correlated returns rows whose features are correlated and on scales from
// 1e-3 to 1e5 (like sensor exports), with a linear target plus noise.
func correlated(n int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 11))
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	scale := []float64{1e-3, 1, 1e5, 10, 1e3, 0.1, 1e4, 100}
	coef := []float64{2, -1, 0.5, 0, 3, 1, -2, 0.25}
	d := &Dataset{Names: names, Label: "y"}
	for range n {
		base := r.NormFloat64()
		var y float64 = 7
		for j := range names {
			// Every column shares base: pairwise correlations near 0.8.
			z := 0.9*base + 0.45*r.NormFloat64()
			d.X = append(d.X, float32(z*scale[j]+scale[j]*3))
			y += coef[j] * z
		}
		d.Y = append(d.Y, float32(y+0.5*r.NormFloat64()))
	}
	return d
}

// The exact solver with the defaults the CLI uses (ridge chosen by GCV, a
// holdout that only measures) lands on the OLS optimum on held-out rows.
func TestExactMatchesOLS(t *testing.T) {
	for _, n := range []int{300, 5000} {
		tr, te := correlated(n, 1), correlated(2000, 2)
		c, b := ols(t, tr)
		best := olsRMSE(te, c, b)
		for s, limit := range map[Scheme]float64{F32: 1.01, Q8: 1.02, Q4: 1.05} {
			tr.Reset()
			m, rep, err := Train(context.Background(), tr, TrainConfig{Solver: SolverExact, L2Auto: true, Holdout: 0.2, Seed: 1, Scheme: s})
			if err != nil {
				t.Fatal(err)
			}
			if rep.HoldoutModel == nil || rep.RowsTrain != int64(n) {
				t.Fatalf("n=%d: the model must be fitted on all %d rows (got %d) and a holdout model measured", n, n, rep.RowsTrain)
			}
			if m.Scheme != s || rep.HoldoutModel.Scheme != s {
				t.Fatalf("asked for %s, got %s and %s", s, m.Scheme, rep.HoldoutModel.Scheme)
			}
			if again := mustQuantize(t, m, s); !slices.Equal(again.Weights, m.Weights) {
				t.Errorf("%s: quantizing the model again changed its weights", s)
			}
			got, err := Evaluate(context.Background(), m, te)
			te.Reset()
			if err != nil {
				t.Fatal(err)
			}
			if ratio := got.RMSE / best; ratio > limit {
				t.Errorf("n=%d %s: test RMSE %.5g is %.4fx the OLS optimum %.5g (limit %.2f)", n, s, got.RMSE, ratio, best, limit)
			}
		}
	}
}

func TestExactStreamMatchesInMemory(t *testing.T) {
	d := correlated(3000, 3)
	a, _, err := Train(context.Background(), d, TrainConfig{Solver: SolverExact, L2Auto: true})
	if err != nil {
		t.Fatal(err)
	}
	d.Reset()
	b, rep, err := Train(context.Background(), d, TrainConfig{Solver: SolverExact, L2Auto: true, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RowsTrain != 3000 {
		t.Errorf("streamed %d rows", rep.RowsTrain)
	}
	for i := range a.Weights {
		if math.Abs(float64(a.Weights[i]-b.Weights[i])) > 1e-4*(1+math.Abs(float64(a.Weights[i]))) {
			t.Errorf("weight %d: in memory %v, streamed %v", i, a.Weights[i], b.Weights[i])
		}
	}
}

// Newton's method reaches the optimum of the penalized log loss: the
// gradient vanishes there.
func TestExactLogistic(t *testing.T) {
	d, _ := synthData(t, "logistic-noisy", 4000, 5)
	m, rep, err := Train(context.Background(), d, TrainConfig{Loss: Logistic, Solver: SolverExact, L2Auto: true, Holdout: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.HoldoutModel == nil {
		t.Fatal("no holdout model")
	}
	sgd, _ := train(t, d, TrainConfig{Loss: Logistic, Epochs: 30})
	em, sm := scoreData(m, d), scoreData(sgd, d)
	if em.LogLoss > sm.LogLoss*1.001 {
		t.Errorf("exact log loss %.5f above SGD's %.5f", em.LogLoss, sm.LogLoss)
	}
	// Gradient of the summed loss plus the penalty the solver chose.
	lambda := m.Metrics["l2"] * float64(d.Len())
	g := make([]float64, len(m.Weights))
	for i := range d.Len() {
		p := float64(score(m, d.Row(i)))
		for j, v := range d.Row(i) {
			g[j] += (p - float64(d.Y[i])) * float64((v-m.Mean[j])/m.Std[j])
		}
	}
	for j := range g {
		if gj := g[j] + lambda*float64(m.Weights[j]); math.Abs(gj) > 1e-2 {
			t.Errorf("gradient %d is %g at the optimum", j, gj)
		}
	}
}

func TestExactHuberResistsOutliers(t *testing.T) {
	d := correlated(2000, 4)
	clean := correlated(2000, 5)
	for i := 0; i < d.Len(); i += 20 {
		d.Y[i] += 500 // 5% gross outliers
	}
	sq, _, err := Train(context.Background(), d, TrainConfig{Solver: SolverExact})
	if err != nil {
		t.Fatal(err)
	}
	d.Reset()
	hu, _, err := Train(context.Background(), d, TrainConfig{Loss: Huber, Solver: SolverExact})
	if err != nil {
		t.Fatal(err)
	}
	if s, h := scoreData(sq, clean).RMSE, scoreData(hu, clean).RMSE; h > s/5 {
		t.Errorf("Huber RMSE %.4g on clean rows, squared %.4g: outliers were not resisted", h, s)
	}
}

// Refit: the SGD family also returns the model of every row.
func TestSGDRefit(t *testing.T) {
	d := correlated(2000, 6)
	m, rep := train(t, d, TrainConfig{Holdout: 0.25, Refit: true, Epochs: 6})
	if rep.HoldoutModel == nil || rep.RowsTrain != 2000 || m == rep.HoldoutModel {
		t.Fatalf("refit: rows %d, holdout model %v", rep.RowsTrain, rep.HoldoutModel != nil)
	}
}

func TestExactTooWideFallsBack(t *testing.T) {
	d := &Dataset{Names: make([]string, MaxExactWidth+1), Label: "y"}
	for i := range d.Names {
		d.Names[i] = fmt.Sprintf("f%d", i)
	}
	d.X = make([]float32, 10*len(d.Names))
	d.Y = make([]float32, 10)
	_, rep, err := Train(context.Background(), d, TrainConfig{Solver: SolverExact, Epochs: 1})
	if err != nil || !strings.HasPrefix(rep.Solver, "sgd") || !strings.Contains(rep.Solver, "too many") {
		t.Fatalf("solver %q, %v", rep.Solver, err)
	}
}
