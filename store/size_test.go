package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFileStaysBounded churns models and checkpoints through a store with
// retention: bbolt reuses freed pages, so the file stops growing.
func TestFileStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{Keep: 4, MaxHistory: 100})
	state := bytes.Repeat([]byte{1}, 64<<10)
	rounds := 200
	if testing.Short() {
		rounds = 60
	}
	var mid int64
	for v := int64(1); v <= int64(rounds); v++ {
		if _, err := s.Put(modelFile(t, v), SourceOTA); err != nil {
			t.Fatal(err)
		}
		if err := s.Activate(v, SourceOTA); err != nil {
			t.Fatal(err)
		}
		state[0] = byte(v)
		if err := s.SaveCheckpoint(state); err != nil {
			t.Fatal(err)
		}
		if v == int64(rounds/2) {
			st, _ := os.Stat(path)
			mid = st.Size()
		}
	}
	infos, _ := s.List()
	h, _ := s.History()
	st, _ := os.Stat(path)
	t.Logf("after %d versions: %d kept, %d events, file %d KiB (at half way %d KiB)", rounds, len(infos), len(h), st.Size()>>10, mid>>10)
	if len(infos) != 4 || len(h) != 100 {
		t.Errorf("%d versions, %d events kept", len(infos), len(h))
	}
	if st.Size() > 2*mid+(256<<10) {
		t.Errorf("file grew from %d to %d bytes in the second half", mid, st.Size())
	}
}

// TestMaxBytes: a store that would pass Options.MaxBytes refuses the write
// instead of growing.
func TestMaxBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{Keep: -1, MaxBytes: 256 << 10})
	s.Put(modelFile(t, 1), SourceCLI)
	s.Activate(1, SourceCLI)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = s.SaveCheckpoint(bytes.Repeat([]byte{byte(i)}, 100<<10))
		if err == nil {
			_, err = s.Put(modelFile(t, int64(i+2)), SourceCLI)
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("past MaxBytes: %v", err)
	}
	t.Log(err)
	st, _ := os.Stat(path)
	if st.Size() > 256<<10 {
		t.Errorf("file is %d bytes, limit %d", st.Size(), 256<<10)
	}
	if _, _, err := s.Active(); err != nil {
		t.Errorf("store unusable after reaching MaxBytes: %v", err)
	}
}
