package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/linnet-edge/linnet/model"
)

func TestDeviceStates(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTest(t, path, Options{Now: func() time.Time { return now }})
	hv, _ := s.Model("hvac")
	// 2,500 devices in batches of 500, one transaction each.
	for b := range 5 {
		var batch []model.DeviceSnapshot
		for i := range 500 {
			n := b*500 + i
			batch = append(batch, model.DeviceSnapshot{Device: fmt.Sprintf("dev-%04d", n), Version: 12,
				Updates: int64(n), Last: now.Add(-time.Minute), State: []byte(fmt.Sprint(n))})
		}
		if err := hv.SaveDevices(batch); err != nil {
			t.Fatal(err)
		}
	}
	list, err := hv.Devices()
	if err != nil || len(list) != 2500 {
		t.Fatalf("listed %d: %v", len(list), err)
	}
	for i, in := range list {
		if in.Device != fmt.Sprintf("dev-%04d", i) || in.Updates != int64(i) || in.Version != 12 ||
			!in.Saved.Equal(now) || !in.Last.Equal(now.Add(-time.Minute)) {
			t.Fatalf("listed %+v at %d", in, i)
		}
	}
	d, err := hv.Device("dev-0042")
	if err != nil || string(d.State) != "42" || d.Device != "dev-0042" {
		t.Errorf("device 42: %+v %v", d, err)
	}
	// Another model sees none of them.
	if d, err := s.Default().LoadDevice("dev-0042"); d != nil || err != nil {
		t.Errorf("default model has hvac's device: %+v %v", d, err)
	}
	if list, _ := s.Default().Devices(); len(list) != 0 {
		t.Errorf("default lists %d devices", len(list))
	}
	// Reset one, prune the states of another version.
	if err := hv.ResetDevice("dev-0042"); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.Device("dev-0042"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("after reset: %v", err)
	}
	if err := hv.ResetDevice("dev-0042"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("reset twice: %v", err)
	}
	hv.SaveDevices([]model.DeviceSnapshot{{Device: "new", Version: 13, State: []byte("x")}})
	if n, err := hv.PruneDevices(13); err != nil || n != 2499 {
		t.Errorf("pruned %d: %v", n, err)
	}
	if list, _ := hv.Devices(); len(list) != 1 || list[0].Device != "new" {
		t.Errorf("after prune: %+v", list)
	}
	for _, bad := range []string{"", string(make([]byte, MaxDeviceID+1))} {
		if err := hv.SaveDevices([]model.DeviceSnapshot{{Device: bad}}); !errors.Is(err, ErrBadDevice) {
			t.Errorf("device id of %d bytes: %v", len(bad), err)
		}
	}
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
}

// TestDevicesThroughStore: model.Devices evicts to the store and loads
// from it; after a restart every device has its state as of its last
// save, and keeps predicting with it.
func TestDevicesThroughStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTest(t, path, Options{})
	hv, _ := s.Model("hvac")
	m := &model.Model{Version: 5, Loss: model.Squared, Scheme: model.F32, Features: []string{"a", "b"},
		Mean: []float32{0, 0}, Std: []float32{1, 1}, Weights: []float32{1, 2}, Bias: 3}
	cfg := model.DeviceConfig{MaxResident: 20, EvictBatch: 10, Load: hv.LoadDevice, Evict: hv.SaveDevices, Margin: -1}
	devs, err := model.NewDevices(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.5, -1}
	for dev := range 100 {
		for range 5 {
			devs.Learn(fmt.Sprint(dev), x, float32(10+dev))
		}
	}
	if _, err := devs.Checkpoint(hv.SaveDevices); err != nil {
		t.Fatal(err)
	}
	want := map[string]float32{}
	for dev := range 100 {
		p, ok := devs.Predict(fmt.Sprint(dev), x)
		if !ok {
			t.Fatalf("device %d has no state", dev)
		}
		want[fmt.Sprint(dev)] = p
	}
	s.Close()

	s = openTest(t, path, Options{})
	hv, _ = s.Model("hvac")
	cfg.Load, cfg.Evict = hv.LoadDevice, hv.SaveDevices
	devs, _ = model.NewDevices(m, cfg)
	for dev, p := range want {
		if got, ok := devs.Predict(dev, x); !ok || got != p {
			t.Errorf("device %s after restart: %v %v, want %v", dev, got, ok, p)
		}
	}
	list, _ := hv.Devices()
	if len(list) != 100 || list[0].Updates != 5 {
		t.Errorf("stored %d devices, first %+v", len(list), list[0])
	}
}

// BenchmarkDevicesPeak is the scale case: 10,000 devices of a 32-feature
// model learning through model.Devices, checkpointed to the store. It
// reports the process's peak RSS (VmHWM: run it alone, -benchtime=1x)
// and the store file's size.
func BenchmarkDevicesPeak(b *testing.B) {
	const n, d = 10_000, 32
	m := &model.Model{Version: 1, Loss: model.Squared, Scheme: model.F32, Bias: 1}
	for i := range d {
		m.Features = append(m.Features, fmt.Sprintf("f%d", i))
		m.Mean, m.Std, m.Weights = append(m.Mean, 0), append(m.Std, 1), append(m.Weights, float32(i%5)/5)
	}
	x := make([]float32, d)
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "s.db")
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		hv, _ := s.Model("hvac")
		devs, _ := model.NewDevices(m, model.DeviceConfig{MaxResident: n, Load: hv.LoadDevice, Evict: hv.SaveDevices})
		for round := range 10 {
			for i := range n {
				x[i%d] = float32(round)
				devs.Learn(fmt.Sprintf("site/dev-%05d", i), x, float32(i%7))
				x[i%d] = 0
			}
			if _, err := devs.Checkpoint(hv.SaveDevices); err != nil {
				b.Fatal(err)
			}
		}
		fi, _ := os.Stat(path)
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-file")
		s.Close()
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
				kb, _ := strconv.Atoi(f[1])
				b.ReportMetric(float64(kb)/1024, "MiB-peak-RSS")
			}
		}
	}
}

// TestDeviceStatesSplit: a state of more than splitState bytes (a
// 32-feature model's, 2,381) is stored in two halves and comes back
// whole; listing, reset, prune and Verify see one device; a whole state
// of an earlier build still loads; a later whole state of the same device
// drops its second half.
func TestDeviceStatesSplit(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	hv, _ := s.Model("hvac")
	big := func(seed byte) []byte {
		b := make([]byte, 2381)
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	if err := hv.SaveDevices([]model.DeviceSnapshot{{Device: "a", Version: 3, Updates: 5, State: big(1)},
		{Device: "a0", Version: 3, State: big(2)}, {Device: "b", Version: 4, State: big(3)}}); err != nil {
		t.Fatal(err)
	}
	// An earlier build's whole state, written as it wrote it.
	legacy, tail := encodeDevice(&model.DeviceSnapshot{Version: 3, State: []byte("small")}, time.Now())
	if tail != nil {
		t.Fatal("a small state was split")
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return mtx{tx, "hvac"}.Bucket(bucketDevices).Put([]byte("old"), legacy)
	}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"a": big(1), "a0": big(2), "b": big(3), "old": []byte("small")} {
		d, err := hv.Device(name)
		if err != nil || !bytes.Equal(d.State, want) {
			t.Errorf("device %s: %v, state of %d bytes (want %d)", name, err, len(d.State), len(want))
		}
	}
	list, err := hv.Devices()
	if err != nil || len(list) != 4 || list[0].Device != "a" || list[0].Bytes != 2381 || list[0].Updates != 5 {
		t.Fatalf("listed %+v: %v", list, err)
	}
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
	if err := hv.SaveDevices([]model.DeviceSnapshot{{Device: "a0", Version: 3, State: []byte("now small")}}); err != nil {
		t.Fatal(err)
	}
	if d, err := hv.Device("a0"); err != nil || string(d.State) != "now small" {
		t.Errorf("a0 after a whole state: %v %q", err, d.State)
	}
	if err := hv.ResetDevice("a"); err != nil {
		t.Fatal(err)
	}
	if n, err := hv.PruneDevices(3); err != nil || n != 1 {
		t.Errorf("pruned %d: %v", n, err)
	}
	keys := 0
	s.db.View(func(tx *bolt.Tx) error {
		return mtx{tx, "hvac"}.Bucket(bucketDevices).ForEach(func(k, _ []byte) error { keys++; return nil })
	})
	if list, _ := hv.Devices(); len(list) != 2 || keys != 2 {
		t.Errorf("after reset and prune: %d keys, listed %+v; want a0 and old", keys, list)
	}
	for _, bad := range []string{"a\x00", "\x00"} {
		if err := hv.SaveDevices([]model.DeviceSnapshot{{Device: bad}}); !errors.Is(err, ErrBadDevice) {
			t.Errorf("device id %q: %v", bad, err)
		}
	}
}

// TestDeviceStatesPacked: 10,000 states of a 32-feature model, saved as
// per-device checkpoints save them (batches of neighbouring ids), take at
// most 3,000 bytes of leaf pages each (2,737 measured; whole states took
// 4,096): the file, and what a checkpoint maps of it.
func TestDeviceStatesPacked(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 device states")
	}
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	names := make([]string, 10_000)
	for i := range names {
		names[i] = fmt.Sprintf("site-a/device-%05d", i)
	}
	state := make([]byte, 5+4*(33+33*34/2))
	for round := range 2 {
		for i := 0; i < len(names); i += 110 {
			var batch []model.DeviceSnapshot
			for _, n := range names[i:min(i+110, len(names))] {
				batch = append(batch, model.DeviceSnapshot{Device: n, Version: 1, Updates: int64(round), State: state})
			}
			if err := s.Default().SaveDevices(batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	var st bolt.BucketStats
	s.db.View(func(tx *bolt.Tx) error {
		st = tx.Bucket(bucketDevices).Stats()
		return nil
	})
	if per := st.LeafAlloc / len(names); per > 3000 {
		t.Errorf("%d bytes of leaf pages per device, want at most 3,000 (states of %d bytes)", per, len(state))
	}
}

// TestSalvageDeviceHalves: repair keeps, of the copies of a device's value
// and second halves found in a damaged file, the newest pair that checks
// out together.
func TestSalvageDeviceHalves(t *testing.T) {
	state := func(seed byte) []byte { return bytes.Repeat([]byte{seed}, 2381) }
	t0 := time.Unix(1000, 0)
	v1, h1 := encodeDevice(&model.DeviceSnapshot{Version: 1, Updates: 1, State: state(1)}, t0)
	v2, h2 := encodeDevice(&model.DeviceSnapshot{Version: 1, Updates: 2, State: state(2)}, t0.Add(time.Second))
	v3, _ := encodeDevice(&model.DeviceSnapshot{Version: 1, Updates: 3, State: state(3)}, t0.Add(2*time.Second))
	// v3's second half was lost: v2 with its own half is the newest whole.
	v, tail := newestDevice([][]byte{v1, v3, v2}, [][]byte{h2, h1})
	d, err := decodeDevice(v, tail)
	if err != nil || d.Updates != 2 || !bytes.Equal(d.State, state(2)) {
		t.Errorf("salvaged %+v, %v: want the copy of 2 updates", d, err)
	}
	if v, _ := newestDevice([][]byte{v3}, [][]byte{h1}); v != nil {
		t.Error("a value with another copy's second half was salvaged")
	}
}
