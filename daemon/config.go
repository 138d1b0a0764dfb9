package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/linnet-edge/linnet/daemon/drift"
	"github.com/linnet-edge/linnet/daemon/homeassistant"
	"github.com/linnet-edge/linnet/daemon/mqttc"
	"github.com/linnet-edge/linnet/daemon/ota"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/store"
)

// Config is the whole service configuration. It is built in layers —
// Default, then a TOML file, then LINNET_* environment variables, then
// command-line flags — and validated whole by Validate before anything
// starts. scripts/linnet.toml documents every key.
type Config struct {
	// Gateway names this instance in topics and its MQTT client id. Empty
	// means the machine id (or the host name) at validation.
	Gateway string `toml:"gateway"`
	// DataDir holds the model store. Relative paths are under the working
	// directory.
	DataDir string `toml:"data_dir"`
	// Model, when set, is a .lnm file imported and activated at start.
	Model string `toml:"model"`
	// Trust lists Ed25519 public key files accepted for OTA models.
	Trust    []string `toml:"trust"`
	LogLevel string   `toml:"log_level"`

	MQTT          MQTTConfig     `toml:"mqtt"`
	Topics        TopicsConfig   `toml:"topics"`
	Subscriptions []Subscription `toml:"subscriptions"`
	// Models configures the served models by name ([[models]]). Empty:
	// one model named "default" from model, learning.mode and
	// subscriptions, as before models had names. An entry named
	// "default" stands for those keys (see ModelConfig).
	Models   []ModelConfig  `toml:"models"`
	Payload  PayloadConfig  `toml:"payload"`
	Pipeline PipelineConfig `toml:"pipeline"`
	Learning LearningConfig `toml:"learning"`
	Metrics  MetricsConfig  `toml:"metrics"`
	OTA      ota.Config     `toml:"ota"` // the OTA hook

	HomeAssistant homeassistant.Config `toml:"homeassistant"` // Home Assistant hook

	// StartAnew starts a new store when the store file is missing or
	// empty although its state record says one existed; without it the
	// daemon refuses to start (store.ErrLost).
	StartAnew bool         `toml:"start_anew"`
	Drift     drift.Config `toml:"drift"` // monitoring hook and live view

	// served are the models to serve, resolved by Validate: every
	// [[models]] entry with its learning mode and subscriptions filled
	// in, or the one model named "default".
	served []ModelConfig
	// subsSet: the file set the top-level subscriptions.
	subsSet bool
}

// MQTTConfig is the broker connection.
type MQTTConfig struct {
	// Broker is a URL: tcp://, mqtt://, ssl://, tls:// or mqtts://. Empty
	// starts the embedded broker on Embedded and connects to it.
	Broker   string `toml:"broker"`
	Embedded string `toml:"embedded_listen"`
	ClientID string `toml:"client_id"` // default "linnet-" + gateway

	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"` // the password is never in the config itself
	CAFile       string `toml:"ca_file"`
	CertFile     string `toml:"cert_file"`
	KeyFile      string `toml:"key_file"`

	QoS          int    `toml:"qos"`
	CleanSession bool   `toml:"clean_session"`
	ShareGroup   string `toml:"share_group"` // subscribe through $share/<group>/

	KeepAlive         time.Duration `toml:"keepalive"`
	ConnectTimeout    time.Duration `toml:"connect_timeout"`
	OpTimeout         time.Duration `toml:"op_timeout"`         // deadline on every token wait
	DisconnectTimeout time.Duration `toml:"disconnect_timeout"` // keep under systemd's TimeoutStopSec
	MaxReconnect      time.Duration `toml:"max_reconnect_interval"`
	MaxInflight       int           `toml:"max_inflight"` // outgoing QoS>0 publishes not yet acknowledged

	// EmbeddedPasswordFile holds the embedded broker's users, one
	// "user:bcrypt-hash" a line; required when embedded_listen is not a
	// loopback address. Each user is a device (see brokerauth.go).
	EmbeddedPasswordFile string `toml:"embedded_password_file"`
	// EmbeddedOTAUser is the one user that may publish OTA models.
	EmbeddedOTAUser string `toml:"embedded_ota_user"`
}

// Conn is the connection part, as the MQTT plumbing takes it.
func (m *MQTTConfig) Conn() mqttc.Conn {
	return mqttc.Conn{Broker: m.Broker, ClientID: m.ClientID, Username: m.Username, PasswordFile: m.PasswordFile,
		CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile,
		KeepAlive: m.KeepAlive, ConnectTimeout: m.ConnectTimeout, OpTimeout: m.OpTimeout}
}

// TopicsConfig holds output topics; {device} and {gateway} are replaced.
type TopicsConfig struct {
	Prediction string `toml:"prediction"`
	Errors     string `toml:"errors"`
	Status     string `toml:"status"`
}

// ModelConfig is one [[models]] entry. The entry named "default" stands
// for the top-level model, learning.mode and subscriptions keys; every
// other model needs its own subscriptions, and no topic filter may feed
// two models.
type ModelConfig struct {
	// Name is the model's key in the store, topics and metrics:
	// [a-z0-9][a-z0-9_-]{0,62}.
	Name string `toml:"name"`
	// File, when set, is a .lnm file imported at start unless the store
	// serves a newer version of this model.
	File string `toml:"file"`
	// Learning is "off", "shared" or "per_device"; empty keeps
	// learning.mode. The other [learning] keys apply to every model.
	Learning      string         `toml:"learning"`
	Subscriptions []Subscription `toml:"subscriptions"`
}

// applyModels checks [[models]] and resolves the served models. The
// entry named "default" and the top-level keys stand for each other: its
// file is model, its learning learning.mode, its subscriptions
// subscriptions.
func (c *Config) applyModels(bad func(string, ...any)) {
	c.served = nil
	for i, m := range c.Models {
		if err := store.CheckName(m.Name); err != nil {
			bad("models[%d].name: %v", i, err)
		}
		switch m.Learning {
		case "", LearnOff, LearnShared, LearnPerDevice:
		default:
			bad("models[%d].learning %q: want %q, %q or %q", i, m.Learning, LearnOff, LearnShared, LearnPerDevice)
		}
		for j := range i {
			if c.Models[j].Name == m.Name {
				bad("models[%d].name %q: already models[%d]'s", i, m.Name, j)
			}
		}
	}
	mode := c.Learning.Mode
	if len(c.Models) == 0 {
		c.served = []ModelConfig{{Name: store.DefaultModel, File: c.Model, Learning: mode, Subscriptions: c.Subscriptions}}
		return
	}
	hasDefault := false
	for i, m := range c.Models {
		if m.Learning == "" {
			m.Learning = mode
		}
		if m.Name == store.DefaultModel {
			hasDefault = true
			if m.File != "" {
				if c.Model != "" && c.Model != m.File {
					bad("models[%d].file %q and model %q: set one", i, m.File, c.Model)
				}
				c.Model = m.File
			}
			m.File = c.Model
			c.Learning.Mode = m.Learning
			if len(m.Subscriptions) > 0 {
				c.Subscriptions = m.Subscriptions
			}
			m.Subscriptions = c.Subscriptions
		} else {
			if len(m.Subscriptions) == 0 {
				bad("models[%d] %q: no subscriptions: every model but %q needs its own [[models.subscriptions]]", i, m.Name, store.DefaultModel)
			}
			if m.File != "" {
				checkFile(m.File, fmt.Sprintf("models[%d].file", i), bad)
			}
		}
		c.served = append(c.served, m)
	}
	if !hasDefault {
		if c.Model != "" {
			bad("model %q: the top-level model is the model named %q, which [[models]] does not list: set file in a [[models]] entry", c.Model, store.DefaultModel)
		}
		if c.subsSet {
			bad("subscriptions: the top-level subscriptions are the model named %q's, which [[models]] does not list: move them to a [[models]] entry", store.DefaultModel)
		}
	}
	feeds := map[string]string{}
	for _, m := range c.served {
		for _, sb := range m.Subscriptions {
			if other, ok := feeds[sb.Topic]; ok && other != m.Name {
				bad("subscription %q feeds two models, %q and %q: give each its own topics", sb.Topic, other, m.Name)
			}
			feeds[sb.Topic] = m.Name
		}
	}
}

// Subscription is one input topic filter and the payload format on it.
// The device id is the filter's first '+' level.
type Subscription struct {
	Topic  string `toml:"topic"`
	Format string `toml:"format"` // json, csv or raw
	// Explain gives every reading on the topic its top Explain
	// contributions (0: only readings that send "explain":true, with 5).
	Explain int `toml:"explain"`
}

// PayloadConfig bounds what one message may hold.
type PayloadConfig struct {
	MaxBytes int `toml:"max_bytes"`
	MaxBatch int `toml:"max_batch"`
}

// PipelineConfig sizes the workers and their queues.
type PipelineConfig struct {
	Workers int `toml:"workers"` // 0: one per CPU
	Queue   int `toml:"queue"`   // messages, split across workers
	// QueueBytes bounds the payload bytes taken in and not yet done
	// (queued, being answered, or waiting for their acknowledgement turn).
	// The default suits a 512 MB gateway; at most half the machine's RAM.
	QueueBytes   int64         `toml:"queue_bytes"`
	DrainTimeout time.Duration `toml:"drain_timeout"`
}

// LearningConfig drives online learning from labelled readings.
type LearningConfig struct {
	Enabled bool `toml:"enabled"`
	// Mode is "shared" (one learner for every device, the default),
	// "per_device" (each device learns its own delta from its own labelled
	// readings, starting from the active version) or "off".
	Mode string `toml:"mode"`
	// MaxDevices is how many per-device states stay in memory; the least
	// recently used beyond it are evicted to the store. 0: 10,000.
	MaxDevices int `toml:"max_devices"`
	// MaxDeviceBytes bounds the memory of those states too, so a wide
	// model keeps fewer in memory (a state grows with the square of the
	// width: 2.4 KB at 32 features, 34 KB at 128). 0: 64 MiB.
	MaxDeviceBytes     int64         `toml:"max_device_bytes"`
	RequantizeEvery    int           `toml:"requantize_every"`
	CheckpointInterval time.Duration `toml:"checkpoint_interval"`
	// CheckpointEvery also checkpoints every so many updates (0: only on
	// the interval). Each checkpoint is a store commit (two fsyncs): keep
	// both coarse on flash.
	CheckpointEvery int `toml:"checkpoint_every"`
	// Margin widens the plausibility bounds taken from the model's
	// training statistics, in widths of the training range: a label or
	// feature outside is not learned from (bad_label; still predicted).
	// 0: the default (1); negative: no bounds.
	Margin float64 `toml:"margin"`
	// MaxStep bounds what one reading may move a prediction, in target
	// standard deviations. 0: the default (0.25); negative: no bound.
	MaxStep float64 `toml:"max_step"`
	// DivergeRatio is the divergence watchdog's threshold: the mean loss
	// since the last good checkpoint over the loss before it. Past it the
	// checkpoint is restored and learning frozen. 0: the default (4).
	DivergeRatio float64 `toml:"diverge_ratio"`
}

// The learning modes (LearningConfig.Mode).
const (
	LearnOff       = "off"
	LearnShared    = "shared"
	LearnPerDevice = "per_device"
)

// maxDevices bounds learning.max_devices.
const maxDevices = 10_000_000

// On reports whether the daemon learns at all.
func (l LearningConfig) On() bool { return l.Enabled && l.Mode != LearnOff }

// PerDevice reports whether each device learns its own delta.
func (l LearningConfig) PerDevice() bool { return l.On() && l.Mode == LearnPerDevice }

// MetricsConfig is the Prometheus and /healthz endpoint.
type MetricsConfig struct {
	Listen string `toml:"listen"` // loopback host:port; empty disables
}

// Upper bounds of the sizes Validate accepts: past them a value cannot be
// meant (or cannot fit in memory), and would fail later as an
// out-of-memory kill instead of a config error.
const (
	DefaultQueueBytes = 64 << 20 // an eighth of a 512 MB gateway
	maxQueue          = 1 << 20  // messages
	maxInflight       = 65535    // MQTT packet identifiers
	maxPayloadBytes   = 64 << 20 // per message
	maxBatch          = 1 << 20  // readings per message
	maxRequantize     = 1 << 30  // updates
)

// Default returns the configuration used when nothing is set: the embedded
// broker, QoS 1, a persistent session, metrics on loopback.
func Default() *Config {
	w := runtime.GOMAXPROCS(0)
	return &Config{
		DataDir:  "linnet-data",
		LogLevel: "info",
		MQTT: MQTTConfig{
			Embedded:          "127.0.0.1:1883",
			QoS:               1,
			KeepAlive:         30 * time.Second,
			ConnectTimeout:    10 * time.Second,
			OpTimeout:         10 * time.Second,
			DisconnectTimeout: 5 * time.Second,
			MaxReconnect:      30 * time.Second,
			MaxInflight:       4096,
		},
		Topics: TopicsConfig{
			Prediction: "linnet/{device}/prediction",
			Errors:     "linnet/{gateway}/errors",
			Status:     wire.DefaultStatusTopic,
		},
		Subscriptions: []Subscription{{Topic: "linnet/+/features", Format: "json"}},
		Payload:       PayloadConfig{MaxBytes: 256 << 10, MaxBatch: 4096},
		Pipeline:      PipelineConfig{Workers: w, Queue: 8192, QueueBytes: DefaultQueueBytes, DrainTimeout: 5 * time.Second},
		Learning:      LearningConfig{Enabled: true, Mode: LearnShared, RequantizeEvery: 1000, CheckpointInterval: 30 * time.Second},
		Metrics:       MetricsConfig{Listen: "127.0.0.1:9464"},
		OTA:           ota.Default(),
		// Home Assistant hook
		HomeAssistant: homeassistant.Config{Prefix: "homeassistant", BirthTopic: "homeassistant/status", MaxDevices: 10000},
		Drift:         drift.Default(), // monitoring hook
	}
}

// LoadConfig layers the file at path (if not empty) and the environment
// (lookup is os.LookupEnv outside tests) over Default. It does not
// validate: flags go on top first, then call Validate.
func LoadConfig(path string, lookup func(string) (string, bool)) (*Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		// A file that sets subscriptions replaces the default list.
		c.Subscriptions = nil
		md, err := toml.Decode(string(b), c)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return nil, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
		}
		c.subsSet = c.Subscriptions != nil
		if c.Subscriptions == nil {
			c.Subscriptions = Default().Subscriptions
		}
	}
	if lookup != nil {
		if err := applyEnv(reflect.ValueOf(c).Elem(), "LINNET", lookup); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// applyEnv sets every scalar field from PREFIX_<TOML KEY> when present:
// LINNET_GATEWAY, LINNET_MQTT_BROKER, LINNET_PIPELINE_WORKERS...
// Lists of strings are comma separated; subscriptions are file-only.
func applyEnv(v reflect.Value, prefix string, lookup func(string) (string, bool)) error {
	var errs []error
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, lookup); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		s, ok := lookup(name)
		if !ok {
			continue
		}
		if err := setScalar(fv, s); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, s, err))
		}
	}
	return errors.Join(errs...)
}

func setScalar(v reflect.Value, s string) error {
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// ConfigError lists every problem Validate found.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

// Validate checks the whole configuration, fills derived defaults (gateway,
// client id) and reports every problem at once as a *ConfigError.
func (c *Config) Validate() error {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	c.applyModels(bad)
	if c.Gateway == "" {
		c.Gateway = machineID()
	}
	if c.Gateway == "" || strings.ContainsAny(c.Gateway, "/+#$ \t\n") || len(c.Gateway) > 64 {
		bad("gateway %q: want 1 to 64 characters without / + # $ or spaces", c.Gateway)
	}
	if c.DataDir == "" {
		bad("data_dir: empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.Model != "" {
		checkFile(c.Model, "model", bad)
	}
	for _, k := range c.Trust {
		checkFile(k, "trust", bad)
	}

	m := &c.MQTT
	if m.ClientID == "" {
		m.ClientID = "linnet-" + c.Gateway
	}
	if len(m.ClientID) > 128 {
		bad("mqtt.client_id: longer than 128 bytes")
	}
	tlsURL := false
	if m.Broker == "" {
		if _, _, err := net.SplitHostPort(m.Embedded); err != nil {
			bad("mqtt.embedded_listen %q: %v", m.Embedded, err)
		} else if needsAuth(m.Embedded) && m.EmbeddedPasswordFile == "" {
			bad("mqtt.embedded_listen %q is not a loopback address: set mqtt.embedded_password_file (user:bcrypt-hash lines), or anyone on the network could read predictions, inject labels and push models", m.Embedded)
		}
		if m.EmbeddedPasswordFile != "" {
			checkFile(m.EmbeddedPasswordFile, "mqtt.embedded_password_file", bad)
		}
	} else if u, err := url.Parse(m.Broker); err != nil {
		bad("mqtt.broker %q: %v", m.Broker, err)
	} else {
		switch u.Scheme {
		case "tcp", "mqtt":
		case "ssl", "tls", "mqtts":
			tlsURL = true
		default:
			bad("mqtt.broker %q: scheme %q: want tcp, mqtt, ssl, tls or mqtts", m.Broker, u.Scheme)
		}
		if u.Host == "" {
			bad("mqtt.broker %q: no host", m.Broker)
		}
	}
	if (m.CAFile != "" || m.CertFile != "" || m.KeyFile != "") && m.Broker != "" && !tlsURL {
		bad("mqtt: ca_file/cert_file/key_file set but broker %q is not ssl://, tls:// or mqtts://", m.Broker)
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		bad("mqtt: cert_file and key_file go together")
	}
	for _, f := range []struct{ name, path string }{
		{"mqtt.ca_file", m.CAFile}, {"mqtt.cert_file", m.CertFile}, {"mqtt.key_file", m.KeyFile}, {"mqtt.password_file", m.PasswordFile},
	} {
		if f.path != "" {
			checkFile(f.path, f.name, bad)
		}
	}
	if m.PasswordFile != "" && m.Username == "" {
		bad("mqtt.password_file set without mqtt.username")
	}
	if m.QoS < 0 || m.QoS > 2 {
		bad("mqtt.qos %d: want 0, 1 or 2", m.QoS)
	}
	if m.ShareGroup != "" && strings.ContainsAny(m.ShareGroup, "/+#") {
		bad("mqtt.share_group %q: no / + or #", m.ShareGroup)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"mqtt.keepalive", m.KeepAlive}, {"mqtt.connect_timeout", m.ConnectTimeout}, {"mqtt.op_timeout", m.OpTimeout},
		{"mqtt.disconnect_timeout", m.DisconnectTimeout}, {"mqtt.max_reconnect_interval", m.MaxReconnect},
		{"pipeline.drain_timeout", c.Pipeline.DrainTimeout}, {"learning.checkpoint_interval", c.Learning.CheckpointInterval},
	} {
		if d.v <= 0 {
			bad("%s %v: want a positive duration", d.name, d.v)
		}
	}
	if m.KeepAlive > 0 && m.KeepAlive < time.Second {
		bad("mqtt.keepalive %v: MQTT counts it in whole seconds", m.KeepAlive)
	}
	if m.MaxInflight < 1 || m.MaxInflight > maxInflight {
		bad("mqtt.max_inflight %d: want 1 to %d", m.MaxInflight, maxInflight)
	}

	if !strings.Contains(c.Topics.Prediction, "{device}") {
		bad("topics.prediction %q: must contain {device}", c.Topics.Prediction)
	}
	for _, t := range []struct{ name, v string }{{"topics.errors", c.Topics.Errors}, {"topics.status", c.Topics.Status}, {"ota.result_topic", c.OTA.ResultTopic}} {
		if strings.Contains(t.v, "{model}") {
			bad("%s %q: one topic for every model, {model} has no value there", t.name, t.v)
		}
	}
	for _, t := range []struct{ name, v string }{
		{"topics.prediction", c.Topics.Prediction}, {"topics.errors", c.Topics.Errors}, {"topics.status", c.Topics.Status},
	} {
		if t.v == "" || strings.ContainsAny(t.v, "+#") {
			bad("%s %q: want a topic name without wildcards", t.name, t.v)
		}
	}
	var readings []string
	for mi, m := range c.served {
		key := "subscriptions"
		if m.Name != store.DefaultModel {
			key = fmt.Sprintf("models[%d].subscriptions", mi)
		}
		if len(m.Subscriptions) == 0 && m.Name == store.DefaultModel {
			bad("%s: none", key) // another model's: reported by applyModels
		}
		for i, s := range m.Subscriptions {
			readings = append(readings, s.Topic)
			if _, err := deviceLevel(s.Topic); err != nil {
				bad("%s[%d].topic %q: %v", key, i, s.Topic, err)
			}
			switch s.Format {
			case "json", "csv", "raw":
			default:
				bad("%s[%d].format %q: want json, csv or raw", key, i, s.Format)
			}
			if s.Explain < 0 {
				bad("%s[%d].explain %d: want 0 or more", key, i, s.Explain)
			}
		}
	}
	if c.Payload.MaxBytes < 16 || c.Payload.MaxBytes > maxPayloadBytes {
		bad("payload.max_bytes %d: want 16 to %d", c.Payload.MaxBytes, maxPayloadBytes)
	}
	if c.Payload.MaxBatch < 1 || c.Payload.MaxBatch > maxBatch {
		bad("payload.max_batch %d: want 1 to %d", c.Payload.MaxBatch, maxBatch)
	}
	if c.Pipeline.Workers == 0 {
		c.Pipeline.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Pipeline.Workers < 1 || c.Pipeline.Workers > 1024 {
		bad("pipeline.workers %d: want 1 to 1024", c.Pipeline.Workers)
	}
	if c.Pipeline.Queue < c.Pipeline.Workers || c.Pipeline.Queue > maxQueue {
		bad("pipeline.queue %d: want one slot per worker (%d) to %d", c.Pipeline.Queue, c.Pipeline.Workers, maxQueue)
	}
	if qb, ram := c.Pipeline.QueueBytes, physicalMemory(); qb < int64(c.Payload.MaxBytes) {
		bad("pipeline.queue_bytes %d: want at least payload.max_bytes (%d)", qb, c.Payload.MaxBytes)
	} else if ram > 0 && qb > ram/2 {
		bad("pipeline.queue_bytes %d: want at most half this machine's memory (%d)", qb, ram/2)
	}
	switch c.Learning.Mode {
	case "", LearnShared, LearnPerDevice, LearnOff:
	default:
		bad("learning.mode %q: want %q, %q or %q", c.Learning.Mode, LearnOff, LearnShared, LearnPerDevice)
	}
	if c.Learning.MaxDevices < 0 || c.Learning.MaxDevices > maxDevices {
		bad("learning.max_devices %d: want 0 (the default) to %d", c.Learning.MaxDevices, maxDevices)
	}
	if mb, ram := c.Learning.MaxDeviceBytes, physicalMemory(); mb < 0 || ram > 0 && mb > ram/2 {
		bad("learning.max_device_bytes %d: want 0 (the default, 64 MiB) to half this machine's memory (%d)", mb, ram/2)
	}
	if c.Learning.CheckpointEvery < 0 {
		bad("learning.checkpoint_every %d: want 0 (off) or more", c.Learning.CheckpointEvery)
	}
	if l := c.Learning; !finiteIn(l.Margin, -1, 1000) || !finiteIn(l.MaxStep, -1, 1000) || !finiteIn(l.DivergeRatio, 0, 1e6) || (l.DivergeRatio > 0 && l.DivergeRatio <= 1) {
		bad("learning.margin %v, max_step %v, diverge_ratio %v: want finite values (margin and max_step -1 to 1000, diverge_ratio 0 or above 1)",
			l.Margin, l.MaxStep, l.DivergeRatio)
	}
	if c.Learning.RequantizeEvery < 1 || c.Learning.RequantizeEvery > maxRequantize {
		bad("learning.requantize_every %d: want 1 to %d", c.Learning.RequantizeEvery, maxRequantize)
	}
	if l := c.Metrics.Listen; l != "" {
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			bad("metrics.listen %q: %v", l, err)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("metrics.listen %q: want a loopback address (127.0.0.1, [::1] or localhost)", l)
		}
	}
	c.OTA.Validate(bad)
	if c.OTA.Enabled {
		c.checkOTATopics(bad)
	}
	c.HomeAssistant.Validate(bad, readings) // Home Assistant hook
	c.Drift.Validate(bad)                   // monitoring hook
	if len(p) > 0 {
		return &ConfigError{Problems: p}
	}
	return nil
}

// checkOTATopics refuses models whose OTA topics meet another model's or
// a topic the daemon publishes (a model named "result" would take its
// updates from the OTA results).
func (c *Config) checkOTATopics(bad func(string, ...any)) {
	fill := func(model string) func(string) string {
		return func(tmpl string) string {
			return strings.NewReplacer("{gateway}", c.Gateway, "{model}", model).Replace(tmpl)
		}
	}
	taken := map[string]string{}
	for _, t := range []string{c.OTA.ResultTopic, c.Topics.Status, c.Topics.Errors} {
		taken[fill("")(t)] = "a topic linnet publishes"
	}
	for _, m := range c.served {
		for _, t := range ota.Topics(c.OTA, m.Name, fill(m.Name)) {
			if who, ok := taken[t.Topic]; ok && who != "model "+m.Name {
				bad("model %q: its OTA topic %q is already %s: rename the model", m.Name, t.Topic, who)
			}
			taken[t.Topic] = "model " + m.Name
		}
	}
}

// finiteIn reports whether v is a finite number in [lo, hi].
func finiteIn(v, lo, hi float64) bool { return v >= lo && v <= hi }

func checkFile(path, name string, bad func(string, ...any)) {
	f, err := os.Open(path)
	if err != nil {
		bad("%s: %v", name, err)
		return
	}
	f.Close()
}

// deviceLevel returns the index of the first '+' level of an input filter,
// where the device id is read from.
func deviceLevel(filter string) (int, error) {
	if filter == "" {
		return 0, errors.New("empty")
	}
	if strings.HasPrefix(filter, "$share/") {
		return 0, errors.New("set mqtt.share_group instead of a $share/ filter")
	}
	dev := -1
	for i, l := range strings.Split(filter, "/") {
		switch {
		case l == "#":
			return 0, errors.New("'#' cannot name the device; use '+'")
		case l == "+":
			if dev < 0 {
				dev = i
			}
		case strings.ContainsAny(l, "+#"):
			return 0, fmt.Errorf("level %q mixes a wildcard with text", l)
		}
	}
	if dev < 0 {
		return 0, errors.New("needs a '+' level for the device id")
	}
	return dev, nil
}

// machineID is the default gateway id: a stable per-machine value, so two
// gateways never share a client id (a kick/reconnect storm), and one
// gateway keeps its persistent session across restarts.
func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if id := strings.TrimSpace(string(b)); len(id) >= 12 {
				return "gw-" + id[:12]
			}
		}
	}
	h, _ := os.Hostname()
	return h
}

// TOML returns the configuration as TOML, for run --print-config.
func (c *Config) TOML() ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
