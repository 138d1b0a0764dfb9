package daemon

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
)

// twoModels is a regression ("hvac", JSON readings by name) and a
// classifier ("pump", positional CSV readings) trained by linnet train,
// with their test readings and linnet predict's answers to them.
type twoModels struct {
	dir                    string
	hvacFile, pumpFile     string
	hvacTest, pumpTest     [][]float64
	hvacWant, pumpWant     []float64
	hvacLabels, pumpLabels []float64
}

func hvacRow(r *rand.Rand) ([]float64, float64) {
	x := []float64{r.NormFloat64()*8 + 10, r.NormFloat64()*2 + 21, float64(r.IntN(5))}
	return x, 1.5 + 0.8*x[0] - 0.3*x[1] + 2*x[2] + r.NormFloat64()
}

func pumpRow(r *rand.Rand) ([]float64, float64) {
	x := []float64{r.Float64() * 4, r.NormFloat64()*10 + 60, r.NormFloat64()*300 + 1500}
	z := -6 + 1.5*x[0] + 0.05*(x[1]-60) + 0.002*(x[2]-1500)
	y := 0.0
	if r.Float64() < 1/(1+math.Exp(-z)) {
		y = 1
	}
	return x, y
}

func writeRows(t *testing.T, path, header string, n int, seed uint64, row func(*rand.Rand) ([]float64, float64)) ([][]float64, []float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	b.WriteString(header + "\n")
	xs, ys := make([][]float64, n), make([]float64, n)
	for i := range n {
		xs[i], ys[i] = row(r)
		for _, v := range xs[i] {
			fmt.Fprintf(&b, "%v,", float32(v))
		}
		fmt.Fprintf(&b, "%v\n", ys[i])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return xs, ys
}

func newTwoModels(t *testing.T) *twoModels {
	t.Helper()
	bin := linnetBinary(t)
	tm := &twoModels{dir: t.TempDir()}
	p := func(name string) string { return filepath.Join(tm.dir, name) }
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("linnet %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	predictions := func(m, data string) []float64 {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(string(run("predict", "--model", m, "--data", data))), "\n")
		var ps []float64
		for _, l := range lines[1:] {
			v, err := strconv.ParseFloat(strings.Split(l, ",")[0], 64)
			if err != nil {
				t.Fatalf("predict printed %q", l)
			}
			ps = append(ps, v)
		}
		return ps
	}
	writeRows(t, p("hvac.csv"), "out_c,in_c,occupancy,kwh", 3000, 1, hvacRow)
	writeRows(t, p("pump.csv"), "vib,temp,rpm,fail", 3000, 2, pumpRow)
	tm.hvacTest, tm.hvacLabels = writeRows(t, p("hvac-test.csv"), "out_c,in_c,occupancy,kwh", 1000, 3, hvacRow)
	tm.pumpTest, tm.pumpLabels = writeRows(t, p("pump-test.csv"), "vib,temp,rpm,fail", 1000, 4, pumpRow)
	tm.hvacFile, tm.pumpFile = p("hvac.lnm"), p("pump.lnm")
	run("train", "--data", p("hvac.csv"), "--target", "kwh", "--version", "10", "--out", tm.hvacFile)
	run("train", "--data", p("pump.csv"), "--target", "fail", "--loss", "logistic", "--quantize", "q8", "--version", "10", "--out", tm.pumpFile)
	tm.hvacWant = predictions(tm.hvacFile, p("hvac-test.csv"))
	tm.pumpWant = predictions(tm.pumpFile, p("pump-test.csv"))
	// Signed, as OTA wants every model of the gateway.
	for _, f := range []string{tm.hvacFile, tm.pumpFile} {
		b, err := os.ReadFile(f)
		if err == nil {
			b, err = model.Sign(b, otaKey)
		}
		if err == nil {
			err = os.WriteFile(f, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return tm
}

// config serves both models from their files, trusting otaKey.
func (tm *twoModels) config(t *testing.T, url string) *Config {
	t.Helper()
	cfg := testConfig(t, url)
	pub := filepath.Join(tm.dir, "ota.pub")
	if err := os.WriteFile(pub, otaKey.Public().(ed25519.PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Trust = []string{pub}
	cfg.OTA.Enabled = true
	cfg.OTA.GuardWindow = 0
	// The learners learn, but the serving copies stay the pushed models
	// during the guard's window: a new model that learns its way out of
	// its error leaves no clear verdict.
	cfg.Learning.RequantizeEvery = 5000
	cfg.Models = []ModelConfig{
		{Name: "hvac", File: tm.hvacFile, Learning: LearnShared,
			Subscriptions: []Subscription{{Topic: "site/hvac/+/features", Format: "json"}}},
		{Name: "pump", File: tm.pumpFile, Learning: LearnShared,
			Subscriptions: []Subscription{{Topic: "site/pump/+/features", Format: "csv"}}},
	}
	return cfg
}

func hvacReading(id string, x []float64, label *float64) []byte {
	b := fmt.Appendf(nil, `{"id":%q,"features":{"out_c":%v,"in_c":%v,"occupancy":%v}`, id, float32(x[0]), float32(x[1]), float32(x[2]))
	if label != nil {
		b = fmt.Appendf(b, `,"label":%v`, *label)
	}
	return append(b, '}')
}

func pumpReading(x []float64, label *float64) []byte {
	b := fmt.Appendf(nil, "%v,%v,%v", float32(x[0]), float32(x[1]), float32(x[2]))
	if label != nil {
		b = fmt.Appendf(b, ",%v", *label)
	}
	return b
}

// modelState is what a decision about another model must leave alone.
type modelState struct {
	version, updates int64
	history          int
}

func stateOf(t *testing.T, d *runningDaemon, name string) modelState {
	t.Helper()
	mdl := d.s.model(name)
	u, _, _ := mdl.own.Stats()
	h, err := mdl.st.History()
	if err != nil {
		t.Fatal(err)
	}
	return modelState{version: mdl.own.Current().Version(), updates: u, history: len(h)}
}

// Acceptance (issue 14): a regression and a classifier on their own
// topics in one daemon, through mosquitto: 1,000 readings each, every
// prediction equal to linnet predict of its own model to 1e-5. A pushed
// version of one model, and then a guarded rollback of it, leave the
// other's version, learner, history and predictions unchanged.
func TestTwoModels(t *testing.T) {
	tm := newTwoModels(t)
	mq := startMosquitto(t, "")
	cfg := tm.config(t, mq.url())
	cfg.OTA.GuardWindow = 300
	cfg.OTA.GuardMargin = 0.2
	d := startDaemon(t, cfg, nil)
	c := testClient(t, mq.url(), "two-models", true)
	preds := collect(t, c, "linnet/+/prediction")
	errs := collect(t, c, "linnet/+/errors")
	res := watchResults(t, c)

	// The CSV readings carry no id: a pump reading's answer is known by
	// its device, one device per reading.
	for i, x := range tm.hvacTest {
		publish(t, c, fmt.Sprintf("site/hvac/h%d/features", i%7), hvacReading(fmt.Sprintf("h%d", i), x, nil))
	}
	for i, x := range tm.pumpTest {
		publish(t, c, fmt.Sprintf("site/pump/p%d/features", i), pumpReading(x, nil))
	}
	preds.waitAll(t, len(tm.hvacTest)+len(tm.pumpTest))
	errs.mu.Lock()
	if len(errs.all) > 0 {
		t.Fatalf("rejected: %v", errs.all[0])
	}
	errs.mu.Unlock()
	preds.mu.Lock()
	byDevice := map[string]map[string]any{}
	for _, p := range preds.all {
		if p["model"] == "pump" {
			byDevice[p["device"].(string)] = p
		}
	}
	worst := map[string]float64{}
	near := func(m string, got, want float64) bool {
		d := math.Abs(got-want) / math.Max(math.Abs(want), 1e-3)
		worst[m] = max(worst[m], d)
		return d <= 1e-5
	}
	for i, want := range tm.hvacWant {
		ps := preds.byID["h"+strconv.Itoa(i)]
		if len(ps) != 1 || ps[0]["model"] != "hvac" || ps[0]["model_version"] != 10.0 {
			t.Fatalf("hvac reading %d: %v", i, ps)
		}
		if got := ps[0]["prediction"].(float64); !near("hvac", got, want) {
			t.Errorf("hvac reading %d: daemon %v, linnet predict %v", i, got, want)
		}
	}
	for i, want := range tm.pumpWant {
		p := byDevice["p"+strconv.Itoa(i)]
		if p == nil || p["class"] == nil {
			t.Fatalf("pump reading %d: %v", i, p)
		}
		if got := p["prediction"].(float64); !near("pump", got, want) {
			t.Errorf("pump reading %d: daemon %v, linnet predict %v", i, got, want)
		}
	}
	preds.mu.Unlock()
	t.Logf("worst relative difference from linnet predict over 1,000 readings: hvac %.2g, pump %.2g", worst["hvac"], worst["pump"])

	// Both learn from labelled readings.
	labelled := func(model string, n, from int) {
		t.Helper()
		before := preds.count()
		for k := range n {
			i := (from + k) % 1000
			if model == "hvac" {
				publish(t, c, fmt.Sprintf("site/hvac/h%d/features", i%5), hvacReading(fmt.Sprintf("l%d", from+k), tm.hvacTest[i], &tm.hvacLabels[i]))
			} else {
				publish(t, c, fmt.Sprintf("site/pump/q%d/features", i%5), pumpReading(tm.pumpTest[i], &tm.pumpLabels[i]))
			}
		}
		preds.waitAll(t, before+n)
	}
	labelled("hvac", 200, 0)
	labelled("pump", 200, 0)
	// The pump's answers to 20 probes, to compare after each decision
	// about hvac.
	probe := func() []float64 {
		t.Helper()
		before := preds.count()
		for i := range 20 {
			publish(t, c, fmt.Sprintf("site/pump/probe%d/features", i), pumpReading(tm.pumpTest[i], nil))
		}
		preds.waitAll(t, before+20)
		preds.mu.Lock()
		defer preds.mu.Unlock()
		out := make([]float64, 20)
		for _, p := range preds.all[before:] {
			var i int
			if _, err := fmt.Sscanf(p["device"].(string), "probe%d", &i); err == nil {
				out[i] = p["prediction"].(float64)
			}
		}
		return out
	}
	pump0, probes0 := stateOf(t, d, "pump"), probe()
	if pump0.updates != 200 || pump0.version != 10 {
		t.Fatalf("pump before: %+v", pump0)
	}
	hvac0 := stateOf(t, d, "hvac")
	if hvac0.updates != 200 {
		t.Fatalf("hvac before: %+v", hvac0)
	}
	unchanged := func(when string) {
		t.Helper()
		if got := stateOf(t, d, "pump"); got != pump0 {
			t.Errorf("%s: pump %+v, was %+v", when, got, pump0)
		}
		if got := probe(); !slices.Equal(got, probes0) {
			t.Errorf("%s: pump's predictions changed: %v, were %v", when, got, probes0)
		}
	}

	// A new hvac version on hvac's topic.
	hm, _, err := model.ReadFile(tm.hvacFile)
	if err != nil {
		t.Fatal(err)
	}
	hm.Version = 20
	hm.Bias += 0.01
	otaPublish(t, c, "linnet/ota/hvac", lnm(t, hm, otaKey))
	if r := res.expect(t, 20, true, wire.OTAApplied); r["model"] != "hvac" {
		t.Errorf("result names model %v", r["model"])
	}
	if got := stateOf(t, d, "hvac"); got.version != 20 {
		t.Errorf("hvac after its push: %+v", got)
	}
	unchanged("after hvac's push")

	// A worse hvac version: the guard rolls it back; the pump stays.
	labelled("hvac", 100, 200)
	worse := *hm
	worse.Version = 30
	worse.Bias += 4 // the labels' noise is 1
	otaPublish(t, c, "linnet/ota/hvac", lnm(t, &worse, otaKey))
	res.expect(t, 30, true, wire.OTAApplied)
	labelled("hvac", 400, 300)
	if r := res.expect(t, 30, false, wire.OTARolledBack); r["model"] != "hvac" || r["active"] != 20.0 {
		t.Errorf("rollback result %v", r)
	}
	if got := stateOf(t, d, "hvac"); got.version != 20 {
		t.Errorf("hvac after the rollback: %+v", got)
	}
	unchanged("after hvac's rollback")

	// The pump's own topic still works; hvac's file on it is refused as
	// another schema, and the pump keeps serving.
	otaPublish(t, c, "linnet/ota/pump", lnm(t, &worse, otaKey))
	if r := res.expect(t, 30, false, wire.OTASchema); r["model"] != "pump" {
		t.Errorf("result %v", r)
	}
	pump0.history++ // the refusal, in the pump's own history
	unchanged("after a refused file for the pump")

	// The status lists both models.
	st := collect(t, c, "linnet/gw-test/status")
	st.waitAll(t, 1)
	st.mu.Lock()
	ms, _ := st.all[0]["models"].([]any)
	st.mu.Unlock()
	var names []string
	for _, m := range ms {
		mm := m.(map[string]any)
		names = append(names, fmt.Sprintf("%v:%v:%v", mm["name"], mm["model_version"], mm["learning"]))
	}
	if strings.Join(names, " ") != "hvac:20:shared pump:10:shared" {
		t.Errorf("status models %v", names)
	}
	for _, m := range []string{"hvac 20", "pump 10"} {
		name, v, _ := strings.Cut(m, " ")
		if l := metricLine(t, d, `linnet_model_version{model="`+name+`"}`); !strings.HasSuffix(l, " "+v) {
			t.Errorf("linnet_model_version of %s: %q", name, l)
		}
	}
	// The live view lists both, each with its own history.
	var live struct {
		Models []struct {
			Name    string `json:"name"`
			Version int64  `json:"version"`
		} `json:"models"`
	}
	getJSON(t, d, "/v1/models", &live)
	if fmt.Sprint(live.Models) != "[{hvac 20} {pump 10}]" {
		t.Errorf("live view models %v", live.Models)
	}
	var hist struct {
		Events []map[string]any `json:"events"`
	}
	getJSON(t, d, "/v1/models/pump/history", &hist)
	if len(hist.Events) != pump0.history {
		t.Errorf("live view: pump history of %d events, the store's %d", len(hist.Events), pump0.history)
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.all)
}

// model returns the served model named name, nil if none.
func (s *Service) model(name string) *served {
	for _, m := range s.models {
		if m.name == name {
			return m
		}
	}
	return nil
}
