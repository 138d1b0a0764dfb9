package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
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

	mu sync.RWMutex // guards db against Close
	db *bolt.DB
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
// comment for the lock timeout, the integrity check and Repair.
func Open(path string, opts Options) (*Store, error) {
	opts.setDefaults()
	s, err := open(path, opts)
	if err == nil || !errors.Is(err, ErrDamaged) || !opts.Repair || opts.ReadOnly {
		return s, err
	}
	return repair(path, opts, err)
}

func open(path string, opts Options) (s *Store, err error) {
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s = &Store{path: path, opts: opts, db: db}
	if !opts.ReadOnly {
		err = s.update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketModels, bucketMeta, bucketHistory, bucketCheckpoints} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
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
// a file bbolt cannot read (or panics on) into ErrDamaged.
func openBolt(path string, opts Options) (*bolt.DB, error) {
	db, err := boltOpen(path, &bolt.Options{
		Timeout:  opts.Timeout,
		ReadOnly: opts.ReadOnly,
		MaxSize:  opts.MaxBytes,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, ErrDamaged):
		return nil, fmt.Errorf("open store %q: %w", path, err)
	case errors.Is(err, berrors.ErrTimeout):
		who := lockHolder(path)
		if who != "" {
			who = " (held by " + who + ")"
		}
		return nil, fmt.Errorf("%w: %q%s; gave up after %v (is the linnet daemon running? stop it or use its data)",
			ErrLocked, path, who, opts.Timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, fmt.Errorf("open store %q: %w: %v", path, ErrDamaged, err)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// bbolt reports other unreadable files (too small, bad page size) with
	// plain errors.
	return nil, fmt.Errorf("open store %q: %w: %v", path, ErrDamaged, err)
}

// boltOpen is bolt.Open that survives a damaged file: bbolt can panic (or
// fault on the map) while opening one, after it has taken the file lock.
// The file is captured through OpenFile so it can be closed, releasing the
// lock, and the panic comes back as ErrDamaged.
func boltOpen(path string, o *bolt.Options) (db *bolt.DB, err error) {
	var f *os.File
	o.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, perm)
		return f, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if f != nil {
				// The map bbolt may have made keeps the open file alive
				// after Close, and the lock with it: unlock explicitly.
				// The map itself leaks, once, on this damaged-file path.
				unlockFile(f)
				f.Close()
			}
			db, err = nil, fmt.Errorf("%w: bbolt: %v", ErrDamaged, r)
		}
	}()
	return bolt.Open(path, 0o600, o)
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
	err = s.db.Update(fn)
	if errors.Is(err, berrors.ErrMaxSizeReached) {
		err = fmt.Errorf("%w: %q, limit %d bytes (prune, or raise the limit): %w", ErrFull, s.path, s.opts.MaxBytes, err)
	}
	return err
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
	copies := map[int64][]byte{}
	var active int64
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
		c := tx.Bucket(bucketModels).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				errs = append(errs, fmt.Errorf("model key %x is not a version", k))
				continue
			}
			copies[version(k)] = bytes.Clone(v)
		}
		if v := tx.Bucket(bucketMeta).Get(keyActive); v != nil {
			if len(v) != 8 {
				errs = append(errs, fmt.Errorf("active pointer %x", v))
			} else {
				active = version(v)
			}
		}
		if _, err := readStack(tx); err != nil {
			errs = append(errs, err)
		}
		cb := tx.Bucket(bucketCheckpoints).Cursor()
		for k, v := cb.First(); k != nil; k, v = cb.Next() {
			if _, _, err := decodeCheckpoint(v); err != nil {
				errs = append(errs, fmt.Errorf("checkpoint of version %x: %w", k, err))
			}
		}
		hb := tx.Bucket(bucketHistory).Cursor()
		for k, v := hb.First(); k != nil; k, v = hb.Next() {
			if _, err := decodeEvent(k, v); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		errs = append(errs, err)
	}
	for v, b := range copies {
		m, err := model.Decode(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("model %d: %w", v, err))
		} else if m.Version != v {
			errs = append(errs, fmt.Errorf("model stored as %d says version %d", v, m.Version))
		}
	}
	if _, ok := copies[active]; active != 0 && !ok {
		errs = append(errs, fmt.Errorf("active version %d is not stored", active))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrDamaged, errors.Join(errs...))
	}
	return nil
}

// repair moves the damaged file at path aside, creates a fresh store and
// copies into it every model that can still be read, activating the last
// good active one (or the newest). It logs one error line saying so.
func repair(path string, opts Options, cause error) (*Store, error) {
	models, active := salvage(path, opts)
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
	s, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("recreate store %q after damage: %w", path, err)
	}
	// The old active version goes in first and is activated, so retention
	// cannot drop it; the rest follow oldest first, so retention keeps the
	// newest. Without it, the newest version that activates serves.
	versions := slices.Sorted(maps.Keys(models))
	if _, ok := models[active]; ok {
		if _, err := s.Put(models[active], SourceRecovery); err != nil || s.Activate(active, SourceRecovery) != nil {
			active = 0
		}
	} else {
		active = 0
	}
	for _, v := range versions {
		if v != active {
			s.Put(models[v], SourceRecovery)
		}
	}
	if active == 0 {
		infos, _ := s.List()
		for i := len(infos) - 1; i >= 0 && active == 0; i-- {
			if s.Activate(infos[i].Version, SourceRecovery) == nil {
				active = infos[i].Version
			}
		}
	}
	infos, _ := s.List()
	opts.Logger.Error("store file damaged; moved aside and started a fresh one",
		"component", "store", "path", path, "moved_to", aside, "damage", cause.Error(),
		"recovered_versions", len(infos), "active", active)
	return s, nil
}

// salvage reads what it can from a damaged file: every model that decodes
// (and verifies, if signed and keys are trusted) and the active pointer.
// bbolt may panic on a corrupt page; that ends the salvage, not the process.
func salvage(path string, opts Options) (models map[int64][]byte, active int64) {
	models = map[int64][]byte{}
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { _ = recover() }()
		db, err := boltOpen(path, &bolt.Options{Timeout: opts.Timeout, ReadOnly: true})
		if err != nil {
			return
		}
		defer db.Close()
		_ = db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketMeta); b != nil {
				if v := b.Get(keyActive); len(v) == 8 {
					active = version(v)
				}
			}
			b := tx.Bucket(bucketModels)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(k) == 8 {
					models[version(k)] = bytes.Clone(v)
				}
			}
			return nil
		})
	}()
	for v, b := range models {
		if m, err := model.Decode(b); err != nil || m.Version != v {
			delete(models, v)
		}
	}
	return models, active
}

func u64(v int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(v))
	return b
}

func version(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
