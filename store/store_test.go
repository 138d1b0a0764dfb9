package store

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/linnet-edge/linnet/model"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func testPub() ed25519.PublicKey { return testKey.Public().(ed25519.PublicKey) }

// modelFile returns a small signed q8 model file of version v.
func modelFile(t testing.TB, v int64) []byte {
	t.Helper()
	b, err := makeModelFile(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func makeModelFile(v int64) ([]byte, error) {
	n := 5
	m := &model.Model{
		Version: v, Created: time.Unix(1700000000, 0).UTC(), Target: "y", Loss: model.Squared,
		Features: []string{"a", "b", "c", "d", "e"}, Mean: make([]float32, n), Std: make([]float32, n),
		Weights: make([]float32, n), Bias: float32(v % 100), Scheme: model.F32,
	}
	for i := range n {
		m.Mean[i], m.Std[i], m.Weights[i] = float32(i), float32(i+1), float32(v%7)+float32(i)
	}
	q, err := m.Quantize(model.Q8)
	if err != nil {
		return nil, err
	}
	b, err := q.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return model.Sign(b, testKey)
}

func openTest(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.Trusted == nil {
		opts.Trusted = []ed25519.PublicKey{testPub()}
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPutActivateRollback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{})
	if _, _, err := s.Active(); !errors.Is(err, ErrNoActive) {
		t.Fatalf("empty store Active: %v", err)
	}
	if err := s.Rollback(SourceCLI); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("empty Rollback: %v", err)
	}
	for v := int64(1); v <= 3; v++ {
		got, err := s.Put(modelFile(t, v), SourceCLI)
		if err != nil || got != v {
			t.Fatalf("Put %d: %d, %v", v, got, err)
		}
		if err := s.Activate(v, SourceOTA); err != nil {
			t.Fatal(err)
		}
	}
	// Same bytes again: no-op; other bytes: refused.
	if _, err := s.Put(modelFile(t, 3), SourceCLI); err != nil {
		t.Errorf("re-Put same bytes: %v", err)
	}
	other := modelFile(t, 3)
	m, _ := model.Decode(other)
	m.Bias = 99
	ob, _ := m.MarshalBinary()
	if _, err := s.Put(ob, SourceCLI); !errors.Is(err, ErrVersionExists) {
		t.Errorf("different bytes: %v", err)
	}
	if err := s.Activate(42, SourceCLI); !errors.Is(err, ErrNotFound) {
		t.Errorf("Activate missing: %v", err)
	}

	m, file, err := s.Active()
	if err != nil || m.Version != 3 || !model.IsSigned(file) {
		t.Fatalf("Active: %v %v", m, err)
	}
	if err := s.Rollback(SourceCLI); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.ActiveVersion(); v != 2 {
		t.Fatalf("after rollback active %d, want 2", v)
	}
	if err := s.Rollback(SourceCLI); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.ActiveVersion(); v != 1 {
		t.Fatalf("after second rollback active %d, want 1", v)
	}
	if err := s.Rollback(SourceCLI); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("third rollback: %v", err)
	}

	h, err := s.History()
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range h {
		acts = append(acts, e.Action+":"+itoa(e.Version)+"<"+itoa(e.Previous)+"/"+e.Source)
	}
	want := "import:1<0/cli activate:1<0/ota import:2<0/cli activate:2<1/ota import:3<0/cli activate:3<2/ota rollback:2<3/cli rollback:1<2/cli"
	if strings.Join(acts, " ") != want {
		t.Errorf("history\n%s\nwant\n%s", strings.Join(acts, " "), want)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestPutRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{RequireSigned: true, MaxModelBytes: 4096})
	good := modelFile(t, 5)
	bad := bytes.Clone(good)
	bad[30] ^= 1
	if _, err := s.Put(bad, SourceOTA); !errors.Is(err, ErrRejected) || !errors.Is(err, model.ErrChecksum) {
		t.Errorf("damaged: %v", err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	resigned, _ := model.Sign(good, other)
	if _, err := s.Put(resigned, SourceOTA); !errors.Is(err, ErrRejected) || !errors.Is(err, model.ErrUntrustedKey) {
		t.Errorf("untrusted: %v", err)
	}
	m, _ := model.Decode(good)
	unsigned, _ := m.MarshalBinary()
	if _, err := s.Put(unsigned, SourceOTA); !errors.Is(err, ErrRejected) || !errors.Is(err, model.ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	if _, err := s.Put(make([]byte, 5000), SourceOTA); !errors.Is(err, ErrRejected) {
		t.Errorf("too large: %v", err)
	}
	if _, err := s.Put(good, SourceOTA); err != nil {
		t.Errorf("good: %v", err)
	}

	// Requiring signatures with no trusted key accepts nothing.
	s2, err := Open(filepath.Join(t.TempDir(), "b.db"), Options{RequireSigned: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Put(good, SourceOTA); !errors.Is(err, model.ErrUntrustedKey) {
		t.Errorf("no trusted keys: %v", err)
	}
}

func TestPruneKeepsActiveAndPredecessor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{Keep: -1})
	for v := int64(1); v <= 6; v++ {
		if _, err := s.Put(modelFile(t, v), SourceCLI); err != nil {
			t.Fatal(err)
		}
	}
	// Active 2, predecessor 1: both old, both must survive prune(1).
	if err := s.Activate(1, SourceCLI); err != nil {
		t.Fatal(err)
	}
	if err := s.Activate(2, SourceCLI); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint([]byte("state of 2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(1); err != nil {
		t.Fatal(err)
	}
	infos, _ := s.List()
	var kept []int64
	for _, in := range infos {
		kept = append(kept, in.Version)
	}
	if len(kept) != 3 || kept[0] != 1 || kept[1] != 2 || kept[2] != 6 {
		t.Fatalf("kept %v, want [1 2 6]", kept)
	}
	if st, err := s.LoadCheckpoint(); err != nil || string(st) != "state of 2" {
		t.Errorf("checkpoint after prune: %q %v", st, err)
	}
	if err := s.Rollback(SourceCLI); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.ActiveVersion(); v != 1 {
		t.Errorf("rollback after prune: %d", v)
	}
	h, _ := s.History()
	deleted := 0
	for _, e := range h {
		if e.Action == ActionDelete {
			deleted++
		}
	}
	if deleted != 3 {
		t.Errorf("%d delete events, want 3", deleted)
	}
	if err := s.Prune(-1); err == nil {
		t.Error("negative keep accepted")
	}
}

func TestRetentionOnPut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{Keep: 3, MaxHistory: 10})
	for v := int64(1); v <= 20; v++ {
		if _, err := s.Put(modelFile(t, v), SourceOTA); err != nil {
			t.Fatal(err)
		}
		if v == 2 {
			s.Activate(2, SourceOTA)
		}
	}
	infos, _ := s.List()
	if len(infos) != 4 || infos[0].Version != 2 || infos[3].Version != 20 {
		t.Errorf("retained %+v", infos)
	}
	h, _ := s.History()
	if len(h) != 10 || h[9].Seq != h[0].Seq+9 {
		t.Errorf("history length %d, want 10", len(h))
	}
}

func TestCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{})
	if err := s.SaveCheckpoint([]byte("x")); !errors.Is(err, ErrNoActive) {
		t.Errorf("save without active: %v", err)
	}
	s.Put(modelFile(t, 1), SourceCLI)
	s.Put(modelFile(t, 2), SourceCLI)
	s.Activate(1, SourceCLI)
	if _, err := s.LoadCheckpoint(); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("load before save: %v", err)
	}
	state := []byte("learner state of 1")
	if err := s.SaveCheckpoint(state); err != nil {
		t.Fatal(err)
	}
	state[0] = 'X' // the store keeps its own copy
	s.Activate(2, SourceLearner)
	if _, err := s.LoadCheckpoint(); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("a new model must not inherit the old checkpoint: %v", err)
	}
	s.Rollback(SourceCLI)
	got, err := s.LoadCheckpoint()
	if err != nil || string(got) != "learner state of 1" {
		t.Errorf("checkpoint after rollback: %q %v", got, err)
	}
	// Survives reopening.
	s.Close()
	s = openTest(t, path, Options{})
	if got, err := s.LoadCheckpoint(); err != nil || string(got) != "learner state of 1" {
		t.Errorf("after reopen: %q %v", got, err)
	}
}

func TestCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	now := time.Unix(1000, 0)
	s := openTest(t, path, Options{Now: func() time.Time { return now }})
	s.Put(modelFile(t, 1), SourceCLI)
	s.Activate(1, SourceCLI)
	c := NewCheckpointer(s, 100, 30*time.Second)
	n := 0
	state := func() ([]byte, error) { return []byte{byte(n)}, nil }
	for n = 1; n <= 250; n++ {
		if _, err := c.Updated(1, state); err != nil {
			t.Fatal(err)
		}
	}
	if c.Saves() != 2 {
		t.Errorf("%d saves after 250 updates with every=100, want 2", c.Saves())
	}
	now = now.Add(29 * time.Second)
	if saved, _ := c.Updated(1, state); saved {
		t.Error("saved before the interval")
	}
	now = now.Add(time.Second)
	if saved, _ := c.Updated(1, state); !saved {
		t.Error("did not save after the interval")
	}
	if err := c.Flush(state); err != nil || c.Saves() != 3 {
		t.Errorf("flush with nothing pending saved: %d", c.Saves())
	}
	c.Updated(1, state)
	if err := c.Flush(state); err != nil || c.Saves() != 4 {
		t.Errorf("flush: %v, %d saves", err, c.Saves())
	}
	if got, _ := s.LoadCheckpoint(); len(got) != 1 || got[0] != byte(n) {
		t.Errorf("checkpoint %v, want [%d]", got, byte(n))
	}
}

// TestLockTimeout: a second open of a held file returns ErrLocked within
// the timeout, naming the file (flock locks are per open file, so this
// works inside one process).
func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	openTest(t, path, Options{})
	_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v", err)
	}
	t.Log(err)
	_, err = Open(path, Options{Timeout: 100 * time.Millisecond, ReadOnly: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open: %v", err)
	}
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of a missing file: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("read-only open created the file")
	}
}

func TestClosed(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "linnet.db"), Options{})
	s.Close()
	if _, err := s.List(); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestReadOnlyEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrEmpty) {
		t.Errorf("read-only open of a bare bbolt file: %v", err)
	}
	s := openTest(t, path, Options{})
	if infos, err := s.List(); err != nil || len(infos) != 0 {
		t.Errorf("writable open: %v %v", infos, err)
	}
}

// TestConcurrentUse runs writers and readers at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "linnet.db"), Options{Keep: 3})
	s.Put(modelFile(t, 1), SourceCLI)
	s.Activate(1, SourceCLI)
	c := NewCheckpointer(s, 5, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				switch g {
				case 0:
					v := int64(100*g + i + 2)
					if _, err := s.Put(modelFile(t, v), SourceOTA); err != nil {
						t.Error(err)
					}
					if err := s.Activate(v, SourceOTA); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
				case 1:
					if _, err := c.Updated(1, func() ([]byte, error) { return []byte{byte(i)}, nil }); err != nil {
						t.Error(err)
					}
				case 2:
					if _, _, err := s.Active(); err != nil {
						t.Error(err)
					}
					if _, err := s.LoadCheckpoint(); err != nil && !errors.Is(err, ErrNoCheckpoint) {
						t.Error(err)
					}
				case 3:
					if _, err := s.List(); err != nil {
						t.Error(err)
					}
					if _, err := s.History(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
}
