package store

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Every model a gateway serves has a name and its own buckets: versions,
// history, rollback stack, withdrawn versions, consumed rollbacks,
// checkpoints and per-device learner states. The model named DefaultModel
// keeps the bucket names of the single-model layout ("models", "meta",
// "history", "checkpoints"), so a store written before names existed opens
// as that model, unchanged; every other model's buckets carry its name
// ("models/hvac", "meta/hvac", ...). Names cannot hold '/', so a bucket
// name reads back to one kind and one model.

// DefaultModel is the name of the model a single-model configuration
// serves, and of the model a store written before names existed holds.
const DefaultModel = "default"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckName returns nil if name is a valid model name
// ([a-z0-9][a-z0-9_-]{0,62}), else an error wrapping ErrBadName.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q (want 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit)", ErrBadName, name)
	}
	return nil
}

var bucketDevices = []byte("devices")

// modelKinds are the buckets every model has.
var modelKinds = [][]byte{bucketModels, bucketMeta, bucketHistory, bucketCheckpoints, bucketDevices}

// bucketName returns the name of model name's bucket of kind.
func bucketName(kind []byte, name string) []byte {
	if name == DefaultModel {
		return kind
	}
	return append(append(slices.Clip(kind), '/'), name...)
}

// splitBucket returns the kind and model of a top-level bucket name.
func splitBucket(b []byte) (kind []byte, name string) {
	if i := bytes.IndexByte(b, '/'); i >= 0 {
		return b[:i], string(b[i+1:])
	}
	return b, DefaultModel
}

// mtx is a transaction seen from one model: Bucket(bucketModels) is that
// model's versions bucket, and so on for every kind.
type mtx struct {
	*bolt.Tx
	name string
}

func (t mtx) Bucket(kind []byte) *bolt.Bucket { return t.Tx.Bucket(bucketName(kind, t.name)) }

// exists reports whether the model has its buckets.
func (t mtx) exists() bool { return t.Bucket(bucketMeta) != nil && t.Bucket(bucketModels) != nil }

// ensure creates the model's buckets.
func (t mtx) ensure() error {
	for _, k := range modelKinds {
		if _, err := t.Tx.CreateBucketIfNotExists(bucketName(k, t.name)); err != nil {
			return err
		}
	}
	return nil
}

// modelNames returns the names of the models the file holds, DefaultModel
// first, then in byte order.
func modelNames(tx *bolt.Tx) []string {
	var out []string
	c := tx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if kind, name := splitBucket(k); bytes.Equal(kind, bucketMeta) && CheckName(name) == nil {
			out = append(out, name)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == DefaultModel:
			return -1
		case b == DefaultModel:
			return 1
		case a < b:
			return -1
		}
		return 1
	})
	return out
}

// Model is one named model of a store: its versions, active pointer,
// history, rollback stack, withdrawn versions, consumed rollbacks,
// checkpoints and device states. Nothing one Model does changes another.
// It is safe for concurrent use, and valid as long as its Store is open.
type Model struct {
	s    *Store
	name string
}

// Model returns the handle of the model called name, which need not exist
// yet: the first write (Put, Install, InstallRollback, Record, device
// states) creates it, and reads of a model that does not exist return an
// error wrapping both ErrUnknownModel and ErrNoActive. A bad name gives
// ErrBadName.
func (s *Store) Model(name string) (*Model, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	return &Model{s: s, name: name}, nil
}

// Default returns the handle of DefaultModel, the model the Store's own
// methods (Put, Active, ...) act on.
func (s *Store) Default() *Model { return &Model{s: s, name: DefaultModel} }

// Models returns the names of the models the store holds, DefaultModel
// first.
func (s *Store) Models() ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error { out = modelNames(tx); return nil })
	return out, err
}

// Name returns the model's name.
func (m *Model) Name() string { return m.name }

// Store returns the store the model lives in.
func (m *Model) Store() *Store { return m.s }

// view runs fn in a read transaction on the model's buckets; it returns
// ErrUnknownModel if the model has none.
func (m *Model) view(fn func(mtx) error) error {
	return m.s.view(func(tx *bolt.Tx) error {
		t := mtx{tx, m.name}
		if !t.exists() {
			// Nothing stored is nothing active: callers that start a model
			// when ErrNoActive says so need no second case.
			return fmt.Errorf("%w: %q (%w)", ErrUnknownModel, m.name, ErrNoActive)
		}
		return fn(t)
	})
}

// update runs fn in a write transaction on the model's buckets, creating
// them first.
func (m *Model) update(fn func(mtx) error) error {
	return m.s.update(func(tx *bolt.Tx) error {
		t := mtx{tx, m.name}
		if err := t.ensure(); err != nil {
			return err
		}
		return fn(t)
	})
}
