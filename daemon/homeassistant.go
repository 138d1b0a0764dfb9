package daemon

// Home Assistant MQTT discovery (homeassistant.enabled, off by default).
//
// Each device whose prediction linnet publishes becomes a sensor in Home
// Assistant: the first time a device's prediction is published, linnet
// publishes a retained discovery config for it, and it publishes the config
// of every device it knows again whenever Home Assistant's birth message
// ("online" on homeassistant.birth_topic) arrives, so a Home Assistant
// that restarted against a broker without persistence finds its sensors.
//
// Neither paho's handler nor the workers publish or wait: the workers hand
// a new device to a bounded queue (PITFALLS: a blocked handler stalls the
// client), the birth handler only raises a flag, and one announcer
// goroutine publishes through the service's bounded publisher.

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/mqttc"
	"github.com/linnet-edge/linnet/daemon/serving"
)

// HomeAssistantConfig is the [homeassistant] section: MQTT discovery.
type HomeAssistantConfig struct {
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

// SoftwareVersion is the sw_version announced to Home Assistant. Empty
// means the main module's version from the build information. The linker
// can set it: -X github.com/linnet-edge/linnet/daemon.SoftwareVersion=...
var SoftwareVersion string

func softwareVersion() string {
	if SoftwareVersion != "" {
		return SoftwareVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
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

// hass announces devices to Home Assistant. nil when disabled; its methods
// accept a nil receiver, so the hooks in the service need no check.
type hass struct {
	s      *Service
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
}

func newHass(s *Service) *hass {
	c := &s.cfg.HomeAssistant
	if !c.Enabled {
		return nil
	}
	h := &hass{s: s, prefix: strings.TrimSuffix(c.Prefix, "/"), birth: c.BirthTopic, max: int64(c.MaxDevices),
		gw: haID(s.cfg.Gateway), queue: make(chan string, hassQueue), again: make(chan struct{}, 1), version: softwareVersion()}
	h.announced = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_homeassistant_announcements_total",
		Help: "Home Assistant discovery configs published (a device's first prediction, then every known device on Home Assistant's birth message)."})
	h.ignored = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_homeassistant_unannounced_total",
		Help: "Predictions of devices not announced to Home Assistant because homeassistant.max_devices devices are known."})
	s.m.reg.MustRegister(h.announced, h.ignored, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_homeassistant_devices",
		Help: "Devices known to the Home Assistant announcer (bounded by homeassistant.max_devices)."},
		func() float64 { return float64(h.nKnown.Load()) }))
	return h
}

// seen is called by a worker after it published a prediction of device
// with sv. It never blocks: a new device is queued for its announcement.
// When the serving model's target or kind changed (an OTA update), every
// known device is announced again, since the configs describe the model.
func (h *hass) seen(device string, sv *serving.Model) {
	if h == nil {
		return
	}
	if h.lastSV.Load() != sv {
		h.lastSV.Store(sv)
		m := modelOf(sv)
		if old := h.model.Swap(&m); old != nil && *old != m {
			h.announceAll()
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
			h.s.log.Warn("homeassistant.max_devices reached: new devices are not announced", "max_devices", h.max)
		}
		return
	}
	device = strings.Clone(device) // not the received topic's memory
	select {
	case h.queue <- device:
		h.known.Store(device, struct{}{})
		h.nKnown.Add(1)
	default:
		// Not remembered, so a later prediction queues it again.
	}
	h.mu.Unlock()
}

// announceAll asks the announcer to publish every known device's config
// again; requests made while one waits are merged.
func (h *hass) announceAll() {
	select {
	case h.again <- struct{}{}:
	default:
	}
}

// onBirth is paho's handler for the birth topic: it only raises the flag.
func (h *hass) onBirth(_ paho.Client, msg paho.Message) {
	defer h.s.acks.ackNow(msg) // in its turn among the readings (SetAutoAckDisabled)
	if strings.TrimSpace(string(msg.Payload())) == "online" {
		h.announceAll()
	}
}

// route registers the birth handler on the client before Connect, so a
// birth message queued in a persistent session is not handed to the
// readings' handler (PITFALLS).
func (h *hass) route(c paho.Client) {
	if h == nil {
		return
	}
	c.AddRoute(h.birth, h.onBirth)
}

// subscribe subscribes the birth topic on every connection. A refusal is
// logged and counted, not fatal: predictions are served without it.
func (h *hass) subscribe(c paho.Client) {
	if h == nil {
		return
	}
	s := h.s
	if err := mqttc.Subscribe(s.runCtx, c, map[string]byte{h.birth: 1}, s.cfg.MQTT.OpTimeout); err != nil {
		s.m.subackFail.Inc()
		s.log.Warn("homeassistant: birth topic not subscribed; sensors are announced only on a device's first prediction",
			"topic", h.birth, "err", err)
	}
}

// start runs the announcer; the returned function stops it and waits. It
// must be called before the publisher's token channel closes.
func (h *hass) start() (stop func()) {
	if h == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()
	return func() { cancel(); <-done }
}

func (h *hass) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-h.queue:
			h.announce(ctx, d)
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

func (h *hass) announce(ctx context.Context, device string) {
	sv := h.s.own.Current()
	if sv == nil {
		return // no model: no prediction to describe
	}
	topic, payload := h.config(device, modelOf(sv))
	if err := h.s.pub.Publish(ctx, topic, true, payload, nil); err != nil {
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

// config is device's discovery topic and payload. A logistic model's
// sensor takes the whole prediction message as attributes, the class
// among them.
func (h *hass) config(device string, m hassModel) (string, []byte) {
	s := h.s
	node := "linnet_" + h.gw + "_" + haID(device)
	predTopic := s.topic(s.cfg.Topics.Prediction, device)
	c := haSensor{
		Name:          "Prediction",
		UniqueID:      node + "_prediction",
		StateTopic:    predTopic,
		ValueTemplate: "{{ value_json.prediction }}",
		StateClass:    "measurement",
		Availability: []haAvailability{{Topic: s.topic(s.cfg.Topics.Status, ""), Template: "{{ value_json.state }}",
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
	return h.prefix + "/sensor/" + node + "/prediction/config", b
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
		b = strconv.AppendUint(b, uint64(hashString(s)), 16)
	}
	return string(b)
}

// validateHomeAssistant checks the [homeassistant] section (only when
// enabled: a disabled section may hold anything).
func (c *Config) validateHomeAssistant(bad func(string, ...any)) {
	h := &c.HomeAssistant
	if !h.Enabled {
		return
	}
	if p := h.Prefix; p == "" || strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") {
		bad("homeassistant.discovery_prefix %q: want a topic prefix without wildcards or a leading /", p)
	}
	if t := h.BirthTopic; t == "" || strings.ContainsAny(t, "+#") {
		bad("homeassistant.birth_topic %q: want a topic name without wildcards", t)
	} else {
		for i, sb := range c.Subscriptions {
			if mqttc.Match(sb.Topic, t) {
				bad("homeassistant.birth_topic %q: also matches subscriptions[%d].topic %q", t, i, sb.Topic)
			}
		}
	}
	if h.MaxDevices < 1 {
		bad("homeassistant.max_devices %d: want at least 1", h.MaxDevices)
	}
}
