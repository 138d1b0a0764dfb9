package daemon

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/store"
)

// TestOTAGuardVeto: one device sends 500 labelled readings whose labels
// are the old model's predictions, to make the old model look perfect and
// veto a legitimate signed update. The verdict is inconclusive: the
// update stays and nothing is withdrawn.
func TestOTAGuardVeto(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	cfg.OTA.GuardWindow = 500
	d := startDaemon(t, cfg, nil)
	c := testClient(t, m.url(), "ota-veto", true)
	res := watchResults(t, c)
	preds := collect(t, c, "linnet/+/prediction")
	otaPublish(t, c, "linnet/ota/model", lnm(t, linModel(200, []float32{0.55, -0.9, 2.1}, trueBias), otaKey))
	res.expect(t, 200, true, wire.OTAApplied)
	rows := testRows(500, 11)
	for i, x := range rows {
		// trueY is version 100's prediction exactly.
		publish(t, c, "linnet/evil/features", fmt.Appendf(nil, `{"id":%d,"features":[%v,%v,%v],"label":%v}`, i, x[0], x[1], x[2], trueY(x)))
	}
	preds.waitIDs(t, len(rows))
	r := res.expect(t, 200, true, wire.OTAGuardPassed)
	if !strings.Contains(fmt.Sprint(r["detail"]), "inconclusive") {
		t.Errorf("verdict: %v", r["detail"])
	}
	t.Logf("veto attack: %v", r["detail"])
	assertActive(t, d, 200)
	if w, err := d.s.store.Withdrawn(200); err != nil || w {
		t.Errorf("version 200 withdrawn: %v %v", w, err)
	}
}

// TestConfigRejectsNonFinite: non-finite or absurd values are refused
// everywhere, e.g. ota.shadow_tolerance = inf (it disabled the shadow run).
func TestConfigRejectsNonFinite(t *testing.T) {
	for name, set := range map[string]func(*Config){
		"ota.shadow_tolerance inf":   func(c *Config) { c.OTA.ShadowTolerance = math.Inf(1) },
		"ota.shadow_tolerance NaN":   func(c *Config) { c.OTA.ShadowTolerance = math.NaN() },
		"ota.guard_margin inf":       func(c *Config) { c.OTA.GuardMargin = math.Inf(1) },
		"ota.guard_min_delta inf":    func(c *Config) { c.OTA.GuardMinDelta = math.Inf(1) },
		"ota.guard_min_devices 0":    func(c *Config) { c.OTA.GuardMinDevices = 0 },
		"ota.guard_devices bad":      func(c *Config) { c.OTA.GuardDevices = []string{"["} },
		"learning.margin NaN":        func(c *Config) { c.Learning.Margin = math.NaN() },
		"learning.max_step inf":      func(c *Config) { c.Learning.MaxStep = math.Inf(1) },
		"learning.diverge_ratio 0.5": func(c *Config) { c.Learning.DivergeRatio = 0.5 },
	} {
		c := Default()
		c.Gateway = "gw"
		set(c)
		err := c.Validate()
		if ce, ok := err.(*ConfigError); !ok || len(ce.Problems) != 1 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// signedHouses is trainedModel signed with the OTA key, and a copy whose
// predictions are about 1e30 times larger (2.7e32 for a house worth 270).
func signedHouses(t *testing.T, cfg *Config) []byte {
	t.Helper()
	m, _ := trainedModel(t)
	m.Version = 100
	if err := os.WriteFile(cfg.Model, lnm(t, m, otaKey), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := *m
	bad.Version = 200
	bad.Weights = slices.Clone(m.Weights)
	for i := range bad.Weights {
		bad.Weights[i] *= 1e30
	}
	bad.Bias *= 1e30
	return lnm(t, &bad, otaKey)
}

// TestOTAShadowAfterRestart: a trusted-key model predicting about 2.7e32
// arrives right after a (re)start, before any reading: the shadow run
// checks it on the readings kept in the store, or with none on synthetic
// readings from the training statistics, and refuses it.
func TestOTAShadowAfterRestart(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := otaConfig(t, m.url())
	bad := signedHouses(t, cfg)
	c := testClient(t, m.url(), "ota-shadow", true)
	res := watchResults(t, c)

	// A fresh gateway: nothing seen, nothing kept.
	d := startDaemon(t, cfg, nil)
	otaPublish(t, c, "linnet/gw-test/ota/model", bad)
	r := res.expect(t, 200, false, wire.OTAShadow)
	t.Logf("no readings: %v", r["detail"])
	assertActive(t, d, 100)

	// Readings flow, the daemon stops (they are kept), the model comes
	// again (retained) at the restart.
	preds := collect(t, c, "linnet/+/prediction")
	held := houses(t, 50, 66)
	for i := range held.Len() {
		publish(t, c, "linnet/house/features", []byte(labelledJSON(fmt.Sprint(i), held.Row(i), held.Y[i])))
	}
	preds.waitIDs(t, held.Len())
	d.stop(t)
	st, err := store.Open(filepath.Join(cfg.DataDir, "linnet.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, kept, err := st.Recent()
	st.Close()
	if err != nil || len(kept) != held.Len() {
		t.Fatalf("kept %d readings, want %d: %v", len(kept), held.Len(), err)
	}
	d = startDaemon(t, cfg, nil)
	r = res.expect(t, 200, false, wire.OTAShadow)
	t.Logf("after a restart: %v", r["detail"])
	assertActive(t, d, 100)
}
