package model

import (
	"context"
	"errors"
	"math"
	"testing"
)

// Acceptance 1: on the houses set (features in very different units) the
// default trainer recovers the generating coefficients, and its test RMSE
// is within 1% of the closed-form least-squares optimum.
func TestTrainHousesRecoversTruth(t *testing.T) {
	tr, truth := synthData(t, "houses", 40000, 1)
	te, _ := synthData(t, "houses", 10000, 2)
	c, b := ols(t, tr)
	opt := olsRMSE(te, c, b)

	m, rep := train(t, tr, TrainConfig{})
	got := scoreData(m, te).RMSE
	t.Logf("test RMSE %.4f, least squares %.4f (ratio %.5f), %d epochs", got, opt, got/opt, len(rep.Epochs))
	if got > 1.01*opt {
		t.Errorf("test RMSE %.4f is more than 1%% above the least-squares optimum %.4f", got, opt)
	}
	// Tolerance: each coefficient within 5% of the truth (the sampling
	// error of 40,000 rows with noise 25 is under 2% for every one) and the
	// intercept within 5 (thousands).
	rc, rb := rawCoef(m)
	for i, want := range truth.Coef {
		if math.Abs(rc[i]-want) > 0.05*math.Abs(want) {
			t.Errorf("%s: coefficient %.5g, truth %.5g", truth.Names[i], rc[i], want)
		}
	}
	if math.Abs(rb-truth.Intercept) > 5 {
		t.Errorf("intercept %.4g, truth %.4g", rb, truth.Intercept)
	}
}

// Every optimizer converges to within 1% of least squares on unscaled
// data, including the seed's run: plain SGD, 100 epochs, batch 32.
func TestTrainOptimizers(t *testing.T) {
	tr, _ := synthData(t, "houses", 10000, 3)
	te, _ := synthData(t, "houses", 5000, 4)
	c, b := ols(t, tr)
	opt := olsRMSE(te, c, b)
	for name, cfg := range map[string]TrainConfig{
		"adaptive":        {},
		"adagrad":         {OptimConfig: OptimConfig{Optimizer: AdaGrad}},
		"sgd-seed":        {OptimConfig: OptimConfig{Optimizer: SGD}, Epochs: 100, BatchSize: 32},
		"sgd-invscaling":  {OptimConfig: OptimConfig{Optimizer: SGD, Schedule: InvScaling, LR: 0.05}, Epochs: 30},
		"adaptive-batch1": {BatchSize: 1, Epochs: 5},
		"adaptive-stream": {Stream: true, Epochs: 5},
		"holdout":         {Holdout: 0.2, Epochs: 50},
		"huber":           {Loss: Huber},
	} {
		m, rep := train(t, tr, cfg)
		got := scoreData(m, te).RMSE
		t.Logf("%-16s test RMSE %.4f ratio %.5f epochs %d best %d", name, got, got/opt, len(rep.Epochs), rep.BestEpoch)
		if got > 1.01*opt {
			t.Errorf("%s: test RMSE %.4f is more than 1%% above least squares %.4f", name, got, opt)
		}
	}
}

func TestTrainL1L2(t *testing.T) {
	tr, _ := synthData(t, "houses", 5000, 5)
	m0, _ := train(t, tr, TrainConfig{})
	m2, _ := train(t, tr, TrainConfig{OptimConfig: OptimConfig{L2: 1}})
	var n0, n2 float64
	for i := range m0.Weights {
		n0 += float64(m0.Weights[i] * m0.Weights[i])
		n2 += float64(m2.Weights[i] * m2.Weights[i])
	}
	if !(n2 < 0.8*n0) {
		t.Errorf("L2 did not shrink the weights: |w|² %.4g without, %.4g with", n0, n2)
	}
	// A strong L1 zeroes weights exactly (the proximal step), a weak one does not.
	m1, _ := train(t, tr, TrainConfig{OptimConfig: OptimConfig{L1: 0.3}})
	zeros := 0
	for _, w := range m1.Weights {
		if w == 0 {
			zeros++
		}
	}
	if zeros == 0 {
		t.Errorf("L1 0.3 zeroed no weight: %v", m1.Weights)
	}
	for _, o := range []Optimizer{SGD, AdaGrad} {
		m, _ := train(t, tr, TrainConfig{OptimConfig: OptimConfig{Optimizer: o, L1: 0.3}, Epochs: 5})
		z := 0
		for _, w := range m.Weights {
			if w == 0 {
				z++
			}
		}
		if z == 0 {
			t.Errorf("%s: L1 0.3 zeroed no weight: %v", o, m.Weights)
		}
	}
}

// Acceptance 2: logistic regression reaches the generating model's
// accuracy within 1 point, on separable and noisy data.
func TestTrainLogistic(t *testing.T) {
	for _, kind := range []string{"logistic-separable", "logistic-noisy"} {
		tr, truth := synthData(t, kind, 40000, 11)
		te, _ := synthData(t, kind, 10000, 12)
		m, rep := train(t, tr, TrainConfig{Loss: Logistic})
		got := scoreData(m, te)
		// The generating model's accuracy: the rule score > 0.
		var right int
		x := make([]float64, len(truth.Coef))
		for i := range te.Len() {
			for j, v := range te.Row(i) {
				x[j] = float64(v)
			}
			if (truth.Score(x) > 0) == (te.Y[i] == 1) {
				right++
			}
		}
		want := float64(right) / float64(te.Len())
		t.Logf("%s: accuracy %.4f, generating model %.4f, AUC %.4f, log loss %.4f, %d epochs",
			kind, got.Accuracy, want, got.AUC, got.LogLoss, len(rep.Epochs))
		if got.Accuracy < want-0.01 {
			t.Errorf("%s: accuracy %.4f is more than 1 point below the generating model's %.4f", kind, got.Accuracy, want)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	d := &Dataset{Names: []string{"a"}, Label: "y", X: []float32{1, 2}, Y: []float32{0, 2}}
	if _, _, err := Train(context.Background(), d, TrainConfig{Loss: Logistic}); err == nil {
		t.Error("logistic target 2 accepted")
	}
	d.Reset()
	if _, _, err := Train(context.Background(), &Dataset{Names: []string{"a"}}, TrainConfig{}); err != ErrNoRows {
		t.Errorf("no rows: %v", err)
	}
	for _, cfg := range []TrainConfig{
		{Loss: "hinge"}, {OptimConfig: OptimConfig{Optimizer: "adam"}}, {BatchSize: -1}, {Holdout: 1},
		{OptimConfig: OptimConfig{LR: -1}}, {OptimConfig: OptimConfig{Schedule: "cosine"}},
	} {
		d.Reset()
		if _, _, err := Train(context.Background(), d, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d = &Dataset{Names: []string{"a"}, Label: "y", X: []float32{1, 2}, Y: []float32{0, 2}}
	if _, _, err := Train(ctx, d, TrainConfig{}); err != context.Canceled {
		t.Errorf("cancelled: %v", err)
	}
}

func TestTrainOnEpochAndHoldoutSplit(t *testing.T) {
	tr, _ := synthData(t, "houses", 2000, 7)
	var seen []EpochStats
	_, rep := train(t, tr, TrainConfig{Epochs: 4, Holdout: 0.25, Patience: -1, OnEpoch: func(e EpochStats) { seen = append(seen, e) }})
	if len(seen) != 4 || seen[3].Epoch != 4 || math.IsNaN(seen[3].HoldoutLoss) {
		t.Fatalf("epochs seen %+v", seen)
	}
	if rep.RowsTrain+rep.RowsHoldout != 2000 || rep.RowsHoldout < 400 || rep.RowsHoldout > 600 {
		t.Errorf("split %d / %d", rep.RowsTrain, rep.RowsHoldout)
	}
	var h int64
	for i := range int64(2000) {
		if InHoldout(0, 0.25, i) {
			h++
		}
	}
	if h != rep.RowsHoldout {
		t.Errorf("InHoldout counts %d, trainer held out %d", h, rep.RowsHoldout)
	}
}

// Huber loss shrugs off gross outliers in the training targets that pull
// squared loss away from the truth.
func TestTrainHuberRobust(t *testing.T) {
	tr, _ := synthData(t, "houses", 20000, 61)
	te, _ := synthData(t, "houses", 5000, 62)
	for i := 0; i < tr.Len(); i += 20 { // 5% of the prices entered in euros, not thousands
		tr.Y[i] *= 1000
	}
	sq, _ := train(t, tr, TrainConfig{})
	hu, _ := train(t, tr, TrainConfig{Loss: Huber, Delta: 50})
	rs, rh := scoreData(sq, te).RMSE, scoreData(hu, te).RMSE
	t.Logf("clean test RMSE: squared %.2f, huber %.2f", rs, rh)
	if !(rh < 30 && rh < rs/3) {
		t.Errorf("huber test RMSE %.2f, squared %.2f", rh, rs)
	}
}

func TestTrainDiverges(t *testing.T) {
	d, _ := synthData(t, "houses", 2000, 81)
	for _, stream := range []bool{false, true} {
		d.Reset()
		_, _, err := Train(context.Background(), d, TrainConfig{OptimConfig: OptimConfig{Optimizer: SGD, LR: 100}, Stream: stream})
		if !errors.Is(err, ErrDiverged) {
			t.Errorf("stream %v: %v, want ErrDiverged", stream, err)
		}
	}
}
