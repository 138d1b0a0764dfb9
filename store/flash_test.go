package store

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// flashEnv, set to 1, runs the full bad-flash acceptance run (200 byte
// flips and 50 truncations) instead of the short one.
const flashEnv = "LINNET_STORE_FLASH_FULL"

// withdrawnStore builds a store whose history holds two withdrawn
// versions: 1, 2, 3 (withdrawn), 4, 5 (withdrawn), 6 active; checkpoints
// and history events. It returns the path, the active version and the
// withdrawn ones.
func withdrawnStore(t *testing.T, dir string) (string, int64, []int64) {
	t.Helper()
	path := filepath.Join(dir, "linnet.db")
	s := openTest(t, path, Options{})
	install := func(v int64) {
		t.Helper()
		if _, err := s.Install(modelFile(t, v), SourceOTA, "", false); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCheckpointFor(v, checkpointState(v)); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []int64{1, 2, 3} {
		install(v)
	}
	if _, err := s.Withdraw(3, SourceRollback, "worse"); err != nil {
		t.Fatal(err)
	}
	install(4)
	install(5)
	if _, err := s.Withdraw(5, SourceRollback, "worse"); err != nil {
		t.Fatal(err)
	}
	install(6)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, 6, []int64{3, 5}
}

// openBounded opens path with Repair in a goroutine and fails the test if
// it does not return within limit; it returns the store, the time taken
// and the bytes allocated meanwhile.
func openBounded(t *testing.T, path string, limit time.Duration) (*Store, error, time.Duration, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	type res struct {
		s   *Store
		err error
	}
	done := make(chan res, 1)
	start := time.Now()
	go func() {
		s, err := Open(path, Options{Repair: true, Trusted: nil, Logger: slog.New(slog.DiscardHandler)})
		done <- res{s, err}
	}()
	select {
	case r := <-done:
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		return r.s, r.err, d, after.TotalAlloc - before.TotalAlloc
	case <-time.After(limit):
		t.Fatalf("open did not return within %v", limit)
	}
	return nil, nil, 0, 0
}

// TestBadFlash damages a store holding withdrawn versions with random byte
// flips and truncations; after each, Open (with Repair) must return, within
// 10 s and 200 MB of allocations, a store that serves neither a withdrawn
// nor an older version, remembers every withdrawn one, and says what it
// lost.
func TestBadFlash(t *testing.T) {
	flips, cuts := 20, 8
	if os.Getenv(flashEnv) == "1" {
		flips, cuts = 200, 50
	}
	dir := t.TempDir()
	path, active, withdrawn := withdrawnStore(t, dir)
	pristine, _ := os.ReadFile(path)
	record, _ := os.ReadFile(path + RecordSuffix)
	r := rand.New(rand.NewPCG(12, 12))
	var worst time.Duration
	var worstAlloc uint64
	var repaired, lostActive, fine int
	for i := range flips + cuts {
		b := bytes.Clone(pristine)
		what := ""
		if i < flips {
			at := r.IntN(len(b))
			b[at] ^= byte(1 + r.IntN(255))
			what = fmt.Sprintf("flip at %d", at)
		} else {
			n := r.IntN(len(b))
			b = b[:n]
			what = fmt.Sprintf("truncate to %d", n)
		}
		matches, _ := filepath.Glob(path + ".damaged-*")
		for _, m := range matches {
			os.Remove(m)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+RecordSuffix, record, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err, d, alloc := openBounded(t, path, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: open: %v", what, err)
		}
		worst, worstAlloc = max(worst, d), max(worstAlloc, alloc)
		if alloc > 200<<20 {
			t.Errorf("%s: open allocated %d MB", what, alloc>>20)
		}
		rep := s.Report()
		got, err := s.ActiveVersion()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		switch {
		case slices.Contains(withdrawn, got):
			t.Errorf("%s: serves withdrawn version %d", what, got)
		case got != 0 && got < active:
			t.Errorf("%s: serves older version %d (active was %d)", what, got, active)
		case got != active && rep.Err == nil:
			t.Errorf("%s: active %d, was %d, and the report says nothing", what, got, active)
		case got != active && rep.LostActive != active:
			t.Errorf("%s: active %d lost but reported lost %d", what, active, rep.LostActive)
		}
		for _, w := range withdrawn {
			if ok, err := s.Withdrawn(w); !ok || err != nil {
				t.Errorf("%s: forgot that %d was withdrawn (%v)", what, w, err)
			}
		}
		if f, _ := s.Floor(); f < active {
			t.Errorf("%s: floor %d below the active version %d", what, f, active)
		}
		if _, err := s.Install(modelFile(t, 5), SourceOTA, "", false); err == nil {
			t.Errorf("%s: the withdrawn version 5 installs again", what)
		}
		if rep.Err != nil {
			repaired++
			if !errors.Is(rep.Err, ErrDamaged) {
				t.Errorf("%s: report %v", what, rep.Err)
			}
		} else {
			fine++
		}
		if got == 0 {
			lostActive++
		}
		if err := s.Verify(); err != nil {
			t.Errorf("%s: store after open: %v", what, err)
		}
		s.Close()
	}
	t.Logf("%d flips, %d truncations: %d reported damage (%d without an active model), %d read whole; slowest open %v, most allocated %.1f MB",
		flips, cuts, repaired, lostActive, fine, worst, float64(worstAlloc)/(1<<20))
}

// TestFreelistOverflow: the flip that hung Tx.Commit (a free-list page's
// overflow count of 2,734,686,208) is caught before bbolt sees it.
func TestFreelistOverflow(t *testing.T) {
	path, active, _ := withdrawnStore(t, t.TempDir())
	b, _ := os.ReadFile(path)
	f, _ := os.Open(path)
	metas, _, _ := readMetas(f, int64(len(b)), false)
	f.Close()
	if len(metas) == 0 || metas[0].freelist == noFreelist {
		t.Fatal("no free list to damage")
	}
	off := int(metas[0].freelist) * metas[0].pageSize
	le.PutUint32(b[off+12:], 2_734_686_208)
	os.WriteFile(path, b, 0o600)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("open without repair: %v", err)
	}
	s, err, _, _ := openBounded(t, path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.ActiveVersion(); v != active {
		t.Errorf("active %d after repair, want %d", v, active)
	}
	if rep := s.Report(); !errors.Is(rep.Err, ErrDamaged) || rep.MovedTo == "" {
		t.Errorf("report %+v", rep)
	}
}

// TestLostFile: a store file that is missing or empty while its record
// exists is lost, not new.
func TestLostFile(t *testing.T) {
	for _, name := range []string{"missing", "empty"} {
		t.Run(name, func(t *testing.T) {
			path, active, withdrawn := withdrawnStore(t, t.TempDir())
			if name == "missing" {
				os.Remove(path)
			} else {
				os.Truncate(path, 0)
			}
			if _, err := Open(path, Options{}); !errors.Is(err, ErrLost) {
				t.Fatalf("open without repair: %v", err)
			}
			s := openTest(t, path, Options{Repair: true})
			rep := s.Report()
			if !errors.Is(rep.Err, ErrLost) || rep.LostActive != active || len(rep.LostVersions) == 0 {
				t.Errorf("report %+v", rep)
			}
			if v, _ := s.ActiveVersion(); v != 0 {
				t.Errorf("active %d", v)
			}
			if f, _ := s.Floor(); f != active {
				t.Errorf("floor %d, want %d", f, active)
			}
			for _, w := range withdrawn {
				if ok, _ := s.Withdrawn(w); !ok {
					t.Errorf("forgot withdrawn %d", w)
				}
			}
			if _, err := s.Install(modelFile(t, 4), SourceOTA, "", false); !errors.Is(err, ErrOlder) {
				t.Errorf("older version after loss: %v", err)
			}
			if _, err := s.Install(modelFile(t, 6), SourceOTA, "", false); err != nil {
				t.Errorf("the lost active version again: %v", err)
			}
		})
	}
}

// TestDeletedWhileOpen: a store file deleted while open is noticed and
// re-created with everything it held.
func TestDeletedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{})
	if _, err := s.Install(modelFile(t, 7), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.Detached(); gone || err != nil || s.Health() != nil {
		t.Fatalf("fresh store detached: %v %v %v", gone, err, s.Health())
	}
	os.Remove(path)
	os.Remove(path + RecordSuffix)
	if gone, err := s.Detached(); !gone || err != nil {
		t.Fatalf("deleted store not detached: %v %v", gone, err)
	}
	if err := s.Health(); !errors.Is(err, ErrDetached) {
		t.Errorf("health %v", err)
	}
	if err := s.Recreate(); err != nil {
		t.Fatal(err)
	}
	if gone, _ := s.Detached(); gone || s.Health() != nil {
		t.Errorf("still detached after Recreate")
	}
	if _, err := readRecord(path + RecordSuffix); err != nil {
		t.Errorf("record not written again: %v", err)
	}
	if err := s.SaveCheckpoint([]byte("after")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path, Options{})
	if v, _ := s.ActiveVersion(); v != 7 {
		t.Errorf("active %d after re-create", v)
	}
	if st, err := s.LoadCheckpoint(); err != nil || string(st) != "after" {
		t.Errorf("checkpoint %q %v", st, err)
	}
}

// TestBadHistoryRecord: one bad history event costs that event only.
func TestBadHistoryRecord(t *testing.T) {
	path, active, _ := withdrawnStore(t, t.TempDir())
	s := openTest(t, path, Options{})
	h0, _ := s.History()
	s.Close()
	b, _ := os.ReadFile(path)
	// Break every copy of the first import event (freed pages may hold
	// older ones): it is not JSON any more.
	ev := []byte(`{"seq":1,`)
	if bytes.Index(b, ev) < 0 {
		t.Fatal("no history event in the file")
	}
	for i := bytes.Index(b, ev); i >= 0; i = bytes.Index(b, ev) {
		b[i] = 0xff
	}
	os.WriteFile(path, b, 0o600)
	s = openTest(t, path, Options{Repair: true})
	h1, err := s.History()
	if err != nil {
		t.Fatal(err)
	}
	// The repair adds one recovery event.
	if len(h1) != len(h0) || s.Report().LostHistory != 1 {
		t.Errorf("history %d events, was %d; report %+v", len(h1), len(h0), s.Report())
	}
	if v, _ := s.ActiveVersion(); v != active {
		t.Errorf("active %d", v)
	}
	if st, err := s.LoadCheckpoint(); err != nil || len(st) == 0 {
		t.Errorf("checkpoint lost: %v", err)
	}
}

// TestRecordWins: a file rolled back to an older meta page (one
// transaction lost) is corrected by the newer state record.
func TestRecordDamaged(t *testing.T) {
	path, active, withdrawn := withdrawnStore(t, t.TempDir())
	os.WriteFile(path+RecordSuffix, []byte("garbage"), 0o600)
	s := openTest(t, path, Options{})
	if s.Report().RecordErr == nil {
		t.Error("damaged record not reported")
	}
	if v, _ := s.ActiveVersion(); v != active {
		t.Errorf("active %d", v)
	}
	for _, w := range withdrawn {
		if ok, _ := s.Withdrawn(w); !ok {
			t.Errorf("forgot withdrawn %d", w)
		}
	}
	s.Close()
	if _, err := readRecord(path + RecordSuffix); err != nil {
		t.Errorf("record not rewritten: %v", err)
	}
}

// TestStoreBehindRecord: a store file that lost its last transactions (an
// older copy, a meta page fallback) is brought forward by its record: the
// version withdrawn since is withdrawn, and the older active is not served.
func TestStoreBehindRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{})
	for _, v := range []int64{1, 2} {
		if _, err := s.Install(modelFile(t, v), SourceOTA, "", false); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	old, _ := os.ReadFile(path)
	s = openTest(t, path, Options{})
	if _, err := s.Install(modelFile(t, 3), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Withdraw(3, SourceRollback, "worse"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install(modelFile(t, 4), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.WriteFile(path, old, 0o600) // versions 1 and 2, 2 active
	s = openTest(t, path, Options{})
	rep := s.Report()
	if !errors.Is(rep.Err, ErrDamaged) || rep.LostActive != 4 || !slices.Equal(rep.LostVersions, []int64{3, 4}) {
		t.Errorf("report %+v", rep)
	}
	if v, _ := s.ActiveVersion(); v != 0 {
		t.Errorf("serves %d, older than the lost 4", v)
	}
	if w, _ := s.Withdrawn(3); !w {
		t.Error("3 not withdrawn")
	}
	if _, err := s.Install(modelFile(t, 3), SourceOTA, "", false); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("withdrawn 3: %v", err)
	}
	if _, err := s.Install(modelFile(t, 2), SourceOTA, "", false); !errors.Is(err, ErrOlder) {
		t.Errorf("older 2: %v", err)
	}
	if _, err := s.Install(modelFile(t, 4), SourceOTA, "", false); err != nil {
		t.Errorf("the lost active version again: %v", err)
	}
	s.Close()
	s = openTest(t, path, Options{})
	if rep := s.Report(); rep.Err != nil {
		t.Errorf("second open: %+v", rep)
	}
	if v, _ := s.ActiveVersion(); v != 4 {
		t.Errorf("active %d", v)
	}
}

// TestBranchCycle: a branch page whose child is itself (bbolt would
// recurse until the stack overflows, which no recover catches) is damage.
func TestBranchCycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linnet.db")
	s := openTest(t, path, Options{MaxHistory: 5000})
	err := s.update(func(tx *bolt.Tx) error {
		for range 1500 {
			if err := s.addEvent(mtx{tx, DefaultModel}, Event{Action: ActionReject, Version: 1, Source: SourceOTA, Reason: "filler to grow the history"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(path)
	f, _ := os.Open(path)
	metas, _, _ := readMetas(f, int64(len(b)), false)
	f.Close()
	ps := metas[0].pageSize
	found := false
	for id := 2; (id+1)*ps <= len(b) && !found; id++ {
		p := b[id*ps:]
		if le.Uint16(p[8:]) == flagBranch && le.Uint64(p) == uint64(id) && le.Uint16(p[10:]) > 0 {
			le.PutUint64(p[pageHeader+8:], uint64(id))
			found = true
		}
	}
	if !found {
		t.Fatal("no branch page in the file")
	}
	os.WriteFile(path, b, 0o600)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("open: %v", err)
	}
	s2, err, _, _ := openBounded(t, path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	// The older meta page's tree still holds the history: nothing lost.
	if rep := s2.Report(); !errors.Is(rep.Err, ErrDamaged) {
		t.Errorf("report %+v", rep)
	}
	// The repair opens with the default MaxHistory.
	if h, _ := s2.History(); len(h) != DefaultMaxHistory {
		t.Errorf("%d history events after the repair, want the newest %d", len(h), DefaultMaxHistory)
	}
	if err := s2.Verify(); err != nil {
		t.Error(err)
	}
}

// TestBadNewestMeta: a newest meta page whose checksum is right but whose
// numbers are not (bbolt would use it) is damage, even though the older
// meta page is fine.
func TestBadNewestMeta(t *testing.T) {
	path, active, _ := withdrawnStore(t, t.TempDir())
	b, _ := os.ReadFile(path)
	f, _ := os.Open(path)
	metas, _, _ := readMetas(f, int64(len(b)), false)
	f.Close()
	m := metas[0]
	off := [2]int{0, m.pageSize}[m.page] + pageHeader
	le.PutUint64(b[off+40:], m.pgid+1<<20) // high-water mark far past the end
	h := fnv.New64a()
	h.Write(b[off : off+56])
	le.PutUint64(b[off+56:], h.Sum64())
	if err := checkPages(bytes.NewReader(b), int64(len(b))); err == nil {
		t.Fatal("a bad newest meta page passed the check")
	}
	os.WriteFile(path, b, 0o600)
	s, err, _, _ := openBounded(t, path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.ActiveVersion(); v != active || !errors.Is(s.Report().Err, ErrDamaged) {
		t.Errorf("active %d, report %+v", v, s.Report())
	}
}
