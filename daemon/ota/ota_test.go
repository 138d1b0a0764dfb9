package ota

import (
	"testing"
	"time"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
)

type fakeScorer struct{}

func (f *fakeScorer) Version() int64              { return 7 }
func (f *fakeScorer) Features() []string          { return []string{"a", "b", "c"} }
func (f *fakeScorer) Logistic() bool              { return false }
func (f *fakeScorer) Scheme() string              { return "f32" }
func (f *fakeScorer) Predict(x []float32) float32 { return x[0] }

func TestRecentReadings(t *testing.T) {
	r := recent{limit: 4}
	sc := wire.NewSchema([]string{"a", "b"}, false)
	mk := func(vs ...float32) []wire.Reading {
		rs := make([]wire.Reading, len(vs))
		for i, v := range vs {
			rs[i].X = []float32{v, -v}
		}
		return rs
	}
	r.add(sc, mk(1, 2, 3))
	r.add(sc, mk(4, 5, 6, 7, 8, 9)) // wraps; only the newest 4 stay
	names, rows := r.snapshot()
	got := map[float32]bool{}
	for _, x := range rows {
		got[x[0]] = true
	}
	if len(names) != 2 || len(rows) != 4 || !got[6] || !got[7] || !got[8] || !got[9] {
		t.Errorf("rows %v", rows)
	}
	rows[0][0] = 100 // a copy
	if _, again := r.snapshot(); again[0][0] == 100 {
		t.Error("snapshot shares memory")
	}
	// Another schema starts over; the same names under a new pointer do not.
	r.add(wire.NewSchema([]string{"a", "b"}, false), mk(10))
	if _, rows := r.snapshot(); len(rows) != 4 {
		t.Errorf("same names: %d rows", len(rows))
	}
	r.add(wire.NewSchema([]string{"a", "c"}, false), mk(11))
	if names, rows := r.snapshot(); len(rows) != 1 || names[1] != "c" {
		t.Errorf("new schema: %v %v", names, rows)
	}
}

func BenchmarkObserve(b *testing.B) {
	o := New(Default())
	sv := serving.NewModel(&fakeScorer{}, serving.Meta{})
	rs := []wire.Reading{{X: []float32{1, 2, 3}}}
	preds := []float32{0}
	b.ReportAllocs()
	for b.Loop() {
		o.OnPredicted("dev", sv, rs, preds)
	}
}

func TestRecordBudget(t *testing.T) {
	b := budget{capacity: 3, every: time.Second}
	t0 := time.Unix(1000, 0)
	got := 0
	for i := 0; i < 10; i++ {
		if b.take(t0) {
			got++
		}
	}
	if got != 3 {
		t.Errorf("burst %d, want 3", got)
	}
	if b.take(t0.Add(999*time.Millisecond)) || !b.take(t0.Add(time.Second)) || b.take(t0.Add(1500*time.Millisecond)) {
		t.Error("refill not one per second")
	}
	for i := 0; i < 3; i++ {
		if !b.take(t0.Add(time.Hour)) {
			t.Fatal("not refilled to capacity")
		}
	}
	if b.take(t0.Add(time.Hour)) {
		t.Error("refilled beyond capacity")
	}
}
