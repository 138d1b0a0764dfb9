package daemon

import "github.com/linnet-edge/linnet/daemon/wire"

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
// the service; it need not be safe for concurrent use.
type Learner interface {
	// Learn predicts x with the current master weights, then updates them
	// with the label y (progressive validation).
	Learn(x []float32, y float32) (pred float32, loss float64)
	Progressive() float64 // running progressive loss
	Updates() int64
	// Serving returns a fresh serving copy re-quantized from the master
	// weights.
	Serving() (Scorer, error)
	MarshalBinary() ([]byte, error)
}

// Checkpointer keeps the learner's state across restarts (the store).
type Checkpointer interface {
	SaveCheckpoint([]byte) error
	LoadCheckpoint() ([]byte, error)
}

// serving is what the workers read through one atomic pointer: swapping it
// swaps the model; a worker that loaded the old one finishes with it.
type serving struct {
	scorer Scorer
	schema *wire.Schema
	batch  BatchScorer // nil when the scorer has no batch path
}

func newServing(s Scorer) *serving {
	sv := &serving{scorer: s, schema: wire.NewSchema(s.Features(), s.Logistic())}
	sv.batch, _ = s.(BatchScorer)
	return sv
}
