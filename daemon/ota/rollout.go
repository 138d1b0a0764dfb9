package ota

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// maxShadowValues caps the memory of the recent readings kept for shadow
// runs: a 65,536-wide model keeps 4 readings, a 13-wide one all of
// ota.shadow_readings.
const maxShadowValues = 256 << 10

// recent keeps the last readings served, in the serving schema's order,
// for the shadow run of the next OTA candidate.
type recent struct {
	limit int

	mu     sync.Mutex
	schema *wire.Schema // the rows' schema; compared by pointer first (cheap)
	names  []string
	rows   [][]float32
	next   int
	size   int   // capacity for this schema's width
	added  int64 // readings added, ever: the store's copy is saved when it moved
	saved  int64 // added at the last save
}

func (r *recent) add(sc *wire.Schema, rs []wire.Reading) {
	if r.limit == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.added += int64(len(rs))
	if sc != r.schema {
		if r.size == 0 || !slices.Equal(sc.Features, r.names) {
			r.names, r.rows, r.next = sc.Features, r.rows[:0], 0
			r.size = min(r.limit, max(1, maxShadowValues/max(1, len(sc.Features))))
		}
		r.schema = sc
	}
	if len(rs) > r.size {
		rs = rs[len(rs)-r.size:] // a big batch: only its tail stays anyway
	}
	for i := range rs {
		if len(r.rows) < r.size {
			r.rows = append(r.rows, slices.Clone(rs[i].X))
			continue
		}
		copy(r.rows[r.next], rs[i].X)
		r.next = (r.next + 1) % r.size
	}
}

// load starts from readings kept in the store (store.Recent), oldest
// first, before any reading arrived.
func (r *recent) load(names []string, rows [][]float32) {
	if r.limit == 0 || len(rows) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = names
	r.size = min(r.limit, max(1, maxShadowValues/max(1, len(names))))
	if len(rows) > r.size {
		rows = rows[len(rows)-r.size:]
	}
	r.rows, r.next = rows, 0 // when full, the oldest is overwritten first
}

// changed returns the rows in arrival order when readings were added
// since the last call that returned them.
func (r *recent) changed() ([]string, [][]float32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.added == r.saved || len(r.rows) == 0 {
		return nil, nil
	}
	r.saved = r.added
	rows := make([][]float32, 0, len(r.rows))
	rows = append(rows, r.rows[r.next:]...)
	rows = append(rows, r.rows[:r.next]...)
	return r.names, rows
}

// snapshot copies the rows out, so the shadow run holds no lock.
func (r *recent) snapshot() ([]string, [][]float32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows := make([][]float32, len(r.rows))
	for i, x := range r.rows {
		rows[i] = slices.Clone(x)
	}
	return r.names, rows
}

// shadowRun predicts the recent readings with m and returns why m is
// refused, or "" if it passes. The rule: every prediction finite; for a
// regression served by a regression, every prediction inside [lo - k*s,
// hi + k*s], where [lo, hi] is the serving model's range on the same
// readings, k is ota.shadow_tolerance and s = max(hi - lo, (max |lo|,|hi|)
// / 10, 1e-6). With no reading yet, or readings that lack some of m's
// features (a schema change), there is nothing to run and m passes.
func (o *OTA) shadowRun(m *model.Model) string {
	if o.ShadowStarted != nil {
		o.ShadowStarted()
	}
	names, rows := o.rec.snapshot()
	if len(rows) == 0 {
		// Right after a restart with nothing kept: readings drawn from
		// the training statistics both models carry.
		names, rows = o.synthetic(m)
		if len(rows) == 0 {
			return ""
		}
		o.log.Info("shadow run on synthetic readings: no reading seen yet", "readings", len(rows))
	}
	pos := make(map[string]int, len(names))
	for i, n := range names {
		pos[n] = i
	}
	idx := make([]int, len(m.Features))
	for j, f := range m.Features {
		i, ok := pos[f]
		if !ok {
			o.log.Info("shadow run skipped: recent readings lack a feature of the candidate", "feature", f)
			return ""
		}
		idx[j] = i
	}
	cand := model.NewPredictor(m)
	var cur serving.Scorer
	if sv := o.host.Owner().Current(); sv != nil && slices.Equal(sv.Schema.Features, names) && !sv.Scorer.Logistic() && m.Loss != model.Logistic {
		cur = sv.Scorer
	}
	x := make([]float32, len(idx))
	preds := make([]float32, len(rows))
	lo, hi := math.Inf(1), math.Inf(-1)
	for r, row := range rows {
		for j, i := range idx {
			x[j] = row[i]
		}
		p := cand.Predict(x)
		if !finite(p) {
			return fmt.Sprintf("shadow run: prediction on recent reading %d of %d is %v", r+1, len(rows), p)
		}
		preds[r] = p
		if cur != nil {
			if q := cur.Predict(row); finite(q) {
				lo, hi = math.Min(lo, float64(q)), math.Max(hi, float64(q))
			}
		}
	}
	if lo > hi {
		return ""
	}
	s := math.Max(hi-lo, math.Max(math.Max(math.Abs(lo), math.Abs(hi))/10, 1e-6))
	k := o.cfg.ShadowTolerance
	for r, p := range preds {
		if v := float64(p); v < lo-k*s || v > hi+k*s {
			return fmt.Sprintf("shadow run: prediction %g on recent reading %d of %d is far outside the serving model's range [%g, %g] on the same readings (allowed %g to %g)",
				v, r+1, len(rows), lo, hi, lo-k*s, hi+k*s)
		}
	}
	return ""
}

// synthetic returns readings drawn from the active model's training
// statistics and the candidate's (same features), in the active model's
// feature order; none when neither carries statistics.
func (o *OTA) synthetic(m *model.Model) ([]string, [][]float32) {
	n := max(o.cfg.ShadowReadings, 64)
	cur, _, err := o.st.Active()
	if err != nil {
		return nil, nil
	}
	rows := model.SyntheticReadings(cur, n, 1)
	if slices.Equal(cur.Features, m.Features) {
		rows = append(rows, model.SyntheticReadings(m, n, 2)...)
	}
	return cur.Features, rows
}

// saveRecent keeps the recent readings in the store, for a shadow run
// right after a restart; only when readings came since the last save.
func (o *OTA) saveRecent() {
	names, rows := o.rec.changed()
	if len(rows) == 0 {
		return
	}
	if err := o.st.SaveRecent(names, rows); err != nil {
		o.log.Warn("keep the recent readings in the store", "err", err)
	}
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// guard is one guarded rollout: version replaced prev; the labelled
// readings served by version are scored by both, per device
// (model.Guard: one device cannot veto an update).
type guard struct {
	version, prev int64
	prevState     serving.State // its Learner is nil after a restart: the store's checkpoint is used
	loss          func(pred, label float32) float64
	window        int

	mu   sync.Mutex
	g    *model.Guard
	n    int // labelled readings offered to g
	done bool
}

func newGuard(version, prev int64, prevState serving.State, next serving.Meta, cfg model.GuardConfig) *guard {
	if cfg.Window <= 0 {
		cfg.Window = 500
	}
	return &guard{version: version, prev: prev, prevState: prevState, loss: lossFunc(next), window: cfg.Window, g: model.NewGuard(cfg)}
}

type guardSlot struct{ p atomic.Pointer[guard] }

func (g *guardSlot) set(x *guard) { g.p.Store(x) }

// lossFunc is the loss both models are compared with: the new model's own
// (squared, Huber with its delta, or log loss).
func lossFunc(m serving.Meta) func(p, y float32) float64 {
	delta := m.Delta
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
		if delta <= 0 {
			delta = 1
		}
		return func(p, y float32) float64 {
			r := math.Abs(float64(p - y))
			if r <= float64(delta) {
				return r * r / 2
			}
			return float64(delta) * (r - float64(delta)/2)
		}
	}
	return func(p, y float32) float64 { r := float64(p - y); return r * r }
}

// OnPredicted is called by the workers once per published message: it
// keeps the readings for the next shadow run and feeds the guard with the
// device that sent them. It takes one short lock per message and never
// waits for the OTA goroutine.
func (o *OTA) OnPredicted(device string, sv *serving.Model, rs []wire.Reading, preds []float32) {
	o.rec.add(sv.Schema, rs)
	g := o.guard.p.Load()
	if g == nil || sv.Scorer.Version() != g.version {
		return
	}
	type obs struct {
		ln, lo float64
		y      float32
	}
	var buf [16]obs
	seen := buf[:0]
	for i := range rs {
		if rs[i].HasLabel {
			y := rs[i].Label
			seen = append(seen, obs{g.loss(preds[i], y), g.loss(g.prevState.Model.Scorer.Predict(rs[i].X), y), y})
		}
	}
	if len(seen) == 0 {
		return
	}
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return
	}
	for _, b := range seen {
		g.g.Observe(device, b.ln, b.lo, b.y)
	}
	g.n += len(seen)
	full := g.n-g.g.Ignored() >= g.window
	g.done = full
	g.mu.Unlock()
	if full {
		select {
		case o.verdict <- g:
		default:
			o.log.Error("guard verdict dropped", "version", g.version)
		}
	}
}

// finishGuard rolls back or keeps the guarded version, on the OTA
// goroutine.
func (o *OTA) finishGuard(ctx context.Context, g *guard) {
	if o.guard.p.Load() != g {
		return // superseded by a later switch
	}
	o.guard.set(nil)
	g.mu.Lock()
	vd := g.g.Verdict()
	g.mu.Unlock()
	v := g.version
	res := wire.OTAResult{Version: &v}
	if vd.Decision != model.GuardRollback {
		why := fmt.Sprintf("guard %s against version %d over %d labelled readings: %s", vd.Decision, g.prev, vd.Readings, vd.Reason)
		if len(vd.Suspect) > 0 {
			why += fmt.Sprintf("; devices set aside (old model implausibly perfect): %s", clipList(vd.Suspect))
		}
		if err := o.st.Record(store.Event{Action: store.ActionKeep, Version: v, Previous: g.prev, Source: store.SourceOTA, Reason: why}); err != nil {
			o.log.Error("record the guard verdict", "err", err)
		}
		o.finish(ctx, res, wire.OTAGuardPassed, why, nil)
		return
	}
	why := fmt.Sprintf("version %d over %d labelled readings: %s", g.prev, vd.Readings, vd.Reason)
	target, err := o.st.Withdraw(v, store.SourceRollback, why)
	if err != nil {
		if errors.Is(err, store.ErrNotActive) {
			return
		}
		o.log.Error("automatic rollback", "version", v, "err", err)
		o.finish(ctx, res, wire.OTAStore, "automatic rollback failed: "+err.Error(), nil)
		return
	}
	if g.prevState.Learner != nil && target == g.prev {
		o.host.Owner().Restore(g.prevState, o.st, target)
	} else if m, _, err := o.st.Active(); err == nil {
		o.host.Owner().Install(m, o.st)
	} else {
		o.log.Error("load the rolled-back model", "version", target, "err", err)
	}
	o.log.Warn("model rolled back", "version", v, "to", target, "reason", why)
	o.finish(ctx, res, wire.OTARolledBack, why, nil)
}

// resumeGuard restarts the guard after a restart when the last change was
// an OTA switch that no verdict closed yet (the window starts again).
func (o *OTA) resumeGuard() {
	if o.cfg.GuardWindow == 0 {
		return
	}
	h, err := o.st.History()
	if err != nil {
		return
	}
	for i := len(h) - 1; i >= 0; i-- {
		e := h[i]
		switch e.Action {
		case store.ActionActivate:
			if e.Source != store.SourceOTA || e.Previous == 0 {
				return
			}
			cur, file, err := o.st.Active()
			if err != nil || cur.Version != e.Version || model.IsRollback(file) {
				return
			}
			pf, err := o.st.Get(e.Previous)
			if err != nil {
				return
			}
			pm, err := model.Decode(pf)
			if err != nil || !slices.Equal(pm.Features, cur.Features) {
				return
			}
			prev := serving.State{Model: serving.NewModel(serving.NewScorer(pm), serving.Meta{Target: pm.Target, Loss: pm.Loss, Delta: pm.Delta})}
			next := serving.Meta{Target: cur.Target, Loss: cur.Loss, Delta: cur.Delta}
			o.guard.set(newGuard(e.Version, e.Previous, prev, next, o.cfg.guardConfig()))
			o.log.Info("guarded rollout resumed", "version", e.Version, "previous", e.Previous)
			return
		case store.ActionRollback, store.ActionKeep:
			return
		}
	}
}
