package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/linnet-edge/linnet/model"
)

// Report says what Open found and what a repair could not keep.
type Report struct {
	// Err is nil when the file opened whole and agreed with its state
	// record. Otherwise it wraps ErrDamaged (the file was damaged, or held
	// less than its record) or ErrLost (the file was missing or empty where
	// a store existed) and says why.
	Err error
	// MovedTo is where a damaged file was moved, "" if it was not.
	MovedTo string
	// LostVersions are model versions the store held and no longer holds.
	LostVersions []int64
	// LostActive is the version that was active and could not be kept; the
	// store then refuses to install anything older (Floor).
	LostActive int64
	// LostHistory counts history events that could not be kept.
	LostHistory int
	// LostCheckpoints are the versions whose learner checkpoint was lost.
	LostCheckpoints []int64
	// RecordErr is why the state record could not be read (it is
	// rewritten from the store file), nil if it could.
	RecordErr error
}

// Report returns what Open found: nil Err for a whole file.
func (s *Store) Report() Report { return s.report }

// Floor returns the lowest version an Install that is not a rollback
// accepts: the active version, or the version that was active when the
// file lost it, whichever is higher.
func (s *Store) Floor() (int64, error) {
	var f int64
	err := s.view(func(tx *bolt.Tx) error {
		f = activeVersion(tx)
		if st, _ := storedState(tx); st != nil {
			f = max(f, st.Lost)
		}
		return nil
	})
	return f, err
}

// Detached reports whether the store's file is no longer the file at its
// path: deleted or replaced while open. Writes then go to an unlinked file
// and are gone at the next start; call Recreate.
func (s *Store) Detached() (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return false, ErrClosed
	}
	open, err := s.file.Stat()
	if err != nil {
		return false, fmt.Errorf("store: stat open file: %w", err)
	}
	now, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: stat %q: %w", s.path, err)
	}
	return !os.SameFile(open, now), nil
}

// Recreate writes a copy of the open file (which may be unlinked) to the
// store's path, atomically, and continues on the copy: nothing is lost. The
// state record is written again too (its directory may have gone with the
// file). The daemon calls it when Detached reports true.
func (s *Store) Recreate() error {
	if err := s.recreate(); err != nil {
		return err
	}
	return s.forceRecord()
}

func (s *Store) recreate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	// Not tx.CopyFile: it opens through Options.OpenFile, which hands
	// out the store's own file.
	err := s.db.View(func(tx *bolt.Tx) error {
		return writeAtomic(s.path, func(w io.Writer) error { _, err := tx.WriteTo(w); return err })
	})
	if err != nil {
		return fmt.Errorf("recreate store %q: %w", s.path, err)
	}
	s.db.Close()
	s.db = nil
	db, f, err := openBolt(s.path, s.opts)
	if err != nil {
		return fmt.Errorf("recreate store %q: %w", s.path, err)
	}
	s.db, s.file = db, f
	s.opts.Logger.Error("store file was deleted or replaced while open; re-created from the open copy",
		"component", "store", "path", s.path)
	return nil
}

// Health returns nil when the store is writing where it should: an error
// wrapping ErrDetached when its file was deleted or replaced, or the last
// failed state record write.
func (s *Store) Health() error {
	if gone, err := s.Detached(); err != nil {
		return err
	} else if gone {
		return fmt.Errorf("%w: %q", ErrDetached, s.path)
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return s.recErr
}

// reconcile compares the opened file's state with the record next to it.
// The newer of the two, by generation, is the authority; a record newer
// than the file (the file lost a transaction, or a value was damaged) wins
// and is applied. Withdrawn versions and consumed rollbacks are the union
// of both: neither ever un-withdraws anything.
func (s *Store) reconcile(rec *state) error {
	if rec != nil {
		s.recGen, s.minGen = rec.Gen, rec.Gen
	}
	s.quiet = false
	var why error
	var stored uint64
	err := s.update(func(tx *bolt.Tx) error {
		cur, err := currentState(tx)
		if err != nil {
			return err
		}
		sb, sbErr := storedState(tx)
		auth := sb
		switch {
		case rec != nil && (sb == nil || rec.Gen > sb.Gen):
			if sb != nil || sbErr != nil || cur.Active != rec.Active {
				why = fmt.Errorf("%w: the store file is older than its state record (generation %d, record %d)", ErrDamaged, genOf(sb), rec.Gen)
			}
			auth = rec
		case sb != nil && (cur.Active != sb.Active || !slices.Equal(cur.Stack, sb.Stack)):
			why = fmt.Errorf("%w: the store file's active version or rollback stack disagrees with its checksummed state", ErrDamaged)
		}
		if auth == nil {
			return nil
		}
		next := *auth
		next.Withdrawn = union(union(cur.Withdrawn, auth.Withdrawn, maxStack), recOr(rec).Withdrawn, maxStack)
		next.Consumed = union(union(cur.Consumed, auth.Consumed, maxConsumed), recOr(rec).Consumed, maxConsumed)
		if why != nil {
			s.report.LostVersions = missing(auth.Versions, cur.Versions)
			if auth.Active != 0 && !slices.Contains(cur.Versions, auth.Active) {
				s.report.LostActive = auth.Active
				next.Active = s.newestAbove(tx, auth.Active, next.Withdrawn)
			}
		}
		if err := applyState(tx, &next); err != nil {
			return err
		}
		if s.report.LostActive != 0 {
			if err := s.setLost(tx, s.report.LostActive); err != nil {
				return err
			}
		}
		if sb != nil {
			stored = sb.Gen
		}
		return nil
	})
	if err != nil {
		return err
	}
	if why != nil {
		s.report.Err = why
		s.opts.Logger.Error("store file disagreed with its state record; the newer state was restored",
			"component", "store", "path", s.path, "damage", why.Error(), "lost_versions", s.report.LostVersions,
			"lost_active", s.report.LostActive)
	}
	// A missing or stale record is rewritten even when nothing changed.
	if rec == nil || rec.Gen < stored {
		return s.forceRecord()
	}
	return nil
}

func genOf(st *state) uint64 {
	if st == nil {
		return 0
	}
	return st.Gen
}

func recOr(st *state) *state {
	if st == nil {
		return &state{}
	}
	return st
}

// missing returns the versions of want that have is lacks.
func missing(want, have []int64) []int64 {
	var out []int64
	for _, v := range want {
		if !slices.Contains(have, v) {
			out = append(out, v)
		}
	}
	return out
}

// maxConsumed bounds the consumed rollbacks remembered.
const maxConsumed = 64

// newestAbove returns the newest stored version newer than floor that is
// not withdrawn and passes the checks, 0 if none.
func (s *Store) newestAbove(tx *bolt.Tx, floor int64, withdrawn []int64) int64 {
	c := tx.Bucket(bucketModels).Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		ver := version(k)
		if ver <= floor {
			return 0
		}
		if slices.Contains(withdrawn, ver) {
			continue
		}
		if _, err := s.check(v); err == nil {
			return ver
		}
	}
	return 0
}

// setLost records that version lost was active when the file lost it.
func (s *Store) setLost(tx *bolt.Tx, lost int64) error {
	st, _ := storedState(tx)
	if st == nil {
		var err error
		if st, err = currentState(tx); err != nil {
			return err
		}
	}
	st.Lost = max(st.Lost, lost)
	st.Gen = 0 // syncState gives it the next generation
	return tx.Bucket(bucketMeta).Put(keyState, st.encode())
}

// forceRecord writes the record from the file's state.
func (s *Store) forceRecord() error {
	var b []byte
	var gen uint64
	err := s.view(func(tx *bolt.Tx) error {
		st, err := storedState(tx)
		if st != nil {
			b, gen = st.encode(), st.Gen
		}
		return err
	})
	if err == nil && b != nil {
		s.recMu.Lock()
		s.recGen = 0
		s.recMu.Unlock()
		s.writeRecord(b, gen)
	}
	return err
}

// salvaged is what could be read from a damaged file.
type salvaged struct {
	models      map[int64][]byte
	checkpoints map[int64][]byte
	history     map[uint64][]byte
	badHistory  int
	badCkpt     []int64
	meta        map[string][]byte
	problems    []error
}

// salvage reads what it can from a damaged file without bbolt (see
// salvageFile): every model that decodes, every checkpoint and history
// event that passes its checks, and the meta keys.
func salvage(path string) *salvaged {
	sv := &salvaged{models: map[int64][]byte{}, checkpoints: map[int64][]byte{},
		history: map[uint64][]byte{}, meta: map[string][]byte{}}
	entries, problems := salvageFile(path)
	sv.problems = problems
	for _, e := range entries {
		switch string(e.bucket) {
		case string(bucketModels):
			if len(e.key) != 8 {
				continue
			}
			if m, err := model.Decode(e.value); err == nil && m.Version == version(e.key) {
				sv.models[m.Version] = e.value
			}
		case string(bucketCheckpoints):
			if len(e.key) != 8 {
				continue
			}
			if _, _, err := decodeCheckpoint(e.value); err == nil {
				sv.checkpoints[version(e.key)] = e.value
			} else {
				sv.badCkpt = append(sv.badCkpt, version(e.key))
			}
		case string(bucketHistory):
			if _, err := decodeEvent(e.key, e.value); err == nil {
				sv.history[binary.BigEndian.Uint64(e.key)] = e.value
			} else {
				sv.badHistory++
			}
		case string(bucketMeta):
			sv.meta[string(e.key)] = e.value
		}
	}
	return sv
}

// state returns the authority among the salvaged meta/"state", the record
// and the salvaged keys: the valid checksummed state of the highest
// generation, else what the keys say.
func (sv *salvaged) state(rec *state) *state {
	auth := rec
	if b, ok := sv.meta[string(keyState)]; ok {
		if st, err := decodeState(b); err == nil && (auth == nil || st.Gen > auth.Gen) {
			auth = st
		}
	}
	legacy := &state{}
	if v := sv.meta[string(keyActive)]; len(v) == 8 {
		legacy.Active = version(v)
	}
	legacy.Stack = versions(sv.meta[string(keyPrevious)])
	legacy.Withdrawn = versions(sv.meta[string(keyWithdrawn)])
	if v := sv.meta[string(keyConsumed)]; len(v)%32 == 0 {
		for ; len(v) > 0; v = v[32:] {
			legacy.Consumed = append(legacy.Consumed, [32]byte(v))
		}
	}
	if auth == nil {
		return legacy
	}
	out := *auth
	out.Withdrawn = union(union(auth.Withdrawn, legacy.Withdrawn, maxStack), recOr(rec).Withdrawn, maxStack)
	out.Consumed = union(union(auth.Consumed, legacy.Consumed, maxConsumed), recOr(rec).Consumed, maxConsumed)
	return &out
}

func versions(b []byte) []int64 {
	if len(b)%8 != 0 {
		return nil
	}
	var out []int64
	for ; len(b) > 0; b = b[8:] {
		out = append(out, version(b))
	}
	return out
}

// repair moves the damaged file at path aside and rebuilds the store from
// what salvage reads and the state record.
func repair(path string, opts Options, rec *state, cause error) (*Store, error) {
	sv := salvage(path)
	aside := path + ".damaged-" + opts.Now().UTC().Format("20060102T150405Z")
	for i := 2; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, os.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s.damaged-%s-%d", path, opts.Now().UTC().Format("20060102T150405Z"), i)
	}
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("move damaged store %q aside: %w (damage: %v)", path, err, cause)
	}
	return rebuild(path, opts, sv, rec, cause, aside)
}

// rebuild creates a fresh store at path from sv and the authority state:
// the active version comes back if its file was salvaged; if not, the
// newest salvaged version above it that is not withdrawn serves, or none,
// and Floor keeps anything older out. Withdrawn versions, consumed
// rollbacks, the rollback stack, checkpoints and history events come back
// as far as they were kept. It logs one error line saying what was lost.
func rebuild(path string, opts Options, sv *salvaged, rec *state, cause error, aside string) (*Store, error) {
	auth := sv.state(rec)
	s, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("recreate store %q after damage: %w", path, err)
	}
	// The fresh file gets its state (and the record its rewrite) only in
	// the last transaction below: a crash half-way leaves the record the
	// authority.
	s.report = Report{Err: cause, MovedTo: aside}
	keep := func(v int64) bool { return !slices.Contains(auth.Withdrawn, v) || v == auth.Active }
	// The old active version goes in first, so retention cannot drop it;
	// the rest follow oldest first, so retention keeps the newest.
	first := []int64{auth.Active}
	if len(auth.Stack) > 0 {
		first = append(first, auth.Stack[len(auth.Stack)-1])
	}
	for _, v := range first {
		if b, ok := sv.models[v]; ok {
			s.Put(b, SourceRecovery)
		}
	}
	if err := s.update(func(tx *bolt.Tx) error { return applyState(tx, auth) }); err != nil {
		s.Close()
		return nil, fmt.Errorf("rebuild store %q: %w", path, err)
	}
	for _, v := range slices.Sorted(maps.Keys(sv.models)) {
		if !slices.Contains(first, v) && keep(v) {
			s.Put(sv.models[v], SourceRecovery)
		}
	}
	s.report.LostVersions = missing(auth.Versions, slices.Collect(maps.Keys(sv.models)))
	slices.Sort(s.report.LostVersions)
	s.report.LostCheckpoints = sv.badCkpt
	s.minGen = max(s.minGen, auth.Gen, genOf(rec))
	s.quiet = false
	err = s.update(func(tx *bolt.Tx) error {
		next := *auth
		if _, ok := sv.models[auth.Active]; !ok && auth.Active != 0 {
			s.report.LostActive = auth.Active
			next.Active = s.newestAbove(tx, auth.Active, auth.Withdrawn)
		} else if auth.Active == 0 {
			// Nothing was active (or nothing says so): the newest good
			// version that was not withdrawn serves.
			next.Active = s.newestAbove(tx, max(auth.Lost, 0), auth.Withdrawn)
		}
		if err := applyState(tx, &next); err != nil {
			return err
		}
		if lost := max(s.report.LostActive, auth.Lost); lost > next.Active {
			if err := s.setLost(tx, lost); err != nil {
				return err
			}
		}
		models := tx.Bucket(bucketModels)
		for v, c := range sv.checkpoints {
			if models.Get(u64(v)) != nil {
				if err := tx.Bucket(bucketCheckpoints).Put(u64(v), c); err != nil {
					return err
				}
			}
		}
		// The rebuild's own import events would collide with the
		// salvaged ones' sequence numbers: the recovery event below says
		// it all.
		h := tx.Bucket(bucketHistory)
		var fresh [][]byte
		c := h.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			fresh = append(fresh, clone(k))
		}
		for _, k := range fresh {
			if err := h.Delete(k); err != nil {
				return err
			}
		}
		seq := max(h.Sequence(), auth.HistorySeq)
		for k, v := range sv.history {
			if err := h.Put(binary.BigEndian.AppendUint64(nil, k), v); err != nil {
				return err
			}
			seq = max(seq, k)
		}
		if err := h.SetSequence(seq); err != nil {
			return err
		}
		kept := min(auth.HistorySeq, uint64(opts.MaxHistory))
		if n := uint64(len(sv.history)); kept > n {
			s.report.LostHistory = int(kept - n)
		}
		s.report.LostHistory = max(s.report.LostHistory, sv.badHistory)
		return s.addEvent(tx, Event{Action: ActionActivate, Version: next.Active, Previous: auth.Active,
			Source: SourceRecovery, Reason: "store rebuilt after damage: " + cause.Error()})
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("rebuild store %q: %w", path, err)
	}
	if err := s.forceRecord(); err != nil {
		s.Close()
		return nil, err
	}
	active, _ := s.ActiveVersion()
	infos, _ := s.List()
	msg := "store file damaged; moved aside and started a fresh one"
	if aside == "" {
		msg = "store file lost; started a fresh one from its state record"
	}
	opts.Logger.Error(msg,
		"component", "store", "path", path, "moved_to", aside, "damage", cause.Error(),
		"recovered_versions", len(infos), "active", active, "lost_versions", s.report.LostVersions,
		"lost_active", s.report.LostActive, "lost_history", s.report.LostHistory,
		"lost_checkpoints", s.report.LostCheckpoints, "salvage_problems", len(sv.problems))
	return s, nil
}
