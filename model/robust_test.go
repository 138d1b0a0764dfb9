package model

import (
	"errors"
	"math"
	"testing"
)

// maxRelDiff returns the largest relative difference between a's and b's
// predictions over the rows of d.
func maxRelDiff(a, b *Learner, d *Dataset) float64 {
	var worst float64
	for i := range d.Len() {
		pa, pb := float64(a.Predict(d.Row(i))), float64(b.Predict(d.Row(i)))
		worst = math.Max(worst, math.Abs(pa-pb)/math.Max(math.Abs(pb), 1e-9))
	}
	return worst
}

// TestPoisoning: the attacks that ruined the shared model (one label of
// 1e30, one of 1e6, 2,000 of 1e30) leave predictions on held-out readings
// within 2% of a control run that saw only the honest readings.
func TestPoisoning(t *testing.T) {
	tr, _ := synthData(t, "houses", 20000, 61)
	honest, _ := synthData(t, "houses", 3000, 62)
	held, _ := synthData(t, "houses", 2000, 63)
	m, _ := train(t, tr, TrainConfig{})
	if !(m.TargetMax > m.TargetMin) || len(m.Min) != len(m.Features) {
		t.Fatalf("training left no statistics: target [%v, %v], %d feature ranges", m.TargetMin, m.TargetMax, len(m.Min))
	}
	for _, c := range []struct {
		name   string
		label  float32
		bad    int
		honest int
	}{
		{"1 x 1e30", 1e30, 1, 1000},
		{"1 x 1e6", 1e6, 1, 1000},
		{"2000 x 1e30", 1e30, 2000, 3000},
	} {
		control := NewLearner(m, LearnerConfig{})
		victim := NewLearner(m, LearnerConfig{})
		for i := range c.bad {
			x := honest.Row(i % honest.Len())
			_, loss, err := victim.LearnChecked(x, c.label)
			var ie *ImplausibleError
			if !errors.As(err, &ie) || ie.Index != -1 || !math.IsNaN(loss) {
				t.Fatalf("%s: poisoned reading %d: loss %v, error %v", c.name, i, loss, err)
			}
		}
		for i := range c.honest {
			control.Learn(honest.Row(i), honest.Y[i])
			victim.Learn(honest.Row(i), honest.Y[i])
		}
		diff := maxRelDiff(victim, control, held)
		t.Logf("%s then %d honest: predictions differ from the control run's by at most %.4f%%; refused %d, progressive loss %.4g (control %.4g)",
			c.name, c.honest, 100*diff, victim.Refused(), victim.Progressive(), control.Progressive())
		if diff > 0.02 {
			t.Errorf("%s: predictions differ by %.2f%% from the control run's", c.name, 100*diff)
		}
		if victim.Refused() != int64(c.bad) || victim.Progressive() != control.Progressive() {
			t.Errorf("%s: refused %d, progressive loss %v vs control %v", c.name, victim.Refused(), victim.Progressive(), control.Progressive())
		}
	}
}

// TestPoisonedFeature: a feature far outside its training range is not
// learned from; it is still predicted.
func TestPoisonedFeature(t *testing.T) {
	tr, _ := synthData(t, "houses", 5000, 64)
	m, _ := train(t, tr, TrainConfig{})
	l := NewLearner(m, LearnerConfig{})
	x := append([]float32(nil), tr.Row(0)...)
	x[1] = 1e30
	pred, _, err := l.LearnChecked(x, tr.Y[0])
	var ie *ImplausibleError
	if !errors.As(err, &ie) || ie.Index != 1 || ie.Feature != m.Features[1] || !errors.Is(err, ErrImplausible) {
		t.Fatalf("feature 1e30: %v", err)
	}
	if pred != l.Predict(x) || l.Updates() != 0 {
		t.Errorf("prediction %v, updates %d", pred, l.Updates())
	}
	// With the bounds disabled it is learned from.
	l = NewLearner(m, LearnerConfig{Margin: -1})
	if _, _, err := l.LearnChecked(x, tr.Y[0]); err != nil {
		t.Errorf("bounds disabled: %v", err)
	}
}

// TestBoundsFallback: a model without training statistics (an older file)
// is bounded by its Mean and Std and its target metrics.
func TestBoundsFallback(t *testing.T) {
	tr, _ := synthData(t, "houses", 5000, 65)
	m, _ := train(t, tr, TrainConfig{})
	m.Min, m.Max, m.TargetMin, m.TargetMax, m.TargetMean, m.TargetStd = nil, nil, 0, 0, 0, 0
	b := NewBounds(m, DefaultMargin)
	mean, std := m.Metrics["target_mean"], m.Metrics["target_std"]
	// mean ± 4 std, widened by one width (8 std) on each side.
	if lo, hi := mean-12*std, mean+12*std; math.Abs(b.YLo-lo) > 1e-3*std || math.Abs(b.YHi-hi) > 1e-3*std {
		t.Errorf("target bounds [%v, %v] for mean %v std %v", b.YLo, b.YHi, mean, std)
	}
	if err := b.Check(tr.Row(0), 1e6, m.Features); !errors.Is(err, ErrImplausible) {
		t.Errorf("label 1e6 with fallback bounds: %v", err)
	}
	for i := range tr.Len() {
		if err := b.Check(tr.Row(i), tr.Y[i], m.Features); err != nil {
			t.Fatalf("training row %d refused: %v", i, err)
		}
	}
	// A blank model bounds nothing until warm, then by the running
	// statistics.
	l := NewLearner(blank(tr, Squared), LearnerConfig{})
	if _, _, err := l.LearnChecked(tr.Row(0), 1e30); err != nil {
		t.Errorf("cold blank learner refused: %v", err)
	}
	l = NewLearner(blank(tr, Squared), LearnerConfig{})
	for i := range 200 {
		l.Learn(tr.Row(i), tr.Y[i])
	}
	if _, _, err := l.LearnChecked(tr.Row(0), 1e30); !errors.Is(err, ErrImplausible) {
		t.Errorf("warm blank learner: %v", err)
	}
}

// TestMaxStep: with the bounds disabled, one reading moves no held-out
// prediction by more than MaxStep target standard deviations. (A label of
// 1e30 is beyond what float32 weights over running statistics can absorb
// exactly, step bound or not: refusing it is the bounds' job.)
func TestMaxStep(t *testing.T) {
	tr, _ := synthData(t, "houses", 20000, 66)
	held, _ := synthData(t, "houses", 2000, 67)
	m, _ := train(t, tr, TrainConfig{})
	std := m.Metrics["target_std"]
	for _, label := range []float32{1e6, -1e6, 1e9} {
		l := NewLearner(m, LearnerConfig{Margin: -1, PriorRows: 20000})
		before := make([]float32, held.Len())
		for i := range before {
			before[i] = l.Predict(held.Row(i))
		}
		l.Learn(held.Row(0), label)
		var worst float64
		n := 0
		for i := range before {
			if !withinSigmas(m, held.Row(i), clipSigmas) {
				continue
			}
			n++
			worst = math.Max(worst, math.Abs(float64(l.Predict(held.Row(i))-before[i])))
		}
		t.Logf("label %g: largest move %.4g over %d held-out readings (limit %.4g)", label, worst, n, DefaultMaxStep*std)
		if worst > DefaultMaxStep*std*1.01 || n == 0 {
			t.Errorf("label %g: a prediction moved by %.4g, more than %g x %.4g", label, worst, DefaultMaxStep, std)
		}
	}
}

func withinSigmas(m *Model, x []float32, k float64) bool {
	for i, v := range x {
		if math.Abs(float64(v-m.Mean[i])) > k*float64(m.Std[i]) {
			return false
		}
	}
	return true
}

// TestWatchdog: a learner whose loss blows up after a good checkpoint is
// found diverged; restoring the checkpoint and freezing it stops the harm.
func TestWatchdog(t *testing.T) {
	tr, _ := synthData(t, "houses", 20000, 68)
	more, _ := synthData(t, "houses", 4000, 69)
	m, _ := train(t, tr, TrainConfig{})
	// No bounds and no step limit: the learner of today.
	l := NewLearner(m, LearnerConfig{Margin: -1, MaxStep: -1})
	var w Watchdog
	if v := w.Check(l); v.Diverged {
		t.Fatalf("fresh learner diverged: %+v", v)
	}
	for i := range 1000 {
		l.Learn(more.Row(i), more.Y[i])
	}
	if v := w.Check(l); v.Diverged {
		t.Fatalf("honest learner diverged: %+v", v)
	}
	good, _ := l.MarshalBinary()
	w.Good(l)
	want := l.Predict(more.Row(3999))
	l.Learn(more.Row(1000), 1e30)
	for i := 1001; i < 1300; i++ {
		l.Learn(more.Row(i), more.Y[i])
	}
	v := w.Check(l)
	if !v.Diverged || v.Reason == "" {
		t.Fatalf("poisoned learner not diverged: %+v", v)
	}
	t.Logf("verdict: %s", v.Reason)
	if err := l.UnmarshalBinary(good); err != nil {
		t.Fatal(err)
	}
	l.Freeze()
	if _, _, err := l.LearnChecked(more.Row(0), more.Y[0]); !errors.Is(err, ErrFrozen) {
		t.Errorf("frozen learner: %v", err)
	}
	if got := l.Predict(more.Row(3999)); got != want {
		t.Errorf("restored learner predicts %v, want %v", got, want)
	}
	// Frozen survives a checkpoint.
	st, _ := l.MarshalBinary()
	var r Learner
	if err := r.UnmarshalBinary(st); err != nil || !r.Frozen() {
		t.Errorf("frozen lost in the state: %v", err)
	}
	// With the model's training loss as the first baseline, a learner
	// poisoned before its first good checkpoint is caught too.
	l3 := NewLearner(m, LearnerConfig{Margin: -1, MaxStep: -1})
	w3 := Watchdog{Initial: m.Metrics["train_loss"]}
	w3.Check(l3)
	l3.Learn(more.Row(0), 1e30)
	for i := 1; i < 300; i++ {
		l3.Learn(more.Row(i), more.Y[i])
	}
	if v := w3.Check(l3); !v.Diverged {
		t.Errorf("poisoned before the first checkpoint: %+v", v)
	}
	// An honest learner after a good checkpoint stays good.
	l2 := NewLearner(m, LearnerConfig{})
	w2 := Watchdog{Initial: m.Metrics["train_loss"]}
	w2.Check(l2)
	for k := range 4 {
		for i := k * 1000; i < (k+1)*1000; i++ {
			l2.Learn(more.Row(i), more.Y[i])
		}
		if v := w2.Check(l2); v.Diverged {
			t.Errorf("honest window %d diverged: %+v", k, v)
		}
		w2.Good(l2)
	}
}

// TestLearnerStateV1: a format 1 state (written before the bounds) still
// loads, keeping the receiving learner's bounds.
func TestLearnerStateV1(t *testing.T) {
	tr, _ := synthData(t, "houses", 2000, 70)
	m, _ := train(t, tr, TrainConfig{})
	l := NewLearner(m, LearnerConfig{})
	l.Learn(tr.Row(0), tr.Y[0])
	st, _ := l.MarshalBinary()
	// Cut format 2's tail and patch the format number.
	v1 := append([]byte(nil), st[:len(st)-v2Tail(l)]...)
	v1[4] = 1
	r := NewLearner(m, LearnerConfig{})
	if err := r.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	if r.Updates() != 1 || !r.bounds.known() {
		t.Errorf("v1 state: updates %d, bounds %+v", r.Updates(), r.bounds)
	}
	if _, _, err := r.LearnChecked(tr.Row(1), 1e30); !errors.Is(err, ErrImplausible) {
		t.Errorf("v1 state lost the bounds: %v", err)
	}
}

// v2Tail is the length of what format 2 appends to format 1.
func v2Tail(l *Learner) int {
	return 8 + 4 + 8 + 1 + 8 + 8 + 4 + 16*len(l.bounds.XLo) + 16 + 4 + 8*len(l.stats.min) + 1 + 8 + 8
}
