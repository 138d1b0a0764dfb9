package serving

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// Store is what an Owner needs from the model store: the checkpoint of the
// active version, and saving one under a version.
type Store interface {
	LoadCheckpoint() ([]byte, error)
	SaveCheckpointFor(version int64, state []byte) error
}

// Config sets up an Owner.
type Config struct {
	Name            string // the served model's name ([[models]]), on every Model it serves
	Learning        bool   // learn online from labelled readings
	RequantizeEvery int    // updates between re-quantized serving copies
	// OnSwap, if set, is called after every swap of the serving model
	// (install, restore, re-quantization): metrics and hooks follow it.
	OnSwap func(*Model)
	Log    *slog.Logger
	Robust Robust // the learner's defences
	// PerDevice (with Learning) learns one delta per device from the
	// device's own labelled readings (model.Devices) instead of one shared
	// learner; MaxDevices of them stay in memory (0: the default).
	PerDevice      bool
	MaxDevices     int
	MaxDeviceBytes int64 // memory of the resident states (0: the default)
}

// Owner holds the serving model, its learner and its checkpointer. The
// workers read the model with Current (one atomic load); everything that
// changes it goes through the methods below, which keep the model and its
// learner consistent with each other.
type Owner struct {
	cfg Config
	cur atomic.Pointer[Model]

	mu      sync.Mutex // serializes the learner; never held across store I/O
	learner Learner
	ckpt    Checkpointer
	sinceQ  int // updates since the last re-quantization
	// diverged is the watchdog's reason when it froze the learner.
	diverged string

	pd   *perDevice   // per-device learning, nil without it (under mu)
	base *model.Model // the installed version (under mu)

	frozen map[string]bool // who stopped learning (Freeze), under mu
	stop   atomic.Bool     // len(frozen) > 0, for Learn's check without the lock
}

// New returns an Owner with nothing to serve yet.
func New(cfg Config) *Owner {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RequantizeEvery < 1 {
		cfg.RequantizeEvery = 1
	}
	return &Owner{cfg: cfg}
}

// Current is the serving model, nil before the first one.
func (o *Owner) Current() *Model { return o.cur.Load() }

func (o *Owner) swap(m *Model) {
	if m.Name == "" {
		m.Name = o.cfg.Name // a new Model, not yet published
	}
	o.cur.Store(m)
	if o.cfg.OnSwap != nil {
		o.cfg.OnSwap(m)
	}
}

// Serve swaps in sc without a learner change: a model given from outside
// (tests, an embedding program).
func (o *Owner) Serve(sc Scorer, meta Meta) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.swap(NewModel(sc, meta))
}

// SetLearner enables online learning with l (built on the serving model),
// checkpointed through c (may be nil).
func (o *Owner) SetLearner(l Learner, c Checkpointer) {
	o.mu.Lock()
	o.learner, o.ckpt, o.sinceQ, o.diverged = l, c, 0, ""
	o.mu.Unlock()
}

// State is a serving model with its learner, kept by the guarded rollout
// to restore if the model that replaced it does worse.
type State struct {
	Model   *Model
	Learner Learner      // nil without learning
	Base    *model.Model // the installed version, nil if unknown
}

// State returns what is served now.
func (o *Owner) State() State {
	o.mu.Lock()
	defer o.mu.Unlock()
	return State{Model: o.cur.Load(), Learner: o.learner, Base: o.base}
}

// Install serves m, the store's active version, with a learner resumed
// from the store's checkpoint of that version when it has one (and serving
// the learned weights then). It returns what was served before. Start-up,
// an OTA switch and a rollback without a kept state all come here.
func (o *Owner) Install(m *model.Model, st Store) State {
	meta := metaOf(m)
	next := NewModel(NewScorer(m), meta)
	var l Learner
	if o.cfg.Learning && !o.cfg.PerDevice {
		l = NewLearner(m, o.cfg.Robust)
		state, err := st.LoadCheckpoint()
		switch {
		case err == nil:
			if err := l.UnmarshalBinary(state); err != nil {
				o.cfg.Log.Error("checkpoint unreadable; learning starts from the model", "version", m.Version, "err", err)
				l = NewLearner(m, o.cfg.Robust)
			} else if l.Updates() > 0 {
				if l.Counters().Frozen {
					o.cfg.Log.Warn("learning is frozen: the checkpoint was restored after the learner diverged", "version", m.Version)
				}
				o.cfg.Log.Info("learning resumed from checkpoint", "version", m.Version, "updates", l.Updates(), "progressive_loss", l.Progressive())
				if sc, err := l.Serving(); err == nil {
					next = NewModel(sc, meta)
				} else {
					o.cfg.Log.Error("serve the checkpointed weights", "err", err)
				}
			}
		case errors.Is(err, store.ErrNoCheckpoint):
		default:
			o.cfg.Log.Error("load checkpoint; learning starts from the model", "err", err)
		}
	}
	var prune func()
	defer after(&prune)
	o.mu.Lock()
	defer o.mu.Unlock()
	prev := State{Model: o.cur.Load(), Learner: o.learner, Base: o.base}
	o.base = m
	if o.cfg.Learning && o.cfg.PerDevice {
		prune = o.installDevices(m, st)
	}
	o.swap(next)
	if l != nil {
		o.learner, o.ckpt, o.sinceQ, o.diverged = l, versioned{st, m.Version}, 0, ""
	}
	return prev
}

// Restore serves a kept state again (the guarded rollout's verdict), its
// learner checkpointed under version from now on.
func (o *Owner) Restore(s State, st Store, version int64) {
	var prune func()
	defer after(&prune)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.swap(s.Model)
	if s.Base != nil {
		o.base = s.Base
		if o.pd != nil {
			prune = o.installDevices(s.Base, st)
		}
	}
	if s.Learner != nil {
		o.learner, o.ckpt, o.sinceQ, o.diverged = s.Learner, versioned{st, version}, 0, ""
	}
}

// Learned is what one Learn call did.
type Learned struct {
	N           int     // updates made
	Updates     int64   // the learner's total
	Progressive float64 // its running loss
	Err         error   // re-quantization failed (learning went on)
	// Refused are the readings not learned from because a label or a
	// feature was implausible (still predicted): indexes into rs, with
	// why.
	Refused []Refusal
	Frozen  int // labelled readings not learned from: learning is frozen
}

// Refusal is one labelled reading the learner refused.
type Refusal struct {
	Index int
	Err   error
}

// Learn feeds the labelled readings of rs to the learner (predict, then
// learn) and swaps in a re-quantized serving copy every RequantizeEvery
// updates. Without a learner or labels it does nothing.
func (o *Owner) Learn(rs []wire.Reading) Learned {
	var r Learned
	if !o.cfg.Learning || o.stop.Load() {
		return r
	}
	labelled := false
	for i := range rs {
		if rs[i].HasLabel {
			labelled = true
			break
		}
	}
	if !labelled {
		return r
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.learner
	if l == nil {
		return r
	}
	for i := range rs {
		if !rs[i].HasLabel {
			continue
		}
		_, _, err := l.Learn(rs[i].X, rs[i].Label)
		switch {
		case err == nil:
			r.N++
		case errors.Is(err, model.ErrFrozen):
			r.Frozen++
		default:
			r.Refused = append(r.Refused, Refusal{Index: i, Err: err})
		}
	}
	o.sinceQ += r.N
	if o.sinceQ >= o.cfg.RequantizeEvery {
		o.sinceQ = 0
		if sc, err := l.Serving(); err != nil {
			r.Err = fmt.Errorf("re-quantize the learned model: %w", err)
		} else {
			meta := Meta{}
			if cur := o.cur.Load(); cur != nil {
				meta = cur.Meta
			}
			o.swap(NewModel(sc, meta))
		}
	}
	r.Updates, r.Progressive = l.Updates(), l.Progressive()
	return r
}

// Stats are the learner's counters; ok is false without a learner.
func (o *Owner) Stats() (updates int64, progressive float64, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pd != nil {
		return o.pd.updates.Load(), math.NaN(), true
	}
	if o.learner == nil {
		return 0, 0, false
	}
	return o.learner.Updates(), o.learner.Progressive(), true
}

// Checkpointed is what one Checkpoint call did.
type Checkpointed struct {
	Written bool
	// Diverged is set when the watchdog found the learner diverged: the
	// last good checkpoint was restored (and served), learning frozen, and
	// that state written.
	Diverged *model.Verdict
}

// Checkpoint saves the learner's state after the divergence watchdog
// judged it (see Learner.Watch). The state is taken under the lock,
// written after it.
func (o *Owner) Checkpoint() (Checkpointed, error) {
	var r Checkpointed
	o.mu.Lock()
	if pd := o.pd; pd != nil {
		o.mu.Unlock()
		return o.checkpointDevices(pd)
	}
	l, c := o.learner, o.ckpt
	if l == nil || c == nil {
		o.mu.Unlock()
		return r, nil
	}
	b, v, err := l.Watch()
	if v.Diverged {
		r.Diverged = &v
		o.diverged = v.Reason
		o.sinceQ = 0
		if sc, qerr := l.Serving(); qerr == nil {
			meta := Meta{}
			if cur := o.cur.Load(); cur != nil {
				meta = cur.Meta
			}
			o.swap(NewModel(sc, meta))
		} else if err == nil {
			err = qerr
		}
	}
	o.mu.Unlock()
	if err == nil {
		err = c.SaveCheckpoint(b)
	}
	if err != nil {
		return r, fmt.Errorf("checkpoint: %w", err)
	}
	r.Written = true
	return r, nil
}

// LearnerHealth is the learner's state for the status report and /healthz.
type LearnerHealth struct {
	Counters
	Active   bool   // a learner is running
	Diverged string // why the watchdog froze it, this run; "" when it did not
}

// Health reports the learner's counters and whether it is frozen.
func (o *Owner) Health() LearnerHealth {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.learner == nil {
		return LearnerHealth{}
	}
	return LearnerHealth{Counters: o.learner.Counters(), Active: true, Diverged: o.diverged}
}

// versioned saves a learner's state only while its model version is the
// active one: a learner replaced by an OTA switch never writes over its
// successor's checkpoint.
type versioned struct {
	st Store
	v  int64
}

func (c versioned) SaveCheckpoint(b []byte) error {
	if err := c.st.SaveCheckpointFor(c.v, b); err != nil && !errors.Is(err, store.ErrNotActive) {
		return err
	}
	return nil
}
