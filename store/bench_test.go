package store

import (
	"bytes"
	"path/filepath"
	"testing"
)

// BenchmarkSaveCheckpoint times one checkpoint of a 64 KiB learner state:
// one bbolt transaction, two fsyncs. The cost on the gateway's storage is
// why checkpoints go through a Checkpointer.
//
//	go test -run '^$' -bench SaveCheckpoint ./store/
func BenchmarkSaveCheckpoint(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "linnet.db"), Options{})
	s.Put(modelFile(b, 1), SourceCLI)
	s.Activate(1, SourceCLI)
	state := bytes.Repeat([]byte{1}, 64<<10)
	b.SetBytes(int64(len(state)))
	for b.Loop() {
		if err := s.SaveCheckpoint(state); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkActive times reading the active model back, checked (CRC and
// signature): what the daemon does at start and on every OTA switch.
func BenchmarkActive(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "linnet.db"), Options{})
	s.Put(modelFile(b, 1), SourceCLI)
	s.Activate(1, SourceCLI)
	for b.Loop() {
		if _, _, err := s.Active(); err != nil {
			b.Fatal(err)
		}
	}
}
