package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/linnet-edge/linnet/client"
	"github.com/linnet-edge/linnet/daemon/mqttc"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

var (
	otaKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
)

// linModel is an f32 regression over a, b, c: y = bias + w·x.
func linModel(v int64, w []float32, bias float32, features ...string) *model.Model {
	if features == nil {
		features = []string{"a", "b", "c"}
	}
	n := len(features)
	m := &model.Model{Version: v, Created: time.Unix(1700000000, 0).UTC(), Target: "y", Loss: model.Squared,
		Features: features, Mean: make([]float32, n), Std: make([]float32, n), Weights: make([]float32, n), Bias: bias, Scheme: model.F32}
	for i := range n {
		m.Std[i] = 1
		m.Weights[i] = w[i%len(w)]
	}
	return m
}

// lnm encodes m, signed with key unless key is nil.
func lnm(t *testing.T, m *model.Model, key ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if b, err = model.Sign(b, key); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

var (
	trueW    = []float32{0.5, -1, 2}
	trueBias = float32(0.25)
)

// otaConfig serves v1 (the true model, signed) from the store, trusts
// otaKey and learns nothing (the guard tests set what they need).
func otaConfig(t *testing.T, url string) *Config {
	t.Helper()
	cfg := testConfig(t, url)
	dir := t.TempDir()
	cfg.Model = filepath.Join(dir, "v1.lnm")
	if err := os.WriteFile(cfg.Model, lnm(t, linModel(100, trueW, trueBias), otaKey), 0o644); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "ota.pub")
	if err := os.WriteFile(pub, otaKey.Public().(ed25519.PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Trust = []string{pub}
	cfg.Learning.Enabled = false
	cfg.OTA.GuardWindow = 0
	return cfg
}

// results collects the OTA results in arrival order.
type results struct {
	col  *collector
	next int
}

func watchResults(t *testing.T, c paho.Client) *results {
	return &results{col: collect(t, c, "linnet/+/ota/result")}
}

// wait returns the next result (hang guard: patience).
func (r *results) wait(t *testing.T) map[string]any {
	t.Helper()
	r.col.waitAll(t, r.next+1)
	r.col.mu.Lock()
	defer r.col.mu.Unlock()
	r.next++
	return r.col.all[r.next-1]
}

func (r *results) expect(t *testing.T, version int64, accepted bool, reason string) map[string]any {
	t.Helper()
	res := r.wait(t)
	if res["reason"] != reason || res["accepted"] != accepted || (version != 0 && res["version"] != float64(version)) {
		t.Fatalf("result %v, want version %d accepted %v reason %s", res, version, accepted, reason)
	}
	return res
}

func (r *results) count() int {
	r.col.mu.Lock()
	defer r.col.mu.Unlock()
	return len(r.col.all)
}

func activeVersion(t *testing.T, d *runningDaemon) (stored, serving int64) {
	t.Helper()
	v, err := d.s.store.ActiveVersion()
	if err != nil {
		t.Fatal(err)
	}
	return v, d.s.own.Current().Version()
}

func assertActive(t *testing.T, d *runningDaemon, want int64) {
	t.Helper()
	if st, sv := activeVersion(t, d); st != want || sv != want {
		t.Fatalf("active: store %d, serving %d; want %d", st, sv, want)
	}
}

func otaPublish(t *testing.T, c paho.Client, topic string, file []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, true, file)
	if !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func trueY(x []float32) float32 { return trueBias + trueW[0]*x[0] + trueW[1]*x[1] + trueW[2]*x[2] }

// Acceptance 1: a signed newer model pushed while a numbered stream runs is
// applied; every reading is answered exactly once, and each device's
// model_version switches once from the old version to the new one.
func TestOTAApplyMidStream(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-stream", true)
	preds := collect(t, c, "linnet/+/prediction")
	res := watchResults(t, c)

	w2 := []float32{1, 1, 1}
	v2 := linModel(200, w2, 0)
	rows := testRows(20000, 11)
	pushed := make(chan struct{})
	var sent int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		after := -1
		for i := range rows {
			tok := c.Publish(fmt.Sprintf("linnet/s%d/features", i%3), 1, false, readingJSON(i, rows[i], false))
			if !tok.WaitTimeout(patience) || tok.Error() != nil {
				t.Errorf("publish %d: %v", i, tok.Error())
				return
			}
			sent = i + 1
			select {
			case <-pushed:
				if after < 0 {
					after = i
				}
			default:
			}
			if after >= 0 && i >= after+300 {
				return
			}
		}
	}()
	preds.waitIDs(t, 300)
	rep, err := client.Push(context.Background(), client.PushOptions{MQTT: mqttc.Conn{Broker: m.url()}, Key: otaKey, Model: lnm(t, v2, nil),
		Gateway: "gw-test", Timeout: patience})
	close(pushed)
	wg.Wait()
	if err != nil || len(rep.Results) != 1 || !rep.Results[0].Accepted || rep.Results[0].Reason != wire.OTAApplied || rep.Results[0].Active != 200 {
		t.Fatalf("push: %v %+v", err, rep)
	}
	res.expect(t, 200, true, wire.OTAApplied)
	assertActive(t, d, 200)

	preds.waitIDs(t, sent)
	preds.mu.Lock()
	defer preds.mu.Unlock()
	last := map[string]float64{}
	switched := 0
	for i := 0; i < sent; i++ {
		ps := preds.byID[fmt.Sprint(i)]
		if len(ps) != 1 {
			t.Fatalf("reading %d: %d predictions", i, len(ps))
		}
		p := ps[0]
		dev := p["device"].(string)
		v := p["model_version"].(float64)
		want := float64(trueY(rows[i]))
		if v == 200 {
			want = float64(rows[i][0] + rows[i][1] + rows[i][2])
		}
		if !near(p["prediction"].(float64), want) {
			t.Errorf("reading %d: prediction %v by version %v, want %v", i, p["prediction"], v, want)
		}
		if last[dev] == 200 && v == 100 {
			t.Errorf("device %s: version went back from 200 to 100 at reading %d", dev, i)
		}
		if last[dev] == 100 && v == 200 {
			switched++
		}
		last[dev] = v
	}
	if switched != 3 {
		t.Errorf("%d devices switched from 100 to 200, want 3", switched)
	}
	t.Logf("%d readings, each answered once; the switch happened with readings in flight", sent)
	h, _ := d.s.store.History()
	if e := h[len(h)-1]; e.Action != store.ActionActivate || e.Version != 200 || e.Previous != 100 || e.Source != store.SourceOTA {
		t.Errorf("last history event %+v", e)
	}
}

// Acceptance 2: refusals, each with its reason, the active model untouched.
func TestOTARejections(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	cfg.OTA.MaxBytes = 2048
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-reject", true)
	res := watchResults(t, c)
	preds := collect(t, c, "linnet/+/prediction")
	// Readings first: the shadow run predicts them.
	rows := testRows(50, 2)
	for i, x := range rows {
		publish(t, c, "linnet/dev/features", readingJSON(i, x, false))
	}
	preds.waitIDs(t, len(rows))

	good := lnm(t, linModel(200, []float32{1, 1, 1}, 0), otaKey)
	flip := bytes.Clone(good)
	flip[40] ^= 0x10
	sigFlip := bytes.Clone(good)
	sigFlip[len(sigFlip)-1] ^= 1
	wide := make([]string, 600)
	for i := range wide {
		wide[i] = fmt.Sprintf("feature_%03d", i)
	}
	cases := []struct {
		name   string
		file   []byte
		reason string
	}{
		{"bit-flipped", flip, wire.OTACorrupt},
		{"signature bit-flipped", sigFlip, wire.OTABadSignature},
		{"unsigned", lnm(t, linModel(200, []float32{1, 1, 1}, 0), nil), wire.OTAUnsigned},
		{"unknown key", lnm(t, linModel(200, []float32{1, 1, 1}, 0), otherKey), wire.OTAUntrustedKey},
		{"older version", lnm(t, linModel(50, trueW, trueBias), otaKey), wire.OTANotNewer},
		{"same version, other bytes", lnm(t, linModel(100, []float32{1, 1, 1}, 0), otaKey), wire.OTANotNewer},
		{"oversize", lnm(t, linModel(200, []float32{1}, 0, wide...), otaKey), wire.OTAOversize},
		{"wrong schema", lnm(t, linModel(200, trueW, 0, "a", "b", "d"), otaKey), wire.OTASchema},
		{"truncated", good[:len(good)/2], wire.OTAMalformed},
		{"not a model", []byte("PK\x03\x04 a zip file"), wire.OTAMalformed},
		{"absurd outputs", lnm(t, linModel(200, []float32{1e6, 1e6, 1e6}, 0), otaKey), wire.OTAShadow},
		{"infinite outputs", lnm(t, linModel(200, []float32{3e38, 3e38, 3e38}, 0), otaKey), wire.OTAShadow},
		{"old-format rollback", func() []byte {
			b, _ := model.MarkRollback(lnm(t, linModel(50, trueW, trueBias), nil))
			b, _ = model.Sign(b, otaKey)
			return b
		}(), wire.OTALegacyRollback},
	}
	for _, cs := range cases {
		otaPublish(t, c, "linnet/gw-test/ota/model", cs.file)
		r := res.wait(t)
		if r["reason"] != cs.reason || r["accepted"] != false || r["detail"] == "" || r["active"] != 100.0 {
			t.Errorf("%s: result %v, want reason %s", cs.name, r, cs.reason)
		}
		assertActive(t, d, 100)
		t.Logf("%-26s -> %s: %v", cs.name, r["reason"], r["detail"])
	}
	// The active model's own file: nothing to do.
	v1, _ := os.ReadFile(cfg.Model)
	otaPublish(t, c, "linnet/ota/model", v1)
	res.expect(t, 100, false, wire.OTAAlreadyActive)

	// Every refusal is in the history and the metrics.
	h, _ := d.s.store.History()
	rejects := 0
	for _, e := range h {
		if e.Action == store.ActionReject {
			rejects++
		}
	}
	if rejects != len(cases) {
		t.Errorf("%d reject events in the history, want %d", rejects, len(cases))
	}
	if got := gatheredLabel(t, d, "linnet_ota_results_total", "reason", wire.OTAShadow); got != 2 {
		t.Errorf("shadow refusals counted %v", got)
	}
	// Unsigned models are accepted only when the config says so; a
	// downgrade even then only as a signed rollback; the state was not
	// harmed by the refusals.
	otaPublish(t, c, "linnet/gw-test/ota/model", good)
	res.expect(t, 200, true, wire.OTAApplied)
	assertActive(t, d, 200)
	hour := time.Now().Add(time.Hour)
	newRollback := func(from int64, gw string, expires time.Time, key ed25519.PrivateKey) []byte {
		t.Helper()
		b, err := model.NewRollback(v1, from, gw, expires, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, cs := range []struct {
		name   string
		file   []byte
		reason string
	}{
		{"untrusted key", newRollback(200, "", hour, otherKey), wire.OTAUntrustedKey},
		{"from a version not served", newRollback(150, "", hour, otaKey), wire.OTARollbackStale},
		{"for another gateway", newRollback(200, "gw-other", hour, otaKey), wire.OTARollbackStale},
		{"expired", newRollback(200, "", time.Now().Add(-time.Minute), otaKey), wire.OTARollbackStale},
	} {
		otaPublish(t, c, "linnet/gw-test/ota/model", cs.file)
		if r := res.wait(t); r["reason"] != cs.reason || r["accepted"] != false {
			t.Errorf("rollback %s: result %v, want %s", cs.name, r, cs.reason)
		}
		assertActive(t, d, 200)
	}
	rb := newRollback(200, "gw-test", hour, otaKey)
	otaPublish(t, c, "linnet/gw-test/ota/model", rb)
	r := res.expect(t, 100, true, wire.OTAApplied)
	if r["rollback"] != true {
		t.Errorf("rollback not flagged: %v", r)
	}
	assertActive(t, d, 100)
	// The version it rolled back from does not come back.
	otaPublish(t, c, "linnet/ota/model", good)
	res.expect(t, 200, false, wire.OTAWithdrawn)
	assertActive(t, d, 100)
}

// TestOTARollbackReplay: a captured signed rollback file, replayed twice
// (right after its use and after a newer version was applied), is refused
// as replay each time and withdraws nothing.
func TestOTARollbackReplay(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-replay", true)
	res := watchResults(t, c)
	v1, _ := os.ReadFile(cfg.Model)
	otaPublish(t, c, "linnet/ota/model", lnm(t, linModel(200, trueW, trueBias), otaKey))
	res.expect(t, 200, true, wire.OTAApplied)
	// linnet push --rollback --from 200 --gateway gw-test
	rep, err := client.Push(context.Background(), client.PushOptions{MQTT: mqttc.Conn{Broker: m.url()}, Key: otaKey, Model: v1,
		Gateway: "gw-test", Rollback: true, From: 200, Expires: time.Hour, Timeout: patience})
	if err != nil || len(rep.Results) != 1 || rep.Results[0].Reason != wire.OTAApplied || !rep.Rollback {
		t.Fatalf("push --rollback: %v %+v", err, rep)
	}
	res.expect(t, 100, true, wire.OTAApplied)
	assertActive(t, d, 100)
	// The attacker captures the retained rollback file.
	got := make(chan []byte, 1)
	spy := testClient(t, m.url(), "spy", true)
	spy.Subscribe("linnet/gw-test/ota/model", 1, func(_ paho.Client, msg paho.Message) {
		select {
		case got <- msg.Payload():
		default:
		}
	})
	var rb []byte
	select {
	case rb = <-got:
	case <-time.After(patience):
		t.Fatal("no retained rollback file")
	}
	if !model.IsRollbackFile(rb) {
		t.Fatalf("retained payload is not a rollback file (%d bytes)", len(rb))
	}
	otaPublish(t, c, "linnet/ota/model", rb)
	res.expect(t, 100, false, wire.OTAReplay)
	otaPublish(t, c, "linnet/ota/model", lnm(t, linModel(300, trueW, trueBias), otaKey))
	res.expect(t, 300, true, wire.OTAApplied)
	otaPublish(t, c, "linnet/gw-test/ota/model", rb)
	res.expect(t, 100, false, wire.OTAReplay)
	assertActive(t, d, 300)
	if w, err := d.s.store.Withdrawn(300); err != nil || w {
		t.Errorf("a replay withdrew version 300: %v %v", w, err)
	}
	if got := gatheredLabel(t, d, "linnet_ota_results_total", "reason", wire.OTAReplay); got != 2 {
		t.Errorf("replays counted %v", got)
	}
}

func TestOTAUnsignedAllowed(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	cfg.OTA.AllowUnsigned = true
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-unsigned", true)
	res := watchResults(t, c)
	rb, _ := model.MarkRollback(lnm(t, linModel(50, trueW, trueBias), nil))
	otaPublish(t, c, "linnet/gw-test/ota/model", rb)
	res.expect(t, 50, false, wire.OTALegacyRollback)
	otaPublish(t, c, "linnet/gw-test/ota/model", lnm(t, linModel(300, trueW, trueBias), otherKey))
	res.expect(t, 300, false, wire.OTAUntrustedKey)
	otaPublish(t, c, "linnet/gw-test/ota/model", lnm(t, linModel(300, trueW, trueBias), nil))
	res.expect(t, 300, true, wire.OTAApplied)
	assertActive(t, d, 300)
}

// Acceptance 3: a gateway that connects after the push gets the retained
// model and applies it once; after a restart the retained copy comes again
// and is not applied a second time.
func TestOTARetainedLateGateway(t *testing.T) {
	m := startMosquitto(t, "")
	rep, err := client.Push(context.Background(), client.PushOptions{MQTT: mqttc.Conn{Broker: m.url()}, Key: otaKey,
		Model: lnm(t, linModel(200, trueW, 1), nil), Timeout: 100 * time.Millisecond})
	if err != nil || rep.Topic != "linnet/ota/model" || len(rep.Results) != 0 {
		t.Fatalf("fleet push with nobody listening: %v %+v", err, rep)
	}
	c := testClient(t, m.url(), "ota-late", true)
	res := watchResults(t, c)

	cfg := otaConfig(t, m.url())
	d := startDaemon(t, cfg, nil)
	res.expect(t, 200, true, wire.OTAApplied)
	assertActive(t, d, 200)
	d.stop(t)

	d2 := startDaemon(t, cfg, nil) // same data dir, same --model v1
	r := res.expect(t, 200, false, wire.OTAAlreadyActive)
	assertActive(t, d2, 200)
	t.Logf("after restart: %v", r["detail"])

	// It serves; a live push of the same file goes through the OTA
	// goroutine after the retained copies, and its answer is the third
	// result: the retained copy was not applied again.
	preds := collect(t, c, "linnet/+/prediction")
	publish(t, c, "linnet/dev/features", readingJSON(1, []float32{1, 2, 3}, false))
	preds.waitID(t, "1")
	_, err = client.Push(context.Background(), client.PushOptions{MQTT: mqttc.Conn{Broker: m.url()}, Key: otaKey,
		Model: lnm(t, linModel(200, trueW, 1), nil), Gateway: "gw-test", Timeout: patience})
	if err != nil {
		t.Fatal(err)
	}
	res.expect(t, 200, false, wire.OTAAlreadyActive)
	if n := res.count(); n != 3 {
		t.Errorf("%d results, want 3 (applied, already_active after the restart, already_active for the live push)", n)
	}
	h, _ := d2.s.store.History()
	applies := 0
	for _, e := range h {
		if e.Action == store.ActionActivate && e.Version == 200 {
			applies++
		}
	}
	if applies != 1 {
		t.Errorf("version 200 activated %d times", applies)
	}
}

// Acceptance 4: a model worse on labelled readings is rolled back by the
// guard; the retained copy is then refused; an equally good one stays.
func TestOTAGuardRollback(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	cfg.OTA.GuardWindow = 500
	cfg.OTA.GuardMargin = 0.2
	cfg.Learning.Enabled = true
	// The learner learns, but the serving copy stays the pushed model
	// during a window: a new model that learns its way out of its error
	// leaves no clear verdict.
	cfg.Learning.RequantizeEvery = 5000
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-guard", true)
	res := watchResults(t, c)
	preds := collect(t, c, "linnet/+/prediction")
	rows := testRows(2000, 4)
	noise := rand.New(rand.NewPCG(4, 5))
	id := 0
	// Labels are the true model plus unit noise: the true model's loss is
	// about 1, the worse one's about 10.
	sendLabelled := func(n int) {
		for k := 0; k < n; k++ {
			x := rows[id%len(rows)]
			y := trueY(x) + float32(noise.NormFloat64())
			publish(t, c, fmt.Sprintf("linnet/g%d/features", id%3), fmt.Appendf(nil, `{"id":%d,"features":[%v,%v,%v],"label":%v}`, id, x[0], x[1], x[2], y))
			id++
		}
		preds.waitIDs(t, id)
	}
	sendLabelled(100)

	// Worse: the weights 20% to 40% off, inside the shadow run's range.
	worse := lnm(t, linModel(200, []float32{0.7, -1.2, 2.5}, trueBias), otaKey)
	otaPublish(t, c, "linnet/ota/model", worse)
	res.expect(t, 200, true, wire.OTAApplied)
	assertActive(t, d, 200)
	sendLabelled(550)
	r := res.expect(t, 200, false, wire.OTARolledBack)
	t.Logf("rolled back: %v", r["detail"])
	if r["active"] != 100.0 {
		t.Errorf("active after rollback %v", r["active"])
	}
	assertActive(t, d, 100)
	h, _ := d.s.store.History()
	if e := h[len(h)-1]; e.Action != store.ActionRollback || e.Version != 100 || e.Previous != 200 || e.Source != store.SourceRollback || e.Reason == "" {
		t.Errorf("last history event %+v", e)
	}
	// The retained message brings it again (a live push here): refused.
	otaPublish(t, c, "linnet/ota/model", worse)
	res.expect(t, 200, false, wire.OTAWithdrawn)

	// Serving goes on with version 100 and its learner.
	sendLabelled(10)
	preds.mu.Lock()
	if v := preds.byID[fmt.Sprint(id-1)][0]["model_version"]; v != 100.0 {
		t.Errorf("served by %v after the rollback", v)
	}
	preds.mu.Unlock()

	// As good as the current one: the guard lets it stay.
	otaPublish(t, c, "linnet/ota/model", lnm(t, linModel(300, trueW, trueBias), otaKey))
	res.expect(t, 300, true, wire.OTAApplied)
	sendLabelled(550)
	res.expect(t, 300, true, wire.OTAGuardPassed)
	assertActive(t, d, 300)
	if got := gatheredLabel(t, d, "linnet_ota_results_total", "reason", wire.OTARolledBack); got != 1 {
		t.Errorf("rollbacks counted: %v", got)
	}
}

func TestOTAConfigValidate(t *testing.T) {
	c := Default()
	c.Gateway = "gw"
	c.OTA.MaxBytes = 10
	c.OTA.FleetTopic = "linnet/+/x"
	c.OTA.GuardMargin = math.NaN()
	err := c.Validate()
	ce, ok := err.(*ConfigError)
	if !ok || len(ce.Problems) != 3 {
		t.Fatalf("%v", err)
	}
	t.Setenv("LINNET_OTA_GUARD_MARGIN", "0.5")
	c2, err := LoadConfig("", os.LookupEnv)
	if err != nil || c2.OTA.GuardMargin != 0.5 {
		t.Errorf("env override: %v %v", err, c2.OTA.GuardMargin)
	}
}

// buildLinnet builds the linnet binary into the test's directory.
func buildLinnet(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "linnet")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "../cmd/linnet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Acceptance 5: the daemon, a built binary, is SIGKILLed at random moments
// around the apply of a retained model, 30 times. After each kill the
// store verifies and its active model is the old or the new one, signed by
// the trusted key; restarted, the daemon serves.
func TestOTASigkillDuringApply(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it 30 times")
	}
	bin := buildLinnet(t)
	m := startMosquitto(t, "")
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.lnm")
	if err := os.WriteFile(v1, lnm(t, linModel(100, trueW, trueBias), otaKey), 0o644); err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "ota.pub")
	pub := otaKey.Public().(ed25519.PublicKey)
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	c := testClient(t, m.url(), "ota-kill", true)
	res := watchResults(t, c)
	preds := collect(t, c, "linnet/+/prediction")
	// The new model goes out with the CLI: unsigned file, signed by push.
	v2 := filepath.Join(dir, "v2.lnm")
	keyPath := filepath.Join(dir, "ota.key")
	if err := os.WriteFile(v2, lnm(t, linModel(200, []float32{1, 1, 1}, 0), nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, otaKey.Seed(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "push", "--broker", m.url(), "--key", keyPath, "--model", v2, "--timeout", "1ms", "--json").Output()
	var rep client.PushReport
	if err != nil || json.Unmarshal(out, &rep) != nil || rep.Topic != "linnet/ota/model" || rep.Version != 200 || rep.Signer != model.KeyID(pub) {
		t.Fatalf("linnet push: %v %s", err, out)
	}

	start := func(data string) *exec.Cmd {
		cmd := exec.Command(bin, "run", "--broker", m.url(), "--data-dir", data, "--gateway", "gw-kill",
			"--model", v1, "--trust", pubPath, "--metrics", "")
		var log bytes.Buffer
		cmd.Stderr = &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
			if t.Failed() && log.Len() > 0 {
				t.Logf("daemon log (%s):\n%s", data, log.Bytes()[max(0, log.Len()-3000):])
			}
		})
		return cmd
	}
	// The retained model arrives right after the daemon subscribed, when
	// it also publishes its "online" status: kills are timed from there.
	status := collect(t, c, "linnet/gw-kill/status")
	onlines := func() int {
		status.mu.Lock()
		defer status.mu.Unlock()
		n := 0
		for _, s := range status.all {
			if s["state"] == "online" {
				n++
			}
		}
		return n
	}
	waitOnline := func(n int) {
		deadline := time.After(patience)
		for onlines() <= n {
			select {
			case <-status.cond:
			case <-deadline:
				t.Fatal("daemon not online")
			}
		}
	}
	// Calibrate: from exec to online, and from online to the result.
	t0 := time.Now()
	cal := start(t.TempDir())
	waitOnline(0)
	tOn := time.Since(t0)
	res.expect(t, 200, true, wire.OTAApplied)
	span := time.Since(t0)
	apply := max(span-tOn, time.Millisecond)
	cal.Process.Kill()
	cal.Wait()
	t.Logf("exec to online %v, online to applied result %v", tOn, apply)

	var ons []time.Duration
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	outcome := map[int64]int{}
	id := 0
	const kills = 30
	for i := 0; i < kills; i++ {
		data := t.TempDir()
		// A third of the kills anywhere from exec to a little after the
		// apply; a third around the calibrated moment the daemon went
		// online (its start-up time varies by a few ms from run to run,
		// so these straddle the apply); a third after this run's own
		// "online", within the calibrated time to the result.
		n := onlines()
		cmd := start(data)
		var delay time.Duration
		switch i % 3 {
		case 0:
			delay = time.Duration(r.Float64() * 1.2 * float64(span))
		case 1:
			delay = time.Duration((0.85 + 0.3*r.Float64()) * float64(tOn))
		case 2:
			waitOnline(n)
			delay = time.Duration(r.Float64() * 1.5 * float64(apply))
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		active := int64(0)
		if _, err := os.Stat(filepath.Join(data, "linnet.db")); err == nil {
			st, err := store.Open(filepath.Join(data, "linnet.db"), store.Options{Trusted: []ed25519.PublicKey{pub}, RequireSigned: true})
			if err != nil {
				t.Fatalf("kill %d after %v: store: %v", i, delay, err)
			}
			if mod, file, err := st.Active(); err == nil {
				active = mod.Version
				if err := model.Verify(file, []ed25519.PublicKey{pub}); err != nil {
					t.Errorf("kill %d: active model does not verify: %v", i, err)
				}
			} else if !errors.Is(err, store.ErrNoActive) {
				t.Errorf("kill %d: active: %v", i, err)
			}
			st.Close()
		}
		if active != 0 && active != 100 && active != 200 {
			t.Fatalf("kill %d: active version %d", i, active)
		}
		outcome[active]++

		// Restarted, it serves (the old model, or the new one). Its time
		// to online refines the estimate the next kills are aimed with
		// (the calibration run starts colder than the later ones).
		n = onlines()
		t1 := time.Now()
		cmd = start(data)
		waitOnline(n)
		ons = append(ons, time.Since(t1))
		slices.Sort(ons)
		tOn = ons[len(ons)/2]
		id++
		for {
			publish(t, c, "linnet/kill/features", readingJSON(id, []float32{1, 2, 3}, false))
			ok := func() bool {
				deadline := time.After(patience)
				for {
					preds.mu.Lock()
					got := preds.byID[fmt.Sprint(id)]
					preds.mu.Unlock()
					if len(got) > 0 {
						if v := got[0]["model_version"]; v != 100.0 && v != 200.0 {
							t.Fatalf("kill %d: served by %v", i, v)
						}
						return true
					}
					select {
					case <-preds.cond:
					case <-deadline:
						return false
					}
				}
			}()
			if ok {
				break
			}
			t.Fatalf("kill %d: no prediction after the restart", i)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("kill %d: restarted daemon exited: %v", i, err)
		}
	}
	t.Logf("%d kills: active after the kill: none yet %d, old (100) %d, new (200) %d; median exec to online %v",
		kills, outcome[0], outcome[100], outcome[200], tOn)
}

// A guard interrupted by a restart starts its window again from the
// store's history, and an allowed schema change skips the guard.
func TestOTAGuardResumesAndSchemaChange(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	cfg.OTA.GuardWindow = 100
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-resume", true)
	res := watchResults(t, c)
	preds := collect(t, c, "linnet/+/prediction")
	rows := testRows(500, 8)
	noise := rand.New(rand.NewPCG(8, 9))
	id := 0
	sendLabelled := func(n int) {
		for k := 0; k < n; k++ {
			x := rows[id%len(rows)]
			y := trueY(x) + float32(noise.NormFloat64())
			publish(t, c, fmt.Sprintf("linnet/r%d/features", id%3), fmt.Appendf(nil, `{"id":%d,"features":[%v,%v,%v],"label":%v}`, id, x[0], x[1], x[2], y))
			id++
		}
		preds.waitIDs(t, id)
	}
	sendLabelled(20)
	otaPublish(t, c, "linnet/ota/model", lnm(t, linModel(200, []float32{0.7, -1.2, 2.5}, trueBias), otaKey))
	res.expect(t, 200, true, wire.OTAApplied)
	sendLabelled(60) // not a whole window
	d.stop(t)

	d = startDaemon(t, cfg, nil)
	res.expect(t, 200, false, wire.OTAAlreadyActive) // the retained copy
	sendLabelled(100)
	r := res.expect(t, 200, false, wire.OTARolledBack)
	if !bytes.Contains(fmt.Append(nil, r["detail"]), []byte("over 100 labelled")) {
		t.Errorf("the window did not start again: %v", r["detail"])
	}
	assertActive(t, d, 100)
	d.stop(t)

	// With ota.allow_schema_change a new schema is applied, unguarded (the
	// refusal without it is in TestOTARejections).
	cfg.OTA.AllowSchemaChange = true
	d = startDaemon(t, cfg, nil)
	res.expect(t, 200, false, wire.OTAWithdrawn) // the retained copy, after a restart too
	otaPublish(t, c, "linnet/gw-test/ota/model", lnm(t, linModel(300, []float32{1, 2}, 0, "a", "z"), otaKey))
	res.expect(t, 300, true, wire.OTAApplied)
	assertActive(t, d, 300)
	if d.s.ota.Guarding() {
		t.Error("guard armed across a schema change")
	}
	publish(t, c, "linnet/r/features", []byte(`{"id":"z","features":{"a":1,"z":2}}`))
	preds.waitID(t, "z")
}

// A shadow run that takes long (blocked here) holds up neither the paho
// client nor the workers: readings are answered by the old model meanwhile.
func TestOTASlowShadowRunDoesNotBlock(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	s.ota.ShadowStarted = func() { close(entered); <-release }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	<-s.Ready()
	c := testClient(t, m.url(), "ota-slow", true)
	res := watchResults(t, c)
	preds := collect(t, c, "linnet/+/prediction")
	otaPublish(t, c, "linnet/ota/model", lnm(t, linModel(200, []float32{1, 1, 1}, 0), otaKey))
	select {
	case <-entered:
	case <-time.After(patience):
		t.Fatal("shadow run not started")
	}
	rows := testRows(200, 3)
	for i, x := range rows {
		publish(t, c, "linnet/slow/features", readingJSON(i, x, false))
	}
	preds.waitIDs(t, len(rows))
	preds.mu.Lock()
	for i := range rows {
		if v := preds.byID[fmt.Sprint(i)][0]["model_version"]; v != 100.0 {
			t.Errorf("reading %d served by %v during the shadow run", i, v)
		}
	}
	preds.mu.Unlock()
	close(release)
	res.expect(t, 200, true, wire.OTAApplied)
	publish(t, c, "linnet/slow/features", readingJSON(1000, rows[0], false))
	preds.waitID(t, "1000")
	preds.mu.Lock()
	defer preds.mu.Unlock()
	if v := preds.byID["1000"][0]["model_version"]; v != 200.0 {
		t.Errorf("after the apply: served by %v", v)
	}
}

// A gateway with an empty store takes its first model over the air.
func TestOTAFirstModel(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	cfg.Model = ""
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-first", true)
	res := watchResults(t, c)
	preds := collect(t, c, "linnet/+/prediction")
	otaPublish(t, c, "linnet/ota/model", lnm(t, linModel(100, trueW, trueBias), otaKey))
	res.expect(t, 100, true, wire.OTAApplied)
	assertActive(t, d, 100)
	publish(t, c, "linnet/first/features", readingJSON(1, []float32{1, 2, 3}, false))
	preds.waitID(t, "1")
}
