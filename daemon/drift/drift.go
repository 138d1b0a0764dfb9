// Package drift is the monitoring hook (daemon/hooks): it feeds every
// served reading and every labelled reading's loss to the detectors of
// daemon/monitor, publishes their alerts (retained, on drift.topic),
// exports the drift gauges, applies the configured response (freeze
// learning, or roll back to the previous version) and is the live view's
// Source.
//
// The workers only call OnPredicted: one atomic load, the detectors'
// non-blocking Observe calls (a reading that meets another worker inside
// a detector is skipped, not waited for) and, at the rare end of a window
// that changes an alert, a non-blocking hand-off of the transition. One
// goroutine (Run) publishes, updates the gauges every drift.interval,
// reconciles the published state with the detectors' (so a hand-off
// dropped under a flood is published at the next tick) and acts on the
// serving owner and the store.
package drift

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/hooks"
	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// freezer names the drift response among the owner's freeze holders.
const freezer = "drift"

// Hook is the monitoring hook.
type Hook struct {
	hooks.Base
	cfg  Config
	mcfg monitor.Config

	ready  atomic.Bool // Init done: host and the rest may be read
	host   hooks.Host
	log    *slog.Logger
	topic  string
	gauges *monitor.Gauges
	alerts *monitor.Log

	cur         atomic.Pointer[watched]
	view        atomic.Pointer[learnView] // the owner's state at the last tick, for the live view
	transitions chan monitor.Alert
	rebuild     chan struct{} // 1 slot: the served version changed
	lost        prometheus.Counter

	// Run's own.
	published  map[alertKey]monitor.Alert // the firing alerts as last published
	frozen     bool
	rolledBack bool // a drift rollback happened; no other until a quiet window
}

// watched is the served version and its detectors (w is nil when the
// version's training statistics could not be read: nothing is watched).
type watched struct {
	name    string
	version int64
	w       *monitor.Watch
	width   int
	loss    func(pred, label float32) float64
}

type learnView struct {
	learning string
	loss     float64
}

type alertKey struct {
	model, feature, device string
	kind                   monitor.Kind
}

func keyOf(a monitor.Alert) alertKey { return alertKey{a.Model, a.Feature, a.Device, a.Kind} }

// New returns the hook for c (validated).
func New(c Config) *Hook {
	return &Hook{cfg: c, mcfg: c.Monitor(), alerts: monitor.NewLog(50),
		transitions: make(chan monitor.Alert, 256), rebuild: make(chan struct{}, 1),
		published: map[alertKey]monitor.Alert{}}
}

func (h *Hook) ID() string { return "drift" }

// Provides OnPredicted only when monitoring is on: off, the workers do
// not call the hook at all.
func (h *Hook) Provides(e byte) bool { return e == hooks.OnPredicted && h.cfg.Enabled }

// Init registers the gauges.
func (h *Hook) Init(host hooks.Host) error {
	h.host, h.log = host, host.Log().With("component", "drift")
	h.topic = Topic(host, h.cfg.Topic)
	g, err := monitor.NewGauges(host.Registry())
	if err != nil {
		return err
	}
	h.gauges = g
	h.lost = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_drift_handoffs_dropped_total",
		Help: "Alert transitions the workers could not hand to the monitoring goroutine at once (published at its next tick instead)."})
	if h.lost, err = hooks.Register(host.Registry(), h.lost); err != nil {
		return err
	}
	// Before the first tick, so the live view has them from the start:
	// the model is installed already.
	h.updateView()
	h.follow(context.Background())
	h.ready.Store(true)
	return nil
}

// Topic is where a model's alerts go: the drift.topic template, with
// the model's name as a last level unless it is the model named
// "default" or the template has {model}.
func Topic(host hooks.Host, tmpl string) string {
	if n := host.Model(); n != store.DefaultModel && !strings.Contains(tmpl, "{model}") {
		tmpl += "/" + n
	}
	return host.Topic(tmpl, "")
}

// ModelName is how the gateway names a served model in alerts, gauges,
// the live view and Home Assistant: its name under [[models]], else (the
// model named "default") the model's target, or "model".
func ModelName(m *serving.Model) string {
	if m != nil && m.Name != "" && m.Name != store.DefaultModel {
		return m.Name
	}
	if m != nil && m.Meta.Target != "" {
		return m.Meta.Target
	}
	return "model"
}

// OnPredicted watches the readings of one published message.
func (h *Hook) OnPredicted(device string, sv *serving.Model, rs []wire.Reading, preds []float32) {
	ws := h.cur.Load()
	if ws == nil || ws.version != sv.Scorer.Version() {
		select {
		case h.rebuild <- struct{}{}:
		default:
		}
		return
	}
	if ws.w == nil {
		return
	}
	now := time.Now()
	for i := range rs {
		if len(rs[i].X) != ws.width {
			continue
		}
		h.handOff(ws.w.Reading(rs[i].X, now))
		if rs[i].HasLabel {
			h.handOff(ws.w.Labelled(device, ws.loss(preds[i], rs[i].Label), now))
		}
	}
}

func (h *Hook) handOff(as []monitor.Alert) {
	for _, a := range as {
		h.alerts.Record(a)
		select {
		case h.transitions <- a:
		default:
			h.lost.Inc()
		}
	}
}

// Run publishes and acts until ctx ends.
func (h *Hook) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	h.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-h.transitions:
			h.publish(ctx, a)
			if ws := h.cur.Load(); a.Active && ws != nil && ws.w != nil {
				h.respond(ctx, ws, ws.w.Active()) // at once, not at the next tick
			}
		case <-h.rebuild:
			h.follow(ctx)
		case <-t.C:
			h.tick(ctx)
		}
	}
}

// tick follows the served version, adds the trend points, updates the
// gauges, reconciles the published alerts and applies the response.
func (h *Hook) tick(ctx context.Context) {
	h.follow(ctx)
	lv := h.updateView()
	ws := h.cur.Load()
	if ws == nil || ws.w == nil {
		return
	}
	now := time.Now()
	ws.w.Tick(now, lv.loss)
	active := ws.w.Active()
	h.gauges.Update(ws.name, ws.w.Features.Scores(), active)
	h.reconcile(ctx, ws.name, active, now)
	h.respond(ctx, ws, active)
}

// updateView reads the owner's learning state for the live view, which
// then never waits for the learner's lock.
func (h *Hook) updateView() *learnView {
	own := h.host.Owner()
	lv := &learnView{learning: monitor.Off}
	if updates, loss, ok := own.Stats(); ok {
		lv.learning = monitor.Learning
		if own.Frozen() {
			lv.learning = monitor.Frozen
		}
		if updates > 0 && !math.IsNaN(loss) && !math.IsInf(loss, 0) {
			lv.loss = loss
		}
	}
	h.view.Store(lv)
	return lv
}

// follow rebuilds the detectors when the served version changed: from
// the version's training statistics in the store. The alerts of the
// version that left are published as cleared.
func (h *Hook) follow(ctx context.Context) {
	sv := h.host.Current()
	if sv == nil {
		return
	}
	old := h.cur.Load()
	v := sv.Scorer.Version()
	if old != nil && old.version == v {
		return
	}
	ws := &watched{name: ModelName(sv), version: v, width: len(sv.Schema.Features), loss: lossFunc(sv.Meta)}
	if m, err := h.trained(v); err != nil {
		h.log.Warn("no training statistics for the served version: drift is not watched", "version", v, "err", err)
	} else if len(m.Features) != ws.width || len(m.Mean) != ws.width || len(m.Std) != ws.width {
		h.log.Warn("the stored model does not match the served one: drift is not watched", "version", v)
	} else if h.cfg.Enabled {
		ws.w = monitor.NewWatch(ws.name, m, h.mcfg, h.cfg.PerDevice)
	}
	h.cur.Store(ws)
	if old == nil {
		return
	}
	now := time.Now()
	h.reconcile(ctx, old.name, nil, now)
	h.alerts.Forget(old.name)
	if old.name != ws.name {
		h.gauges.Forget(old.name)
	}
	h.log.Info("watching", "model", ws.name, "version", v, "previous", old.version)
}

// trained reads version v's model from the store (a short read
// transaction; the values are copied out).
func (h *Hook) trained(v int64) (*model.Model, error) {
	st := h.host.Store()
	if st == nil {
		return nil, fmt.Errorf("no store")
	}
	file, err := st.Get(v)
	if err != nil {
		return nil, err
	}
	return model.Decode(file)
}

// publish publishes one transition, retained, unless the published state
// already says so. A clear that leaves other alerts of the model firing is
// followed by the newest of them again, so the retained message always
// says whether the model drifts.
func (h *Hook) publish(ctx context.Context, a monitor.Alert) {
	k := keyOf(a)
	_, had := h.published[k]
	if a.Active == had {
		return
	}
	if a.Active {
		h.published[k] = a
	} else {
		delete(h.published, k)
	}
	h.send(ctx, a)
	if a.Active {
		h.log.Warn("drift alert", "model", a.Model, "kind", a.Kind, "feature", a.Feature, "device", a.Device, "score", a.Score, "threshold", a.Threshold)
		return
	}
	h.log.Info("drift alert cleared", "model", a.Model, "kind", a.Kind, "feature", a.Feature, "device", a.Device)
	var newest *monitor.Alert
	for _, p := range h.published {
		if p.Model == a.Model && (newest == nil || p.Since.After(newest.Since)) {
			newest = &p
		}
	}
	if newest != nil {
		h.send(ctx, *newest)
	}
}

func (h *Hook) send(ctx context.Context, a monitor.Alert) {
	b, err := alertJSON(a)
	if err == nil {
		err = h.host.Publish(ctx, h.topic, true, b)
	}
	if err != nil && ctx.Err() == nil {
		h.log.Warn("publish the drift alert", "err", err)
	}
}

// reconcile publishes what the detectors say and the published state
// does not: firing alerts whose hand-off was dropped, and clears.
func (h *Hook) reconcile(ctx context.Context, name string, active []monitor.Alert, now time.Time) {
	on := map[alertKey]bool{}
	for _, a := range active {
		on[keyOf(a)] = true
		if _, ok := h.published[keyOf(a)]; !ok {
			h.alerts.Record(a)
			h.publish(ctx, a)
		}
	}
	for k, p := range h.published {
		if k.model == name && !on[k] {
			p.Active, p.Since = false, now
			h.alerts.Record(p)
			h.publish(ctx, p)
		}
	}
}

// respond applies drift.response to the served model's firing alerts.
func (h *Hook) respond(ctx context.Context, ws *watched, active []monitor.Alert) {
	switch h.mcfg.Response {
	case monitor.ResponseFreeze:
		if on := len(active) > 0; on != h.frozen {
			h.host.Owner().Freeze(freezer, on)
			h.frozen = on
			if on {
				h.log.Warn("drift: learning frozen until the alerts clear", "model", ws.name, "version", ws.version)
			} else {
				h.log.Info("drift: learning resumed", "model", ws.name, "version", ws.version)
			}
		}
	case monitor.ResponseRollback:
		if len(active) == 0 {
			if ws.w.Features.Windows() > 0 {
				h.rolledBack = false // a quiet window: the next drift may roll back again
			}
			return
		}
		if h.rolledBack {
			return
		}
		h.rolledBack = true
		h.rollback(ctx, ws, active[0])
	}
}

// rollback withdraws the served version and serves the one it replaced
// (with that version's checkpointed learner), as the guarded rollout does.
func (h *Hook) rollback(ctx context.Context, ws *watched, a monitor.Alert) {
	st, own := h.host.Store(), h.host.Owner()
	why := fmt.Sprintf("drift: %s alert on %s (score %.4g, threshold %.4g)", a.Kind, a.Feature, a.Score, a.Threshold)
	if _, err := own.Checkpoint(); err != nil {
		h.log.Warn("checkpoint before the rollback", "err", err)
	}
	target, err := st.Withdraw(ws.version, store.SourceRollback, why)
	if err != nil {
		h.log.Error("drift: roll back", "version", ws.version, "err", err)
		return
	}
	m, _, err := st.Active()
	if err != nil {
		h.log.Error("drift: load the rolled-back model", "version", target, "err", err)
		return
	}
	own.Install(m, st)
	h.log.Warn("drift: model rolled back", "version", ws.version, "to", target, "reason", why)
	h.follow(ctx)
	if err := h.host.PublishStatus(ctx); err != nil && ctx.Err() == nil {
		h.log.Warn("publish status", "err", err)
	}
}

// lossFunc is the served model's own loss on one prediction: squared,
// Huber with its delta, or log loss.
func lossFunc(m serving.Meta) func(p, y float32) float64 {
	switch m.Loss {
	case model.Logistic:
		return func(p, y float32) float64 {
			q := math.Min(math.Max(float64(p), 1e-15), 1-1e-15)
			if y >= 0.5 {
				return -math.Log(q)
			}
			return -math.Log1p(-q)
		}
	case model.Huber:
		d := float64(m.Delta)
		if d <= 0 {
			d = 1
		}
		return func(p, y float32) float64 {
			if r := math.Abs(float64(p - y)); r > d {
				return d * (r - d/2)
			} else {
				return r * r / 2
			}
		}
	}
	return func(p, y float32) float64 { r := float64(p - y); return r * r }
}
