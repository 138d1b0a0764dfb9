package model

import (
	"errors"
	"math"
	"testing"
)

func blank(d *Dataset, loss Loss) *Model {
	return &Model{Features: d.Names, Target: d.Label, Loss: loss}
}

// Acceptance 3a: fed the training set once, row by row, the online learner
// ends within 5% of the batch trainer's test RMSE.
func TestLearnerOnePassMatchesBatch(t *testing.T) {
	tr, _ := synthData(t, "houses", 40000, 1)
	te, _ := synthData(t, "houses", 10000, 2)
	bm, _ := train(t, tr, TrainConfig{})
	batch := scoreData(bm, te).RMSE
	for _, o := range []Optimizer{Adaptive, AdaGrad} {
		l := NewLearner(blank(tr, Squared), LearnerConfig{OptimConfig: OptimConfig{Optimizer: o}})
		for i := range tr.Len() {
			l.Learn(tr.Row(i), tr.Y[i])
		}
		m := l.Snapshot()
		online := scoreData(m, te).RMSE
		t.Logf("%s: online %.4f batch %.4f ratio %.4f progressive MSE %.1f (RMSE %.3f), %d steps clipped, %d readings refused",
			o, online, batch, online/batch, l.Progressive(), math.Sqrt(l.Progressive()), l.Clipped(), l.Refused())
		if online > 1.05*batch {
			t.Errorf("%s: online test RMSE %.4f is more than 5%% above batch %.4f", o, online, batch)
		}
		if l.Updates() != int64(tr.Len()) {
			t.Errorf("updates %d, want %d", l.Updates(), tr.Len())
		}
		// Snapshot and the learner predict alike.
		for i := range 10 {
			a, b := l.Predict(te.Row(i)), score(m, te.Row(i))
			if math.Abs(float64(a-b)) > 1e-3*math.Abs(float64(a))+1e-3 {
				t.Errorf("row %d: learner %v, snapshot %v", i, a, b)
			}
		}
	}
}

func TestLearnerLogistic(t *testing.T) {
	tr, _ := synthData(t, "logistic-noisy", 20000, 21)
	te, _ := synthData(t, "logistic-noisy", 5000, 22)
	bm, _ := train(t, tr, TrainConfig{Loss: Logistic})
	l := NewLearner(blank(tr, Logistic), LearnerConfig{})
	for i := range tr.Len() {
		l.Learn(tr.Row(i), tr.Y[i])
	}
	on, ba := scoreData(l.Snapshot(), te), scoreData(bm, te)
	t.Logf("online accuracy %.4f log loss %.4f, batch %.4f %.4f", on.Accuracy, on.LogLoss, ba.Accuracy, ba.LogLoss)
	if on.Accuracy < ba.Accuracy-0.01 {
		t.Errorf("online accuracy %.4f, batch %.4f", on.Accuracy, ba.Accuracy)
	}
}

// A learner started from a trained model keeps its quality and keeps the
// function while the running statistics move.
func TestLearnerFromModel(t *testing.T) {
	tr, _ := synthData(t, "houses", 20000, 31)
	te, _ := synthData(t, "houses", 5000, 32)
	m, _ := train(t, tr, TrainConfig{})
	before := scoreData(m, te).RMSE
	for _, prior := range []int64{0, 20000} {
		l := NewLearner(m, LearnerConfig{PriorRows: prior})
		for i := range 10 {
			a, b := l.Predict(te.Row(i)), score(m, te.Row(i))
			if math.Abs(float64(a-b)) > 1e-3*math.Abs(float64(b)) {
				t.Fatalf("prior %d: learner predicts %v, model %v", prior, a, b)
			}
		}
		more, _ := synthData(t, "houses", 5000, 33)
		for i := range more.Len() {
			l.Learn(more.Row(i), more.Y[i])
		}
		after := scoreData(l.Snapshot(), te).RMSE
		t.Logf("prior %d: RMSE %.4f before, %.4f after 5000 more rows", prior, before, after)
		if after > 1.05*before {
			t.Errorf("prior %d: RMSE went from %.4f to %.4f", prior, before, after)
		}
	}
}

// Acceptance 3b: saving and resuming mid-stream is bit-identical to an
// uninterrupted run, for every optimizer and loss.
func TestLearnerResumeBitIdentical(t *testing.T) {
	cases := []struct {
		kind string
		loss Loss
		cfg  LearnerConfig
	}{
		{"houses", Squared, LearnerConfig{}},
		{"houses", Huber, LearnerConfig{OptimConfig: OptimConfig{Optimizer: AdaGrad, L1: 0.001, L2: 0.01}}},
		{"houses", Squared, LearnerConfig{OptimConfig: OptimConfig{Optimizer: SGD, Schedule: InvScaling, LR: 0.05}}},
		{"logistic-noisy", Logistic, LearnerConfig{PriorRows: 100}},
	}
	for _, c := range cases {
		d, _ := synthData(t, c.kind, 3000, 41)
		a := NewLearner(blank(d, c.loss), c.cfg)
		b := NewLearner(blank(d, c.loss), c.cfg)
		cut := 1234
		for i := range cut {
			a.Learn(d.Row(i), d.Y[i])
			b.Learn(d.Row(i), d.Y[i])
		}
		state, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var r Learner
		if err := r.UnmarshalBinary(state); err != nil {
			t.Fatalf("%s %s: %v", c.kind, c.loss, err)
		}
		for i := cut; i < d.Len(); i++ {
			pa, la := a.Learn(d.Row(i), d.Y[i])
			pr, lr := r.Learn(d.Row(i), d.Y[i])
			if math.Float32bits(pa) != math.Float32bits(pr) || math.Float64bits(la) != math.Float64bits(lr) {
				t.Fatalf("%s %s row %d: uninterrupted %v %v, resumed %v %v", c.kind, c.loss, i, pa, la, pr, lr)
			}
		}
		sa, _ := a.MarshalBinary()
		sr, _ := r.MarshalBinary()
		if string(sa) != string(sr) {
			t.Errorf("%s %s: final states differ", c.kind, c.loss)
		}
		ma, mr := a.Snapshot(), r.Snapshot()
		for i := range ma.Weights {
			if math.Float32bits(ma.Weights[i]) != math.Float32bits(mr.Weights[i]) {
				t.Errorf("%s %s: weight %d %v vs %v", c.kind, c.loss, i, ma.Weights[i], mr.Weights[i])
			}
		}
		if a.Progressive() != r.Progressive() || a.Updates() != r.Updates() {
			t.Errorf("counters differ")
		}
	}
}

func TestLearnerSkipsBadReadings(t *testing.T) {
	l := NewLearner(&Model{Features: []string{"a", "b"}, Loss: Logistic}, LearnerConfig{})
	for _, r := range []struct {
		x []float32
		y float32
	}{
		{[]float32{float32(math.NaN()), 1}, 1},
		{[]float32{1, float32(math.Inf(1))}, 1},
		{[]float32{1, 1}, float32(math.NaN())},
		{[]float32{1, 1}, 2},
	} {
		if _, loss := l.Learn(r.x, r.y); !math.IsNaN(loss) {
			t.Errorf("%v %v: loss %v, want NaN", r.x, r.y, loss)
		}
	}
	if l.Updates() != 0 {
		t.Errorf("learned from %d bad readings", l.Updates())
	}
	l.Learn([]float32{1, 2}, 1)
	if l.Updates() != 1 || math.IsNaN(l.Progressive()) {
		t.Errorf("good reading: updates %d, progressive %v", l.Updates(), l.Progressive())
	}
}

func TestLearnerStateErrors(t *testing.T) {
	d, _ := synthData(t, "houses", 100, 1)
	l := NewLearner(blank(d, Squared), LearnerConfig{})
	for i := range d.Len() {
		l.Learn(d.Row(i), d.Y[i])
	}
	good, _ := l.MarshalBinary()
	var r Learner
	for n := range len(good) {
		if err := r.UnmarshalBinary(good[:n]); !errors.Is(err, ErrLearnerState) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if err := r.UnmarshalBinary(append(good, 0)); !errors.Is(err, ErrLearnerState) {
		t.Errorf("trailing byte: %v", err)
	}
	// Bit flips must never panic.
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x80
		_ = r.UnmarshalBinary(b)
	}
}

func FuzzLearnerState(f *testing.F) {
	l := NewLearner(&Model{Features: []string{"a", "b"}}, LearnerConfig{})
	l.Learn([]float32{1, 2}, 3)
	s, _ := l.MarshalBinary()
	f.Add(s)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Learner
		if r.UnmarshalBinary(b) == nil {
			r.Learn(make([]float32, r.d), 1)
		}
	})
}

// The daemon quantizes and encodes Snapshots, and resumes learners from
// decoded model files.
func TestLearnerSnapshotCodec(t *testing.T) {
	d, _ := synthData(t, "houses", 2000, 51)
	l := NewLearner(blank(d, Huber), LearnerConfig{})
	for i := range d.Len() {
		l.Learn(d.Row(i), d.Y[i])
	}
	for _, s := range []Scheme{F32, Q8, Q4} {
		q, err := l.Snapshot().Quantize(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		b, err := q.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		m, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		l2 := NewLearner(m, LearnerConfig{PriorRows: l.Updates()})
		p := NewPredictor(m)
		for i := range 5 {
			a, b := l2.Predict(d.Row(i)), p.Predict(d.Row(i))
			if math.Abs(float64(a-b)) > 0.01*math.Abs(float64(b))+0.01 {
				t.Errorf("%s row %d: learner from the file predicts %v, the file %v", s, i, a, b)
			}
		}
	}
}

func TestLearnerConfigCheck(t *testing.T) {
	for _, c := range []LearnerConfig{
		{OptimConfig: OptimConfig{Optimizer: "adam"}}, {OptimConfig: OptimConfig{LR: -1}}, {Delta: -1}, {PriorRows: -1},
	} {
		if c.Check() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (LearnerConfig{}).Check(); err != nil {
		t.Error(err)
	}
}

func TestLearnerUndoesNonFiniteSteps(t *testing.T) {
	d, _ := synthData(t, "houses", 500, 91)
	for _, maxStep := range []float32{-1, 0} {
		l := NewLearner(blank(d, Squared), LearnerConfig{OptimConfig: OptimConfig{Optimizer: SGD, LR: 1e30}, MaxStep: maxStep})
		for i := range d.Len() {
			l.Learn(d.Row(i), d.Y[i])
		}
		m := l.Snapshot()
		// Without the step bound the runaway steps are undone; with it
		// they are shortened first.
		if maxStep < 0 && l.Undone() == 0 || maxStep == 0 && l.Clipped() == 0 {
			t.Errorf("max step %v: no step undone (%d) or clipped (%d) at learning rate 1e30", maxStep, l.Undone(), l.Clipped())
		}
		if _, err := m.Quantize(Q8); err != nil {
			t.Errorf("max step %v: snapshot after runaway steps: %v", maxStep, err)
		}
	}
}
