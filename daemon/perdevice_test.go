package daemon

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// TestPerDeviceLearning: with learning.mode = "per_device", a device
// whose targets carry its own offset learns it from its labelled readings
// and its predictions move to it, while another device's stay the fleet
// model's; the status counts the resident devices, and a checkpoint stores
// the learning device's state under the served version.
func TestPerDeviceLearning(t *testing.T) {
	_, path := trainedModel(t)
	honest := houses(t, 300, 64)
	held := houses(t, 5, 65)
	var mean, sq float64
	for _, y := range honest.Y {
		mean += float64(y)
	}
	mean /= float64(len(honest.Y))
	for _, y := range honest.Y {
		sq += (float64(y) - mean) * (float64(y) - mean)
	}
	offset := 2 * math.Sqrt(sq/float64(len(honest.Y)))

	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0"
	cfg.Model = path
	cfg.Learning.Mode = LearnPerDevice
	d := startDaemon(t, cfg, nil)
	cl := testClient(t, d.s.BrokerURL(), "tester", true)
	preds := collect(t, cl, "linnet/+/prediction")

	var rows []string
	for i := range honest.Len() {
		rows = append(rows, labelledJSON(fmt.Sprint("l", i), honest.Row(i), honest.Y[i]+float32(offset)))
	}
	publish(t, cl, "linnet/attic/features", []byte(`{"batch":[`+strings.Join(rows, ",")+`]}`))
	preds.waitAll(t, 1)
	waitUpdates(t, d, int64(honest.Len()))

	fleet := d.s.own.Current().Scorer
	for i := range held.Len() {
		publish(t, cl, "linnet/attic/features", unlabelled(fmt.Sprint("a", i), held.Row(i)))
		publish(t, cl, "linnet/cellar/features", unlabelled(fmt.Sprint("c", i), held.Row(i)))
	}
	preds.waitAll(t, 1+2*held.Len())
	preds.mu.Lock()
	for i := range held.Len() {
		f := float64(fleet.Predict(held.Row(i)))
		a := preds.byID[fmt.Sprint("a", i)][0]["prediction"].(float64)
		c := preds.byID[fmt.Sprint("c", i)][0]["prediction"].(float64)
		if math.Abs(c-f) > 1e-3*math.Max(1, math.Abs(f)) {
			t.Errorf("reading %d: the device without labels got %v, want the fleet's %v", i, c, f)
		}
		t.Logf("reading %d: fleet %.3f, learning device %+.3f (offset %+.3f), device without labels %+.3f", i, f, a-f, offset, c-f)
		if got := a - f; math.Abs(got-offset) > 0.2*offset {
			t.Errorf("reading %d: the learning device's prediction is the fleet's %+.3f, want its offset %+.3f", i, got, offset)
		}
	}
	preds.mu.Unlock()

	var st wire.Status
	if err := json.Unmarshal(d.s.status("online"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Learning != wire.LearnPerDevice || st.DevicesResident == nil || *st.DevicesResident != 1 {
		t.Errorf("status learning %q, resident %v: want per_device with 1 device", st.Learning, st.DevicesResident)
	}
	if !d.s.checkpointAll() {
		t.Fatal("no device state checkpointed")
	}
	d.stop(t)
	s, err := store.Open(filepath.Join(cfg.DataDir, "linnet.db"), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	devs, err := s.Default().Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].Device != "attic" || devs[0].Updates != int64(honest.Len()) || devs[0].Version != 7 {
		t.Errorf("stored devices %+v, want attic with %d updates of version 7", devs, honest.Len())
	}
}

// unlabelled is one reading without a label.
func unlabelled(id string, x []float32) []byte {
	s := labelledJSON(id, x, 0)
	return []byte(s[:strings.LastIndex(s, `,"label"`)] + "}")
}

// TestSIGKILLKeepsDeviceStates: per-device learning in the real binary,
// killed with SIGKILL after 250 labelled readings of 25 devices with a
// checkpoint every 100 updates: the store holds every device's state as
// of the last checkpoint (8 readings each); a restart resumes from it (a
// device's next reading makes 9) and an ordered stop saves what changed.
// The same with a 32-feature model, whose states the store keeps in two
// halves.
func TestSIGKILLKeepsDeviceStates(t *testing.T) {
	t.Run("3 features", func(t *testing.T) { sigkillDevices(t, 3) })
	t.Run("32 features", func(t *testing.T) { sigkillDevices(t, 32) })
}

// wideModel writes a model of d features, version 42, and returns its
// path.
func wideModel(t *testing.T, dir string, d int) string {
	t.Helper()
	m := &model.Model{Version: 42, Created: time.Now().UTC().Truncate(time.Second), Target: "y", Loss: model.Squared,
		Scheme: model.F32, Bias: 3, Mean: make([]float32, d), Std: make([]float32, d), Weights: make([]float32, d),
		Metrics: map[string]float64{"target_mean": 3, "target_std": 20}}
	for i := range d {
		m.Features = append(m.Features, fmt.Sprintf("f%02d", i))
		m.Std[i], m.Weights[i] = 1, float32(i%5)-2
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "wide.lnm")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sigkillDevices is TestSIGKILLKeepsDeviceStates with a model of width
// features (3: writeModel's).
func sigkillDevices(t *testing.T, width int) {
	m := startMosquitto(t, "")
	dir := t.TempDir()
	modelPath := writeModel(t, dir, 42)
	if width != 3 {
		modelPath = wideModel(t, dir, width)
	}
	data := filepath.Join(dir, "data")
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`gateway = "gw-kill"
data_dir = %q
model = %q
[mqtt]
broker = %q
[pipeline]
workers = 1
[learning]
mode = "per_device"
checkpoint_every = 100
checkpoint_interval = "1h"
`, data, modelPath, m.url()))
	p := startProc(t, cfgPath)
	c := testClient(t, m.url(), "kill-tester", true)
	preds := collect(t, c, "linnet/+/prediction")
	r := rand.New(rand.NewPCG(7, 8))
	const devices, n = 25, 250
	send := func(id, dev int) {
		a, b, cc := r.NormFloat64(), r.NormFloat64()*10-2, r.Float64()
		y := 3 + 2*a - 0.7*b + cc + float64(dev) + 0.1*r.NormFloat64()
		x := []float64{a, b, cc}
		for i := 3; i < width; i++ {
			x = append(x, r.NormFloat64())
			y += float64(i%5-2) * x[i]
		}
		xs, _ := json.Marshal(x)
		publish(t, c, fmt.Sprintf("linnet/d%d/features", dev), fmt.Appendf(nil, `{"id":%d,"features":%s,"label":%v}`, id, xs, y))
	}
	for i := range n {
		send(i, i%devices)
	}
	preds.waitIDs(t, n)
	if got := p.metric(t, `linnet_learn_updates_total{model="default"}`); got != n {
		t.Fatalf("updates %v, want %d", got, n)
	}
	if got := p.metric(t, `linnet_checkpoints_total{model="default"}`); got != 2 {
		t.Fatalf("checkpoints %v, want 2 (at 100 and 200 updates)", got)
	}
	if got := p.metric(t, `linnet_devices_resident{model="default"}`); got != devices {
		t.Errorf("resident devices %v, want %d", got, devices)
	}
	if got, min := p.metric(t, `linnet_devices_state_bytes{model="default"}`), devices*4*(width+1+(width+1)*(width+2)/2); got < float64(min) {
		t.Errorf("device state bytes %v, want at least %d (%d states of %d features)", got, min, devices, width)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	stored := func() map[string]store.DeviceInfo {
		t.Helper()
		s, err := store.Open(filepath.Join(data, "linnet.db"), store.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		devs, err := s.Default().Devices()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.DeviceInfo{}
		for _, d := range devs {
			out[d.Device] = d
		}
		return out
	}
	got := stored()
	if len(got) != devices {
		t.Fatalf("%d device states stored after SIGKILL, want %d", len(got), devices)
	}
	for name, d := range got {
		if d.Updates != 200/devices || d.Version != 42 {
			t.Errorf("device %s: %d updates of version %d after SIGKILL, want %d of 42 (the last checkpoint)", name, d.Updates, d.Version, 200/devices)
		}
		if want := 5 + 4*(width+1+(width+1)*(width+2)/2); d.Bytes != want {
			t.Errorf("device %s: state of %d bytes, want %d", name, d.Bytes, want)
		}
	}

	p2 := startProc(t, cfgPath)
	send(n, 0)
	preds.waitIDs(t, n+1)
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p2.log)
	}
	got = stored()
	if d := got["d0"]; d.Updates != 200/devices+1 {
		t.Errorf("device d0 has %d updates after the restart and one reading, want %d (resumed)", d.Updates, 200/devices+1)
	}
	if d := got["d1"]; d.Updates != 200/devices {
		t.Errorf("device d1 has %d updates, want %d (untouched)", d.Updates, 200/devices)
	}
}
