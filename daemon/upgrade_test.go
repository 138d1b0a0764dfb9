package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// upgradeFixture is a gateway's state written by an earlier linnet (how:
// testdata/upgrade/README.txt): its config without [[models]], its data
// directory (store and state record), the readings it was sent and what
// it answered, and what its CLI read from the store.
const upgradeFixture = "testdata/upgrade"

// mqttMessage is one line of the fixture's recorded traffic.
type mqttMessage struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

// TestUpgrade: a store and config written before models had names start
// unchanged and serve what they served: the same predictions on the same
// topics by the same version, with the learner resumed from its
// checkpoint; the store reads as the model named "default" with its
// versions, history and withdrawn version, and opening it read-only as
// the CLI does changes no byte.
func TestUpgrade(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(upgradeFixture)); err != nil {
		t.Fatal(err)
	}
	readings := readMessages(t, filepath.Join(dir, "readings.jsonl"))
	recorded := readMessages(t, filepath.Join(dir, "predictions.jsonl"))
	statuses := readMessages(t, filepath.Join(dir, "status.jsonl"))
	if len(readings) == 0 || len(recorded) != len(readings) || len(statuses) != 1 {
		t.Fatalf("fixture: %d readings, %d predictions, %d status messages", len(readings), len(recorded), len(statuses))
	}
	var list struct {
		Active int64        `json:"active"`
		Models []store.Info `json:"models"`
	}
	readJSON(t, filepath.Join(dir, "list.json"), &list)
	var history struct {
		Events []store.Event `json:"events"`
	}
	readJSON(t, filepath.Join(dir, "history.json"), &history)
	var status struct {
		State        string `json:"state"`
		ModelVersion int64  `json:"model_version"`
		Updates      *int64 `json:"updates"`
	}
	if err := json.Unmarshal(statuses[0].Payload, &status); err != nil || status.Updates == nil || *status.Updates == 0 {
		t.Fatalf("fixture status %s: %v (want a learner with updates)", statuses[0].Payload, err)
	}
	if status.ModelVersion != list.Active {
		t.Fatalf("fixture: status serves %d, the store's active is %d", status.ModelVersion, list.Active)
	}

	// The config's paths are relative to where the gateway runs it.
	t.Chdir(dir)
	db := filepath.Join("data", "linnet.db")
	files := dataFiles(t, "data")

	// The CLI's path: a read-only open sees the default model as recorded
	// and changes nothing on disk.
	withdrawn := checkUpgradedStore(t, db, list.Active, list.Models, history.Events)
	if got := dataFiles(t, "data"); !maps.EqualFunc(got, files, bytes.Equal) {
		t.Errorf("a read-only open changed the data directory: %v, was %v",
			slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(files)))
	}
	// The model served without its learner, to show the learner matters.
	raw := activeModel(t, db)

	cfg, err := LoadConfig("linnet.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MQTT.Embedded = "127.0.0.1:0" // the daemon binds it: no port probing
	d := startDaemon(t, cfg, nil)
	// One client listens, another publishes: mochi shares packet ids
	// between the two directions of a connection (see below).
	c := testClient(t, d.s.BrokerURL(), "upgrade-sub", true)
	pc := testClient(t, d.s.BrokerURL(), "upgrade-pub", true)
	// Subscribe to the status last: mochi refuses (SUBACK 0x80, which
	// paho does not report as an error) a SUBSCRIBE whose packet id is
	// that of a QoS 1 message it has in flight to the same client, such
	// as the retained status.
	topics := map[string]*collector{}
	for _, m := range recorded {
		if topics[m.Topic] == nil {
			topics[m.Topic] = collect(t, c, m.Topic)
		}
	}
	res := collect(t, c, "linnet/"+cfg.Gateway+"/ota/result")
	st := collect(t, c, statuses[0].Topic)
	st.waitAll(t, 1)
	st.mu.Lock()
	online := st.all[0]
	st.mu.Unlock()
	if online["state"] != "online" || online["model_version"] != float64(status.ModelVersion) || online["updates"] != float64(*status.Updates) {
		t.Errorf("status %v, want online with version %d and %d learner updates (the checkpoint resumed)",
			online, status.ModelVersion, *status.Updates)
	}

	for _, r := range readings {
		publish(t, pc, r.Topic, r.Payload)
	}
	answered := func() int {
		n := 0
		for _, col := range topics {
			col.mu.Lock()
			n += len(col.byID)
			col.mu.Unlock()
		}
		return n
	}
	for deadline := time.Now().Add(patience); answered() < len(recorded); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d readings answered: %s", answered(), len(recorded), d.counts())
		}
	}
	learned := 0
	for _, m := range recorded {
		var want map[string]any
		if err := json.Unmarshal(m.Payload, &want); err != nil {
			t.Fatal(err)
		}
		col := topics[m.Topic]
		id := fmt.Sprint(want["id"])
		col.waitID(t, id)
		col.mu.Lock()
		got := col.byID[id]
		col.mu.Unlock()
		wp, ok := want["prediction"].(float64)
		if !ok {
			t.Fatalf("recorded prediction %s", m.Payload)
		}
		// QoS 1 is at least once: every copy must be the recorded answer.
		for _, p := range got {
			for _, k := range []string{"device", "model_version"} {
				if p[k] != want[k] {
					t.Errorf("reading %s: %s %v, recorded %v", id, k, p[k], want[k])
				}
			}
			if gp, ok := p["prediction"].(float64); !ok || math.Abs(gp-wp) > 1e-6*math.Max(1, math.Abs(wp)) {
				t.Errorf("reading %s: prediction %v, recorded %v", id, p["prediction"], want["prediction"])
			}
		}
		if x := rawPrediction(t, raw, readings, id); math.Abs(x-wp) > 1e-3*math.Max(1, math.Abs(wp)) {
			learned++
		}
	}
	if learned < len(recorded)/2 {
		t.Errorf("only %d of %d recorded predictions differ from the stored model's own: the fixture does not show the learner", learned, len(recorded))
	}
	ids := map[string]bool{}
	for _, m := range recorded {
		var p struct {
			ID json.Number `json:"id"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		ids[p.ID.String()] = true
	}
	for topic, col := range topics {
		col.mu.Lock()
		for _, p := range col.all {
			if !ids[fmt.Sprint(p["id"])] {
				t.Errorf("%s: an answer to no recorded reading: %v", topic, p)
			}
		}
		col.mu.Unlock()
	}

	// The withdrawn version stays withdrawn for OTA: its own signed file,
	// published again, is refused.
	for v, file := range withdrawn {
		res.mu.Lock()
		n := len(res.all)
		res.mu.Unlock()
		publish(t, pc, "linnet/"+cfg.Gateway+"/ota/model", file)
		res.waitAll(t, n+1)
		res.mu.Lock()
		r := res.all[n]
		res.mu.Unlock()
		if r["accepted"] != false || r["reason"] != wire.OTAWithdrawn || r["active"] != float64(list.Active) {
			t.Errorf("withdrawn version %d pushed again: %v", v, r)
		}
	}
	d.stop(t)

	// After the run the store is still the default model's: the same
	// active version, the recorded history first, the version withdrawn.
	s, err := store.Open(db, store.Options{ReadOnly: true, Timeout: patience})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if names, err := s.Models(); err != nil || !slices.Equal(names, []string{store.DefaultModel}) {
		t.Errorf("after the run: models %q, %v", names, err)
	}
	if v, err := s.ActiveVersion(); err != nil || v != list.Active {
		t.Errorf("after the run: active %d, %v; want %d", v, err, list.Active)
	}
	if h, err := s.History(); err != nil || len(h) < len(history.Events) || !sameEvents(h[:len(history.Events)], history.Events) {
		t.Errorf("after the run the recorded history is not kept: %+v, %v", h, err)
	}
	for v := range withdrawn {
		if w, err := s.Withdrawn(v); err != nil || !w {
			t.Errorf("after the run: version %d withdrawn %v, %v", v, w, err)
		}
	}
}

// checkUpgradedStore opens db read-only, as `linnet models` does, and
// checks it holds one model, "default", as recorded. It returns the files
// of the versions it found withdrawn.
func checkUpgradedStore(t *testing.T, db string, active int64, infos []store.Info, events []store.Event) (withdrawn map[int64][]byte) {
	t.Helper()
	s, err := store.Open(db, store.Options{ReadOnly: true, Timeout: store.DefaultTimeout})
	if err != nil {
		t.Fatalf("read-only open: %v", err)
	}
	defer s.Close()
	if err := s.Verify(); err != nil {
		t.Errorf("verify: %v", err)
	}
	if names, err := s.Models(); err != nil || !slices.Equal(names, []string{store.DefaultModel}) {
		t.Errorf("models %q, %v: want only %q", names, err, store.DefaultModel)
	}
	m, err := s.Model(store.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		what string
		list func() ([]store.Info, error)
		hist func() ([]store.Event, error)
		act  func() (int64, error)
	}{
		{"Model(\"default\")", m.List, m.History, m.ActiveVersion},
		{"the Store's own methods", s.List, s.History, s.ActiveVersion},
	} {
		got, err := h.list()
		if err != nil {
			t.Fatalf("%s: list: %v", h.what, err)
		}
		if len(got) != len(infos) {
			t.Errorf("%s: %d versions, recorded %d", h.what, len(got), len(infos))
		}
		for i := range min(len(got), len(infos)) {
			g, w := got[i], infos[i]
			if g.Version != w.Version || g.Scheme != w.Scheme || g.Bytes != w.Bytes || g.Signed != w.Signed ||
				g.Width != w.Width || !g.Created.Equal(w.Created) || g.Active != (g.Version == active) || g.Err != "" {
				t.Errorf("%s: version %+v, recorded %+v (active %d)", h.what, g, w, active)
			}
		}
		if v, err := h.act(); err != nil || v != active {
			t.Errorf("%s: active %d, %v; recorded %d", h.what, v, err, active)
		}
		if hist, err := h.hist(); err != nil || !sameEvents(hist, events) {
			t.Errorf("%s: history %+v, %v\nrecorded %+v", h.what, hist, err, events)
		}
	}
	if _, err := m.LoadCheckpoint(); err != nil {
		t.Errorf("checkpoint of the active version: %v", err)
	}
	// Every version a rollback replaced is withdrawn, and only those.
	withdrawn = map[int64][]byte{}
	rolledBack := map[int64]bool{}
	for _, e := range events {
		if e.Action == store.ActionRollback {
			rolledBack[e.Previous] = true
		}
	}
	for _, in := range infos {
		w, err := m.Withdrawn(in.Version)
		if err != nil {
			t.Fatal(err)
		}
		if w != rolledBack[in.Version] {
			t.Errorf("version %d: withdrawn %v, want %v", in.Version, w, rolledBack[in.Version])
		}
		if w {
			if withdrawn[in.Version], err = m.Get(in.Version); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(withdrawn) == 0 {
		t.Error("the fixture has no withdrawn version")
	}
	return withdrawn
}

func sameEvents(a, b []store.Event) bool {
	return slices.EqualFunc(a, b, func(x, y store.Event) bool {
		return x.Seq == y.Seq && x.Time.Equal(y.Time) && x.Action == y.Action && x.Version == y.Version &&
			x.Previous == y.Previous && x.Source == y.Source && x.Reason == y.Reason
	})
}

// activeModel is the store's active model as its file says, before any
// learning.
func activeModel(t *testing.T, db string) *model.Model {
	t.Helper()
	s, err := store.Open(db, store.Options{ReadOnly: true, Timeout: store.DefaultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _, err := s.Active()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rawPrediction is m's prediction for the reading with this id.
func rawPrediction(t *testing.T, m *model.Model, readings []mqttMessage, id string) float64 {
	t.Helper()
	for _, r := range readings {
		var p struct {
			ID       json.Number        `json:"id"`
			Features map[string]float64 `json:"features"`
		}
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.ID.String() != id {
			continue
		}
		x := make([]float32, len(m.Features))
		if err := m.Vector(x, p.Features); err != nil {
			t.Fatal(err)
		}
		return float64(model.NewPredictor(m).Predict(x))
	}
	t.Fatalf("no reading with id %s", id)
	return 0
}

func readMessages(t *testing.T, path string) []mqttMessage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []mqttMessage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m mqttMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dataFiles reads every file in dir.
func dataFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}
