// Package homeassistant is the Home Assistant MQTT discovery hook
// (homeassistant.enabled, off by default).
//
// Each device whose prediction linnet publishes becomes a sensor in Home
// Assistant: the first time a device's prediction is published, linnet
// publishes a retained discovery config for it, and it publishes the config
// of every device it knows again whenever Home Assistant's birth message
// ("online" on homeassistant.birth_topic) arrives, so a Home Assistant
// that restarted against a broker without persistence finds its sensors.
// Each served model has its own announcer: a device two models answer is
// one Home Assistant device with a sensor per model ("Prediction" for the
// model named "default", "Prediction <name>" for the others).
//
// Neither paho's handler nor the workers publish or wait: the workers hand
// a new device to a bounded queue (a blocked handler stalls the client:
// no pings, no acknowledgements), the birth handler only raises a flag, and one announcer
// goroutine publishes through the service's bounded publisher.
package homeassistant

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/drift"
	"github.com/linnet-edge/linnet/daemon/hooks"
	"github.com/linnet-edge/linnet/daemon/mqttc"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/store"
)

// Config is the [homeassistant] section: MQTT discovery.
type Config struct {
	Enabled bool `toml:"enabled"`
	// Prefix is Home Assistant's discovery prefix (its MQTT integration's
	// "discovery prefix" setting).
	Prefix string `toml:"discovery_prefix"`
	// BirthTopic is where Home Assistant publishes "online" when it
	// starts; every known device is announced again then.
	BirthTopic string `toml:"birth_topic"`
	// MaxDevices bounds the devices remembered (and announced); devices
	// seen past it are not announced and are counted.
	MaxDevices int `toml:"max_devices"`
}

// hassQueue bounds the new devices waiting for their first announcement.
// A device that finds it full is forgotten again, so its next prediction
// retries.
const hassQueue = 1024

// hassModel is what a discovery config says about the serving model.
type hassModel struct {
	target   string
	logistic bool
}

// Hook announces devices to Home Assistant.
type Hook struct {
	hooks.Base
	host   hooks.Host
	log    *slog.Logger
	prefix string
	birth  string
	max    int64
	gw     string // sanitized gateway id

	known  sync.Map // device -> struct{}: announced, or queued for it
	mu     sync.Mutex
	nKnown atomic.Int64 // under mu for writes

	queue   chan string   // new devices, to announce once
	again   chan struct{} // 1 slot: announce every known device
	lastSV  atomic.Pointer[serving.Model]
	model   atomic.Pointer[hassModel] // of lastSV: a change re-announces
	warned  atomic.Bool
	version string

	announced prometheus.Counter
	ignored   prometheus.Counter
	devices   prometheus.Gauge

	// shared: the model's predictions share their topic with other
	// models' (several models, no {model} in topics.prediction); its
	// sensor then keeps its state on the others' messages.
	shared bool

	driftTopic string        // the drift alerts' topic template; "" without monitoring
	models     chan struct{} // 1 slot: announce the served model's drift sensor
}

// New returns the hook for c (enabled or not: the daemon adds it only
// when c.Enabled).
func New(c Config) *Hook {
	return &Hook{prefix: strings.TrimSuffix(c.Prefix, "/"), birth: c.BirthTopic, max: int64(c.MaxDevices),
		queue: make(chan string, hassQueue), again: make(chan struct{}, 1), models: make(chan struct{}, 1)}
}

// WatchDrift adds a binary sensor "Model drifting" per served model, on
// the gateway's own device, fed by the drift alerts published on topic
// (a template with {gateway}). Call it before the daemon starts.
func (h *Hook) WatchDrift(topic string) { h.driftTopic = topic }

// SharedTopic says that the model's predictions share their topic with
// other models': its sensor takes only the messages that name it. Call
// it before the daemon starts.
func (h *Hook) SharedTopic() { h.shared = true }

func (h *Hook) ID() string { return "homeassistant" }

func (h *Hook) Provides(e byte) bool { return e == hooks.OnConnect || e == hooks.OnServed }

// Init registers the metrics and the birth route (before Connect, so a
// birth message queued in a persistent session is not handed to the
// readings' handler).
func (h *Hook) Init(host hooks.Host) error {
	h.host, h.log = host, host.Log().With("component", "homeassistant")
	h.gw, h.version = haID(host.Gateway()), host.Version()
	h.announced = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_homeassistant_announcements_total",
		Help: "Home Assistant discovery configs published (a device's first prediction, then every known device on Home Assistant's birth message)."})
	h.ignored = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_homeassistant_unannounced_total",
		Help: "Predictions of devices not announced to Home Assistant because homeassistant.max_devices devices are known."})
	// Shared by every model's announcer.
	var err error
	if h.announced, err = hooks.Register(host.Registry(), h.announced); err != nil {
		return err
	}
	if h.ignored, err = hooks.Register(host.Registry(), h.ignored); err != nil {
		return err
	}
	if h.devices, err = hooks.Register(host.Registry(), prometheus.NewGauge(prometheus.GaugeOpts{Name: "linnet_homeassistant_devices",
		Help: "Devices known to the Home Assistant announcers, every model's (each bounded by homeassistant.max_devices)."})); err != nil {
		return err
	}
	host.Route(h.birth, h.onBirth)
	return nil
}

// OnServed is called by a worker after it published a prediction of device
// with sv. It never blocks: a new device is queued for its announcement.
// When the serving model's target or kind changed (an OTA update), every
// known device is announced again, since the configs describe the model.
func (h *Hook) OnServed(device string, sv *serving.Model) {
	if h.lastSV.Load() != sv {
		h.lastSV.Store(sv)
		m := modelOf(sv)
		if old := h.model.Swap(&m); old == nil || *old != m {
			if old != nil {
				h.announceAll()
			}
			h.announceModel()
		}
	}
	if _, ok := h.known.Load(device); ok {
		return
	}
	h.mu.Lock()
	if _, ok := h.known.Load(device); ok {
		h.mu.Unlock()
		return
	}
	if h.nKnown.Load() >= h.max {
		h.mu.Unlock()
		h.ignored.Inc()
		if !h.warned.Swap(true) {
			h.log.Warn("homeassistant.max_devices reached: new devices are not announced", "max_devices", h.max)
		}
		return
	}
	device = strings.Clone(device) // not the received topic's memory
	select {
	case h.queue <- device:
		h.known.Store(device, struct{}{})
		h.nKnown.Add(1)
		h.devices.Inc()
	default:
		// Not remembered, so a later prediction queues it again.
	}
	h.mu.Unlock()
}

// announceAll asks the announcer to publish every known device's config
// again; requests made while one waits are merged.
func (h *Hook) announceAll() {
	select {
	case h.again <- struct{}{}:
	default:
	}
}

// announceModel asks the announcer to publish the drift sensor's config
// (when monitoring is on).
func (h *Hook) announceModel() {
	if h.driftTopic == "" {
		return
	}
	select {
	case h.models <- struct{}{}:
	default:
	}
}

// onBirth is the birth topic's route: it only raises the flags.
func (h *Hook) onBirth(_ string, payload []byte, _ bool) {
	if strings.TrimSpace(string(payload)) == "online" {
		h.announceAll()
		h.announceModel()
	}
}

// OnConnect subscribes the birth topic on every connection. A refusal is
// logged, not fatal: predictions are served without it.
func (h *Hook) OnConnect(ctx context.Context) {
	if err := h.host.Subscribe(ctx, map[string]byte{h.birth: 1}); err != nil {
		h.log.Warn("birth topic not subscribed; sensors are announced only on a device's first prediction",
			"topic", h.birth, "err", err)
	}
	h.announceModel()
}

// Run is the announcer, until ctx ends.
func (h *Hook) Run(ctx context.Context) error {
	h.run(ctx)
	return nil
}

func (h *Hook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-h.queue:
			h.announce(ctx, d)
		case <-h.models:
			h.announceDrift(ctx)
		case <-h.again:
			var all []string
			h.known.Range(func(k, _ any) bool { all = append(all, k.(string)); return true })
			for _, d := range all {
				if ctx.Err() != nil {
					return
				}
				h.announce(ctx, d)
			}
		}
	}
}

func (h *Hook) announce(ctx context.Context, device string) {
	sv := h.host.Current()
	if sv == nil {
		return // no model: no prediction to describe
	}
	topic, payload := h.config(device, modelOf(sv))
	if err := h.host.Publish(ctx, topic, true, payload); err != nil {
		return // shutting down
	}
	h.announced.Inc()
}

// announceDrift publishes the served model's "Model drifting" binary
// sensor: on while a drift alert of the model fires.
func (h *Hook) announceDrift(ctx context.Context) {
	sv := h.host.Current()
	if sv == nil {
		return
	}
	name := drift.ModelName(sv)
	node := "linnet_" + h.gw
	t := h.host.Topics()
	c := haBinarySensor{
		Name:          "Model drifting " + name,
		UniqueID:      node + "_" + haID(name) + "_drifting",
		StateTopic:    drift.Topic(h.host, h.driftTopic),
		ValueTemplate: "{{ 'ON' if value_json.active else 'OFF' }}",
		DeviceClass:   "problem",
		Availability: []haAvailability{{Topic: h.host.Topic(t.Status, ""), Template: "{{ value_json.state }}",
			Available: "online", NotAvailable: "offline"}},
		Device: haDevice{Identifiers: []string{node}, Name: "linnet " + h.host.Gateway(), Manufacturer: "linnet", Model: "gateway", SWVersion: h.version},
		Origin: haOrigin{Name: "linnet", SWVersion: h.version},
	}
	c.AttributeTopic = c.StateTopic
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("homeassistant config: %v", err)) // only strings: cannot fail
	}
	if err := h.host.Publish(ctx, h.prefix+"/binary_sensor/"+node+"/"+haID(name)+"_drifting/config", true, b); err != nil {
		return // shutting down
	}
	h.announced.Inc()
}

func modelOf(sv *serving.Model) hassModel {
	m := hassModel{target: "prediction", logistic: sv.Scorer.Logistic()}
	if sv.Meta.Target != "" {
		m.target = sv.Meta.Target
	}
	return m
}

type haAvailability struct {
	Topic        string `json:"topic"`
	Template     string `json:"value_template"`
	Available    string `json:"payload_available"`
	NotAvailable string `json:"payload_not_available"`
}

type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version"`
}

type haOrigin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version"`
}

type haSensor struct {
	Name           string           `json:"name"`
	UniqueID       string           `json:"unique_id"`
	StateTopic     string           `json:"state_topic"`
	ValueTemplate  string           `json:"value_template"`
	StateClass     string           `json:"state_class"`
	AttributeTopic string           `json:"json_attributes_topic,omitempty"`
	Availability   []haAvailability `json:"availability"`
	Device         haDevice         `json:"device"`
	Origin         haOrigin         `json:"origin"`
}

type haBinarySensor struct {
	Name           string           `json:"name"`
	UniqueID       string           `json:"unique_id"`
	StateTopic     string           `json:"state_topic"`
	ValueTemplate  string           `json:"value_template"`
	DeviceClass    string           `json:"device_class"`
	AttributeTopic string           `json:"json_attributes_topic"`
	Availability   []haAvailability `json:"availability"`
	Device         haDevice         `json:"device"`
	Origin         haOrigin         `json:"origin"`
}

// config is device's discovery topic and payload. A logistic model's
// sensor takes the whole prediction message as attributes, the class
// among them.
func (h *Hook) config(device string, m hassModel) (string, []byte) {
	node := "linnet_" + h.gw + "_" + haID(device)
	t := h.host.Topics()
	predTopic := h.host.Topic(t.Prediction, device)
	// The model named "default" keeps the names it had before models had
	// names; another model's sensor sits beside it on the same device.
	name, id, vt := "Prediction", "prediction", "{{ value_json.prediction }}"
	if n := h.host.Model(); n != store.DefaultModel {
		name, id = "Prediction "+n, haID(n)+"_prediction"
	}
	if h.shared {
		vt = "{% if value_json.model == '" + h.host.Model() + "' %}{{ value_json.prediction }}{% else %}{{ this.state }}{% endif %}"
	}
	c := haSensor{
		Name:          name,
		UniqueID:      node + "_" + id,
		StateTopic:    predTopic,
		ValueTemplate: vt,
		StateClass:    "measurement",
		Availability: []haAvailability{{Topic: h.host.Topic(t.Status, ""), Template: "{{ value_json.state }}",
			Available: "online", NotAvailable: "offline"}},
		Device: haDevice{Identifiers: []string{node}, Name: device, Manufacturer: "linnet", Model: m.target, SWVersion: h.version},
		Origin: haOrigin{Name: "linnet", SWVersion: h.version},
	}
	if m.logistic {
		c.AttributeTopic = predTopic
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("homeassistant config: %v", err)) // only strings: cannot fail
	}
	return h.prefix + "/sensor/" + node + "/" + id + "/config", b
}

// haID keeps [a-zA-Z0-9_-], which Home Assistant accepts in discovery
// topic levels, and replaces anything else with '_'. When it replaced
// something, a hash of the original follows, so "a.b" and "a_b" stay two
// sensors.
func haID(s string) string {
	b := make([]byte, 0, len(s)+9)
	changed := s == ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b = append(b, c)
		default:
			b = append(b, '_')
			changed = true
		}
	}
	if changed {
		b = append(b, '_')
		h := fnv.New32a()
		h.Write([]byte(s))
		b = strconv.AppendUint(b, uint64(h.Sum32()), 16)
	}
	return string(b)
}

// Validate checks the section (only when enabled: a disabled section may
// hold anything); readings are the input subscriptions' filters.
func (h *Config) Validate(bad func(string, ...any), readings []string) {
	if !h.Enabled {
		return
	}
	if p := h.Prefix; p == "" || strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") {
		bad("homeassistant.discovery_prefix %q: want a topic prefix without wildcards or a leading /", p)
	}
	if t := h.BirthTopic; t == "" || strings.ContainsAny(t, "+#") {
		bad("homeassistant.birth_topic %q: want a topic name without wildcards", t)
	} else {
		for i, f := range readings {
			if mqttc.Match(f, t) {
				bad("homeassistant.birth_topic %q: also matches subscriptions[%d].topic %q", t, i, f)
			}
		}
	}
	if h.MaxDevices < 1 {
		bad("homeassistant.max_devices %d: want at least 1", h.MaxDevices)
	}
}
