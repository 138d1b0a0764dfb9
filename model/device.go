package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Per-device learning: every device learns its own correction to the fleet
// model from its own labelled readings.
//
// A device's prediction is the fleet model's plus the device's delta, a
// linear function of the reading standardized with the fleet model's
// scaling (in logits, for a logistic model):
//
//	z_device(x) = z_fleet(x) + ys * (u_d + sum_i u_i * (x_i - Mean_i) / Std_i)
//
// where ys is the fleet's target standard deviation (1 for logistic). The
// fleet part is shared by every device and does not learn in this mode.
//
// Each device learns u by recursive least squares on its own residuals:
// the exact ridge regression of its readings' residuals (Prior
// pseudo-readings pulling u toward 0, that is toward the fleet model),
// updated one reading at a time with no learning rate to tune, weighted by
// p(1-p) for a logistic model (one Newton step per reading). So after n
// readings a device's delta is as good as a least-squares fit to those n
// readings, shrunk toward the fleet where they say little. The state is u
// and the packed upper triangle of the (d+1)x(d+1) matrix P, float32:
// (d+1)(d+4)/2 values, 2,376 bytes for 32 features, against about twice
// that for a full Learner copy (running statistics, optimizer state,
// bounds, scratch) and without its learning-rate schedule, which needs
// hundreds of readings. Wider models cost (d+1)^2/2 floats per device:
// the states in memory are bounded in bytes too (MaxResidentBytes), and
// models wider than MaxDeviceFeatures are refused.
//
// Rebasing: a new model version drops every device's delta (Rebase, and
// Load ignores states of another version): deltas do not carry over. A
// delta is the residual of one fleet version: the next version was
// usually trained on readings of the same devices and absorbs part of what
// their deltas corrected (carrying them over would count it twice), and a
// delta learned against a version later withdrawn compensates that
// version's faults, which must not follow the rollback. This is also the
// rule of the shared learner's checkpoints (one per version). A device
// relearns its delta from its next labelled readings: its offset within a
// few, its slopes within about as many readings as there are features.

// DeviceConfig configures Devices. The zero value is usable.
type DeviceConfig struct {
	// MaxResident is how many device states are kept in memory; beyond it
	// the least recently used are evicted (see Devices). Default
	// DefaultMaxResident.
	MaxResident int
	// MaxResidentBytes bounds the memory of the resident states as well:
	// fewer than MaxResident stay when the model is wide. Default
	// DefaultMaxResidentBytes.
	MaxResidentBytes int64
	// Prior is how many readings' worth of confidence the fleet model's
	// own weights have for every device: the larger, the more readings a
	// device needs before its delta moves far. Default 2.
	Prior float64
	// Margin widens the fleet model's plausibility bounds (NewBounds); a
	// reading outside them is refused for learning (ErrImplausible).
	// Default DefaultMargin; negative disables the bounds. A device's
	// label is bounded after subtracting the device's delta, so a device
	// whose offset takes its labels out of the fleet's range keeps
	// learning (its delta follows the offset, MaxResidual per reading).
	Margin float64
	// MaxResidual clips a reading's residual, in fleet target standard
	// deviations, before it moves the delta: no single reading moves a
	// device far, however wrong its label. Honest offsets are not refused,
	// only learnt over more readings. Default 4; negative disables.
	MaxResidual float64

	// Load returns the stored state of a device that is not in memory, nil
	// if it has none; states of another version are ignored (rebase). It
	// is called on a miss, under Devices' lock: nil means there is no
	// store.
	Load func(device string) (*DeviceSnapshot, error)
	// Evict receives batches of changed states evicted from memory, to
	// write in one transaction; until it returns nil they stay pending
	// (and Checkpoint saves them). It runs under Devices' lock, so it
	// holds learning up for one write per EvictBatch evictions: size
	// MaxResident to the devices that are active at once. It never runs
	// while Checkpoint saves, so writes of one device never overtake each
	// other. nil keeps them pending until Checkpoint.
	Evict func([]DeviceSnapshot) error
	// EvictBatch is how many evicted states are batched for Evict. Default
	// 256.
	EvictBatch int
	// CheckpointBatch is the most states one call of Checkpoint's save
	// gets (one transaction each). Default: as many as fit in
	// CheckpointBytes (110 states of 32 features, 1,872 of 6), at least
	// one. A batch is held in memory several times over while it is
	// written (the states, the store's records, bbolt's nodes and pages),
	// so it is sized in bytes, not states: with 10,000 devices of 32
	// features (scripts/bench-daemon.sh, DEVICES=10000), batches of 1,000
	// put the daemon's peak RSS about 25 MB above batches of 110. A
	// checkpoint of the 10,000 is then 91 transactions of neighbouring
	// keys, written in the background.
	CheckpointBatch int
	// Now is the clock for DeviceSnapshot.Last; nil means time.Now.
	Now func() time.Time
}

// DefaultMaxResident is DeviceConfig.MaxResident's default.
const DefaultMaxResident = 10_000

// DefaultMaxResidentBytes is DeviceConfig.MaxResidentBytes's default:
// the 10,000 default devices of up to 50 features.
const DefaultMaxResidentBytes = 64 << 20

// MaxDeviceFeatures is the widest model per-device learning takes: a
// state grows with the square of the width (about 0.5 MB at this width),
// and each is written to the store whole.
const MaxDeviceFeatures = 512

// CheckpointBytes is the size of the states of the default
// DeviceConfig.CheckpointBatch.
const CheckpointBytes = 256 << 10

// DeviceSnapshot is one device's learning state, as the store keeps it.
type DeviceSnapshot struct {
	Device  string
	Version int64     // the model version the delta belongs to
	Updates int64     // readings learned from
	Last    time.Time // the last reading learned from
	State   []byte    // the encoded delta (see DeviceDelta); the caller owns it
}

// ErrDeviceState is returned for an encoded device state that does not
// decode or does not fit the model.
var ErrDeviceState = errors.New("model: bad device state")

// device is one device's delta. Resident devices form a doubly linked LRU
// list through prev and next.
type device struct {
	name       string
	uv         []float32 // u (d weights, then the bias), then P packed (stateLen): slot of Devices.arena
	slot       int32
	n          int64
	last       int64 // Unix ns
	dirty      bool
	prev, next *device
}

// Devices holds the per-device deltas of one model version: up to
// MaxResident in memory, the least recently used evicted beyond that (a
// changed one is handed to DeviceConfig.Evict in batches, and kept
// pending until then; Checkpoint saves the rest). A device's delta is
// created on its first labelled reading (Learn) and learns only from that
// device's readings. It is safe for concurrent use; one lock covers every
// call (a Learn is about (d+1)^2 multiply-adds, plus Load on a miss).
type Devices struct {
	cfg    DeviceConfig
	limit  int // resident states: MaxResident, fewer if MaxResidentBytes says so
	loss   Loss
	ver    int64
	d      int
	mean   []float64
	inv    []float64
	w      []float64
	bias   float64
	ys     float64 // target scale: residuals are in its units
	delta  float64 // Huber's threshold over ys, 0 for other losses
	bounds Bounds
	feats  []string

	mu       sync.Mutex
	arena    *stateArena // the resident devices' states
	byName   map[string]*device
	head     *device // most recently used
	tail     *device
	pending  map[string]DeviceSnapshot // evicted and changed, not yet saved
	inflight map[string]DeviceSnapshot // handed to Checkpoint's save, not yet written
	ckMu     sync.Mutex                // one Checkpoint at a time
	refused  int64
	evictErr error
	xs, g    []float64 // scratch
}

// NewDevices returns per-device learning for m (the active version).
func NewDevices(m *Model, cfg DeviceConfig) (*Devices, error) {
	if err := checkLoss(m.Loss); err != nil && m.Loss != "" {
		return nil, err
	}
	if cfg.MaxResident <= 0 {
		cfg.MaxResident = DefaultMaxResident
	}
	if cfg.MaxResidentBytes <= 0 {
		cfg.MaxResidentBytes = DefaultMaxResidentBytes
	}
	if cfg.Prior == 0 {
		cfg.Prior = 2
	}
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.MaxResidual == 0 {
		cfg.MaxResidual = 4
	}
	if cfg.EvictBatch <= 0 {
		cfg.EvictBatch = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !(cfg.Prior > 0) || math.IsInf(cfg.Prior, 0) || math.IsNaN(cfg.Margin) || math.IsNaN(cfg.MaxResidual) {
		return nil, fmt.Errorf("model: per-device learning: prior %v must be positive, margin %v and max residual %v numbers",
			cfg.Prior, cfg.Margin, cfg.MaxResidual)
	}
	d := len(m.Weights)
	if len(m.Mean) != d || len(m.Std) != d {
		return nil, fmt.Errorf("model: per-device learning: %d weights, %d means, %d deviations", d, len(m.Mean), len(m.Std))
	}
	if d > MaxDeviceFeatures {
		return nil, fmt.Errorf("model: per-device learning takes models of at most %d features, this one has %d (each device would hold %d KB)",
			MaxDeviceFeatures, d, stateLen(d)*4>>10)
	}
	v := &Devices{cfg: cfg, limit: int(min(int64(cfg.MaxResident), max(1, cfg.MaxResidentBytes/int64(4*stateLen(d))))), loss: m.Loss, ver: m.Version, d: d, feats: m.Features,
		arena: newStateArena(stateLen(d)), byName: map[string]*device{}, pending: map[string]DeviceSnapshot{},
		xs: make([]float64, d+1), g: make([]float64, d+1), ys: 1}
	if v.loss == "" {
		v.loss = Squared
	}
	v.mean, v.inv, v.w = make([]float64, d), make([]float64, d), make([]float64, d)
	for i := range d {
		v.mean[i], v.w[i] = float64(m.Mean[i]), float64(m.Weights[i])
		v.inv[i] = 1
		if s := float64(m.Std[i]); s > 0 && !math.IsInf(s, 0) {
			v.inv[i] = 1 / s
		}
	}
	v.bias = float64(m.Bias)
	if v.loss != Logistic {
		switch {
		case m.TargetStd > 0:
			v.ys = float64(m.TargetStd)
		case m.Metrics["target_std"] > 0:
			v.ys = m.Metrics["target_std"]
		default:
			// As the shared Learner does: the spread of the model's own
			// predictions stands for the target's.
			var s float64
			for _, w := range m.Weights {
				s += float64(w) * float64(w)
			}
			v.ys = math.Max(math.Sqrt(s), 1)
		}
		if v.loss == Huber && m.Delta > 0 {
			v.delta = float64(m.Delta) / v.ys
		}
	}
	if cfg.Margin > 0 {
		v.bounds = NewBounds(m, cfg.Margin)
	}
	return v, nil
}

// Version returns the model version the deltas belong to.
func (v *Devices) Version() int64 { return v.ver }

// Width returns the number of features a reading must have.
func (v *Devices) Width() int { return v.d }

// fleet standardizes x into v.xs (with the bias input 1 at the end) and
// returns the fleet model's score.
func (v *Devices) fleet(x []float32) float64 {
	if len(x) != v.d {
		panic(fmt.Sprintf("model: Devices: reading of %d values for %d features", len(x), v.d))
	}
	z := v.bias
	for i, f := range x {
		s := (float64(f) - v.mean[i]) * v.inv[i]
		v.xs[i] = s
		z += v.w[i] * s
	}
	v.xs[v.d] = 1
	return z
}

// score returns the device's score for the standardized reading in v.xs.
func (v *Devices) score(dv *device, zf float64) float64 {
	var c float64
	for i, s := range v.xs {
		c += float64(dv.uv[i]) * s
	}
	return zf + v.ys*c
}

func (v *Devices) link(z float64) float32 {
	if v.loss == Logistic {
		return sigmoid32(float32(z))
	}
	return float32(z)
}

// Predict returns the prediction of device's own weights for x and true,
// or false if the device has learned nothing yet (then the fleet model's
// prediction is the device's: the caller's Predictor serves it). It
// panics if len(x) != Width().
func (v *Devices) Predict(device string, x []float32) (float32, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	dv, _ := v.get(device)
	if dv == nil {
		return 0, false
	}
	return v.link(v.score(dv, v.fleet(x))), true
}

// Learn predicts x for device (with its own weights, or the fleet's if it
// has none yet), then learns from the label y, creating the device's
// delta on its first labelled reading. It returns the prediction and the
// error that kept it from learning: ErrNotFinite, the loss's label error,
// an *ImplausibleError, or a Load error. It panics if len(x) != Width().
func (v *Devices) Learn(device string, x []float32, y float32) (float32, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	zf := v.fleet(x)
	dv, err := v.get(device)
	z := zf
	if dv != nil {
		z = v.score(dv, zf)
	}
	pred := v.link(z)
	switch {
	case err != nil:
		return pred, err
	case !finite32(y) || !allFinite(x):
		return pred, ErrNotFinite
	}
	if err := checkLabel(v.loss, y); err != nil {
		return pred, err
	}
	if v.bounds.known() {
		// The label is bounded relative to the device's own function: a
		// device's honest offset moves its labels out of the fleet's
		// range, and moves its delta along with them (each reading by at
		// most MaxResidual), so it is the label less the device's delta
		// that must look like the fleet's.
		shift := float32(0)
		if v.loss != Logistic {
			shift = float32(z - zf)
		}
		if err := v.bounds.Check(x, y-shift, v.feats); err != nil {
			v.refused++
			return pred, err
		}
	}
	if dv == nil {
		slot, uv := v.arena.alloc()
		dv = v.add(device, slot, uv)
		v.resetP(dv.uv[v.d+1:])
	}
	d1 := v.d + 1
	var r, curv float64
	if v.loss == Logistic {
		p := float64(pred)
		r, curv = float64(y)-p, math.Max(p*(1-p), 0.01)
	} else {
		r, curv = (float64(y)-z)/v.ys, 1
		if v.delta > 0 {
			r = math.Max(-v.delta, math.Min(v.delta, r))
		}
	}
	if c := v.cfg.MaxResidual; c > 0 {
		r = math.Max(-c, math.Min(c, r))
	}
	u, p := dv.uv[:d1], dv.uv[d1:]
	// Recursive least squares (weighted by curv for a logistic model):
	// g = P x, gain = g / (1/curv + x'g), u += gain r, P -= gain g'.
	// P is the inverse of Prior*I plus the device's x x' so far, packed.
	g, xs := v.g, v.xs
	clear(g)
	k := 0 // walks the packed upper triangle row by row
	for i := range d1 {
		xi := xs[i]
		g[i] += float64(p[k]) * xi
		k++
		gi := g[i]
		for j := i + 1; j < d1; j++ {
			pij := float64(p[k])
			gi += pij * xs[j]
			g[j] += pij * xi
			k++
		}
		g[i] = gi
	}
	var q float64
	for i, s := range v.xs {
		q += s * g[i]
	}
	den := 1/curv + q
	if !(den > 0) || math.IsInf(den, 0) {
		// P lost its positive definiteness (float32 rounding after very
		// many readings): start the precision over from the prior.
		v.resetP(p)
		return pred, nil
	}
	for i := range d1 {
		if nu := u[i] + float32(g[i]/den*r); finite32(nu) {
			u[i] = nu
		}
	}
	k = 0
	for i := range d1 {
		gi := g[i] / den
		for j := i; j < d1; j++ {
			p[k] -= float32(gi * g[j])
			k++
		}
	}
	dv.n++
	dv.last = v.cfg.Now().UnixNano()
	dv.dirty = true
	return pred, nil
}

// get returns the device's delta, loading it (Load) on a miss, nil if it
// has none. It moves the device to the front of the LRU list.
func (v *Devices) get(name string) (*device, error) {
	if dv := v.byName[name]; dv != nil {
		v.unlink(dv)
		v.pushFront(dv)
		return dv, nil
	}
	var snap *DeviceSnapshot
	if p, ok := v.pending[name]; ok {
		snap = &p
	} else if p, ok := v.inflight[name]; ok {
		snap = &p // being saved by Checkpoint: newer than the store's copy
	} else if v.cfg.Load != nil {
		var err error
		if snap, err = v.cfg.Load(name); err != nil {
			return nil, fmt.Errorf("load device %q: %w", name, err)
		}
	}
	if snap == nil || snap.Version != v.ver {
		return nil, nil
	}
	slot, uv := v.arena.alloc()
	if err := v.decodeInto(uv, snap.State); err != nil {
		v.arena.release(slot)
		return nil, fmt.Errorf("device %q: %w", name, err)
	}
	dv := v.add(name, slot, uv)
	dv.n, dv.last = snap.Updates, snap.Last.UnixNano()
	if _, ok := v.pending[name]; ok {
		// Still unsaved: it stays dirty, and out of the pending batch.
		dv.dirty = true
		delete(v.pending, name)
	}
	return dv, nil
}

// add makes a resident device of the state in slot, evicting the least
// recently used beyond MaxResident.
func (v *Devices) add(name string, slot int32, uv []float32) *device {
	dv := &device{name: name, uv: uv, slot: slot}
	v.byName[name] = dv
	v.pushFront(dv)
	for len(v.byName) > v.limit && v.tail != nil && v.tail != dv {
		old := v.tail
		v.unlink(old)
		delete(v.byName, old.name)
		if old.dirty {
			v.pending[old.name] = v.snapshot(old)
		}
		v.arena.release(old.slot)
	}
	// While a Checkpoint is saving, evicted states wait: written now they
	// could land before that checkpoint's older copy of the same device
	// and be overwritten by it. TryLock, not Lock: Checkpoint takes ckMu
	// before mu, this path holds mu.
	if v.cfg.Evict != nil && len(v.pending) >= v.cfg.EvictBatch && v.ckMu.TryLock() {
		defer v.ckMu.Unlock()
		batch := make([]DeviceSnapshot, 0, len(v.pending))
		for _, s := range v.pending {
			batch = append(batch, s)
		}
		if v.evictErr = v.cfg.Evict(batch); v.evictErr == nil {
			clear(v.pending)
		}
	}
	return dv
}

func (v *Devices) pushFront(dv *device) {
	dv.prev, dv.next = nil, v.head
	if v.head != nil {
		v.head.prev = dv
	}
	v.head = dv
	if v.tail == nil {
		v.tail = dv
	}
}

func (v *Devices) unlink(dv *device) {
	if dv.prev != nil {
		dv.prev.next = dv.next
	} else {
		v.head = dv.next
	}
	if dv.next != nil {
		dv.next.prev = dv.prev
	} else {
		v.tail = dv.prev
	}
	dv.prev, dv.next = nil, nil
}

func (v *Devices) snapshot(dv *device) DeviceSnapshot {
	s := DeviceSnapshot{Device: dv.name, Version: v.ver, Updates: dv.n, State: v.encode(dv.uv)}
	if dv.last != 0 {
		s.Last = time.Unix(0, dv.last)
	}
	return s
}

// Checkpoint hands every state that changed since the last checkpoint
// (resident ones, and evicted ones not yet handed to Evict) to save, in
// batches of at most DeviceConfig.CheckpointBatch (the store writes each
// in one transaction), and returns how many were saved. Learning goes on while save runs: the batch is kept aside
// until save returns, so a device evicted and loaded again meanwhile
// resumes from its newest state, not the store's older copy. If save
// fails, every state not saved yet stays changed for the next checkpoint.
// One Checkpoint runs at a time.
func (v *Devices) Checkpoint(save func([]DeviceSnapshot) error) (int, error) {
	v.ckMu.Lock()
	defer v.ckMu.Unlock()
	// Names first, states chunk by chunk: only one chunk of encoded
	// states exists at a time, and the store's transaction stays small.
	v.mu.Lock()
	names := make([]string, 0, len(v.pending))
	for n := range v.pending {
		names = append(names, n)
	}
	for dv := v.head; dv != nil; dv = dv.next {
		if dv.dirty {
			names = append(names, dv.name)
		}
	}
	v.inflight = map[string]DeviceSnapshot{}
	v.mu.Unlock()
	// In key order, each transaction updates neighbouring records: a few
	// of the store's pages each instead of pages all over the file.
	slices.Sort(names)

	done := 0
	var err error
	batch := v.cfg.CheckpointBatch
	if batch <= 0 {
		batch = max(1, CheckpointBytes/(4*v.stateLen()))
	}
	for start := 0; start < len(names) && err == nil; start += batch {
		chunk := v.take(names[start:min(start+batch, len(names))])
		if len(chunk) == 0 {
			continue
		}
		err = save(chunk)
		v.mu.Lock()
		for _, s := range chunk {
			delete(v.inflight, s.Device)
			if err == nil {
				continue
			}
			if dv := v.byName[s.Device]; dv != nil {
				dv.dirty = true
			} else if _, ok := v.pending[s.Device]; !ok && s.Version == v.ver {
				v.pending[s.Device] = s
			}
		}
		v.mu.Unlock()
		if err == nil {
			done += len(chunk)
		}
	}
	v.mu.Lock()
	v.inflight = nil
	v.mu.Unlock()
	return done, err
}

// take returns the states of the named devices that are still changed
// (resident, or evicted and pending), marks them saved and keeps them in
// inflight until their save returns.
func (v *Devices) take(names []string) []DeviceSnapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]DeviceSnapshot, 0, len(names))
	for _, n := range names {
		var s DeviceSnapshot
		if dv := v.byName[n]; dv != nil && dv.dirty {
			s = v.snapshot(dv)
			dv.dirty = false
		} else if p, ok := v.pending[n]; ok {
			s = p
			delete(v.pending, n)
		} else {
			continue
		}
		v.inflight[n] = s
		out = append(out, s)
	}
	return out
}

// Snapshot returns device's state (resident, pending or loaded) and
// whether it has one.
func (v *Devices) Snapshot(device string) (DeviceSnapshot, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	dv, err := v.get(device)
	if dv == nil {
		return DeviceSnapshot{}, false, err
	}
	return v.snapshot(dv), true, nil
}

// Reset forgets device's delta in memory (the caller then resets the
// store's copy): its predictions are the fleet's again until it learns
// anew. It waits for a Checkpoint in progress, so that checkpoint cannot
// write the state back after the caller reset the store's.
func (v *Devices) Reset(device string) {
	v.ckMu.Lock()
	defer v.ckMu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if dv := v.byName[device]; dv != nil {
		v.unlink(dv)
		delete(v.byName, device)
		v.arena.release(dv.slot)
	}
	delete(v.pending, device)
}

// Rebase starts over from model m, a new version: every delta is dropped
// (see the package notes on per-device learning for why deltas do not
// carry over); states still pending are dropped too. The configuration
// stays.
func (v *Devices) Rebase(m *Model) error {
	n, err := NewDevices(m, v.cfg)
	if err != nil {
		return err
	}
	v.ckMu.Lock()
	defer v.ckMu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	n.refused = v.refused
	if n.arena.slot == v.arena.slot {
		// Same width: the slabs serve the new version's devices.
		v.arena.reset()
		n.arena = v.arena
	}
	v.arena = n.arena
	v.loss, v.ver, v.d, v.feats, v.limit = n.loss, n.ver, n.d, n.feats, n.limit
	v.mean, v.inv, v.w, v.bias, v.ys, v.delta, v.bounds = n.mean, n.inv, n.w, n.bias, n.ys, n.delta, n.bounds
	v.byName, v.head, v.tail, v.pending, v.xs, v.g = n.byName, nil, nil, n.pending, n.xs, n.g
	return nil
}

// DeviceCorrection is what a device's delta adds to the fleet model's
// score, in target units (logits for a logistic model): Offset at the
// fleet's feature means, plus Slopes[i] per raw unit of feature i away
// from its mean.
type DeviceCorrection struct {
	Offset float64            `json:"offset"`
	Slopes map[string]float64 `json:"slopes"`
}

// DeviceDelta decodes a device state that belongs to model m (its
// DeviceSnapshot.Version is m's) into the correction it makes.
func DeviceDelta(m *Model, state []byte) (DeviceCorrection, error) {
	v, err := NewDevices(m, DeviceConfig{Margin: -1})
	if err != nil {
		return DeviceCorrection{}, err
	}
	uv, err := v.decode(state)
	if err != nil {
		return DeviceCorrection{}, err
	}
	c := DeviceCorrection{Offset: v.ys * float64(uv[v.d]), Slopes: make(map[string]float64, v.d)}
	for i := range v.d {
		name := fmt.Sprint(i)
		if i < len(m.Features) {
			name = m.Features[i]
		}
		c.Slopes[name] = v.ys * float64(uv[i]) * v.inv[i]
	}
	return c, nil
}

// DeviceStats are the counters of a Devices.
type DeviceStats struct {
	Resident int   // devices in memory
	Pending  int   // evicted changed states not yet saved
	Refused  int64 // readings refused as implausible
	EvictErr error // the last Evict error, nil once one succeeds
	// StateBytes is the memory holding the resident states, OffHeap of it
	// mapped outside the Go heap (not in runtime.MemStats).
	StateBytes, OffHeap int64
}

// Stats returns the counters.
func (v *Devices) Stats() DeviceStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return DeviceStats{Resident: len(v.byName), Pending: len(v.pending), Refused: v.refused, EvictErr: v.evictErr,
		StateBytes: v.arena.bytes(), OffHeap: v.arena.mapped}
}

// stateLen is the number of float32 values of a device's state: the delta
// (d weights, then the bias) and the packed upper triangle of P.
func (v *Devices) stateLen() int { return stateLen(v.d) }

func stateLen(d int) int {
	d1 := d + 1
	return d1 + d1*(d1+1)/2
}

// packed returns the index of P[i][j] in the packed upper triangle of a
// symmetric n x n matrix.
func packed(i, j, n int) int {
	if i > j {
		i, j = j, i
	}
	return i*(2*n-i-1)/2 + j
}

// resetP sets the packed P to I/Prior.
func (v *Devices) resetP(p []float32) {
	d1 := v.d + 1
	clear(p)
	for i := range d1 {
		p[packed(i, i, d1)] = float32(1 / v.cfg.Prior)
	}
}

// Delta state layout, little-endian: format uint8 (1) | width uint32 |
// stateLen float32 (the delta weights, bias last, then P packed).
const deltaFormat = 1

func (v *Devices) encode(uv []float32) []byte {
	b := make([]byte, 0, 5+4*len(uv))
	b = append(b, deltaFormat)
	b = binary.LittleEndian.AppendUint32(b, uint32(v.d))
	for _, f := range uv {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func (v *Devices) decode(b []byte) ([]float32, error) {
	uv := make([]float32, v.stateLen())
	return uv, v.decodeInto(uv, b)
}

// decodeInto decodes the state b into uv (of stateLen values).
func (v *Devices) decodeInto(uv []float32, b []byte) error {
	if len(b) != 5+4*len(uv) || b[0] != deltaFormat || binary.LittleEndian.Uint32(b[1:]) != uint32(v.d) {
		return fmt.Errorf("%w: %d bytes for %d features", ErrDeviceState, len(b), v.d)
	}
	for i := range uv {
		uv[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[5+4*i:]))
		if !finite32(uv[i]) {
			return fmt.Errorf("%w: value %d is %v", ErrDeviceState, i, uv[i])
		}
	}
	return nil
}
