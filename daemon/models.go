package daemon

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/drift"
	"github.com/linnet-edge/linnet/daemon/homeassistant"
	"github.com/linnet-edge/linnet/daemon/hooks"
	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/daemon/ota"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/store"
)

// served is one model the daemon serves ([[models]]; one named "default"
// without it): its serving state, its part of the store, its hooks and
// its metrics. Nothing of one model is shared with another but the
// pipeline that carries their readings.
type served struct {
	name  string
	cfg   ModelConfig // resolved: learning and subscriptions set
	learn LearningConfig
	own   *serving.Owner
	st    *store.Model // the model's part of the store, while Run runs
	hooks hooks.Hooks  // this model's OTA, Home Assistant and monitoring hooks
	ota   *ota.OTA     // nil when ota.enabled is off
	drift *drift.Hook

	predTopic   string // topics.prediction filled but for {device}
	predictions prometheus.Counter
	learned     prometheus.Counter
	loss        prometheus.Gauge
	checkpoints prometheus.Counter
}

// newServed builds model mc's serving state and hooks.
func (s *Service) newServed(mc ModelConfig, sharedTopic bool) *served {
	cfg := s.cfg
	l := cfg.Learning
	l.Mode = mc.Learning
	mdl := &served{name: mc.Name, cfg: mc, learn: l, predTopic: s.topic(cfg.Topics.Prediction, mc.Name, "")}
	lv := prometheus.Labels{"model": mc.Name}
	mdl.predictions = s.m.predictions.With(lv)
	mdl.learned = s.m.learn.With(lv)
	mdl.loss = s.m.loss.With(lv)
	mdl.checkpoints = s.m.checkpoints.With(lv)
	version, swaps := s.m.version.With(lv), s.m.swaps.With(lv)
	mdl.own = serving.New(serving.Config{Name: mc.Name, Learning: l.On(), RequantizeEvery: l.RequantizeEvery,
		PerDevice: l.PerDevice(), MaxDevices: l.MaxDevices, MaxDeviceBytes: l.MaxDeviceBytes,
		Robust: serving.Robust{Margin: l.Margin, MaxStep: float32(l.MaxStep), DivergeRatio: l.DivergeRatio},
		Log:    s.base.With("component", "serving", "model", mc.Name), OnSwap: func(m *serving.Model) {
			version.Set(float64(m.Version()))
			swaps.Inc()
		}})
	if cfg.OTA.Enabled {
		mdl.ota = ota.New(cfg.OTA)
		mdl.hooks.Add(mdl.ota)
	}
	if cfg.HomeAssistant.Enabled {
		ha := homeassistant.New(cfg.HomeAssistant)
		if cfg.Drift.Enabled {
			ha.WatchDrift(cfg.Drift.Topic) // a "model drifting" binary sensor
		}
		if sharedTopic {
			ha.SharedTopic()
		}
		mdl.hooks.Add(ha)
	}
	mdl.drift = drift.New(cfg.Drift) // always: the live view; it watches readings when drift.enabled
	mdl.hooks.Add(mdl.drift)
	return mdl
}

// status describes the model for the status message.
func (mdl *served) status() wire.ModelStatus {
	st := wire.ModelStatus{Name: mdl.name, Learning: LearnOff}
	if mdl.learn.On() {
		st.Learning = mdl.learn.Mode
	}
	if sv := mdl.own.Current(); sv != nil {
		v := sv.Scorer.Version()
		st.ModelVersion, st.Scheme, st.Features = &v, sv.Scorer.Scheme(), len(sv.Schema.Features)
	}
	if u, l, ok := mdl.own.Stats(); ok {
		st.Updates = &u
		if !math.IsNaN(l) && !math.IsInf(l, 0) {
			st.ProgressiveLoss = &l
		}
		st.LearningFrozen = mdl.own.Health().Frozen
	}
	if ds, _, ok := mdl.own.DeviceHealth(); ok {
		st.DevicesResident, st.DevicesPending = &ds.Resident, &ds.Pending
	}
	return st
}

// sharedPrediction reports whether several models publish to the same
// prediction topics (no {model} in topics.prediction).
func sharedPrediction(cfg *Config) bool {
	return len(cfg.served) > 1 && !strings.Contains(cfg.Topics.Prediction, "{model}")
}

// learnCollector exports every model's learner defences and per-device
// states, read from its owner at each scrape.
type learnCollector struct {
	s                                                       *Service
	refused, clipped, frozen, resident, pending, stateBytes *prometheus.Desc
}

func newLearnCollector(s *Service) *learnCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"model"}, nil)
	}
	return &learnCollector{s: s,
		refused: d("linnet_learn_refused_total", "Labelled readings not learned from because a label or feature was implausible (still predicted; reason bad_label)."),
		clipped: d("linnet_learn_clipped_total", "Online learning steps shortened to learning.max_step."),
		frozen:  d("linnet_learning_frozen", "1 while online learning is frozen (the learner diverged and its last good checkpoint was restored)."),
		resident: d("linnet_devices_resident",
			"Per-device learning states in memory (learning mode \"per_device\")."),
		pending: d("linnet_devices_pending", "Per-device learning states evicted from memory and not yet saved."),
		stateBytes: d("linnet_devices_state_bytes",
			"Memory holding the per-device learning states in memory; on Linux outside the Go heap, so not in go_memstats_*."),
	}
}

func (c *learnCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.refused, c.clipped, c.frozen, c.resident, c.pending, c.stateBytes} {
		ch <- d
	}
}

func (c *learnCollector) Collect(ch chan<- prometheus.Metric) {
	for _, mdl := range c.s.models {
		h := mdl.own.Health()
		frozen := 0.0
		if h.Frozen {
			frozen = 1
		}
		ds, _, _ := mdl.own.DeviceHealth()
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(h.Refused), mdl.name)
		ch <- prometheus.MustNewConstMetric(c.clipped, prometheus.CounterValue, float64(h.Clipped), mdl.name)
		ch <- prometheus.MustNewConstMetric(c.frozen, prometheus.GaugeValue, frozen, mdl.name)
		ch <- prometheus.MustNewConstMetric(c.resident, prometheus.GaugeValue, float64(ds.Resident), mdl.name)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ds.Pending), mdl.name)
		ch <- prometheus.MustNewConstMetric(c.stateBytes, prometheus.GaugeValue, float64(ds.StateBytes), mdl.name)
	}
}

// liveView is the live view's handler over every model's monitoring
// hook.
func (s *Service) liveView() http.Handler {
	if len(s.models) == 1 {
		return monitor.NewHandler(s.drift)
	}
	src := make(liveSources, len(s.models))
	for i, mdl := range s.models {
		src[i] = mdl.drift
	}
	return monitor.NewHandler(src)
}

// liveSources joins the models' monitoring hooks into one monitor.Source.
type liveSources []*drift.Hook

func (ls liveSources) Models() []monitor.ModelStatus {
	var all []monitor.ModelStatus
	for _, h := range ls {
		all = append(all, h.Models()...)
	}
	slices.SortFunc(all, func(a, b monitor.ModelStatus) int { return strings.Compare(a.Name, b.Name) })
	return all
}

// owner is the hook serving the model the live view calls name.
func (ls liveSources) owner(name string) (*drift.Hook, error) {
	for _, h := range ls {
		for _, m := range h.Models() {
			if m.Name == name {
				return h, nil
			}
		}
	}
	return nil, fmt.Errorf("%w %q", monitor.ErrUnknownModel, name)
}

func (ls liveSources) History(name string) ([]monitor.Event, error) {
	h, err := ls.owner(name)
	if err != nil {
		return nil, err
	}
	return h.History(name)
}

func (ls liveSources) Export(name string) ([]byte, error) {
	h, err := ls.owner(name)
	if err != nil {
		return nil, err
	}
	return h.Export(name)
}

func (ls liveSources) Alerts() []monitor.Alert {
	var all []monitor.Alert
	for _, h := range ls {
		all = append(all, h.Alerts()...)
	}
	slices.SortStableFunc(all, func(a, b monitor.Alert) int { return b.Since.Compare(a.Since) })
	return all
}

func (ls liveSources) OTA() []monitor.OTADecision {
	var all []monitor.OTADecision
	for _, h := range ls {
		all = append(all, h.OTA()...)
	}
	slices.SortStableFunc(all, func(a, b monitor.OTADecision) int { return b.Time.Compare(a.Time) })
	return all
}
