package main

import (
	"encoding/json"
	"os"
	"path/filepath"
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
