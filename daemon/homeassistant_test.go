package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linnet-edge/linnet/daemon/homeassistant"
	"github.com/linnet-edge/linnet/daemon/serving"
)

// targetScorer is the fake model with a target name, as a real model has.
type targetScorer struct {
	*fakeScorer
	target string
}

func (s *targetScorer) Target() string { return s.target }

// orderedClient is a test client whose handlers run one at a time in the
// order the broker sent the messages, which the end markers rely on: the
// broker queues a new subscription's retained messages before it handles
// the subscriber's next publish.
func orderedClient(t *testing.T, url string) paho.Client {
	return testClient(t, url, "", true, func(o *paho.ClientOptions) { o.SetOrderMatters(true) })
}

// haMsg is one message seen on the discovery prefix.
type haMsg struct {
	topic    string
	retained bool
	payload  []byte
}

// haCollector records every message on a filter, in arrival order.
type haCollector struct {
	mu   sync.Mutex
	msgs []haMsg
	cond chan struct{}
}

func collectHA(t *testing.T, c paho.Client, filter string) *haCollector {
	t.Helper()
	col := &haCollector{cond: make(chan struct{}, 1)}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		col.mu.Lock()
		col.msgs = append(col.msgs, haMsg{topic: m.Topic(), retained: m.Retained(), payload: append([]byte(nil), m.Payload()...)})
		col.mu.Unlock()
		select {
		case col.cond <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return col
}

// waitFor waits until ok holds for the messages seen so far.
func (c *haCollector) waitFor(t *testing.T, what string, ok func([]haMsg) bool) []haMsg {
	t.Helper()
	deadline := time.After(patience)
	for {
		c.mu.Lock()
		msgs := append([]haMsg(nil), c.msgs...)
		c.mu.Unlock()
		if ok(msgs) {
			return msgs
		}
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("waiting for %s; got %d messages:\n%s", what, len(msgs), describeHA(msgs))
		}
	}
}

func describeHA(msgs []haMsg) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "  %s retained=%v %s\n", m.topic, m.retained, m.payload)
	}
	return b.String()
}

// perTopic counts messages by topic.
func perTopic(msgs []haMsg) map[string]int {
	n := map[string]int{}
	for _, m := range msgs {
		n[m.topic]++
	}
	return n
}

// waitMetric waits until a counter reaches want (a hang guard: the
// counter moves just after the publish it counts).
func waitMetric(t *testing.T, what string, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for get() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v, want %v", what, get(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := get(); got != want {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// haConfig is the part of a discovery config the tests check.
type haConfig struct {
	Name           string `json:"name"`
	UniqueID       string `json:"unique_id"`
	StateTopic     string `json:"state_topic"`
	ValueTemplate  string `json:"value_template"`
	AttributeTopic string `json:"json_attributes_topic"`
	Availability   []struct {
		Topic        string `json:"topic"`
		Template     string `json:"value_template"`
		Available    string `json:"payload_available"`
		NotAvailable string `json:"payload_not_available"`
	} `json:"availability"`
	Device struct {
		Identifiers  []string `json:"identifiers"`
		Name         string   `json:"name"`
		Manufacturer string   `json:"manufacturer"`
		Model        string   `json:"model"`
		SWVersion    string   `json:"sw_version"`
	} `json:"device"`
}

var haTopicRE = regexp.MustCompile(`^homeassistant/sensor/(linnet_gw-test_[a-zA-Z0-9_-]+)/prediction/config$`)

// checkHAConfig decodes one config and checks it describes device.
func checkHAConfig(t *testing.T, m haMsg, device, target string, logistic bool) {
	t.Helper()
	sm := haTopicRE.FindStringSubmatch(m.topic)
	if sm == nil {
		t.Fatalf("discovery topic %q: want homeassistant/sensor/linnet_gw-test_<device id>/prediction/config", m.topic)
	}
	node := sm[1]
	var c haConfig
	dec := json.NewDecoder(strings.NewReader(string(m.payload)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("config on %s: %v: %s", m.topic, err, m.payload)
	}
	predTopic := "linnet/" + device + "/prediction"
	if c.StateTopic != predTopic {
		t.Errorf("%s: state_topic %q, want %q", device, c.StateTopic, predTopic)
	}
	if c.ValueTemplate != "{{ value_json.prediction }}" {
		t.Errorf("%s: value_template %q", device, c.ValueTemplate)
	}
	if c.UniqueID != node+"_prediction" {
		t.Errorf("%s: unique_id %q, want %q", device, c.UniqueID, node+"_prediction")
	}
	if c.Name == "" {
		t.Errorf("%s: no name", device)
	}
	if len(c.Device.Identifiers) != 1 || c.Device.Identifiers[0] != node {
		t.Errorf("%s: device identifiers %q, want [%q]", device, c.Device.Identifiers, node)
	}
	if c.Device.Name != device || c.Device.Manufacturer != "linnet" || c.Device.Model != target || c.Device.SWVersion == "" {
		t.Errorf("%s: device block %+v: want name %q, manufacturer linnet, model %q, a sw_version", device, c.Device, device, target)
	}
	if len(c.Availability) != 1 {
		t.Fatalf("%s: availability %+v: want one entry", device, c.Availability)
	}
	a := c.Availability[0]
	if a.Topic != "linnet/gw-test/status" || a.Template != "{{ value_json.state }}" || a.Available != "online" || a.NotAvailable != "offline" {
		t.Errorf("%s: availability %+v", device, a)
	}
	if logistic && c.AttributeTopic != predTopic {
		t.Errorf("%s: logistic model: json_attributes_topic %q, want %q (the class as attribute)", device, c.AttributeTopic, predTopic)
	}
	if !logistic && c.AttributeTopic != "" {
		t.Errorf("%s: regression model: json_attributes_topic %q, want none", device, c.AttributeTopic)
	}
}

// TestHomeAssistantDiscovery: with discovery on, each device's first
// prediction brings one retained config with the right fields; Home
// Assistant's birth message brings every config again.
func TestHomeAssistantDiscovery(t *testing.T) {
	for _, logistic := range []bool{false, true} {
		name := map[bool]string{false: "regression", true: "logistic"}[logistic]
		t.Run(name, func(t *testing.T) { testHomeAssistantDiscovery(t, logistic) })
	}
}

func testHomeAssistantDiscovery(t *testing.T, logistic bool) {
	m := startMosquitto(t, "")
	cfg := testConfig(t, m.url())
	cfg.HomeAssistant.Enabled = true
	cfg.Drift.Enabled = false // only the devices' sensors here; TestHomeAssistantDriftSensor has the model's
	// One worker: readings are predicted, and first seen, in the order
	// they are sent, which the sentinel device below relies on.
	cfg.Pipeline.Workers = 1
	fake := newFake()
	fake.logistic = logistic
	target := map[bool]string{false: "price_k", true: "churned"}[logistic]
	d := startDaemon(t, cfg, &targetScorer{fakeScorer: fake, target: target}, serving.Meta{Target: target})

	c := orderedClient(t, m.url())
	live := collectHA(t, c, "homeassistant/#")
	preds := collect(t, c, "linnet/+/prediction")

	devices := []string{"dev-1", "dev.2", "kitchen_3"}
	rows := testRows(2*len(devices), 3)
	id := 0
	for round := 0; round < 2; round++ {
		for _, dev := range devices {
			publish(t, c, "linnet/"+dev+"/features", readingJSON(id, rows[id], true))
			id++
		}
	}
	preds.waitIDs(t, id)
	// A sentinel device after every other reading: once its config is
	// here, any extra config for the devices above would be too (one
	// worker, one announcer, one connection, all in order).
	const sentinel = "zz-sentinel"
	publish(t, c, "linnet/"+sentinel+"/features", readingJSON(id, rows[0], true))
	all := append(append([]string(nil), devices...), sentinel)
	isSentinel := func(m haMsg) bool { return strings.Contains(string(m.payload), `"linnet/`+sentinel+`/prediction"`) }
	msgs := live.waitFor(t, "the sentinel's config", func(ms []haMsg) bool {
		for _, m := range ms {
			if isSentinel(m) {
				return true
			}
		}
		return false
	})

	if len(msgs) != len(all) {
		t.Fatalf("got %d configs for %d devices, want one each:\n%s", len(msgs), len(all), describeHA(msgs))
	}
	first := map[string]haMsg{} // by device
	for _, msg := range msgs {
		var v struct {
			Device struct{ Name string } `json:"device"`
		}
		if err := json.Unmarshal(msg.payload, &v); err != nil {
			t.Fatalf("config on %s: %v", msg.topic, err)
		}
		if _, dup := first[v.Device.Name]; dup {
			t.Fatalf("two configs for device %q:\n%s", v.Device.Name, describeHA(msgs))
		}
		first[v.Device.Name] = msg
	}
	for _, dev := range all {
		msg, ok := first[dev]
		if !ok {
			t.Fatalf("no config for device %q:\n%s", dev, describeHA(msgs))
		}
		checkHAConfig(t, msg, dev, target, logistic)
	}
	if n := len(perTopic(msgs)); n != len(all) {
		t.Errorf("%d distinct discovery topics for %d devices", n, len(all))
	}
	announced := func() float64 { return gathered(t, d, "linnet_homeassistant_announcements_total") }
	waitMetric(t, "linnet_homeassistant_announcements_total", announced, float64(len(all)))

	// A subscriber that comes later gets each config once, retained.
	late := orderedClient(t, m.url())
	lateCol := collectHA(t, late, "homeassistant/#")
	publish(t, late, "homeassistant/test-end", []byte("end"))
	lm := lateCol.waitFor(t, "retained configs, then the end marker", func(ms []haMsg) bool {
		return len(ms) > 0 && ms[len(ms)-1].topic == "homeassistant/test-end"
	})
	lm = lm[:len(lm)-1]
	if len(lm) != len(all) {
		t.Fatalf("late subscriber got %d messages before the marker, want %d retained configs:\n%s", len(lm), len(all), describeHA(lm))
	}
	for _, msg := range lm {
		if !msg.retained {
			t.Errorf("config on %s not retained", msg.topic)
		}
		if string(msg.payload) != string(perDeviceByTopic(first)[msg.topic].payload) {
			t.Errorf("retained config on %s differs from the one announced", msg.topic)
		}
	}

	// Home Assistant restarts: every known device is announced again.
	publish(t, c, "homeassistant/status", []byte("online"))
	msgs = live.waitFor(t, "every config twice after the birth message", func(ms []haMsg) bool {
		n := perTopic(ms)
		for _, m := range first {
			if n[m.topic] < 2 {
				return false
			}
		}
		return true
	})
	for _, msg := range msgs[len(all):] {
		if msg.topic == "homeassistant/status" || msg.topic == "homeassistant/test-end" {
			continue
		}
		var v struct {
			Device struct{ Name string } `json:"device"`
		}
		if err := json.Unmarshal(msg.payload, &v); err != nil {
			t.Fatalf("config on %s: %v", msg.topic, err)
		}
		if f, ok := first[v.Device.Name]; !ok || f.topic != msg.topic {
			t.Errorf("re-announced config for %q on %s: not one of the first ones", v.Device.Name, msg.topic)
		}
		checkHAConfig(t, msg, v.Device.Name, target, logistic)
	}
	waitMetric(t, "linnet_homeassistant_announcements_total", announced, float64(2*len(all)))
}

func perDeviceByTopic(byDevice map[string]haMsg) map[string]haMsg {
	r := map[string]haMsg{}
	for _, m := range byDevice {
		r[m.topic] = m
	}
	return r
}

// TestHomeAssistantDisabled: by default nothing is published under the
// discovery prefix, birth message or not.
func TestHomeAssistantDisabled(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := testConfig(t, m.url())
	d := startDaemon(t, cfg, &targetScorer{fakeScorer: newFake(), target: "price_k"}, serving.Meta{Target: "price_k"})
	for _, h := range d.s.models[0].hooks.All() {
		if h.ID() == "homeassistant" {
			t.Fatal("announcer built with homeassistant.enabled = false")
		}
	}
	if mf, err := d.s.m.reg.Gather(); err == nil {
		for _, f := range mf {
			if strings.HasPrefix(f.GetName(), "linnet_homeassistant_") {
				t.Errorf("metric %s registered while disabled", f.GetName())
			}
		}
	}

	c := orderedClient(t, m.url())
	live := collectHA(t, c, "homeassistant/#")
	preds := collect(t, c, "linnet/+/prediction")
	rows := testRows(4, 5)
	for i, x := range rows {
		publish(t, c, fmt.Sprintf("linnet/dev-%d/features", i%2), readingJSON(i, x, true))
	}
	preds.waitIDs(t, len(rows))
	publish(t, c, "homeassistant/status", []byte("online"))
	publish(t, c, "homeassistant/test-end", []byte("end"))
	msgs := live.waitFor(t, "the end marker", func(ms []haMsg) bool {
		return len(ms) > 0 && ms[len(ms)-1].topic == "homeassistant/test-end"
	})
	for _, msg := range msgs {
		if msg.topic != "homeassistant/status" && msg.topic != "homeassistant/test-end" {
			t.Errorf("published under homeassistant/ while disabled: %s %s", msg.topic, msg.payload)
		}
	}
	// Nothing retained either.
	late := orderedClient(t, m.url())
	lateCol := collectHA(t, late, "homeassistant/#")
	publish(t, late, "homeassistant/test-end", []byte("end"))
	lm := lateCol.waitFor(t, "the end marker", func(ms []haMsg) bool {
		return len(ms) > 0 && ms[len(ms)-1].topic == "homeassistant/test-end"
	})
	if len(lm) != 1 {
		t.Errorf("retained under homeassistant/ while disabled:\n%s", describeHA(lm[:len(lm)-1]))
	}
}

// TestHomeAssistantConfig: the section loads from TOML and the
// environment, and Validate reports its problems with the others.
func TestHomeAssistantConfig(t *testing.T) {
	c := Default()
	if c.HomeAssistant.Enabled || c.HomeAssistant.Prefix != "homeassistant" || c.HomeAssistant.BirthTopic != "homeassistant/status" || c.HomeAssistant.MaxDevices != 10000 {
		t.Errorf("defaults: %+v", c.HomeAssistant)
	}
	path := filepath.Join(t.TempDir(), "linnet.toml")
	file := "gateway = \"gw\"\n[homeassistant]\nenabled = true\ndiscovery_prefix = \"ha\"\nbirth_topic = \"ha/status\"\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LINNET_HOMEASSISTANT_MAX_DEVICES": "5"}
	c, err := LoadConfig(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if h := c.HomeAssistant; !h.Enabled || h.Prefix != "ha" || h.BirthTopic != "ha/status" || h.MaxDevices != 5 {
		t.Errorf("loaded: %+v", h)
	}

	// The documented file states the defaults.
	doc, err := LoadConfig(filepath.Join("..", "scripts", "linnet.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.HomeAssistant != Default().HomeAssistant {
		t.Errorf("scripts/linnet.toml [homeassistant] %+v, defaults %+v", doc.HomeAssistant, Default().HomeAssistant)
	}

	c = Default()
	c.Gateway = "gw"
	c.HomeAssistant = homeassistant.Config{Enabled: true, Prefix: "ha/#", BirthTopic: "linnet/status/features", MaxDevices: 0}
	err = c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Validate: %v, want a *ConfigError", err)
	}
	for _, want := range []string{"homeassistant.discovery_prefix", "homeassistant.birth_topic", "homeassistant.max_devices"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no problem reported for %s in:\n%v", want, err)
		}
	}
	// Disabled, the section is not checked.
	c.HomeAssistant.Enabled = false
	if err := c.Validate(); err != nil {
		t.Errorf("disabled section validated: %v", err)
	}
}

// A hook's route acknowledges its messages (auto-ack is off), in their
// turn.
func TestHookRouteAcks(t *testing.T) {
	s, err := New(testConfig(t, "tcp://127.0.0.1:1"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Two models' hooks route the same filter (Home Assistant's birth
	// topic): both handlers get the message, acknowledged once.
	var got []string
	s.routes = map[string][]routeFunc{"f": {
		func(_ string, p []byte, _ bool) { got = append(got, "a:"+string(p)) },
		func(_ string, p []byte, _ bool) { got = append(got, "b:"+string(p)) },
	}}
	m := &fakeMsg{payload: []byte("online")}
	host{s, s.models[0]}.routed("f")(nil, m)
	if strings.Join(got, ",") != "a:online,b:online" || !m.acked {
		t.Errorf("handlers got %q, acknowledged %v", got, m.acked)
	}
}

type fakeMsg struct {
	payload []byte
	acked   bool
}

func (m *fakeMsg) Duplicate() bool   { return false }
func (m *fakeMsg) Qos() byte         { return 1 }
func (m *fakeMsg) Retained() bool    { return false }
func (m *fakeMsg) Topic() string     { return "homeassistant/status" }
func (m *fakeMsg) MessageID() uint16 { return 1 }
func (m *fakeMsg) Payload() []byte   { return m.payload }
func (m *fakeMsg) Ack()              { m.acked = true }

// gathered reads one unlabelled metric from the daemon's registry.
func gathered(t *testing.T, d *runningDaemon, name string) float64 {
	t.Helper()
	mf, err := d.s.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// gatheredLabel reads one labelled sample from the daemon's registry.
func gatheredLabel(t *testing.T, d *runningDaemon, name, label, value string) float64 {
	t.Helper()
	mf, err := d.s.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
