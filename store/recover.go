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
	// Named says what models other than DefaultModel lost, by name: only
	// their Lost fields are set. The fields above are DefaultModel's.
	Named map[string]*Report
}

// of returns the part of r about model name.
func (r *Report) of(name string) *Report {
	if name == DefaultModel {
		return r
	}
	if r.Named == nil {
		r.Named = map[string]*Report{}
	}
	if r.Named[name] == nil {
		r.Named[name] = &Report{}
	}
	return r.Named[name]
}

// Report returns what Open found: nil Err for a whole file.
func (s *Store) Report() Report { return s.report }

// Floor returns the lowest version an Install that is not a rollback
// accepts: the active version, or the version that was active when the
// file lost it, whichever is higher.
func (h *Model) Floor() (int64, error) {
	var f int64
	err := h.view(func(tx mtx) error {
		f = activeVersion(tx)
		if r, _ := storedRecord(tx.Tx); r != nil {
			f = max(f, r.model(tx.name).Lost)
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
// and is applied, model by model. Withdrawn versions and consumed rollbacks
// are the union of both: neither ever un-withdraws anything.
func (s *Store) reconcile(rec *record) error {
	if rec != nil {
		s.recGen, s.minGen = rec.Gen, rec.Gen
	}
	s.quiet = false
	var why error
	var stored uint64
	err := s.update(func(tx *bolt.Tx) error {
		cur, err := currentRecord(tx)
		if err != nil {
			return err
		}
		sb, sbErr := storedRecord(tx)
		auth := sb
		switch {
		case rec != nil && (sb == nil || rec.Gen > sb.Gen):
			if sb != nil || sbErr != nil || activeDiffers(cur, rec) {
				why = fmt.Errorf("%w: the store file is older than its state record (generation %d, record %d)", ErrDamaged, genOf(sb), rec.Gen)
			}
			auth = rec
		case sb != nil && cur.disagrees(sb):
			why = fmt.Errorf("%w: the store file's active version or rollback stack disagrees with its checksummed state", ErrDamaged)
		}
		if sb != nil {
			stored = sb.Gen
		}
		if auth == nil {
			return nil
		}
		for _, name := range auth.names(cur) {
			if auth.Models[name] == nil && name != DefaultModel {
				continue // the authority says nothing of it: the file's keys stand
			}
			a, c, r := auth.model(name), cur.model(name), rec.model(name)
			t := mtx{tx, name}
			if !t.exists() {
				if err := t.ensure(); err != nil {
					return err
				}
			}
			next := *a
			next.Withdrawn = union(union(c.Withdrawn, a.Withdrawn, maxStack), r.Withdrawn, maxStack)
			next.Consumed = union(union(c.Consumed, a.Consumed, maxConsumed), r.Consumed, maxConsumed)
			var lost int64
			if why != nil {
				lostVersions := missing(a.Versions, c.Versions)
				if a.Active != 0 && !slices.Contains(c.Versions, a.Active) {
					lost = a.Active
					next.Active = s.newestAbove(t, a.Active, next.Withdrawn)
				}
				if name == DefaultModel || len(lostVersions) > 0 || lost != 0 {
					rep := s.report.of(name)
					rep.LostVersions, rep.LostActive = lostVersions, lost
				}
			}
			if err := applyState(t, &next); err != nil {
				return err
			}
			if lost != 0 {
				if err := s.setLost(tx, name, lost); err != nil {
					return err
				}
			}
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
			"lost_active", s.report.LostActive, "other_models", len(s.report.Named))
	}
	// A missing or stale record is rewritten even when nothing changed.
	if rec == nil || rec.Gen < stored {
		return s.forceRecord()
	}
	return nil
}

// activeDiffers reports whether some model's active version differs
// between a and b.
func activeDiffers(a, b *record) bool {
	for _, n := range a.names(b) {
		if a.model(n).Active != b.model(n).Active {
			return true
		}
	}
	return false
}

func genOf(st *record) uint64 {
	if st == nil {
		return 0
	}
	return st.Gen
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
func (s *Store) newestAbove(tx mtx, floor int64, withdrawn []int64) int64 {
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

// setLost records that version lost of model name was active when the
// file lost it.
func (s *Store) setLost(tx *bolt.Tx, name string, lost int64) error {
	r, _ := storedRecord(tx)
	if r == nil {
		var err error
		if r, err = currentRecord(tx); err != nil {
			return err
		}
	}
	st := r.model(name)
	st.Lost = max(st.Lost, lost)
	r.Models[name] = st
	r.Gen = 0 // syncState gives it the next generation
	return tx.Bucket(bucketMeta).Put(keyState, r.encode())
}

// forceRecord writes the record from the file's state.
func (s *Store) forceRecord() error {
	var b []byte
	var gen uint64
	err := s.view(func(tx *bolt.Tx) error {
		r, err := storedRecord(tx)
		if r != nil {
			b, gen = r.encode(), r.Gen
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
	byName   map[string]*salvagedModel
	problems []error
}

// salvagedModel is what could be read of one model.
type salvagedModel struct {
	models      map[int64][]byte
	checkpoints map[int64][]byte
	devices     map[string][][]byte // every copy found of a device's value
	tails       map[string][][]byte // of the second half of its state
	history     map[uint64][]byte
	badHistory  int
	badCkpt     []int64
	meta        map[string][]byte
}

// newestDevice returns the newest copy of a device's value that checks out,
// with the second half of its state that it was written with (nil if it
// has none); nil if none does.
func newestDevice(copies, tails [][]byte) (v, tail []byte) {
	var newest int64
	try := func(c, t []byte) {
		if _, err := decodeDevice(c, t); err != nil {
			return
		}
		if saved := int64(binary.LittleEndian.Uint64(c[4:])); v == nil || saved > newest {
			v, tail, newest = c, t, saved
		}
	}
	for _, c := range copies {
		try(c, nil)
		for _, t := range tails {
			try(c, t)
		}
	}
	return v, tail
}

// model returns what was salvaged of model name (empty if nothing).
func (sv *salvaged) model(name string) *salvagedModel {
	if sv.byName == nil {
		sv.byName = map[string]*salvagedModel{}
	}
	m := sv.byName[name]
	if m == nil {
		m = &salvagedModel{models: map[int64][]byte{}, checkpoints: map[int64][]byte{}, devices: map[string][][]byte{}, tails: map[string][][]byte{},
			history: map[uint64][]byte{}, meta: map[string][]byte{}}
		sv.byName[name] = m
	}
	return m
}

// salvage reads what it can from a damaged file without bbolt (see
// salvageFile): every model that decodes, every checkpoint, device state
// and history event that passes its checks, and the meta keys, of every
// model.
func salvage(path string) *salvaged {
	sv := &salvaged{}
	entries, problems := salvageFile(path)
	sv.problems = problems
	for _, e := range entries {
		kind, name := splitBucket(e.bucket)
		if CheckName(name) != nil {
			continue
		}
		sm := sv.model(name)
		switch string(kind) {
		case string(bucketModels):
			if len(e.key) != 8 {
				continue
			}
			if m, err := model.Decode(e.value); err == nil && m.Version == version(e.key) {
				sm.models[m.Version] = e.value
			}
		case string(bucketCheckpoints):
			if len(e.key) != 8 {
				continue
			}
			if _, _, err := decodeCheckpoint(e.value); err == nil {
				sm.checkpoints[version(e.key)] = e.value
			} else {
				sm.badCkpt = append(sm.badCkpt, version(e.key))
			}
		case string(bucketDevices):
			// Halves are matched (newest first) when the store is rebuilt.
			if isTail(e.key) {
				k := string(e.key[:len(e.key)-1])
				sm.tails[k] = append(sm.tails[k], e.value)
			} else {
				sm.devices[string(e.key)] = append(sm.devices[string(e.key)], e.value)
			}
		case string(bucketHistory):
			if _, err := decodeEvent(e.key, e.value); err == nil {
				sm.history[binary.BigEndian.Uint64(e.key)] = e.value
			} else {
				sm.badHistory++
			}
		case string(bucketMeta):
			sm.meta[string(e.key)] = e.value
		}
	}
	return sv
}

// state returns the authority among the salvaged meta/"state", the record
// and the salvaged keys: the valid checksummed state of the highest
// generation, else what the keys say, model by model.
func (sv *salvaged) state(rec *record) *record {
	auth := rec
	if b, ok := sv.model(DefaultModel).meta[string(keyState)]; ok {
		if st, err := decodeRecord(b); err == nil && (auth == nil || st.Gen > auth.Gen) {
			auth = st
		}
	}
	out := &record{Models: map[string]*state{}}
	if auth != nil {
		out.Gen = auth.Gen
	}
	names := auth.names(rec)
	for n := range sv.byName {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		meta := sv.model(n).meta
		legacy := &state{}
		if v := meta[string(keyActive)]; len(v) == 8 {
			legacy.Active = version(v)
		}
		legacy.Stack = versions(meta[string(keyPrevious)])
		legacy.Withdrawn = versions(meta[string(keyWithdrawn)])
		if v := meta[string(keyConsumed)]; len(v)%32 == 0 {
			for ; len(v) > 0; v = v[32:] {
				legacy.Consumed = append(legacy.Consumed, [32]byte(v))
			}
		}
		if auth == nil || auth.Models[n] == nil {
			out.Models[n] = legacy
			continue
		}
		a := *auth.Models[n]
		a.Withdrawn = union(union(a.Withdrawn, legacy.Withdrawn, maxStack), rec.model(n).Withdrawn, maxStack)
		a.Consumed = union(union(a.Consumed, legacy.Consumed, maxConsumed), rec.model(n).Consumed, maxConsumed)
		out.Models[n] = &a
	}
	return out
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
func repair(path string, opts Options, rec *record, cause error) (*Store, error) {
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

// rebuild creates a fresh store at path from sv and the authority state,
// model by model: the active version comes back if its file was salvaged;
// if not, the newest salvaged version above it that is not withdrawn
// serves, or none, and Floor keeps anything older out. Withdrawn versions,
// consumed rollbacks, the rollback stack, checkpoints, device states and
// history events come back as far as they were kept. It logs one error
// line saying what was lost.
func rebuild(path string, opts Options, sv *salvaged, rec *record, cause error, aside string) (*Store, error) {
	auth := sv.state(rec)
	s, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("recreate store %q after damage: %w", path, err)
	}
	// The fresh file gets its state (and the record its rewrite) only in
	// the last transaction below: a crash half-way leaves the record the
	// authority.
	s.report = Report{Err: cause, MovedTo: aside}
	names := auth.names(nil)
	for _, name := range names {
		if err := s.restoreVersions(name, auth.model(name), sv.model(name)); err != nil {
			s.Close()
			return nil, fmt.Errorf("rebuild store %q: model %q: %w", path, name, err)
		}
	}
	s.minGen = max(s.minGen, auth.Gen, genOf(rec))
	s.quiet = false
	err = s.update(func(tx *bolt.Tx) error {
		for _, name := range names {
			if err := s.restoreState(mtx{tx, name}, auth.model(name), sv.model(name), cause); err != nil {
				return fmt.Errorf("model %q: %w", name, err)
			}
		}
		return nil
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
		"lost_checkpoints", s.report.LostCheckpoints, "other_models", len(s.report.Named),
		"salvage_problems", len(sv.problems))
	return s, nil
}

// restoreVersions stores the salvaged versions of model name: the old
// active version first, so retention cannot drop it, the rest oldest first,
// so retention keeps the newest.
func (s *Store) restoreVersions(name string, auth *state, sm *salvagedModel) error {
	h := &Model{s: s, name: name}
	keep := func(v int64) bool { return !slices.Contains(auth.Withdrawn, v) || v == auth.Active }
	first := []int64{auth.Active}
	if len(auth.Stack) > 0 {
		first = append(first, auth.Stack[len(auth.Stack)-1])
	}
	for _, v := range first {
		if b, ok := sm.models[v]; ok {
			h.Put(b, SourceRecovery)
		}
	}
	if err := h.update(func(tx mtx) error { return applyState(tx, auth) }); err != nil {
		return err
	}
	for _, v := range slices.Sorted(maps.Keys(sm.models)) {
		if !slices.Contains(first, v) && keep(v) {
			h.Put(sm.models[v], SourceRecovery)
		}
	}
	lostVersions := missing(auth.Versions, slices.Collect(maps.Keys(sm.models)))
	if name == DefaultModel || len(lostVersions) > 0 || len(sm.badCkpt) > 0 {
		rep := s.report.of(name)
		rep.LostVersions = lostVersions
		slices.Sort(rep.LostVersions)
		rep.LostCheckpoints = sm.badCkpt
	}
	return nil
}

// restoreState sets model tx.name's active version, stack and lists, its
// checkpoints, device states and history, inside the rebuild's last
// transaction.
func (s *Store) restoreState(tx mtx, auth *state, sm *salvagedModel, cause error) error {
	if err := tx.ensure(); err != nil {
		return err
	}
	var lostActive int64
	next := *auth
	if _, ok := sm.models[auth.Active]; !ok && auth.Active != 0 {
		lostActive = auth.Active
		s.report.of(tx.name).LostActive = lostActive
		next.Active = s.newestAbove(tx, auth.Active, auth.Withdrawn)
	} else if auth.Active == 0 {
		// Nothing was active (or nothing says so): the newest good
		// version that was not withdrawn serves.
		next.Active = s.newestAbove(tx, max(auth.Lost, 0), auth.Withdrawn)
	}
	if err := applyState(tx, &next); err != nil {
		return err
	}
	if lost := max(lostActive, auth.Lost); lost > next.Active {
		if err := s.setLost(tx.Tx, tx.name, lost); err != nil {
			return err
		}
	}
	models := tx.Bucket(bucketModels)
	for v, c := range sm.checkpoints {
		if models.Get(u64(v)) != nil {
			if err := tx.Bucket(bucketCheckpoints).Put(u64(v), c); err != nil {
				return err
			}
		}
	}
	for d, copies := range sm.devices {
		v, tail := newestDevice(copies, sm.tails[d])
		if v == nil {
			continue
		}
		if err := tx.Bucket(bucketDevices).Put([]byte(d), v); err != nil {
			return err
		}
		if tail != nil {
			if err := tx.Bucket(bucketDevices).Put(tailKey([]byte(d)), tail); err != nil {
				return err
			}
		}
	}
	// The rebuild's own import events would collide with the salvaged
	// ones' sequence numbers: the recovery event below says it all.
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
	for k, v := range sm.history {
		if err := h.Put(binary.BigEndian.AppendUint64(nil, k), v); err != nil {
			return err
		}
		seq = max(seq, k)
	}
	if err := h.SetSequence(seq); err != nil {
		return err
	}
	kept := min(auth.HistorySeq, uint64(s.opts.MaxHistory))
	lostHistory := sm.badHistory
	if n := uint64(len(sm.history)); kept > n {
		lostHistory = max(lostHistory, int(kept-n))
	}
	if lostHistory > 0 || tx.name == DefaultModel {
		s.report.of(tx.name).LostHistory = lostHistory
	}
	return s.addEvent(tx, Event{Action: ActionActivate, Version: next.Active, Previous: auth.Active,
		Source: SourceRecovery, Reason: "store rebuilt after damage: " + cause.Error()})
}
