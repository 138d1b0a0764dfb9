package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/model"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// linnetBinary builds cmd/linnet once per test run.
func linnetBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "linnet-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "linnet")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/linnet").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// writeModel writes a q8 model of the fake's shape (a, b, c) with real
// scaling, as train would.
func writeModel(t *testing.T, dir string, version int64) string {
	t.Helper()
	m := &model.Model{
		Version: version, Created: time.Now().UTC().Truncate(time.Second),
		Features: []string{"a", "b", "c"}, Target: "y", Loss: model.Squared,
		Mean: []float32{0.1, -2, 0.5}, Std: []float32{1, 10, 0.3},
		Weights: []float32{0.5, -10, 0.6}, Bias: 1.25, Scheme: model.F32,
		Metrics: map[string]float64{"target_mean": 1.25, "target_std": 11},
	}
	q, err := m.Quantize(model.Q8)
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("m%d.lnm", version))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemonProc is linnet run as a process.
type daemonProc struct {
	cmd     *exec.Cmd
	metrics string
	log     *bytes.Buffer
}

func startProc(t *testing.T, configPath string) *daemonProc {
	t.Helper()
	p, err := startProcErr(t, configPath)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProcErr is startProc for any goroutine: it reports instead of
// failing the test.
func startProcErr(t *testing.T, configPath string) (*daemonProc, error) {
	port := freePort(t)
	p := &daemonProc{metrics: fmt.Sprintf("127.0.0.1:%d", port), log: &bytes.Buffer{}}
	p.cmd = exec.Command(linnetBinary(t), "run", "--config", configPath, "--metrics", p.metrics)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.log)
		}
	})
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.metrics + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("daemon not healthy")
}

// metric reads one unlabelled sample from the daemon's /metrics.
func (p *daemonProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "linnet.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Acceptance 1 with the real model and the real binary: every reading
// published with mosquitto_pub gets one prediction, equal to what
// linnet predict prints for the same row.
func TestBinaryMatchesPredict(t *testing.T) {
	pub, sub := clientTool(t, "mosquitto_pub"), clientTool(t, "mosquitto_sub")
	m := startMosquitto(t, "")
	dir := t.TempDir()
	bin := linnetBinary(t)
	modelPath := writeModel(t, dir, 42)
	const n = 300
	rows := testRows(n, 11)
	var csv, lines bytes.Buffer
	csv.WriteString("c,a,b\n") // not the model's order: predict reads by name
	for i, x := range rows {
		fmt.Fprintf(&csv, "%v,%v,%v\n", x[2], x[0], x[1])
		lines.Write(readingJSON(i, x, i%3 == 0))
		lines.WriteByte('\n')
	}
	csvPath := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(csvPath, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "predict", "--model", modelPath, "--data", csvPath).Output()
	if err != nil {
		t.Fatalf("linnet predict: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")[1:]
	if len(want) != n {
		t.Fatalf("linnet predict printed %d rows", len(want))
	}

	cfgPath := writeConfig(t, dir, fmt.Sprintf("gateway = \"gw-bin\"\ndata_dir = %q\nmodel = %q\n[mqtt]\nbroker = %q\n",
		filepath.Join(dir, "data"), modelPath, m.url()))
	startProc(t, cfgPath)
	host, port := "127.0.0.1", fmt.Sprint(m.port)
	if o, err := exec.Command(sub, "-h", host, "-p", port, "-i", "bin-collector", "-c", "-q", "1", "-t", "linnet/+/prediction", "-E").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_sub -E: %v %s", err, o)
	}
	pc := exec.Command(pub, "-h", host, "-p", port, "-q", "1", "-t", "linnet/pump-7/features", "-l")
	pc.Stdin = &lines
	if o, err := pc.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, o)
	}
	got, err := exec.Command(sub, "-h", host, "-p", port, "-i", "bin-collector", "-c", "-q", "1", "-t", "linnet/+/prediction",
		"-C", fmt.Sprint(n), "-W", fmt.Sprint(int(patience.Seconds()))).Output()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	seen := map[int]int{}
	for i, line := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		var p struct {
			ID         int     `json:"id"`
			Prediction float64 `json:"prediction"`
			Version    int64   `json:"model_version"`
		}
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if p.ID != i {
			t.Errorf("prediction %d is for reading %d: order per device not kept", i, p.ID)
		}
		seen[p.ID]++
		w, _ := strconv.ParseFloat(want[p.ID], 64)
		if !near(p.Prediction, w) || p.Version != 42 {
			t.Errorf("reading %d: daemon %v (version %d), linnet predict %v", p.ID, p.Prediction, p.Version, w)
		}
	}
	for i := 0; i < n; i++ {
		if seen[i] != 1 {
			t.Errorf("reading %d: %d predictions", i, seen[i])
		}
	}
}

// Acceptance 4: SIGKILL during online learning, then a restart: learning
// resumes from the last checkpoint, losing at most the configured
// interval (here learning.checkpoint_every = 100 updates). The will
// publishes offline when the process dies.
func TestSIGKILLResumesLearning(t *testing.T) {
	m := startMosquitto(t, "")
	dir := t.TempDir()
	modelPath := writeModel(t, dir, 42)
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`gateway = "gw-kill"
data_dir = %q
model = %q
[mqtt]
broker = %q
[learning]
checkpoint_every = 100
checkpoint_interval = "1h"
requantize_every = 50
`, filepath.Join(dir, "data"), modelPath, m.url()))
	p := startProc(t, cfgPath)

	c := testClient(t, m.url(), "kill-tester", true)
	status := collect(t, c, "linnet/gw-kill/status")
	preds := collect(t, c, "linnet/+/prediction")
	r := rand.New(rand.NewPCG(7, 7))
	send := func(from, to int) {
		for i := from; i < to; i++ {
			a, b, cc := r.NormFloat64(), r.NormFloat64()*10-2, r.Float64()
			y := 3 + 2*a - 0.7*b + cc + 0.1*r.NormFloat64()
			publish(t, c, "linnet/field/features", fmt.Appendf(nil, `{"id":%d,"features":[%v,%v,%v],"label":%v}`, i, a, b, cc, y))
		}
	}
	const n = 250
	send(0, n)
	preds.waitIDs(t, n)
	if got := p.metric(t, `linnet_learn_updates_total{model="default"}`); got != n {
		t.Fatalf("updates %v, want %d", got, n)
	}
	if got := p.metric(t, `linnet_checkpoints_total{model="default"}`); got != 2 {
		t.Fatalf("checkpoints %v, want 2 (at 100 and 200 updates)", got)
	}
	// The serving copy: the model at start, then re-quantized from the
	// master weights every 50 updates.
	if got := p.metric(t, `linnet_model_swaps_total{model="default"}`); got != 1+n/50 {
		t.Errorf("serving swaps %v, want %d", got, 1+n/50)
	}
	lossBefore := p.metric(t, `linnet_progressive_loss{model="default"}`)

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	waitStatus(t, status, func(s map[string]any) bool { return s["state"] == "offline" })

	p2 := startProc(t, cfgPath)
	st := waitStatus(t, status, func(s map[string]any) bool {
		return s["state"] == "online" && s["updates"] != nil && len(status.all) > 2
	})
	if st["updates"] != 200.0 {
		t.Errorf("after restart the learner has %v updates, want 200 (the last checkpoint)", st["updates"])
	}
	if l, ok := st["progressive_loss"].(float64); !ok || l <= 0 {
		t.Errorf("status has no progressive loss: %v", st)
	}
	send(n, n+50)
	preds.waitIDs(t, n+50)
	if got := p2.metric(t, `linnet_learn_updates_total{model="default"}`); got != 50 {
		t.Errorf("updates after restart %v, want 50", got)
	}
	t.Logf("progressive loss before the kill %.4g, resumed status %v", lossBefore, st["progressive_loss"])

	// SIGTERM: the ordered shutdown checkpoints, publishes offline and
	// exits 0; the next start resumes with nothing lost.
	status.mu.Lock()
	before := len(status.all)
	status.mu.Unlock()
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p2.log)
	}
	if !strings.Contains(p2.log.String(), "stopped") {
		t.Errorf("no orderly stop in the log:\n%s", p2.log)
	}
	waitStatus(t, status, func(s map[string]any) bool { return s["state"] == "offline" && len(status.all) > before })
	startProc(t, cfgPath)
	st = waitStatus(t, status, func(s map[string]any) bool {
		return s["state"] == "online" && len(status.all) > before+1
	})
	if st["updates"] != 200.0+50 { // 200 from the checkpoint, 50 learned since
		t.Errorf("after SIGTERM and restart the learner has %v updates, want 250", st["updates"])
	}
}

// waitStatus waits for a status message that ok accepts and returns it.
func waitStatus(t *testing.T, c *collector, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(patience)
	for {
		c.mu.Lock()
		for i := len(c.all) - 1; i >= 0; i-- {
			if ok(c.all[i]) {
				s := c.all[i]
				c.mu.Unlock()
				return s
			}
		}
		c.mu.Unlock()
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("no such status message")
		}
	}
}
