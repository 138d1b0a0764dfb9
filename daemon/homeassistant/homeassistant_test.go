package homeassistant

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linnet-edge/linnet/daemon/hooks"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/store"
)

// fakeScorer is a three-feature model.
type fakeScorer struct{ logistic bool }

func (f *fakeScorer) Version() int64              { return 7 }
func (f *fakeScorer) Features() []string          { return []string{"a", "b", "c"} }
func (f *fakeScorer) Logistic() bool              { return f.logistic }
func (f *fakeScorer) Scheme() string              { return "f32" }
func (f *fakeScorer) Predict(x []float32) float32 { return x[0] }

func newFake() *fakeScorer { return &fakeScorer{} }

// fakeHost is the daemon as a hook sees it, without a broker.
type fakeHost struct {
	reg    *prometheus.Registry
	routes map[string]func(string, []byte, bool)
	model  string // "": the default model
}

func newFakeHost() *fakeHost {
	return &fakeHost{reg: prometheus.NewRegistry(), routes: map[string]func(string, []byte, bool){}}
}

func (f *fakeHost) Gateway() string                  { return "gw" }
func (f *fakeHost) Version() string                  { return "test" }
func (f *fakeHost) Topic(tmpl, device string) string { return tmpl + "/" + device }
func (f *fakeHost) Topics() hooks.Topics {
	return hooks.Topics{Prediction: "linnet/{device}/prediction", Errors: "e", Status: "s"}
}
func (f *fakeHost) Current() *serving.Model { return nil }
func (f *fakeHost) Owner() *serving.Owner   { return nil }
func (f *fakeHost) Store() *store.Model     { return nil }
func (f *fakeHost) Model() string {
	if f.model == "" {
		return store.DefaultModel
	}
	return f.model
}
func (f *fakeHost) Trust() []ed25519.PublicKey          { return nil }
func (f *fakeHost) PublishStatus(context.Context) error { return nil }
func (f *fakeHost) Publish(context.Context, string, bool, []byte) error {
	return nil
}
func (f *fakeHost) Route(filter string, h func(string, []byte, bool)) { f.routes[filter] = h }
func (f *fakeHost) Subscribe(context.Context, map[string]byte) error  { return nil }
func (f *fakeHost) Registry() prometheus.Registerer                   { return f.reg }
func (f *fakeHost) Log() *slog.Logger                                 { return slog.New(slog.DiscardHandler) }

// TestHomeAssistantIDs: ids keep [a-zA-Z0-9_-]; a changed id carries a
// hash of the original, so two devices never share a sensor.
func TestHomeAssistantIDs(t *testing.T) {
	ok := regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	seen := map[string]string{}
	for _, in := range []string{"dev-1", "Kitchen_3", "a.b", "a_b", "a b", "é", "", "x$y"} {
		got := haID(in)
		if !ok.MatchString(got) {
			t.Errorf("haID(%q) = %q: characters outside [a-zA-Z0-9_-]", in, got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("haID(%q) = haID(%q) = %q", in, prev, got)
		}
		seen[got] = in
	}
	if got := haID("dev-1"); got != "dev-1" {
		t.Errorf("haID(dev-1) = %q: a valid id is kept as is", got)
	}
}

// TestHomeAssistantBound: past max_devices, new devices are neither
// remembered nor queued, and are counted; a model of another target or
// kind asks for every device to be announced again.
func TestHomeAssistantBound(t *testing.T) {
	h := New(Config{Enabled: true, Prefix: "homeassistant", BirthTopic: "homeassistant/status", MaxDevices: 3})
	if err := h.Init(newFakeHost()); err != nil {
		t.Fatal(err)
	}
	sv := serving.NewModel(newFake(), serving.Meta{Target: "price_k"})
	for i := 0; i < 5; i++ {
		for range 2 {
			h.OnServed(fmt.Sprintf("dev-%d", i), sv)
		}
	}
	if got := len(h.queue); got != 3 {
		t.Errorf("queued %d devices, want 3", got)
	}
	if got := h.nKnown.Load(); got != 3 {
		t.Errorf("remember %d devices, want 3", got)
	}
	if got := testutil.ToFloat64(h.ignored); got != 4 {
		t.Errorf("unannounced predictions %v, want 4 (2 devices x 2)", got)
	}
	if len(h.again) != 0 {
		t.Error("re-announcement asked without a model change")
	}
	// A re-quantized copy of the same model: nothing to re-announce.
	h.OnServed("dev-0", serving.NewModel(newFake(), serving.Meta{Target: "price_k"}))
	if len(h.again) != 0 {
		t.Error("re-announcement asked for the same target and kind")
	}
	// Home Assistant's will ("offline") asks for nothing; its birth does.
	h.onBirth("homeassistant/status", []byte("offline"), false)
	if len(h.again) != 0 {
		t.Error("re-announcement asked on offline")
	}
	h.onBirth("homeassistant/status", []byte("online"), false)
	if len(h.again) != 1 {
		t.Error("no re-announcement asked on online")
	}
	<-h.again
	lf := newFake()
	lf.logistic = true
	h.OnServed("dev-0", serving.NewModel(lf, serving.Meta{Target: "price_k"}))
	if len(h.again) != 1 {
		t.Error("no re-announcement after the model became logistic")
	}
}

// TestHomeAssistantModels: each model's announcer gives a device its own
// sensor: the default model's as before, another's named after it; with
// the prediction topic shared, a sensor keeps its state on the other
// models' messages. Two announcers share their metrics.
func TestHomeAssistantModels(t *testing.T) {
	reg := prometheus.NewRegistry()
	def, hvac := newFakeHost(), newFakeHost()
	def.reg, hvac.reg, hvac.model = reg, reg, "hvac"
	cfg := Config{Enabled: true, Prefix: "homeassistant", BirthTopic: "homeassistant/status", MaxDevices: 3}
	hd, hh := New(cfg), New(cfg)
	hh.SharedTopic()
	for _, x := range []struct {
		h    *Hook
		host *fakeHost
	}{{hd, def}, {hh, hvac}} {
		if err := x.h.Init(x.host); err != nil {
			t.Fatal(err)
		}
	}
	decode := func(b []byte) haSensor {
		var c haSensor
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	m := hassModel{target: "y"}
	topic, b := hd.config("d1", m)
	if c := decode(b); topic != "homeassistant/sensor/linnet_gw_d1/prediction/config" || c.UniqueID != "linnet_gw_d1_prediction" ||
		c.Name != "Prediction" || c.ValueTemplate != "{{ value_json.prediction }}" {
		t.Errorf("default model: %s %+v", topic, c)
	}
	topic, b = hh.config("d1", m)
	c := decode(b)
	if topic != "homeassistant/sensor/linnet_gw_d1/hvac_prediction/config" || c.UniqueID != "linnet_gw_d1_hvac_prediction" ||
		c.Name != "Prediction hvac" || !strings.Contains(c.ValueTemplate, "value_json.model == 'hvac'") ||
		c.Device.Identifiers[0] != "linnet_gw_d1" {
		t.Errorf("model hvac: %s %+v", topic, c)
	}
	sv := serving.NewModel(newFake(), serving.Meta{Target: "y"})
	hd.OnServed("d1", sv)
	hh.OnServed("d1", sv)
	hh.OnServed("d2", sv)
	if got := testutil.ToFloat64(hd.devices); got != 3 || hd.devices != hh.devices {
		t.Errorf("linnet_homeassistant_devices %v, want 3 across both models", got)
	}
}
