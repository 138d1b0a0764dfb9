package serving

import (
	"fmt"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
)

// modelScorer serves a decoded model through its Predictor (immutable and
// safe for concurrent use).
type modelScorer struct {
	m      *model.Model
	p      *model.Predictor
	schema *wire.Schema // m's preprocessing: its one Encoder
}

// NewScorer wraps m for serving; readings are decoded through m's
// preprocessing (wire.NewModelSchema).
func NewScorer(m *model.Model) Scorer {
	return &modelScorer{m: m, p: model.NewPredictor(m), schema: wire.NewModelSchema(m)}
}

// Explainer is implemented by scorers that can take a prediction apart
// (model.Model.Explain).
type Explainer interface {
	Explain(x []float32, k int) (model.Explanation, error)
}

func (s *modelScorer) Explain(x []float32, k int) (model.Explanation, error) {
	return s.m.Explain(x, k)
}

// schemaOf is how readings for sc are decoded: a model's own schema (its
// preprocessing), else its features, numeric.
func schemaOf(sc Scorer) *wire.Schema {
	if ms, ok := sc.(*modelScorer); ok {
		return ms.schema
	}
	return wire.NewSchema(sc.Features(), sc.Logistic())
}

func (s *modelScorer) Version() int64                   { return s.m.Version }
func (s *modelScorer) Features() []string               { return s.m.Features }
func (s *modelScorer) Logistic() bool                   { return s.m.Loss == model.Logistic }
func (s *modelScorer) Scheme() string                   { return string(s.m.Scheme) }
func (s *modelScorer) Predict(x []float32) float32      { return s.p.Predict(x) }
func (s *modelScorer) PredictBatch(dst, rows []float32) { s.p.PredictBatch(dst, rows) }

// modelLearner adapts model.Learner: its serving copy is the snapshot of
// the float32 master weights quantized to the served model's scheme, under
// the served model's version (the status message counts the updates).
type modelLearner struct {
	l       *model.Learner
	scheme  model.Scheme
	version int64
	wd      model.Watchdog
	good    []byte       // the state at the last good checkpoint
	schema  *wire.Schema // the starting model's: learning keeps the preprocessing
}

// Robust configures a learner's defences: the plausibility margin and the
// step bound (model.LearnerConfig's Margin and MaxStep; 0 takes their
// defaults, negative disables), and the divergence watchdog's loss ratio
// (model.Watchdog's Ratio; 0 takes its default).
type Robust struct {
	Margin       float64
	MaxStep      float32
	DivergeRatio float64
}

// NewLearner starts online learning from m (its weights and scaling),
// watched from its starting state on (the model's train_loss metric is the
// first baseline).
func NewLearner(m *model.Model, r Robust) Learner {
	a := &modelLearner{l: model.NewLearner(m, model.LearnerConfig{Margin: r.Margin, MaxStep: r.MaxStep}),
		scheme: m.Scheme, version: m.Version, schema: wire.NewModelSchema(m),
		wd: model.Watchdog{Ratio: r.DivergeRatio, Initial: m.Metrics["train_loss"]}}
	a.markGood(nil)
	return a
}

func (a *modelLearner) markGood(state []byte) {
	if state == nil {
		state, _ = a.l.MarshalBinary()
	}
	a.wd.Good(a.l)
	a.good = state
}

func (a *modelLearner) Learn(x []float32, y float32) (float32, float64, error) {
	return a.l.LearnChecked(x, y)
}
func (a *modelLearner) Progressive() float64           { return a.l.Progressive() }
func (a *modelLearner) Updates() int64                 { return a.l.Updates() }
func (a *modelLearner) MarshalBinary() ([]byte, error) { return a.l.MarshalBinary() }
func (a *modelLearner) Counters() Counters {
	return Counters{Refused: a.l.Refused(), Clipped: a.l.Clipped(), Frozen: a.l.Frozen()}
}

// UnmarshalBinary resumes a checkpoint, the watchdog's new last good state.
func (a *modelLearner) UnmarshalBinary(b []byte) error {
	if err := a.l.UnmarshalBinary(b); err != nil {
		return err
	}
	a.markGood(append([]byte(nil), b...))
	return nil
}

func (a *modelLearner) Watch() ([]byte, model.Verdict, error) {
	v := a.wd.Check(a.l)
	if !v.Diverged {
		b, err := a.l.MarshalBinary()
		if err == nil {
			a.markGood(b)
		}
		return b, v, err
	}
	if err := a.l.UnmarshalBinary(a.good); err != nil {
		return nil, v, fmt.Errorf("restore the last good checkpoint: %w", err)
	}
	a.l.Freeze()
	b, err := a.l.MarshalBinary()
	if err == nil {
		a.markGood(b)
	}
	return b, v, err
}

func (a *modelLearner) Serving() (Scorer, error) {
	snap := a.l.Snapshot()
	snap.Version = a.version
	q, err := snap.Quantize(a.scheme)
	if err != nil {
		return nil, fmt.Errorf("quantize the learned weights: %w", err)
	}
	return &modelScorer{m: q, p: model.NewPredictor(q), schema: a.schema}, nil
}
