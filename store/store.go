package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/linnet-edge/linnet/model"
)

// Defaults for the zero Options.
const (
	DefaultTimeout       = time.Second
	DefaultKeep          = 8
	DefaultMaxModelBytes = 16 << 20
	DefaultMaxHistory    = 1000
	DefaultMaxBytes      = 512 << 20
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Timeout is how long Open waits for another process to release the
	// file lock before it returns ErrLocked; 0 means DefaultTimeout.
	Timeout time.Duration
	// ReadOnly opens the file without writing (shared lock); the file must
	// exist. The integrity check runs, Repair does not.
	ReadOnly bool
	// Repair moves a damaged file aside and starts a fresh one from what can
	// be recovered, instead of returning ErrDamaged (the daemon sets it).
	Repair bool

	// Trusted are the keys a signed model must verify against. With none, a
	// signature is not checked (the CRC always is).
	Trusted []ed25519.PublicKey
	// RequireSigned refuses unsigned models (Put, Activate, Active), and
	// every model if Trusted is empty.
	RequireSigned bool

	// Keep is how many model versions Put retains (the active one and its
	// predecessor are kept on top); 0 means DefaultKeep, negative keeps all.
	Keep int
	// MaxModelBytes refuses larger model files; 0 means DefaultMaxModelBytes.
	MaxModelBytes int
	// MaxHistory is how many history events are kept; 0 means DefaultMaxHistory.
	MaxHistory int
	// MaxBytes stops the file from growing past it (bbolt's MaxSize); 0
	// means DefaultMaxBytes.
	MaxBytes int

	// Logger receives the damaged-file report; nil discards.
	Logger *slog.Logger
	// Now is the clock for history and checkpoint times; nil means time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.MaxModelBytes <= 0 {
		o.MaxModelBytes = DefaultMaxModelBytes
	}
	if o.MaxHistory <= 0 {
		o.MaxHistory = DefaultMaxHistory
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is an open store file. It is safe for concurrent use.
type Store struct {
	path string
	opts Options

	mu   sync.RWMutex // guards db and file against Close and Recreate
	db   *bolt.DB
	file *os.File // bbolt's file, to notice it was deleted (Detached)

	report Report // what Open found; set before Open returns

	recMu  sync.Mutex
	recGen uint64 // generation of the state record on disk
	minGen uint64 // the next state generation must exceed this
	recErr error  // the last record write's error, nil once one succeeds
	// quiet holds the state and its record back while Open checks,
	// reconciles or rebuilds (one goroutine, before Open returns): the
	// record on disk is the good copy until then.
	quiet bool
}

var (
	bucketModels      = []byte("models")
	bucketMeta        = []byte("meta")
	bucketHistory     = []byte("history")
	bucketCheckpoints = []byte("checkpoints")

	keyActive   = []byte("active")
	keyPrevious = []byte("previous")
	keyFormat   = []byte("format")
)

// storeFormat is the layout version written under meta/format.
const storeFormat = 1

// Open opens or creates the store at path (mode 0600). See the package
// comment for the lock timeout, the integrity check, the state record and
// Repair. With Repair, Open returns a usable store whenever it can create
// one and says in Report what it found and what was lost.
func Open(path string, opts Options) (*Store, error) {
	opts.setDefaults()
	if opts.ReadOnly {
		return open(path, opts)
	}
	rec, recErr := readRecord(path + RecordSuffix)
	if recErr != nil && errors.Is(recErr, os.ErrNotExist) {
		recErr = nil
	} else if recErr != nil {
		opts.Logger.Error("store state record damaged; the store file's copy is used", "component", "store",
			"path", path+RecordSuffix, "error", recErr.Error())
	}
	existed := rec != nil || recErr != nil
	if fi, err := os.Stat(path); existed && (errors.Is(err, os.ErrNotExist) || err == nil && fi.Size() == 0) {
		lost := fmt.Errorf("%w: %q is missing or empty, but its state record %q says a store existed",
			ErrLost, path, path+RecordSuffix)
		if !opts.Repair {
			return nil, lost
		}
		return rebuild(path, opts, &salvaged{}, rec, lost, "")
	}
	s, err := open(path, opts)
	if err == nil {
		s.report.RecordErr = recErr
		if err = s.reconcile(rec); err != nil {
			s.Close()
			s = nil
		}
	}
	if err == nil || !errors.Is(err, ErrDamaged) || !opts.Repair {
		return s, err
	}
	return repair(path, opts, rec, err)
}

func open(path string, opts Options) (s *Store, err error) {
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	db, file, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s = &Store{path: path, opts: opts, db: db, file: file, quiet: true}
	if !opts.ReadOnly {
		err = s.update(func(tx *bolt.Tx) error {
			if err := (mtx{tx, DefaultModel}).ensure(); err != nil {
				return err
			}
			meta := tx.Bucket(bucketMeta)
			if v := meta.Get(keyFormat); v == nil {
				return meta.Put(keyFormat, u64(storeFormat))
			} else if len(v) != 8 || binary.BigEndian.Uint64(v) != storeFormat {
				return fmt.Errorf("%w: store format %x, this build reads %d", ErrDamaged, v, storeFormat)
			}
			return nil
		})
		if err != nil {
			db.Close()
			if !errors.Is(err, ErrDamaged) {
				err = fmt.Errorf("%w: %v", ErrDamaged, err)
			}
			return nil, fmt.Errorf("open store %q: %w", path, err)
		}
	}
	if opts.ReadOnly {
		var empty bool
		err := s.view(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketModels, bucketMeta, bucketHistory, bucketCheckpoints} {
				empty = empty || tx.Bucket(b) == nil
			}
			return nil
		})
		if err == nil && empty {
			err = ErrEmpty
		}
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open store %q: %w", path, err)
		}
	}
	if err := s.Verify(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	return s, nil
}

// openBolt opens the bbolt file, turning a lock timeout into ErrLocked and
// a file bbolt cannot read (or panics on) into ErrDamaged. It returns the
// open file too.
func openBolt(path string, opts Options) (*bolt.DB, *os.File, error) {
	db, f, err := boltOpen(path, &bolt.Options{
		Timeout:  opts.Timeout,
		ReadOnly: opts.ReadOnly,
		MaxSize:  opts.MaxBytes,
	})
	switch {
	case err == nil:
		return db, f, nil
	case errors.Is(err, ErrDamaged):
		return nil, nil, fmt.Errorf("open store %q: %w", path, err)
	case errors.Is(err, berrors.ErrTimeout):
		who := lockHolder(path)
		if who != "" {
			who = " (held by " + who + ")"
		}
		return nil, nil, fmt.Errorf("%w: %q%s; gave up after %v (is the linnet daemon running? stop it or use its data)",
			ErrLocked, path, who, opts.Timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, nil, fmt.Errorf("open store %q: %w: %v", path, ErrDamaged, err)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	// bbolt reports other unreadable files (too small, bad page size) with
	// plain errors.
	return nil, nil, fmt.Errorf("open store %q: %w: %v", path, ErrDamaged, err)
}

// boltOpen is bolt.Open that neither trusts nor crashes on a damaged file.
// It opens and locks the file itself, checks its pages (checkPages) before
// bbolt reads them, then hands bbolt the open, locked file. bbolt can still
// panic (or fault on the map) on damage the check does not cover; the panic
// comes back as ErrDamaged and the file is closed, releasing the lock.
func boltOpen(path string, o *bolt.Options) (db *bolt.DB, f *os.File, err error) {
	flag := os.O_RDWR | os.O_CREATE
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err = os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*bolt.DB, *os.File, error) {
		unlockFile(f)
		f.Close()
		return nil, nil, err
	}
	if err := lockFile(f, !o.ReadOnly, o.Timeout); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if fi.Size() > 0 {
		if err := checkPages(f, fi.Size()); err != nil {
			return fail(fmt.Errorf("%w: %w", ErrDamaged, err))
		}
	}
	o.OpenFile = func(string, int, os.FileMode) (*os.File, error) { return f, nil }
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// The map bbolt may have made keeps the open file alive
			// after Close, and the lock with it: unlock explicitly.
			// The map itself leaks, once, on this damaged-file path.
			db, f, err = fail(fmt.Errorf("%w: bbolt: %v", ErrDamaged, r))
		}
	}()
	db, err = bolt.Open(path, 0o600, o)
	if err != nil {
		return nil, nil, err // bbolt closed the file
	}
	return db, f, nil
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file. Later calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// view and update run fn in a bbolt transaction, refusing after Close.
// fn must copy out what it keeps: slices from Get die with the transaction.
// bbolt panics on a corrupt page; those panics come back as ErrDamaged
// (bbolt rolls the transaction back first), so a damaged file gives an
// error the caller can act on (reopen with Repair) instead of a crash.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(&err)
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(&err)
	var rec []byte
	var gen uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		rec, gen, err = s.syncState(tx)
		return err
	})
	if errors.Is(err, berrors.ErrMaxSizeReached) {
		err = fmt.Errorf("%w: %q, limit %d bytes (prune, or raise the limit): %w", ErrFull, s.path, s.opts.MaxBytes, err)
	}
	if err == nil && rec != nil {
		s.writeRecord(rec, gen)
	}
	return err
}

// syncState keeps meta/"state" equal to what the other keys say, with a
// new generation when anything changed, and returns the encoded state to
// write to the record after the commit (nil if nothing changed).
func (s *Store) syncState(tx *bolt.Tx) ([]byte, uint64, error) {
	if s.quiet || tx.Bucket(bucketMeta) == nil || tx.Bucket(bucketModels) == nil || tx.Bucket(bucketHistory) == nil {
		return nil, 0, nil
	}
	cur, err := currentRecord(tx)
	if err != nil {
		return nil, 0, err
	}
	old, _ := storedRecord(tx) // a damaged one is replaced
	if old != nil {
		for n, st := range cur.Models {
			st.Lost = old.model(n).Lost
			if st.Active >= st.Lost {
				st.Lost = 0
			}
		}
		if old.same(cur) && old.Gen > 0 && old.Gen >= s.minGen {
			return nil, 0, nil
		}
		s.minGen = max(s.minGen, old.Gen)
	}
	s.minGen++
	cur.Gen = s.minGen
	b := cur.encode()
	return b, cur.Gen, tx.Bucket(bucketMeta).Put(keyState, b)
}

// writeRecord writes the state record of generation gen unless a newer one
// is on disk. A failure is kept for Health: the store file holds the state,
// and the next change tries again.
func (s *Store) writeRecord(b []byte, gen uint64) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if gen <= s.recGen || s.quiet {
		return
	}
	if err := writeRecord(s.path+RecordSuffix, b); err != nil {
		s.recErr = err
		s.opts.Logger.Error("store state record not written", "component", "store", "error", err.Error())
		return
	}
	s.recGen, s.recErr = gen, nil
}

// recoverDamage turns a panic into an error wrapping ErrDamaged. It also
// turns a memory fault on the map (a file truncated under bbolt) into one.
func recoverDamage(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: bbolt: %v", ErrDamaged, r)
	}
}

// inspect runs fn in a transaction that sees a stable file and changes
// nothing: bbolt's Check is only safe on a read transaction when no writer
// runs, so a writable store takes the writer's transaction and rolls it back.
func (s *Store) inspect(fn func(*bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(&err)
	tx, err := s.db.Begin(!s.opts.ReadOnly)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// Verify checks the whole file: bbolt's page structure, every stored
// model's CRC (and structure), the active pointer and every checkpoint's
// CRC. Problems are joined in one error wrapping ErrDamaged. Signatures are
// not checked here (a key change is not damage): Put, Activate and Active
// check them, and `linnet models verify --trust` does for every version.
func (s *Store) Verify() error {
	var errs []error
	copies := map[string]map[int64][]byte{}
	actives := map[string]int64{}
	err := s.inspect(func(tx *bolt.Tx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("bbolt: %v", r)
			}
		}()
		for e := range tx.Check() {
			errs = append(errs, e)
			if len(errs) > 20 {
				break
			}
		}
		if len(errs) > 0 {
			return nil
		}
		for _, name := range modelNames(tx) {
			verifyModel(mtx{tx, name}, copies, actives, &errs)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		errs = append(errs, err)
	}
	for name, vs := range copies {
		for v, b := range vs {
			m, err := model.Decode(b)
			if err != nil {
				errs = append(errs, fmt.Errorf("%smodel %d: %w", namePrefix(name), v, err))
			} else if m.Version != v {
				errs = append(errs, fmt.Errorf("%smodel stored as %d says version %d", namePrefix(name), v, m.Version))
			}
		}
		if _, ok := vs[actives[name]]; actives[name] != 0 && !ok {
			errs = append(errs, fmt.Errorf("%sactive version %d is not stored", namePrefix(name), actives[name]))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrDamaged, errors.Join(errs...))
	}
	return nil
}

// verifyModel checks one model's keys for Verify, collecting its versions'
// bytes and active version.
func verifyModel(tx mtx, copies map[string]map[int64][]byte, actives map[string]int64, errs *[]error) {
	fail := func(err error) { *errs = append(*errs, fmt.Errorf("%s%w", namePrefix(tx.name), err)) }
	if !tx.exists() || tx.Bucket(bucketHistory) == nil || tx.Bucket(bucketCheckpoints) == nil {
		fail(errors.New("buckets missing"))
		return
	}
	copies[tx.name] = map[int64][]byte{}
	c := tx.Bucket(bucketModels).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			fail(fmt.Errorf("model key %x is not a version", k))
			continue
		}
		copies[tx.name][version(k)] = bytes.Clone(v)
	}
	if v := tx.Bucket(bucketMeta).Get(keyActive); v != nil {
		if len(v) != 8 {
			fail(fmt.Errorf("active pointer %x", v))
		} else {
			actives[tx.name] = version(v)
		}
	}
	if _, err := readStack(tx); err != nil {
		fail(err)
	}
	cb := tx.Bucket(bucketCheckpoints).Cursor()
	for k, v := cb.First(); k != nil; k, v = cb.Next() {
		if _, _, err := decodeCheckpoint(v); err != nil {
			fail(fmt.Errorf("checkpoint of version %x: %w", k, err))
		}
	}
	if d := tx.Bucket(bucketDevices); d != nil {
		dc := d.Cursor()
		for k, v := dc.First(); k != nil; k, v = dc.Next() {
			if isTail(k) {
				continue // checked with its device's value
			}
			if _, err := decodeDevice(v, d.Get(tailKey(k))); err != nil {
				fail(fmt.Errorf("device %q: %w", k, err))
			}
		}
	}
	hb := tx.Bucket(bucketHistory).Cursor()
	for k, v := hb.First(); k != nil; k, v = hb.Next() {
		if _, err := decodeEvent(k, v); err != nil {
			fail(err)
		}
	}
}

// namePrefix names a model in an error: nothing for the default model, so
// a single-model store's messages read as they always did.
func namePrefix(name string) string {
	if name == DefaultModel {
		return ""
	}
	return fmt.Sprintf("model %q: ", name)
}

func u64(v int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(v))
	return b
}

func version(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
