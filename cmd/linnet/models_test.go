package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// signedVersions writes signed copies of the golden f32 model with
// versions 1..n and returns their paths and the public key file.
func signedVersions(t *testing.T, dir string, n int) ([]string, string) {
	t.Helper()
	key := filepath.Join(dir, "KEY")
	if _, err := linnet(t, "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	priv, err := model.ReadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := model.ReadFile(filepath.Join("..", "..", "model", "testdata", "v1-f32.lnm"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for v := 1; v <= n; v++ {
		m.Version = int64(v)
		b, _ := m.MarshalBinary()
		b, _ = model.Sign(b, priv)
		p := filepath.Join(dir, "m"+strconv.Itoa(v)+".lnm")
		if err := model.WriteFile(p, b); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths, key + ".pub"
}

func TestModelsCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "linnet.db")
	files, pub := signedVersions(t, dir, 4)

	if _, err := linnet(t, "models", "list", "--db", db); err == nil {
		t.Error("list created or read a missing store")
	}
	for i, f := range files {
		args := []string{"models", "import", "--db", db, "--trust", pub, f}
		if i < 3 {
			args = append(args, "--activate")
		}
		if _, err := linnet(t, args...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := linnet(t, "models", "list", "--db", db, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Active int64 `json:"active"`
		Models []struct {
			Version int64  `json:"version"`
			Scheme  string `json:"scheme"`
			Bytes   int    `json:"bytes"`
			Signed  bool   `json:"signed"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	if l.Active != 3 || len(l.Models) != 4 || l.Models[0].Scheme != "f32" || !l.Models[0].Signed || l.Models[0].Bytes == 0 {
		t.Errorf("list: %s", out)
	}

	// Rollback restores the previous active version.
	out, err = linnet(t, "models", "rollback", "--db", db, "--json")
	if err != nil || !strings.Contains(out, `"active": 2`) || !strings.Contains(out, `"previous": 3`) {
		t.Errorf("rollback: %v %s", err, out)
	}
	// Active 2, predecessor 1: prune --keep 1 keeps 4 (newest), 2 and 1.
	out, err = linnet(t, "models", "prune", "--db", db, "--keep", "1", "--json")
	if err != nil || !strings.Contains(out, `"deleted": [
    3
  ]`) {
		t.Errorf("prune: %v %s", err, out)
	}
	if _, err := linnet(t, "models", "activate", "--db", db, "4"); err != nil {
		t.Error(err)
	}
	out, err = linnet(t, "models", "history", "--db", db, "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"action": "rollback"`, `"action": "delete"`, `"source": "prune"`, `"action": "activate"`} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %s:\n%s", want, out)
		}
	}

	exp := filepath.Join(dir, "exported.lnm")
	if _, err := linnet(t, "models", "export", "--db", db, "active", "--out", exp); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(exp)
	b, _ := os.ReadFile(files[3])
	if string(a) != string(b) {
		t.Error("export differs from the imported file")
	}
	out, err = linnet(t, "models", "verify", "--db", db, "--trust", pub, "--json")
	if err != nil || !strings.Contains(out, `"ok": true`) {
		t.Errorf("verify: %v %s", err, out)
	}
}

// TestModelsListLocked: while another holder (the daemon) has the store
// open, models list fails within --timeout with a message naming the file.
func TestModelsListLocked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "linnet.db")
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = linnet(t, "models", "list", "--db", db, "--timeout", (200 * time.Millisecond).String())
	if err == nil || !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), db) {
		t.Errorf("locked store: %v", err)
	}
}

// TestModelsByName: --name picks one model of the store; the default
// model's commands and JSON are unchanged, and nothing done to one model
// shows in another.
func TestModelsByName(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "linnet.db")
	files, pub := signedVersions(t, dir, 4)
	for i, f := range files {
		name := "default"
		if i >= 2 {
			name = "hvac"
		}
		if _, err := linnet(t, "models", "import", "--db", db, "--trust", pub, "--name", name, f, "--activate"); err != nil {
			t.Fatal(err)
		}
	}
	type list struct {
		Active int64 `json:"active"`
		Models []struct {
			Version int64 `json:"version"`
		} `json:"models"`
	}
	read := func(args ...string) list {
		t.Helper()
		out, err := linnet(t, append([]string{"models", "list", "--db", db, "--json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var l list
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := read(); l.Active != 2 || len(l.Models) != 2 {
		t.Errorf("default: %+v", l)
	}
	if l := read("--name", "hvac"); l.Active != 4 || len(l.Models) != 2 || l.Models[0].Version != 3 {
		t.Errorf("hvac: %+v", l)
	}
	out, err := linnet(t, "models", "rollback", "--db", db, "--name", "hvac", "--json")
	if err != nil || !strings.Contains(out, `"active": 3`) {
		t.Errorf("hvac rollback: %v %s", err, out)
	}
	if l := read(); l.Active != 2 {
		t.Errorf("default after hvac's rollback: %+v", l)
	}
	out, _ = linnet(t, "models", "history", "--db", db, "--name", "hvac", "--json")
	if strings.Contains(out, `"version": 1,`) || !strings.Contains(out, `"action": "rollback"`) {
		t.Errorf("hvac history: %s", out)
	}
	out, err = linnet(t, "models", "names", "--db", db, "--json")
	if err != nil || !strings.Contains(out, `"name": "hvac"`) || !strings.Contains(out, `"name": "default"`) {
		t.Errorf("names: %v %s", err, out)
	}
	exp := filepath.Join(dir, "hvac.lnm")
	if _, err := linnet(t, "models", "export", "--db", db, "--name", "hvac", "active", "--out", exp); err != nil {
		t.Fatal(err)
	}
	if a, b := mustRead(t, exp), mustRead(t, files[2]); a != b {
		t.Error("hvac export differs from version 3's file")
	}
	if _, err := linnet(t, "models", "list", "--db", db, "--name", "Bad/Name"); err == nil || !strings.Contains(err.Error(), "bad model name") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := linnet(t, "models", "list", "--db", db, "--name", "pump"); err == nil || !strings.Contains(err.Error(), "no such model") {
		t.Errorf("unknown model: %v", err)
	}
	out, err = linnet(t, "models", "verify", "--db", db, "--trust", pub, "--json")
	if err != nil || !strings.Contains(out, `"models": 4`) {
		t.Errorf("verify: %v %s", err, out)
	}

	// Device states: list, export, reset.
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hv, _ := s.Model("hvac")
	err = hv.SaveDevices([]model.DeviceSnapshot{
		{Device: "site/pump-1", Version: 3, Updates: 120, State: []byte{1, 2, 3}},
		{Device: "site/pump-2", Version: 3, Updates: 7, State: []byte{4}},
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err = linnet(t, "models", "devices", "--db", db, "--name", "hvac", "--json")
	var dl struct {
		Model   string `json:"model"`
		Devices []struct {
			Device  string `json:"device"`
			Updates int64  `json:"updates"`
		} `json:"devices"`
	}
	if err != nil || json.Unmarshal([]byte(out), &dl) != nil || dl.Model != "hvac" || len(dl.Devices) != 2 ||
		dl.Devices[0].Device != "site/pump-1" || dl.Devices[0].Updates != 120 {
		t.Errorf("devices: %v %s", err, out)
	}
	out, err = linnet(t, "models", "devices", "--db", db, "--json")
	if err != nil || !strings.Contains(out, `"devices": []`) {
		t.Errorf("default's devices: %v %s", err, out)
	}
	out, err = linnet(t, "models", "devices", "export", "--db", db, "--name", "hvac", "site/pump-1")
	if err != nil || !strings.Contains(out, `"state": "AQID"`) || !strings.Contains(out, `"updates": 120`) {
		t.Errorf("device export: %v %s", err, out)
	}
	// A real state of the stored version 3 exports its correction too.
	s, err = store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hv, _ = s.Model("hvac")
	_, file, _ := hv.Active()
	m3, _ := model.Decode(file)
	devs, _ := model.NewDevices(m3, model.DeviceConfig{Margin: -1})
	x := slices.Clone(m3.Mean) // at the means, only the offset moves
	for range 20 {
		devs.Learn("site/pump-3", x, model.NewPredictor(m3).Predict(x)+5)
	}
	_, err = devs.Checkpoint(hv.SaveDevices)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err = linnet(t, "models", "devices", "export", "--db", db, "--name", "hvac", "site/pump-3")
	var ex struct {
		Correction struct {
			Offset float64 `json:"offset"`
		} `json:"correction"`
	}
	if err != nil || json.Unmarshal([]byte(out), &ex) != nil || ex.Correction.Offset < 4 || ex.Correction.Offset > 5.5 {
		t.Errorf("export with correction: %v %s", err, out)
	}
	if _, err := linnet(t, "models", "devices", "reset", "--db", db, "--name", "hvac", "site/pump-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := linnet(t, "models", "devices", "export", "--db", db, "--name", "hvac", "site/pump-1"); err == nil {
		t.Error("export after reset succeeded")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
