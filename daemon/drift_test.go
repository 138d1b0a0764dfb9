package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/daemon/monitor/browsertest"
	"github.com/linnet-edge/linnet/store"
)

// driftDaemon serves versions 1 and then 2 of the true model over a, b, c
// (training means 0, deviations 1) from its store, learning online, with
// the given drift response, and watches its alerts.
func driftDaemon(t *testing.T, url, response string, more ...func(*Config)) (*runningDaemon, *collector, paho.Client) {
	t.Helper()
	cfg := testConfig(t, url)
	cfg.Drift.Response = response
	cfg.Drift.Interval = 50 * time.Millisecond
	for _, f := range more {
		f(cfg)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "linnet.db"), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 2; v++ {
		if _, err := st.Put(lnm(t, linModel(v, trueW, trueBias), nil), "cli"); err != nil {
			t.Fatal(err)
		}
		if err := st.Activate(v, "cli"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, nil)
	c := testClient(t, url, "drift-test", true)
	return d, collect(t, c, "linnet/gw-test/alerts"), c
}

// driftStream sends n labelled readings in batches of 64 from device
// dev-1, feature a shifted by shift training deviations, and waits for
// their answers (counted by preds).
func driftStream(t *testing.T, c paho.Client, preds *collector, r *rand.Rand, n int, shift float64) {
	t.Helper()
	preds.mu.Lock()
	have := len(preds.all)
	preds.mu.Unlock()
	batches := 0
	for sent := 0; sent < n; sent += 64 {
		var b strings.Builder
		b.WriteString(`{"batch":[`)
		for i := range 64 {
			x := []float32{float32(r.NormFloat64() + shift), float32(r.NormFloat64()), float32(r.NormFloat64())}
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"features":[%v,%v,%v],"label":%v}`, x[0], x[1], x[2], trueY(x)+float32(0.1*r.NormFloat64()))
		}
		b.WriteString(`]}`)
		publish(t, c, "linnet/dev-1/features", []byte(b.String()))
		batches++
	}
	preds.waitAll(t, have+batches)
}

func getJSON(t *testing.T, d *runningDaemon, path string, v any) {
	t.Helper()
	r, err := http.Get("http://" + d.s.MetricsAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, r.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

func metricLine(t *testing.T, d *runningDaemon, prefix string) string {
	t.Helper()
	r, err := http.Get("http://" + d.s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// waitAlert waits for the alert message number n (from 1) and checks it.
func waitAlert(t *testing.T, alerts *collector, n int, active bool) map[string]any {
	t.Helper()
	alerts.waitAll(t, n)
	alerts.mu.Lock()
	a := alerts.all[n-1]
	alerts.mu.Unlock()
	if a["model"] != "y" || a["kind"] != "feature" || a["feature"] != "a" || a["active"] != active ||
		a["threshold"] != 0.5 || a["since"] == nil || a["score"] == nil {
		t.Fatalf("alert %d: %v, want feature a active=%v", n, a, active)
	}
	return a
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Acceptance: a stream that drifts mid-way (feature a moves by 2
// deviations) raises the alert on MQTT, in the metrics and on the live
// API, and clears it everywhere when the stream returns.
func TestDriftAlertThroughMosquitto(t *testing.T) {
	m := startMosquitto(t, "")
	d, alerts, c := driftDaemon(t, m.url(), "none")
	preds := collect(t, c, "linnet/+/prediction")
	r := rand.New(rand.NewPCG(16, 1))

	driftStream(t, c, preds, r, 640, 0)
	if n := len(alerts.all); n != 0 {
		t.Fatalf("%d alerts on a stationary stream: %v", n, alerts.all)
	}
	driftStream(t, c, preds, r, 640, 2)
	a := waitAlert(t, alerts, 1, true)
	if s := a["score"].(float64); s < 1.5 || s > 2.5 {
		t.Errorf("score %v for a 2 sd shift", s)
	}
	waitFor(t, "linnet_drift_alert 1", func() bool {
		return metricLine(t, d, `linnet_drift_alert{kind="feature",model="y"}`) == `linnet_drift_alert{kind="feature",model="y"} 1`
	})
	if l := metricLine(t, d, `linnet_drift_score{feature="a",model="y"}`); l == "" || strings.HasSuffix(l, " 0") {
		t.Errorf("score gauge %q", l)
	}
	if l := metricLine(t, d, `linnet_drift_alert{kind="loss",model="y"}`); l != `linnet_drift_alert{kind="loss",model="y"} 0` {
		t.Errorf("loss alert gauge %q", l)
	}
	var live struct{ Alerts []monitor.Alert }
	getJSON(t, d, "/v1/alerts", &live)
	if len(live.Alerts) != 1 || !live.Alerts[0].Active || live.Alerts[0].Feature != "a" || live.Alerts[0].Model != "y" {
		t.Fatalf("live alerts %+v", live.Alerts)
	}
	var ms struct{ Models []monitor.ModelStatus }
	getJSON(t, d, "/v1/models", &ms)
	if len(ms.Models) != 1 || ms.Models[0].Name != "y" || ms.Models[0].Version != 2 || ms.Models[0].Learning != monitor.Learning ||
		ms.Models[0].Readings < 1280 || len(ms.Models[0].Drift) != 3 || !ms.Models[0].Drift[0].Alert {
		t.Fatalf("live models %+v", ms.Models)
	}

	driftStream(t, c, preds, r, 640, 0)
	waitAlert(t, alerts, 2, false)
	waitFor(t, "linnet_drift_alert 0", func() bool {
		return metricLine(t, d, `linnet_drift_alert{kind="feature",model="y"}`) == `linnet_drift_alert{kind="feature",model="y"} 0`
	})
	getJSON(t, d, "/v1/alerts", &live)
	if len(live.Alerts) != 1 || live.Alerts[0].Active {
		t.Fatalf("live alerts after the return %+v", live.Alerts)
	}
	alerts.mu.Lock()
	defer alerts.mu.Unlock()
	if len(alerts.all) != 2 {
		t.Errorf("alert messages %v, want one fire and one clear", alerts.all)
	}
}

// Acceptance: with response = freeze the learner stops while the alert
// fires, and learns again once it cleared.
func TestDriftFreeze(t *testing.T) {
	m := startMosquitto(t, "")
	d, alerts, c := driftDaemon(t, m.url(), "freeze")
	preds := collect(t, c, "linnet/+/prediction")
	r := rand.New(rand.NewPCG(17, 1))
	driftStream(t, c, preds, r, 640, 0)
	driftStream(t, c, preds, r, 640, 2)
	waitAlert(t, alerts, 1, true)
	waitFor(t, "frozen", d.s.own.Frozen)
	var ms struct{ Models []monitor.ModelStatus }
	waitFor(t, "learning frozen on the live API", func() bool {
		getJSON(t, d, "/v1/models", &ms)
		return len(ms.Models) == 1 && ms.Models[0].Learning == monitor.Frozen
	})
	before, _, _ := d.s.own.Stats()
	driftStream(t, c, preds, r, 256, 2)
	if after, _, _ := d.s.own.Stats(); after != before {
		t.Fatalf("the learner went on while frozen: %d updates, then %d", before, after)
	}
	driftStream(t, c, preds, r, 640, 0)
	waitAlert(t, alerts, 2, false)
	waitFor(t, "unfrozen", func() bool { return !d.s.own.Frozen() })
	before, _, _ = d.s.own.Stats()
	driftStream(t, c, preds, r, 64, 0)
	if after, _, _ := d.s.own.Stats(); after != before+64 {
		t.Fatalf("learning did not resume: %d updates, then %d", before, after)
	}
}

// Acceptance: with response = rollback the previous version serves once
// the alert fires, and the withdrawn version stays recorded as such.
func TestDriftRollback(t *testing.T) {
	m := startMosquitto(t, "")
	d, alerts, c := driftDaemon(t, m.url(), "rollback")
	preds := collect(t, c, "linnet/+/prediction")
	r := rand.New(rand.NewPCG(18, 1))
	driftStream(t, c, preds, r, 640, 0)
	assertActive(t, d, 2)
	driftStream(t, c, preds, r, 640, 2)
	waitAlert(t, alerts, 1, true)
	waitFor(t, "version 1 serving", func() bool { return d.s.own.Current().Version() == 1 })
	assertActive(t, d, 1)
	if w, err := d.s.store.Withdrawn(2); err != nil || !w {
		t.Errorf("version 2 withdrawn: %v %v", w, err)
	}
	preds.mu.Lock()
	n := len(preds.all)
	preds.mu.Unlock()
	driftStream(t, c, preds, r, 64, 0)
	preds.mu.Lock()
	last := preds.all[n]
	preds.mu.Unlock()
	if !strings.Contains(fmt.Sprint(last), "model_version:1") {
		t.Errorf("the answer after the rollback: %v", last)
	}
	var h struct{ Events []monitor.Event }
	getJSON(t, d, "/v1/models/y/history", &h)
	if e := h.Events[len(h.Events)-1]; e.Action != store.ActionRollback || e.Version != 1 || e.Previous != 2 || !strings.HasPrefix(e.Reason, "drift: ") {
		t.Errorf("last history event %+v", e)
	}
}

// The [drift] section: the documented file states the defaults, a file
// and the environment set it, and Validate reports its problems with the
// others'.
func TestDriftConfig(t *testing.T) {
	doc, err := LoadConfig(filepath.Join("..", "scripts", "linnet.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Drift != Default().Drift {
		t.Errorf("scripts/linnet.toml [drift] %+v, defaults %+v", doc.Drift, Default().Drift)
	}
	path := filepath.Join(t.TempDir(), "linnet.toml")
	file := "gateway = \"gw\"\n[drift]\nresponse = \"freeze\"\nwindow = 64\nmean_shift = 0.75\ninterval = \"1s\"\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LINNET_DRIFT_ENABLED": "false", "LINNET_DRIFT_PSI": "0.5"}
	c, err := LoadConfig(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if d := c.Drift; d.Enabled || d.Response != "freeze" || d.Window != 64 || d.MeanShift != 0.75 || d.PSI != 0.5 || d.Interval != time.Second {
		t.Errorf("loaded: %+v", d)
	}

	c = Default()
	c.Gateway = "gw"
	c.Drift.Response = "panic"
	c.Drift.MeanShift = math.Inf(1)
	c.Drift.Window = 0
	c.Drift.ClearRatio = 2
	c.Drift.Interval = 0
	c.Drift.Topic = "linnet/#"
	c.Payload.MaxBatch = 0 // another section's problem, reported together
	err = c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Validate: %v, want a *ConfigError", err)
	}
	for _, want := range []string{"drift.response", "drift.mean_shift", "drift.window", "drift.clear_ratio", "drift.interval", "drift.topic", "payload.max_batch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not report %s:\n%v", want, err)
		}
	}
}

// With Home Assistant discovery on, the served model gets a "Model
// drifting" binary sensor on the gateway's device, fed by the alerts
// topic, announced at connection and again on Home Assistant's birth.
func TestHomeAssistantDriftSensor(t *testing.T) {
	m := startMosquitto(t, "")
	_, alerts, c := driftDaemon(t, m.url(), "none", func(c *Config) { c.HomeAssistant.Enabled = true })
	sensors := collectHA(t, c, "homeassistant/binary_sensor/#")
	check := func(n int) {
		t.Helper()
		msg := sensors.waitFor(t, fmt.Sprintf("binary sensor config %d", n), func(ms []haMsg) bool { return len(ms) >= n })[n-1]
		if msg.topic != "homeassistant/binary_sensor/linnet_gw-test/y_drifting/config" {
			t.Fatalf("binary sensor topic %q", msg.topic)
		}
		var cfg map[string]any
		if err := json.Unmarshal(msg.payload, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg["state_topic"] != "linnet/gw-test/alerts" || cfg["device_class"] != "problem" || cfg["name"] != "Model drifting y" ||
			cfg["value_template"] != "{{ 'ON' if value_json.active else 'OFF' }}" || cfg["unique_id"] != "linnet_gw-test_y_drifting" {
			t.Errorf("binary sensor config %s", msg.payload)
		}
	}
	check(1) // retained from the connection's announcement
	publish(t, c, "homeassistant/status", []byte("online"))
	check(2)
	preds := collect(t, c, "linnet/+/prediction")
	r := rand.New(rand.NewPCG(19, 1))
	driftStream(t, c, preds, r, 640, 2)
	waitAlert(t, alerts, 1, true) // the sensor's state: active
}

// The live page against the real daemon, in headless chromium: it shows
// the served model, and an alert appears within 5 s of its MQTT message.
func TestLivePageInBrowser(t *testing.T) {
	ctx, problems := browsertest.Start(t)
	m := startMosquitto(t, "")
	d, alerts, c := driftDaemon(t, m.url(), "none")
	preds := collect(t, c, "linnet/+/prediction")
	r := rand.New(rand.NewPCG(20, 1))
	driftStream(t, c, preds, r, 640, 0)

	card := chromedp.CSS(`.model[data-model="y"]`)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+d.s.MetricsAddr()+"/"), chromedp.WaitVisible(card)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(card))
	if err != nil || !strings.Contains(text, "learning") || !strings.Contains(text, "2") {
		t.Errorf("the model's card %q (%v)", text, err)
	}
	driftStream(t, c, preds, r, 640, 2)
	waitAlert(t, alerts, 1, true)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	row := chromedp.CSS(`#alerts tr.alert.active[data-model="y"]`)
	if err := chromedp.Do(wctx, chromedp.WaitVisible(row)); err != nil {
		t.Fatalf("the alert did not appear on the page within 5 s of its MQTT message: %v", err)
	}
	if text, err := chromedp.Run(ctx, chromedp.Text(row)); err != nil || !strings.Contains(text, "firing") {
		t.Errorf("alert row %q (%v)", text, err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser errors:\n%s", strings.Join(p, "\n"))
	}
}
