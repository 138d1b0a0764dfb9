package model

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// fleetCase is a fleet whose devices share the fleet's weights, each with
// its own offset and its own slope on one feature.
type fleetCase struct {
	m      *Model
	d      int
	off    []float64 // per device, target units
	slope  []float64 // per device, on feature dev % d, per standardized unit
	noise  float64
	rng    *rand.Rand
	logist bool
}

func newFleetCase(devices, d int, seed uint64) *fleetCase {
	rng := rand.New(rand.NewPCG(seed, 1))
	f := &fleetCase{d: d, noise: 0.3, rng: rng, off: make([]float64, devices), slope: make([]float64, devices)}
	m := &Model{Version: 7, Target: "y", Loss: Squared, Scheme: F32, Bias: 10,
		Mean: make([]float32, d), Std: make([]float32, d), Weights: make([]float32, d)}
	for i := range d {
		m.Features = append(m.Features, fmt.Sprintf("f%d", i))
		m.Mean[i] = float32(rng.Float64()*10 - 5)
		m.Std[i] = float32(0.5 + rng.Float64()*2.5)
		m.Weights[i] = float32(rng.NormFloat64())
	}
	for i := range devices {
		f.off[i] = rng.NormFloat64() * 1.5
		f.slope[i] = rng.NormFloat64() * 0.7
	}
	f.m = m
	// The fleet model's training statistics, from readings of every device
	// (its training data came from them).
	var ys []float64
	m.Min, m.Max = make([]float32, d), make([]float32, d)
	for i := range d {
		m.Min[i], m.Max[i] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for dev := range devices {
		for range 5 {
			x, y := f.reading(dev)
			ys = append(ys, y)
			for i, v := range x {
				m.Min[i], m.Max[i] = min(m.Min[i], v), max(m.Max[i], v)
			}
		}
	}
	var s, s2 float64
	m.TargetMin, m.TargetMax = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, y := range ys {
		s += y
		s2 += y * y
		m.TargetMin, m.TargetMax = min(m.TargetMin, float32(y)), max(m.TargetMax, float32(y))
	}
	mean := s / float64(len(ys))
	m.TargetMean, m.TargetStd = float32(mean), float32(math.Sqrt(s2/float64(len(ys))-mean*mean))
	return f
}

// reading returns one reading of device dev and its label.
func (f *fleetCase) reading(dev int) ([]float32, float64) {
	x := make([]float32, f.d)
	y := float64(f.m.Bias) + f.off[dev]
	for i := range f.d {
		s := f.rng.NormFloat64()
		x[i] = f.m.Mean[i] + f.m.Std[i]*float32(s)
		y += float64(f.m.Weights[i]) * s
		if i == dev%f.d {
			y += f.slope[dev] * s
		}
	}
	return x, y + f.noise*f.rng.NormFloat64()
}

// olsRMSE fits least squares of y on [x, 1] to train and returns the sum
// of squared errors on test.
func olsSSE(trainX [][]float32, trainY []float64, testX [][]float32, testY []float64) float64 {
	d := len(trainX[0]) + 1
	a := mat.NewDense(len(trainX), d, nil)
	for r, x := range trainX {
		for i, v := range x {
			a.Set(r, i, float64(v))
		}
		a.Set(r, d-1, 1)
	}
	var beta mat.VecDense
	if err := beta.SolveVec(a, mat.NewVecDense(len(trainY), trainY)); err != nil {
		panic(err)
	}
	var sse float64
	for r, x := range testX {
		p := beta.AtVec(d - 1)
		for i, v := range x {
			p += beta.AtVec(i) * float64(v)
		}
		sse += (p - testY[r]) * (p - testY[r])
	}
	return sse
}

// TestDevicesQuality: 2,000 devices, 100 labelled readings each
// (interleaved, as they arrive), then 50 unlabelled: the per-device RMSE
// is within 1.1x of each device's own least-squares fit, and far below
// what one shared learner reaches.
func TestDevicesQuality(t *testing.T) {
	for _, d := range []int{8, 32} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			const devices, labelled, unlabelled = 2000, 100, 50
			f := newFleetCase(devices, d, uint64(d))
			devs, err := NewDevices(f.m, DeviceConfig{})
			if err != nil {
				t.Fatal(err)
			}
			shared := NewLearner(f.m, LearnerConfig{})
			trainX := make([][][]float32, devices)
			trainY := make([][]float64, devices)
			for range labelled {
				for dev := range devices {
					x, y := f.reading(dev)
					trainX[dev] = append(trainX[dev], x)
					trainY[dev] = append(trainY[dev], y)
					if _, err := devs.Learn(fmt.Sprint(dev), x, float32(y)); err != nil {
						t.Fatalf("device %d: %v", dev, err)
					}
					shared.Learn(x, float32(y))
				}
			}
			var sseDev, sseShared, sseFleet, sseOLS float64
			fleet := NewPredictor(f.m)
			for dev := range devices {
				var tx [][]float32
				var ty []float64
				for range unlabelled {
					x, y := f.reading(dev)
					tx, ty = append(tx, x), append(ty, y)
					p, ok := devs.Predict(fmt.Sprint(dev), x)
					if !ok {
						t.Fatalf("device %d has no weights", dev)
					}
					sseDev += sq(float64(p) - y)
					sseShared += sq(float64(shared.Predict(x)) - y)
					sseFleet += sq(float64(fleet.Predict(x)) - y)
				}
				sseOLS += olsSSE(trainX[dev], trainY[dev], tx, ty)
			}
			n := float64(devices * unlabelled)
			rmse := func(s float64) float64 { return math.Sqrt(s / n) }
			t.Logf("%d features: RMSE per-device %.4f, per-device least squares %.4f (ratio %.3f), shared learner %.4f, fleet model %.4f, noise %.2f",
				d, rmse(sseDev), rmse(sseOLS), rmse(sseDev)/rmse(sseOLS), rmse(sseShared), rmse(sseFleet), f.noise)
			if r := rmse(sseDev) / rmse(sseOLS); r > 1.1 {
				t.Errorf("per-device RMSE %.4f is %.3fx the least-squares optimum %.4f", rmse(sseDev), r, rmse(sseOLS))
			}
			if rmse(sseDev) > rmse(sseShared)/2 {
				t.Errorf("per-device RMSE %.4f not well below the shared learner's %.4f", rmse(sseDev), rmse(sseShared))
			}
			if st := devs.Stats(); st.Refused != 0 || st.Resident != devices {
				t.Errorf("stats %+v: honest readings refused", st)
			}
		})
	}
}

func sq(v float64) float64 { return v * v }

// TestDevicesLifecycle: LRU eviction in batches to the store callback,
// loading on demand, Dirty and Unsaved, Reset, Rebase, and bad input.
func TestDevicesLifecycle(t *testing.T) {
	f := newFleetCase(50, 4, 3)
	stored := map[string]DeviceSnapshot{}
	var batches []int
	cfg := DeviceConfig{
		MaxResident: 10, EvictBatch: 5,
		Evict: func(b []DeviceSnapshot) error {
			batches = append(batches, len(b))
			for _, s := range b {
				stored[s.Device] = s
			}
			return nil
		},
		Load: func(dev string) (*DeviceSnapshot, error) {
			if s, ok := stored[dev]; ok {
				return &s, nil
			}
			return nil, nil
		},
	}
	devs, err := NewDevices(f.m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Only device 0 learns: it predicts with its own weights, device 1
	// with none (the caller serves the fleet's prediction).
	x, y := f.reading(0)
	devs.Learn("0", x, float32(y))
	if _, ok := devs.Predict("1", x); ok {
		t.Error("a device that learned nothing has weights")
	}
	p0, ok := devs.Predict("0", x)
	if !ok || math.Abs(float64(p0)-y) >= math.Abs(float64(NewPredictor(f.m).Predict(x))-y) {
		t.Errorf("device 0 after one reading: %v %v, label %v", p0, ok, y)
	}
	for dev := range 50 {
		for range 20 {
			x, y := f.reading(dev)
			if _, err := devs.Learn(fmt.Sprint(dev), x, float32(y)); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := devs.Stats()
	if st.Resident != 10 || len(batches) == 0 || slices.Max(batches) < 5 {
		t.Errorf("stats %+v, evicted in batches %v", st, batches)
	}
	// An evicted device comes back from the store with its state.
	s3 := stored["3"]
	if s3.Updates != 20 || s3.Version != f.m.Version {
		t.Errorf("stored state of device 3: %+v", s3)
	}
	if snap, ok, err := devs.Snapshot("3"); err != nil || !ok || snap.Updates != 20 || !bytes.Equal(snap.State, s3.State) {
		t.Errorf("snapshot %+v %v %v", snap, ok, err)
	}
	// Checkpoint saves every changed state once; a failed save keeps
	// them changed.
	failed := errors.New("disk full")
	tried := 0
	n, err := devs.Checkpoint(func(b []DeviceSnapshot) error { tried = len(b); return failed })
	if !errors.Is(err, failed) || tried == 0 {
		t.Errorf("failed checkpoint: %d %v", n, err)
	}
	save := func(b []DeviceSnapshot) error {
		for _, s := range b {
			stored[s.Device] = s
		}
		return nil
	}
	if n != 0 {
		t.Errorf("failed checkpoint reports %d saved", n)
	}
	if again, err := devs.Checkpoint(save); again != tried || err != nil {
		t.Errorf("after a failed save: %d saved, want %d (%v)", again, tried, err)
	}
	// Batches of CheckpointBatch: every device learns once more.
	chunked, _ := NewDevices(f.m, DeviceConfig{CheckpointBatch: 7})
	for dev := range 20 {
		x, y := f.reading(dev)
		chunked.Learn(fmt.Sprint(dev), x, float32(y))
	}
	var sizes []int
	if n, err := chunked.Checkpoint(func(b []DeviceSnapshot) error { sizes = append(sizes, len(b)); return nil }); n != 20 || err != nil ||
		!slices.Equal(sizes, []int{7, 7, 6}) {
		t.Errorf("chunked checkpoint: %d %v %v", n, err, sizes)
	}
	if again, _ := devs.Checkpoint(save); again != 0 {
		t.Errorf("%d saved twice", again)
	}
	// Reset forgets the resident copy.
	devs.Reset("49")
	delete(stored, "49")
	if _, ok := devs.Predict("49", x); ok {
		t.Error("device 49 still has weights after Reset")
	}
	// A new version drops every delta; stored states of the old version
	// are ignored.
	m2 := f.m.Clone()
	m2.Version = 8
	if err := devs.Rebase(m2); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"3", "48"} {
		if _, ok := devs.Predict(dev, x); ok {
			t.Errorf("device %s kept its delta across versions", dev)
		}
	}
	// A damaged stored state is an error, not a crash.
	stored["7"] = DeviceSnapshot{Device: "7", Version: 8, State: []byte{1, 2, 3}}
	if _, err := devs.Learn("7", x, 1); !errors.Is(err, ErrDeviceState) {
		t.Errorf("bad state: %v", err)
	}
}

// TestDevicesRobust: NaN, implausible labels and wild labels never move a
// device far; honest large offsets are learnt.
func TestDevicesRobust(t *testing.T) {
	f := newFleetCase(1, 4, 5)
	devs, _ := NewDevices(f.m, DeviceConfig{})
	x, _ := f.reading(0)
	if _, err := devs.Learn("a", x, float32(math.NaN())); !errors.Is(err, ErrNotFinite) {
		t.Errorf("NaN: %v", err)
	}
	if _, err := devs.Learn("a", x, 1e30); !errors.Is(err, ErrImplausible) {
		t.Errorf("1e30: %v", err)
	}
	if _, ok := devs.Predict("a", x); ok {
		t.Error("refused readings created a delta")
	}
	// A label at the edge of the plausible range moves the device by at
	// most MaxResidual target deviations.
	fleet := float64(NewPredictor(f.m).Predict(x))
	hi := float32(2*f.m.TargetMax - f.m.TargetMin - 1)
	devs.Learn("b", x, hi)
	p, _ := devs.Predict("b", x)
	if move := float64(p) - fleet; move > 4*float64(f.m.TargetStd)+1e-3 || move <= 0 {
		t.Errorf("one wild label moved device b by %v (target std %v)", move, f.m.TargetStd)
	}
	// An honest offset of three target deviations is learnt.
	off := 3 * float64(f.m.TargetStd)
	f.off[0] = off
	for range 100 {
		x, y := f.reading(0)
		if _, err := devs.Learn("c", x, float32(y)); err != nil {
			t.Fatalf("honest reading refused: %v", err)
		}
	}
	var se float64
	for range 100 {
		x, y := f.reading(0)
		p, _ := devs.Predict("c", x)
		se += sq(float64(p) - y)
	}
	// The exported correction names the offset and the device's slope
	// (feature 0, per raw unit).
	snap, _, _ := devs.Snapshot("c")
	c, err := DeviceDelta(f.m, snap.State)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(c.Offset-off) > 0.3 || math.Abs(c.Slopes["f0"]-f.slope[0]/float64(f.m.Std[0])) > 0.2 {
		t.Errorf("correction %+v, want offset %v and f0 slope %v", c, off, f.slope[0]/float64(f.m.Std[0]))
	}
	if rmse := math.Sqrt(se / 100); rmse > 2*f.noise {
		t.Errorf("offset %v: RMSE %v", off, rmse)
	}
}

// TestDevicesLogistic: a logistic fleet whose devices each shift the
// logit: every device's log loss beats the fleet's.
func TestDevicesLogistic(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	m := &Model{Version: 1, Loss: Logistic, Scheme: F32, Features: []string{"a", "b"},
		Mean: []float32{0, 0}, Std: []float32{1, 1}, Weights: []float32{1, -1}}
	devs, err := NewDevices(m, DeviceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fleet := NewPredictor(m)
	var lossDev, lossFleet float64
	for dev := range 50 {
		shift := rng.NormFloat64() * 2
		name := fmt.Sprint(dev)
		for i := range 300 {
			x := []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64())}
			var y float32
			if rng.Float64() < float64(Sigmoid(x[0]-x[1]+float32(shift))) {
				y = 1
			}
			if i < 200 {
				devs.Learn(name, x, y)
				continue
			}
			p, _ := devs.Predict(name, x)
			lossDev += logLoss(logit(p), float64(y))
			lossFleet += logLoss(logit(fleet.Predict(x)), float64(y))
		}
	}
	t.Logf("log loss per reading: per-device %.4f, fleet %.4f", lossDev/5000, lossFleet/5000)
	if lossDev >= lossFleet*0.9 {
		t.Errorf("per-device log loss %v not below the fleet's %v", lossDev, lossFleet)
	}
}

func logit(p float32) float64 { return math.Log(float64(p) / (1 - float64(p))) }

// residentBytes returns what each of n resident devices of a d-feature
// model costs, each after one labelled reading: the Go heap's growth plus
// the state slabs mapped outside it.
func residentBytes(n, d int) float64 {
	f := newFleetCase(1, d, 1)
	xs := make([][]float32, 64)
	ys := make([]float32, 64)
	for i := range xs {
		x, y := f.reading(0)
		xs[i], ys[i] = x, float32(y)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("site-a/device-%05d", i)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	devs, _ := NewDevices(f.m, DeviceConfig{MaxResident: n, Margin: -1})
	for i, name := range names {
		if _, err := devs.Learn(name, xs[i%64], ys[i%64]); err != nil {
			panic(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := devs.Stats()
	runtime.KeepAlive(devs)
	runtime.KeepAlive(names)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	return float64(heap+st.OffHeap) / float64(n)
}

// BenchmarkDevicesMemory measures what a resident device costs: 10,000
// devices of a 32-feature model (a state of 2,376 bytes).
func BenchmarkDevicesMemory(b *testing.B) {
	const n = 10_000
	var perDevice float64
	for b.Loop() {
		perDevice = residentBytes(n, 32)
	}
	b.ReportMetric(perDevice, "bytes/device")
	b.ReportMetric(perDevice*n/(1<<20), "MiB/10k-devices")
}

// TestDevicesMemory: a resident device of a 32-feature model costs little
// more than its state (2,376 bytes): no copies, maps or padding that grow
// with the model. The bound is generous (the measure includes whatever
// else the process allocated meanwhile).
func TestDevicesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 10,000 device states")
	}
	const state = 4 * (33 + 33*34/2)
	if got := residentBytes(10_000, 32); got > 1.25*state {
		t.Errorf("%.0f bytes per resident device, want at most %.0f (the state is %d)", got, 1.25*state, state)
	}
}

// BenchmarkDevicesLearn is one labelled reading of a 32-feature model.
func BenchmarkDevicesLearn(b *testing.B) {
	f := newFleetCase(1000, 32, 1)
	devs, _ := NewDevices(f.m, DeviceConfig{})
	x, y := f.reading(0)
	names := make([]string, 1000)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	i := 0
	for b.Loop() {
		devs.Learn(names[i%1000], x, float32(y))
		i++
	}
}

// BenchmarkSharedLearn is BenchmarkDevicesLearn's baseline: one labelled
// reading of the same 32-feature model through the shared Learner.
func BenchmarkSharedLearn(b *testing.B) {
	f := newFleetCase(1000, 32, 1)
	l := NewLearner(f.m, LearnerConfig{})
	x, y := f.reading(0)
	for b.Loop() {
		l.Learn(x, float32(y))
	}
}

// TestDevicesConcurrent: workers learning and predicting, devices
// evicted to and loaded from a store, while checkpoints run: no update
// is lost (run with -race).
func TestDevicesConcurrent(t *testing.T) {
	f := newFleetCase(64, 4, 11)
	var mu sync.Mutex
	stored := map[string]DeviceSnapshot{}
	save := func(b []DeviceSnapshot) error {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range b {
			stored[s.Device] = s
		}
		return nil
	}
	load := func(dev string) (*DeviceSnapshot, error) {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := stored[dev]; ok {
			return &s, nil
		}
		return nil, nil
	}
	devs, _ := NewDevices(f.m, DeviceConfig{MaxResident: 16, EvictBatch: 4, Evict: save, Load: load})
	readings := make([][]float32, 64)
	labels := make([]float32, 64)
	for i := range readings {
		x, y := f.reading(i)
		readings[i], labels[i] = x, float32(y)
	}
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			for i := range 500 {
				dev := (w*16 + i) % 64 // each worker its own 16 devices
				devs.Learn(strconv.Itoa(dev), readings[dev], labels[dev])
				devs.Predict(strconv.Itoa(dev), readings[dev])
			}
			done <- struct{}{}
		}()
	}
	for range 4 {
		if _, err := devs.Checkpoint(save); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	if _, err := devs.Checkpoint(save); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range stored {
		total += s.Updates
	}
	if total != 2000 || len(stored) != 64 {
		t.Errorf("%d updates saved across %d devices, want 2000 across 64", total, len(stored))
	}
}

// TestDevicesWidthBounds: the states in memory are bounded in bytes as
// well as in count, so a wide model keeps fewer devices resident (the
// rest are evicted to the store); models wider than MaxDeviceFeatures are
// refused, since each state grows with the square of the width.
func TestDevicesWidthBounds(t *testing.T) {
	f := newFleetCase(30, 100, 5)
	state := int64(4 * stateLen(100)) // 20,604 bytes
	evicted := 0
	devs, err := NewDevices(f.m, DeviceConfig{MaxResident: 1000, MaxResidentBytes: 10 * state, EvictBatch: 1,
		Evict: func(b []DeviceSnapshot) error { evicted += len(b); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	for dev := range 30 {
		x, y := f.reading(dev)
		devs.Learn(strconv.Itoa(dev), x, float32(y))
	}
	if st := devs.Stats(); st.Resident != 10 || evicted+st.Pending != 20 {
		t.Errorf("resident %d, evicted %d, pending %d: want 10 resident of 30 (10 states' bytes), 20 evicted",
			st.Resident, evicted, st.Pending)
	}
	// Rebased onto a narrower model, the byte bound allows more.
	narrow := newFleetCase(30, 4, 6)
	narrow.m.Version = 8
	if err := devs.Rebase(narrow.m); err != nil {
		t.Fatal(err)
	}
	for dev := range 30 {
		x, y := narrow.reading(dev)
		devs.Learn(strconv.Itoa(dev), x, float32(y))
	}
	if st := devs.Stats(); st.Resident != 30 {
		t.Errorf("after a rebase onto 4 features: %d resident, want 30", st.Resident)
	}
	wide := newFleetCase(2, MaxDeviceFeatures+1, 7)
	if _, err := NewDevices(wide.m, DeviceConfig{}); err == nil || !strings.Contains(err.Error(), "at most 512 features") {
		t.Errorf("a %d-feature model: %v", MaxDeviceFeatures+1, err)
	}
	if err := devs.Rebase(wide.m); err == nil {
		t.Error("rebased onto a model too wide for per-device learning")
	}
}
