package serving

import (
	"testing"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// memStore is the store's checkpoint half, in memory.
type memStore struct {
	active int64
	ckpt   map[int64][]byte
}

func (m *memStore) LoadCheckpoint() ([]byte, error) {
	if b, ok := m.ckpt[m.active]; ok {
		return b, nil
	}
	return nil, store.ErrNoCheckpoint
}

func (m *memStore) SaveCheckpointFor(v int64, b []byte) error {
	if v != m.active {
		return store.ErrNotActive
	}
	m.ckpt[v] = b
	return nil
}

func lin(v int64) *model.Model {
	return &model.Model{Version: v, Features: []string{"a", "b"}, Target: "y", Loss: model.Squared,
		Mean: []float32{0, 0}, Std: []float32{1, 1}, Weights: []float32{1, 2}, Bias: 0.5, Scheme: model.F32}
}

// The owner's operations keep the model and its learner together:
// Install resumes a checkpoint and serves the learned weights, Learn
// re-quantizes every RequantizeEvery updates, Checkpoint writes under the
// learner's own version only, Restore brings a kept state back.
func TestOwner(t *testing.T) {
	swaps := 0
	o := New(Config{Learning: true, RequantizeEvery: 10, OnSwap: func(*Model) { swaps++ }})
	st := &memStore{active: 1, ckpt: map[int64][]byte{}}
	if prev := o.Install(lin(1), st); prev.Model != nil || o.Current().Version() != 1 || o.Current().Meta.Target != "y" {
		t.Fatalf("install: %+v %+v", prev, o.Current())
	}
	rs := make([]wire.Reading, 25)
	for i := range rs {
		rs[i] = wire.Reading{X: []float32{float32(i), 1}, Label: float32(3 * i), HasLabel: true}
	}
	r := o.Learn(rs)
	if r.N != 25 || r.Updates != 25 || swaps != 2 { // install + one re-quantization at 25 >= 10
		t.Fatalf("learn %+v, swaps %d", r, swaps)
	}
	if ok, err := o.Checkpoint(); !ok.Written || err != nil || st.ckpt[1] == nil {
		t.Fatalf("checkpoint %v %v", ok, err)
	}
	kept := o.State()

	// Version 2 becomes active: the old learner no longer writes.
	st.active = 2
	o.Install(lin(2), st)
	if u, _, _ := o.Stats(); u != 0 {
		t.Errorf("a fresh model's learner has %d updates", u)
	}
	o.Restore(kept, st, 1)
	if u, _, _ := o.Stats(); u != 25 || o.Current() != kept.Model {
		t.Errorf("restore: %d updates, model %v", u, o.Current().Version())
	}
	if ok, err := o.Checkpoint(); !ok.Written || err != nil {
		t.Errorf("checkpoint of a version not active must pass silently: %v %v", ok, err)
	}

	// A restart with version 1 active resumes its checkpoint.
	st.active = 1
	o2 := New(Config{Learning: true, RequantizeEvery: 10})
	o2.Install(lin(1), st)
	if u, _, _ := o2.Stats(); u != 25 {
		t.Errorf("resumed %d updates, want 25", u)
	}
	// An unreadable checkpoint starts from the model.
	st.ckpt[1] = []byte("junk")
	o3 := New(Config{Learning: true})
	o3.Install(lin(1), st)
	if u, _, ok := o3.Stats(); !ok || u != 0 {
		t.Errorf("junk checkpoint: %d updates", u)
	}
}
