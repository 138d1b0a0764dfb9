package serving

import (
	"errors"
	"fmt"

	"github.com/linnet-edge/linnet/model"
)

// ErrNoLearner is returned by Export when the model does not learn
// online: its stored file is what it serves.
var ErrNoLearner = errors.New("serving: no online learner")

// Freeze stops online learning while any holder (a name: the drift
// response, an operator) asks for it; Freeze(by, false) withdraws that
// holder's request. Prediction goes on.
func (o *Owner) Freeze(by string, on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if on {
		if o.frozen == nil {
			o.frozen = map[string]bool{}
		}
		o.frozen[by] = true
	} else {
		delete(o.frozen, by)
	}
	o.stop.Store(len(o.frozen) > 0)
}

// Frozen reports whether learning is frozen.
func (o *Owner) Frozen() bool { return o.stop.Load() }

// Learns reports whether the served model learns online (a learner is set).
func (o *Owner) Learns() bool {
	if !o.cfg.Learning {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.learner != nil
}

// snapshotter is a learner that can give its master weights as a model.
type snapshotter interface {
	Snapshot() *model.Model
}

// Export returns the learner's current weights as a .lnm file (f32,
// unsigned, under the served version). The copy is taken under the
// learner's lock and encoded after it. It returns ErrNoLearner without a
// learner that can do it.
func (o *Owner) Export() ([]byte, error) {
	o.mu.Lock()
	s, ok := o.learner.(snapshotter)
	if !ok || !o.cfg.Learning {
		o.mu.Unlock()
		return nil, ErrNoLearner
	}
	m := s.Snapshot()
	o.mu.Unlock()
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("export the learned weights: %w", err)
	}
	return b, nil
}

// Snapshot encodes the master weights under the served version.
func (a *modelLearner) Snapshot() *model.Model {
	m := a.l.Snapshot()
	m.Version = a.version
	return m
}
