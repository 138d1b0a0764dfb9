package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// TestRollbackReplay: a captured rollback file applies once, on a gateway
// serving the version it names; replayed (twice, after a newer install,
// after a restart) it is refused as a replay and withdraws nothing.
func TestRollbackReplay(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "s.db")
	opts := Options{Now: func() time.Time { return now }}
	s := openTest(t, path, opts)
	for _, v := range []int64{2, 5} {
		if _, err := s.Install(modelFile(t, v), SourceOTA, "", false); err != nil {
			t.Fatal(err)
		}
	}
	exp := now.Add(24 * time.Hour)
	rb, err := model.NewRollback(modelFile(t, 2), 5, "gw-1", exp, testKey)
	if err != nil {
		t.Fatal(err)
	}
	// Wrong gateway, expired: refused, nothing changes.
	if _, err := s.InstallRollback(rb, "gw-2", SourceOTA); !errors.Is(err, model.ErrRollbackGateway) {
		t.Errorf("other gateway: %v", err)
	}
	later := s.opts
	later.Now = func() time.Time { return exp }
	expired := &Store{path: s.path, opts: later, db: s.db, file: s.file}
	if _, err := expired.InstallRollback(rb, "gw-1", SourceOTA); !errors.Is(err, model.ErrRollbackExpired) {
		t.Errorf("expired: %v", err)
	}
	if a, _ := s.ActiveVersion(); a != 5 {
		t.Fatalf("active %d after refused rollbacks", a)
	}
	r, err := s.InstallRollback(rb, "gw-1", SourceOTA)
	if err != nil || r.From != 5 || r.To != 2 {
		t.Fatalf("rollback: %+v %v", r, err)
	}
	if a, _ := s.ActiveVersion(); a != 2 {
		t.Errorf("active %d after rollback", a)
	}
	if w, _ := s.Withdrawn(5); !w {
		t.Error("5 not withdrawn")
	}
	if c, _ := s.Consumed(r.Digest); !c {
		t.Error("digest not consumed")
	}
	h0, _ := s.History()
	replay := func(when string) {
		t.Helper()
		if _, err := s.InstallRollback(rb, "gw-1", SourceOTA); !errors.Is(err, ErrReplay) {
			t.Errorf("%s: replay: %v", when, err)
		}
	}
	replay("at once")
	replay("twice")
	if h, _ := s.History(); len(h) != len(h0) {
		t.Errorf("a replay recorded %d events", len(h)-len(h0))
	}
	// A newer version arrives; the old rollback replayed withdraws nothing.
	if _, err := s.Install(modelFile(t, 6), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	replay("after a newer install")
	if a, _ := s.ActiveVersion(); a != 6 {
		t.Errorf("active %d", a)
	}
	if w, _ := s.Withdrawn(6); w {
		t.Error("a replay withdrew 6")
	}
	s.Close()
	s = openTest(t, path, opts)
	replay("after a restart")
	// A rollback for 6 is a new file: it applies, once.
	rb6, _ := model.NewRollback(modelFile(t, 2), 6, "", exp, testKey)
	if _, err := s.InstallRollback(rb6, "gw-1", SourceOTA); err != nil {
		t.Errorf("rollback from 6: %v", err)
	}
	if _, err := s.InstallRollback(rb6, "gw-1", SourceOTA); !errors.Is(err, ErrReplay) {
		t.Errorf("rollback from 6 replayed: %v", err)
	}
	// Unbound format-1 files are refused.
	flagged, _ := model.MarkRollback(modelFile(t, 1))
	flagged, _ = model.Sign(flagged, testKey)
	if _, err := s.InstallRollback(flagged, "gw-1", SourceOTA); !errors.Is(err, model.ErrLegacyRollback) || !errors.Is(err, ErrRejected) {
		t.Errorf("format-1 rollback: %v", err)
	}
	// The consumed digests survive a damaged file (the state record).
	s.Close()
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)/3], 0o600)
	s = openTest(t, path, Options{Repair: true, Now: opts.Now})
	if c, _ := s.Consumed(r.Digest); !c {
		t.Error("consumed digest lost in a repair")
	}
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
}
