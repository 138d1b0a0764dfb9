package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
