package serving

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// DeviceStore keeps the per-device learning states of one model (a
// store.Model handle).
type DeviceStore interface {
	LoadDevice(device string) (*model.DeviceSnapshot, error)
	SaveDevices(states []model.DeviceSnapshot) error
	PruneDevices(keep int64) (int, error)
}

// perDevice is the per-device learning of an Owner (Config.PerDevice):
// model.Devices over the active version, its states kept in ds.
type perDevice struct {
	dev     *model.Devices
	ds      DeviceStore
	updates atomic.Int64 // readings learned from, this run

	// none are devices known to have no state of the current version:
	// their predictions skip the store lookup (model.Devices loads on
	// every miss, under its lock). A device leaves it when it learns
	// (its readings are predicted and learned in order by one worker);
	// it is cleared on a rebase and when it grows past noneMax. It holds
	// 64-bit hashes of the ids, not the ids: a fleet whose devices mostly
	// send no labels would otherwise keep a second copy of every id. Two
	// ids with the same hash (less than one chance in 10^9 among 100,000)
	// would only cost the one with a state its own predictions until its
	// next labelled reading.
	noneMu sync.Mutex
	none   map[uint64]struct{}
}

// noneSeed keys the hashes of perDevice.none.
var noneSeed = maphash.MakeSeed()

// noneMax bounds perDevice.none.
const noneMax = 100_000

func (pd *perDevice) known(device string) bool {
	h := maphash.String(noneSeed, device)
	pd.noneMu.Lock()
	defer pd.noneMu.Unlock()
	_, ok := pd.none[h]
	return ok
}

func (pd *perDevice) setNone(device string, none bool) {
	h := maphash.String(noneSeed, device)
	pd.noneMu.Lock()
	defer pd.noneMu.Unlock()
	switch {
	case !none:
		delete(pd.none, h)
	case len(pd.none) >= noneMax || pd.none == nil:
		pd.none = map[uint64]struct{}{h: {}}
	default:
		pd.none[h] = struct{}{}
	}
}

// deviceStoreOf is the per-device store behind st: the default model's
// handle of a *store.Store, or st itself when it is a DeviceStore.
func deviceStoreOf(st Store) DeviceStore {
	switch s := st.(type) {
	case DeviceStore:
		return s
	case interface{ Default() *store.Model }:
		return s.Default()
	}
	return nil
}

// installDevices starts per-device learning on m, or rebases it onto m (a
// new version drops every device's delta: see model.Devices.Rebase). It is
// called under o.mu and returns what the caller runs after unlocking (nil
// if nothing): pruning the stored states of other versions, store I/O.
func (o *Owner) installDevices(m *model.Model, st Store) (prune func()) {
	ds := deviceStoreOf(st)
	if ds == nil {
		o.cfg.Log.Error("per-device learning needs a store with device states; learning is off")
		return nil
	}
	if o.pd != nil && o.pd.dev.Version() == m.Version {
		return nil
	}
	if o.pd != nil {
		if err := o.pd.dev.Rebase(m); err != nil {
			o.cfg.Log.Error("per-device learning: rebase", "version", m.Version, "err", err)
			o.pd = nil
			return nil
		}
		o.pd.ds = ds
		o.pd.noneMu.Lock()
		o.pd.none = nil
		o.pd.noneMu.Unlock()
	} else {
		dev, err := model.NewDevices(m, model.DeviceConfig{MaxResident: o.cfg.MaxDevices, MaxResidentBytes: o.cfg.MaxDeviceBytes,
			Margin: o.cfg.Robust.Margin, Load: ds.LoadDevice, Evict: ds.SaveDevices})
		if err != nil {
			o.cfg.Log.Error("per-device learning is off for this model", "version", m.Version, "err", err)
			return nil
		}
		o.pd = &perDevice{dev: dev, ds: ds}
	}
	return func() {
		if n, err := ds.PruneDevices(m.Version); err != nil {
			o.cfg.Log.Error("prune device states of other versions", "err", err)
		} else if n > 0 {
			o.cfg.Log.Info("device states of other versions dropped (deltas do not carry over)", "states", n, "version", m.Version)
		}
	}
}

// after runs f, if any (deferred before the unlock, it runs after it).
func after(f *func()) {
	if *f != nil {
		(*f)()
	}
}

// PerDevice reports whether the Owner learns per device.
func (o *Owner) PerDevice() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pd != nil
}

// PredictDevice overwrites preds[i] with device's own prediction for
// rs[i] once the device has learned (per-device learning only; the fleet's
// prediction stays otherwise). sv is the served model the readings were
// decoded for: a device delta of another version is not applied.
func (o *Owner) PredictDevice(device string, sv *Model, rs []wire.Reading, preds []float32) {
	o.mu.Lock()
	pd := o.pd
	o.mu.Unlock()
	if pd == nil || sv == nil || pd.dev.Version() != sv.Version() {
		return
	}
	if pd.known(device) {
		return
	}
	w := pd.dev.Width()
	for i := range rs {
		if len(rs[i].X) != w {
			continue
		}
		p, ok := pd.dev.Predict(device, rs[i].X)
		if !ok {
			pd.setNone(device, true)
			return
		}
		preds[i] = p
	}
}

// LearnDevice feeds the labelled readings of rs, all from device, to the
// learner: device's own with per-device learning, else the shared one
// (Learn).
func (o *Owner) LearnDevice(device string, rs []wire.Reading) Learned {
	o.mu.Lock()
	pd := o.pd
	o.mu.Unlock()
	if pd == nil {
		return o.Learn(rs)
	}
	var r Learned
	if o.stop.Load() {
		return r
	}
	// An id the store refuses would fail every checkpoint batch its
	// state is in: such a device does not learn.
	badID := store.CheckDevice(device)
	if badID == nil {
		pd.setNone(device, false)
	}
	w := pd.dev.Width()
	for i := range rs {
		if !rs[i].HasLabel {
			continue
		}
		if badID != nil {
			r.Refused = append(r.Refused, Refusal{Index: i, Err: badID})
			continue
		}
		if len(rs[i].X) != w {
			r.Refused = append(r.Refused, Refusal{Index: i, Err: fmt.Errorf("%d features, the model has %d", len(rs[i].X), w)})
			continue
		}
		_, err := pd.dev.Learn(device, rs[i].X, rs[i].Label)
		switch {
		case err == nil:
			r.N++
		case errors.Is(err, model.ErrFrozen):
			r.Frozen++
		default:
			r.Refused = append(r.Refused, Refusal{Index: i, Err: err})
		}
	}
	r.Updates = pd.updates.Add(int64(r.N))
	r.Progressive = math.NaN() // no shared running loss
	return r
}

// checkpointDevices saves the states of the devices that changed since
// the last checkpoint, in batches.
func (o *Owner) checkpointDevices(pd *perDevice) (Checkpointed, error) {
	n, err := pd.dev.Checkpoint(pd.ds.SaveDevices)
	if err != nil {
		return Checkpointed{Written: n > 0}, fmt.Errorf("checkpoint device states: %w", err)
	}
	return Checkpointed{Written: n > 0}, nil
}

// DeviceHealth are per-device learning's counters; ok is false without it.
func (o *Owner) DeviceHealth() (st model.DeviceStats, updates int64, ok bool) {
	o.mu.Lock()
	pd := o.pd
	o.mu.Unlock()
	if pd == nil {
		return model.DeviceStats{}, 0, false
	}
	return pd.dev.Stats(), pd.updates.Load(), true
}
