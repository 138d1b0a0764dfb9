// Package serving owns what a gateway serves: the model the workers
// predict with, its online learner, the learner's checkpoints and the
// re-quantized serving copies. Start-up, over-the-air updates and the
// guarded rollout change it only through Owner's methods; nothing else
// holds its state. One Owner serves one named model; a daemon serving
// several has one Owner each.
package serving

import (
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
)

// Scorer is one immutable serving model: what the workers call. It must be
// safe for concurrent use; a new model is a new Scorer, swapped in whole.
type Scorer interface {
	Version() int64
	Features() []string // names, in the order Predict wants them
	Logistic() bool     // predictions are P(class 1)
	Scheme() string     // f32, q8 or q4: for the status message
	Predict(x []float32) float32
}

// BatchScorer is implemented by scorers with a faster path for many rows
// (rows holds len(dst) rows of len(Features()) values).
type BatchScorer interface {
	PredictBatch(dst, rows []float32)
}

// Learner learns online from labelled readings. Calls are serialized by
// the Owner; it need not be safe for concurrent use.
type Learner interface {
	// Learn predicts x with the current master weights, then updates them
	// with the label y (progressive validation). A reading it refuses (an
	// implausible label or feature: model.ErrImplausible; a frozen
	// learner: model.ErrFrozen) is still predicted.
	Learn(x []float32, y float32) (pred float32, loss float64, err error)
	Progressive() float64 // running progressive loss
	Updates() int64
	Counters() Counters
	// Watch judges the learner before a checkpoint (see model.Watchdog).
	// Healthy, it returns its state to save and remembers it as the last
	// good one. Diverged, it restores the last good state, freezes
	// learning and returns that state (saved, a restart stays frozen).
	Watch() (state []byte, v model.Verdict, err error)
	// Serving returns a fresh serving copy re-quantized from the master
	// weights.
	Serving() (Scorer, error)
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// Counters are a learner's defences at work.
type Counters struct {
	Refused int64 // readings refused as implausible (learned from not at all)
	Clipped int64 // steps shortened to the step bound
	Frozen  bool  // learning frozen (a diverged learner, restored)
}

// Checkpointer keeps a learner's state across restarts.
type Checkpointer interface {
	SaveCheckpoint([]byte) error
}

// Meta is what the serving model says about itself beyond predicting:
// the guard's loss and Home Assistant's description use it.
type Meta struct {
	Target string     // the predicted column; "" when unknown
	Loss   model.Loss // the loss the model was trained with
	Delta  float32    // Huber's delta
}

// Model is the serving model as the workers see it, read through one
// atomic pointer: swapping it swaps the model, and a worker that loaded
// the old one finishes with it. Immutable.
type Model struct {
	Name   string // the served model's name; "" outside a daemon
	Scorer Scorer
	Schema *wire.Schema
	Batch  BatchScorer // nil when the scorer has no batch path
	Meta   Meta
}

// NewModel describes sc for serving.
func NewModel(sc Scorer, meta Meta) *Model {
	if meta.Loss == "" && sc.Logistic() {
		meta.Loss = model.Logistic
	}
	m := &Model{Scorer: sc, Schema: schemaOf(sc), Meta: meta}
	m.Batch, _ = sc.(BatchScorer)
	return m
}

// Version is the served version.
func (m *Model) Version() int64 { return m.Scorer.Version() }

func metaOf(m *model.Model) Meta { return Meta{Target: m.Target, Loss: m.Loss, Delta: m.Delta} }
