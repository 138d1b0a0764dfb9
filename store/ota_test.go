package store

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

func TestInstallWithdraw(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	v1, v2 := modelFile(t, 100), modelFile(t, 200)
	if prev, err := s.Install(v1, SourceOTA, "first", false); err != nil || prev != 0 {
		t.Fatalf("install v1: %d %v", prev, err)
	}
	if prev, err := s.Install(v2, SourceOTA, "newer", false); err != nil || prev != 100 {
		t.Fatalf("install v2: %d %v", prev, err)
	}
	// The same bytes again change nothing and record nothing.
	h0, _ := s.History()
	if _, err := s.Install(v2, SourceOTA, "again", false); err != nil {
		t.Fatal(err)
	}
	if h1, _ := s.History(); len(h1) != len(h0) {
		t.Errorf("re-install recorded %d events", len(h1)-len(h0))
	}
	if a, _ := s.ActiveVersion(); a != 200 {
		t.Fatalf("active %d", a)
	}
	if err := s.SaveCheckpointFor(100, []byte("stale")); !errors.Is(err, ErrNotActive) {
		t.Errorf("checkpoint for an inactive version: %v", err)
	}
	if err := s.SaveCheckpointFor(200, []byte("state")); err != nil {
		t.Fatal(err)
	}
	if st, err := s.LoadCheckpoint(); err != nil || string(st) != "state" {
		t.Errorf("checkpoint %q %v", st, err)
	}

	if _, err := s.Withdraw(100, SourceRollback, "x"); !errors.Is(err, ErrNotActive) {
		t.Errorf("withdraw inactive: %v", err)
	}
	to, err := s.Withdraw(200, SourceRollback, "loss 2 > 1")
	if err != nil || to != 100 {
		t.Fatalf("withdraw: %d %v", to, err)
	}
	if a, _ := s.ActiveVersion(); a != 100 {
		t.Errorf("active after withdraw %d", a)
	}
	if w, _ := s.Withdrawn(200); !w {
		t.Error("200 not marked withdrawn")
	}
	if w, _ := s.Withdrawn(100); w {
		t.Error("100 marked withdrawn")
	}
	h, _ := s.History()
	last := h[len(h)-1]
	if last.Action != ActionRollback || last.Version != 100 || last.Previous != 200 || last.Source != SourceRollback || last.Reason != "loss 2 > 1" {
		t.Errorf("last event %+v", last)
	}

	// A signed rollback file of a stored version replaces its bytes only
	// when asked to.
	rb, err := model.MarkRollback(v1)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ = model.Sign(rb, testKey)
	// A withdrawn version does not come back; a newer one does.
	if _, err := s.Install(v2, SourceOTA, "", false); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("withdrawn version installed again: %v", err)
	}
	if _, err := s.Install(modelFile(t, 50), SourceOTA, "", false); !errors.Is(err, ErrOlder) {
		t.Errorf("older version installed: %v", err)
	}
	if _, err := s.Install(modelFile(t, 300), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(rb, SourceOTA, "rollback", false); !errors.Is(err, ErrOlder) {
		t.Errorf("rollback without replace: %v", err)
	}
	if prev, err := s.Install(rb, SourceOTA, "rollback", true); err != nil || prev != 300 {
		t.Errorf("rollback with replace: %d %v", prev, err)
	}
	if _, f, err := s.Active(); err != nil || !model.IsRollback(f) {
		t.Errorf("active after rollback: %v", err)
	}
	if w, _ := s.Withdrawn(300); !w {
		t.Error("a signed rollback did not withdraw the version it replaced")
	}
	if err := s.Record(Event{Action: ActionReject, Version: 5, Source: SourceOTA, Reason: "older"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
}
