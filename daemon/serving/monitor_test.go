package serving

import (
	"errors"
	"testing"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
)

// Freeze stops learning while any holder asks for it; Export gives the
// learner's weights under the served version.
func TestFreezeAndExport(t *testing.T) {
	o := New(Config{Learning: true})
	st := &memStore{active: 3, ckpt: map[int64][]byte{}}
	o.Install(lin(3), st)
	rs := []wire.Reading{{X: []float32{1, 1}, Label: 10, HasLabel: true}}
	o.Freeze("drift", true)
	o.Freeze("operator", true)
	if r := o.Learn(rs); r.N != 0 || !o.Frozen() {
		t.Fatalf("learned %d while frozen", r.N)
	}
	o.Freeze("drift", false)
	if r := o.Learn(rs); r.N != 0 || !o.Frozen() {
		t.Fatalf("learned %d while another holder freezes", r.N)
	}
	o.Freeze("operator", false)
	if r := o.Learn(rs); r.N != 1 || o.Frozen() {
		t.Fatalf("learned %d after every holder let go", r.N)
	}
	if !o.Learns() {
		t.Error("Learns is false with a learner")
	}
	b, err := o.Export()
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 3 || m.Weights[0] == 1 {
		t.Fatalf("export: version %d weights %v, want version 3 and learned weights", m.Version, m.Weights)
	}
	if _, err := New(Config{}).Export(); !errors.Is(err, ErrNoLearner) {
		t.Errorf("export without a learner: %v", err)
	}
}
