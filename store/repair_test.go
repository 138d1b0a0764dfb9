package store

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// filledStore writes versions 1..3, activates 1 then 2, and closes.
func filledStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{})
	for v := int64(1); v <= 3; v++ {
		if _, err := s.Put(modelFile(t, v), SourceCLI); err != nil {
			t.Fatal(err)
		}
	}
	s.Activate(1, SourceCLI)
	s.Activate(2, SourceCLI)
	s.SaveCheckpoint([]byte("ckpt"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// damageCopies flips a byte in every copy of m in the file b (bbolt's freed
// pages can hold older copies).
func damageCopies(t *testing.T, b, m []byte) {
	t.Helper()
	n := 0
	for i := bytes.Index(b, m); i >= 0; {
		n++
		b[i+40] ^= 0xff
		j := bytes.Index(b[i+1:], m)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if n == 0 {
		t.Fatal("model bytes not found in the file")
	}
}

func repairOpts(log *bytes.Buffer) Options {
	return Options{
		Repair: true,
		Logger: slog.New(slog.NewTextHandler(log, nil)),
		Now:    func() time.Time { return time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC) },
	}
}

func TestDamagedModelBytes(t *testing.T) {
	path := filledStore(t)
	b, _ := os.ReadFile(path)
	// Flip a byte inside version 2's stored file: bbolt's pages stay valid,
	// the model's CRC does not.
	damageCopies(t, b, modelFile(t, 2))
	os.WriteFile(path, b, 0o600)

	if _, err := Open(path, Options{}); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "model 2") {
		t.Fatalf("open damaged without repair: %v", err)
	}
	var log bytes.Buffer
	s := openTest(t, path, repairOpts(&log))
	infos, _ := s.List()
	if len(infos) != 2 || infos[0].Version != 1 || infos[1].Version != 3 {
		t.Errorf("recovered %+v, want versions 1 and 3", infos)
	}
	// Version 2 was active and is lost: the newest good one serves.
	if v, _ := s.ActiveVersion(); v != 3 {
		t.Errorf("active after repair %d, want 3", v)
	}
	aside := path + ".damaged-20261129T040000Z"
	if _, err := os.Stat(aside); err != nil {
		t.Errorf("damaged file not moved aside: %v", err)
	}
	if !strings.Contains(log.String(), "moved aside") || !strings.Contains(log.String(), aside) {
		t.Errorf("log line: %s", log.String())
	}
	h, _ := s.History()
	if len(h) == 0 || h[len(h)-1].Source != SourceRecovery {
		t.Errorf("recovery not in the history: %+v", h)
	}
}

func TestDamagedActiveSurvives(t *testing.T) {
	path := filledStore(t)
	b, _ := os.ReadFile(path)
	damageCopies(t, b, modelFile(t, 3))
	os.WriteFile(path, b, 0o600)
	var log bytes.Buffer
	s := openTest(t, path, repairOpts(&log))
	if v, _ := s.ActiveVersion(); v != 2 {
		t.Errorf("active after repair %d, want the old active 2", v)
	}
}

func TestGarbageFile(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":   bytes.Repeat([]byte("not a bbolt file "), 1000),
		"short":     []byte("x"),
		"truncated": nil, // filled below
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "linnet.db")
			if content == nil {
				full, _ := os.ReadFile(filledStore(t))
				content = full[:len(full)/2]
			}
			os.WriteFile(path, content, 0o600)
			_, err := Open(path, Options{})
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("open: %v", err)
			}
			t.Log(err)
			var log bytes.Buffer
			s := openTest(t, path, repairOpts(&log))
			if err := s.Verify(); err != nil {
				t.Errorf("fresh store: %v", err)
			}
			if !strings.Contains(log.String(), "damaged") {
				t.Errorf("no log line: %q", log.String())
			}
			infos, _ := s.List()
			t.Logf("recovered %d versions", len(infos))
		})
	}
}

func TestZeroedPage(t *testing.T) {
	path := filledStore(t)
	b, _ := os.ReadFile(path)
	page := os.Getpagesize()
	// Zero every page after the two meta pages in turn until the check
	// notices; whatever happens, Open with Repair must give a usable store.
	for p := 2; p*page < len(b); p++ {
		c := bytes.Clone(b)
		clear(c[p*page : (p+1)*page])
		os.WriteFile(path, c, 0o600)
		var log bytes.Buffer
		s, err := Open(path, repairOpts(&log))
		if err != nil {
			t.Fatalf("page %d: %v", p, err)
		}
		if err := s.Verify(); err != nil {
			t.Errorf("page %d: store after repair: %v", p, err)
		}
		s.Close()
		matches, _ := filepath.Glob(path + ".damaged-*")
		for _, m := range matches {
			os.Remove(m)
		}
	}
}

// TestRepairKeepsNewestAndActive: with more salvaged versions than Keep,
// the old active one and the newest survive the rebuild.
func TestRepairKeepsNewestAndActive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{Keep: -1})
	for v := int64(1); v <= 12; v++ {
		if _, err := s.Put(modelFile(t, v), SourceCLI); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Activate(2, SourceCLI); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(path)
	damageCopies(t, b, modelFile(t, 5))
	os.WriteFile(path, b, 0o600)

	var log bytes.Buffer
	opts := repairOpts(&log)
	opts.Keep = 4
	s = openTest(t, path, opts)
	infos, _ := s.List()
	var got []int64
	for _, in := range infos {
		got = append(got, in.Version)
	}
	if v, _ := s.ActiveVersion(); v != 2 || len(got) != 5 || got[0] != 2 || got[4] != 12 {
		t.Errorf("after repair: active %d, versions %v; want active 2 with 9..12", v, got)
	}
	// A second repair in the same second does not overwrite the first
	// damaged copy.
	s.Close()
	b, _ = os.ReadFile(path)
	damageCopies(t, b, modelFile(t, 12))
	os.WriteFile(path, b, 0o600)
	s = openTest(t, path, opts)
	matches, _ := filepath.Glob(path + ".damaged-*")
	if len(matches) != 2 {
		t.Errorf("damaged copies %v", matches)
	}
}
