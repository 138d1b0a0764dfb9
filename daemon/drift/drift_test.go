package drift

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/hooks"
	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// fakeHost records what the hook publishes.
type fakeHost struct {
	mu  sync.Mutex
	out []monitor.Alert
	reg *prometheus.Registry
}

func (f *fakeHost) Gateway() string                                  { return "gw" }
func (f *fakeHost) Version() string                                  { return "test" }
func (f *fakeHost) Topic(tmpl, _ string) string                      { return tmpl }
func (f *fakeHost) Topics() hooks.Topics                             { return hooks.Topics{} }
func (f *fakeHost) Current() *serving.Model                          { return nil }
func (f *fakeHost) Owner() *serving.Owner                            { return serving.New(serving.Config{}) }
func (f *fakeHost) Store() *store.Model                              { return nil }
func (f *fakeHost) Model() string                                    { return store.DefaultModel }
func (f *fakeHost) Trust() []ed25519.PublicKey                       { return nil }
func (f *fakeHost) PublishStatus(context.Context) error              { return nil }
func (f *fakeHost) Route(string, func(string, []byte, bool))         {}
func (f *fakeHost) Subscribe(context.Context, map[string]byte) error { return nil }
func (f *fakeHost) Registry() prometheus.Registerer                  { return f.reg }
func (f *fakeHost) Log() *slog.Logger                                { return slog.New(slog.DiscardHandler) }

func (f *fakeHost) Publish(_ context.Context, topic string, retained bool, payload []byte) error {
	var a monitor.Alert
	if err := json.Unmarshal(payload, &a); err != nil || !retained || topic != DefaultTopic {
		panic("bad alert publish")
	}
	f.mu.Lock()
	f.out = append(f.out, a)
	f.mu.Unlock()
	return nil
}

// The retained message always tells whether the model drifts: a clear
// that leaves another alert firing is followed by that alert again, and a
// transition already published is not published twice.
func TestPublishKeepsTheRetainedState(t *testing.T) {
	f := &fakeHost{reg: prometheus.NewRegistry()}
	h := New(Default())
	if err := h.Init(f); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	a := monitor.Alert{Model: "y", Kind: monitor.KindFeature, Feature: "a", Score: 1, Threshold: 0.5, Since: t0, Active: true}
	b := a
	b.Feature, b.Since = "b", t0.Add(time.Second)
	h.publish(ctx, a)
	h.publish(ctx, b)
	h.publish(ctx, a) // again: nothing new
	clearA := a
	clearA.Active, clearA.Since = false, t0.Add(2*time.Second)
	h.publish(ctx, clearA)
	h.reconcile(ctx, "y", nil, t0.Add(3*time.Second)) // b is no longer active either
	var got []string
	for _, x := range f.out {
		s := x.Feature + "-"
		if x.Active {
			s = x.Feature + "+"
		}
		got = append(got, s)
	}
	want := []string{"a+", "b+", "a-", "b+", "b-"}
	if len(got) != len(want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("published %v, want %v", got, want)
		}
	}
}

// BenchmarkOnPredicted is the worker's cost of monitoring one labelled
// 32-feature reading beside predicting it, in one run.
func BenchmarkOnPredicted(b *testing.B) {
	const n = 32
	m := &model.Model{Version: 1, Target: "y", Loss: model.Squared, Scheme: model.F32,
		Mean: make([]float32, n), Std: make([]float32, n), Weights: make([]float32, n)}
	for i := range n {
		m.Features = append(m.Features, string(rune('a'+i%26))+string(rune('a'+i/26)))
		m.Std[i], m.Weights[i] = 1, 0.1
	}
	r := rand.New(rand.NewPCG(1, 1))
	rs := make([][]wire.Reading, 1024)
	for i := range rs {
		x := make([]float32, n)
		for j := range x {
			x[j] = float32(r.NormFloat64())
		}
		rs[i] = []wire.Reading{{X: x, Label: float32(r.NormFloat64()), HasLabel: true}}
	}
	sv := serving.NewModel(serving.NewScorer(m), serving.Meta{Target: "y", Loss: model.Squared})
	b.Run("Predict32", func(b *testing.B) {
		var s float32
		i := 0
		for b.Loop() {
			s += sv.Scorer.Predict(rs[i&1023][0].X)
			i++
		}
		_ = s
	})
	b.Run("OnPredicted32", func(b *testing.B) {
		h := New(Default())
		h.cur.Store(&watched{name: "y", version: 1, width: n, loss: lossFunc(sv.Meta),
			w: monitor.NewWatch("y", m, h.mcfg, false)})
		preds := []float32{0}
		i := 0
		for b.Loop() {
			h.OnPredicted("dev", sv, rs[i&1023], preds)
			i++
		}
	})
}
