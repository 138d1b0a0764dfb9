package serving

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// devStore is memStore with device states, in memory.
type devStore struct {
	memStore
	dev map[string]model.DeviceSnapshot
}

func (d *devStore) LoadDevice(name string) (*model.DeviceSnapshot, error) {
	if s, ok := d.dev[name]; ok {
		return &s, nil
	}
	return nil, nil
}

func (d *devStore) SaveDevices(states []model.DeviceSnapshot) error {
	for _, s := range states {
		s.State = append([]byte(nil), s.State...)
		d.dev[s.Device] = s
	}
	return nil
}

func (d *devStore) PruneDevices(keep int64) (int, error) {
	n := 0
	for k, s := range d.dev {
		if s.Version != keep {
			delete(d.dev, k)
			n++
		}
	}
	return n, nil
}

// Per-device learning through the Owner: a device with its own offset
// moves its predictions and no other device's; a checkpoint stores only
// the changed device; a device predicted before it had a state learns
// later all the same; a new version rebases every device and prunes the
// stored states of the old one.
func TestOwnerPerDevice(t *testing.T) {
	o := New(Config{Learning: true, PerDevice: true})
	st := &devStore{memStore: memStore{active: 1, ckpt: map[int64][]byte{}}, dev: map[string]model.DeviceSnapshot{}}
	o.Install(lin(1), st)
	if !o.PerDevice() {
		t.Fatal("per-device learning is off")
	}
	fleet := o.Current().Scorer
	rs := make([]wire.Reading, 40)
	for i := range rs {
		x := []float32{float32(i%7) - 3, float32(i%5) - 2}
		rs[i] = wire.Reading{X: x, Label: fleet.Predict(x) + 5, HasLabel: true}
	}
	if r := o.LearnDevice("a", rs); r.N != len(rs) || r.Updates != int64(len(rs)) {
		t.Fatalf("learned %+v", r)
	}
	probe := []wire.Reading{{X: []float32{1, 1}}}
	f := fleet.Predict(probe[0].X)
	pa, pb := []float32{f}, []float32{f}
	o.PredictDevice("a", o.Current(), probe, pa)
	o.PredictDevice("b", o.Current(), probe, pb)
	if math.Abs(float64(pa[0]-f-5)) > 0.5 || pb[0] != f {
		t.Errorf("fleet %v: device a %v (want about +5), device b %v (want the fleet's)", f, pa[0], pb[0])
	}
	if ds, u, ok := o.DeviceHealth(); !ok || ds.Resident != 1 || u != int64(len(rs)) {
		t.Errorf("device health %+v, %d updates", ds, u)
	}
	if r, err := o.Checkpoint(); err != nil || !r.Written || len(st.dev) != 1 || st.dev["a"].Version != 1 {
		t.Fatalf("checkpoint %+v %v: stored %v", r, err, st.dev)
	}
	if r, _ := o.Checkpoint(); r.Written {
		t.Error("a checkpoint without changes wrote")
	}

	// b was predicted without a state (remembered as such): its first
	// labelled readings give it one.
	o.LearnDevice("b", rs)
	pb[0] = f
	o.PredictDevice("b", o.Current(), probe, pb)
	if math.Abs(float64(pb[0]-f-5)) > 0.5 {
		t.Errorf("device b predicts %v after learning, want about %v", pb[0], f+5)
	}

	st.active = 2
	o.Install(lin(2), st)
	pa[0] = f
	o.PredictDevice("a", o.Current(), probe, pa)
	if pa[0] != f || len(st.dev) != 0 {
		t.Errorf("after a new version device a predicts %v (want the fleet's %v), stored states %v (want none)", pa[0], f, st.dev)
	}
}

// BenchmarkOwnerDevices is one labelled reading of a 32-feature model
// served as a worker serves it (the fleet's prediction, PredictDevice,
// LearnDevice) from 10,000 devices in turn, with per-device learning and
// with the shared learner. It reports the memory per resident device
// after each device has learned once: the Go heap's growth, the Owner's
// own bookkeeping included, plus the state slabs kept outside the heap.
func BenchmarkOwnerDevices(b *testing.B) {
	const n, d = 10_000, 32
	rng := rand.New(rand.NewPCG(1, 2))
	m := &model.Model{Version: 1, Target: "y", Loss: model.Squared, Scheme: model.F32, Bias: 1,
		Mean: make([]float32, d), Std: make([]float32, d), Weights: make([]float32, d)}
	for i := range d {
		m.Features = append(m.Features, fmt.Sprintf("f%02d", i))
		m.Std[i], m.Weights[i] = 1, float32(i+1)/d
	}
	rs := make([]wire.Reading, 64)
	for i := range rs {
		x := make([]float32, d)
		var y float32
		for j := range x {
			x[j] = float32(rng.NormFloat64())
			y += m.Weights[j] * x[j]
		}
		rs[i] = wire.Reading{X: x, Label: y + 1 + float32(rng.NormFloat64()), HasLabel: true}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("site-a/device-%05d", i)
	}
	for _, mode := range []string{"shared", "per_device"} {
		b.Run(mode, func(b *testing.B) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			o := New(Config{Learning: true, PerDevice: mode == "per_device", MaxDevices: n, RequantizeEvery: 1000})
			o.Install(m, &devStore{memStore: memStore{active: 1, ckpt: map[int64][]byte{}}, dev: map[string]model.DeviceSnapshot{}})
			preds := make([]float32, 1)
			one := func(i int) {
				r := rs[i%len(rs) : i%len(rs)+1]
				sv := o.Current()
				preds[0] = sv.Scorer.Predict(r[0].X)
				o.PredictDevice(names[i%n], sv, r, preds)
				o.LearnDevice(names[i%n], r)
			}
			for i := range n {
				one(i)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perDevice := -1.0
			if ds, _, ok := o.DeviceHealth(); ok {
				if ds.Resident != n {
					b.Fatalf("%d resident devices, want %d", ds.Resident, n)
				}
				perDevice = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)+ds.OffHeap) / n
			}
			i := 0
			for b.Loop() {
				one(i)
				i++
			}
			if perDevice >= 0 {
				b.ReportMetric(perDevice, "bytes/device") // after b.Loop, which resets the metrics
			}
		})
	}
}

// A device whose id the store refuses (here too long) does not learn:
// its labelled readings are refused with the store's reason, and the
// checkpoint of the other devices goes on.
func TestOwnerPerDeviceBadID(t *testing.T) {
	o := New(Config{Learning: true, PerDevice: true})
	st := &devStore{memStore: memStore{active: 1, ckpt: map[int64][]byte{}}, dev: map[string]model.DeviceSnapshot{}}
	o.Install(lin(1), st)
	rs := []wire.Reading{{X: []float32{1, 2}, Label: 9, HasLabel: true}, {X: []float32{1, 2}}}
	long := strings.Repeat("x", store.MaxDeviceID+1)
	r := o.LearnDevice(long, rs)
	if r.N != 0 || len(r.Refused) != 1 || r.Refused[0].Index != 0 || !errors.Is(r.Refused[0].Err, store.ErrBadDevice) {
		t.Errorf("learned %+v, want reading 0 refused as a bad device id", r)
	}
	if r := o.LearnDevice("ok", rs); r.N != 1 {
		t.Errorf("learned %+v", r)
	}
	if _, err := o.Checkpoint(); err != nil || len(st.dev) != 1 {
		t.Errorf("checkpoint: %v, stored %d states, want 1", err, len(st.dev))
	}
}
