package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/store"
)

// TestStoreDeletedWhileRunning: the store file deleted under a running
// daemon is noticed within a checkpoint interval, re-created from memory
// and reported (log, errors topic, metric, /healthz until then); a restart
// serves the same model, not the demo model.
func TestStoreDeletedWhileRunning(t *testing.T) {
	_, path := trainedModel(t)
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0"
	cfg.Model = path
	d := startDaemon(t, cfg, nil)
	cl := testClient(t, d.s.BrokerURL(), "tester", true)
	errs := collect(t, cl, "linnet/gw-test/errors")
	db := filepath.Join(cfg.DataDir, "linnet.db")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	if err := d.s.health(); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("healthz with the store file deleted: %v", err)
	}
	d.s.checkStore() // what every checkpoint interval does
	if fi, err := os.Stat(db); err != nil || fi.Size() == 0 {
		t.Fatalf("store file not re-created: %v", err)
	}
	errs.waitAll(t, 1)
	errs.mu.Lock()
	if r := errs.all[0]["reason"]; r != reasonStore || !strings.Contains(errs.all[0]["detail"].(string), "re-created") {
		t.Errorf("errors topic: %v", errs.all[0])
	}
	errs.mu.Unlock()
	if !strings.Contains(scrape(t, d.s.MetricsAddr()), "linnet_store_recreated_total 1") {
		t.Error("linnet_store_recreated_total not 1")
	}
	d.s.checkStore()
	if err := d.s.health(); err != nil {
		t.Errorf("healthz after the re-creation: %v", err)
	}
	d.stop(t)
	cfg2 := *cfg
	cfg2.Model = "" // what the store holds, nothing else
	d2 := startDaemon(t, &cfg2, nil)
	if v := d2.s.own.Current().Version(); v != 7 {
		t.Errorf("after a restart serving version %d, want 7", v)
	}
}

// TestStoreZeroBytes: a store file truncated to 0 bytes (its state record
// next to it) is reported as lost and the daemon refuses to start; with
// start_anew it starts a new store from the record and says so in the
// status message and the metrics.
func TestStoreZeroBytes(t *testing.T) {
	_, path := trainedModel(t)
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0"
	cfg.Model = path
	d := startDaemon(t, cfg, nil)
	d.stop(t)
	db := filepath.Join(cfg.DataDir, "linnet.db")
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := s.Run(ctx); !errors.Is(err, store.ErrLost) || !strings.Contains(err.Error(), "start_anew") {
		t.Fatalf("start on a 0-byte store: %v", err)
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
		t.Errorf("the refused start changed the file: %v", err)
	}
	cfg.StartAnew = true
	d2 := startDaemon(t, cfg, nil)
	var st wire.Status
	if err := json.Unmarshal(d2.s.status("online"), &st); err != nil || !strings.Contains(st.StoreRepair, "lost") {
		t.Errorf("status %+v %v", st, err)
	}
	if !strings.Contains(scrape(t, d2.s.MetricsAddr()), "linnet_store_repaired 1") {
		t.Error("linnet_store_repaired not 1")
	}
}
