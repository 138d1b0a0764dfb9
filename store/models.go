package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/linnet-edge/linnet/model"
)

// Sources of history events, by convention: who asked for a change.
const (
	SourceCLI      = "cli"
	SourceOTA      = "ota"
	SourceLearner  = "learner"
	SourceRollback = "rollback"
	SourceRecovery = "recovery"
)

// Actions recorded in the history.
const (
	ActionImport   = "import"   // a model version was stored
	ActionActivate = "activate" // a version became active
	ActionRollback = "rollback" // the previous active version came back
	ActionDelete   = "delete"   // a version was pruned
)

// Event is one entry of the history.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Action   string    `json:"action"`
	Version  int64     `json:"version"`
	Previous int64     `json:"previous,omitempty"` // the active version before (activate, rollback)
	Source   string    `json:"source"`             // cli, ota, learner, rollback, recovery, prune, retention
	Reason   string    `json:"reason,omitempty"`   // why (OTA decisions, automatic rollbacks)
}

// Info describes one stored model version.
type Info struct {
	Version int64        `json:"version"`
	Scheme  model.Scheme `json:"scheme"`
	Bytes   int          `json:"bytes"`
	Signed  bool         `json:"signed"`
	Width   int          `json:"width"`
	Created time.Time    `json:"created,omitzero"`
	Active  bool         `json:"-"`
	Err     string       `json:"error,omitempty"` // why the stored file does not decode
}

// maxStack bounds the rollback stack kept under meta/previous.
const maxStack = 64

// check decodes file and applies the signature policy. The error wraps
// ErrRejected and the model package's reason.
func (s *Store) check(file []byte) (*model.Model, error) {
	if len(file) > s.opts.MaxModelBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRejected, len(file), s.opts.MaxModelBytes)
	}
	m, err := model.Decode(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	signed := model.IsSigned(file)
	switch {
	case signed && len(s.opts.Trusted) > 0:
		if err := model.Verify(file, s.opts.Trusted); err != nil {
			return nil, fmt.Errorf("%w: version %d: %w", ErrRejected, m.Version, err)
		}
	case signed && s.opts.RequireSigned:
		// Nothing to verify against: requiring signatures then accepts none.
		return nil, fmt.Errorf("%w: version %d: %w: no key is trusted", ErrRejected, m.Version, model.ErrUntrustedKey)
	case !signed && s.opts.RequireSigned:
		return nil, fmt.Errorf("%w: version %d: %w", ErrRejected, m.Version, model.ErrUnsigned)
	}
	if m.Version <= 0 {
		return nil, fmt.Errorf("%w: model version %d is not positive", ErrRejected, m.Version)
	}
	return m, nil
}

// Put checks a .lnm file (CRC, structure, signature policy) and stores it
// under its model version. Storing the same bytes again is a no-op; other
// bytes under a stored version give ErrVersionExists. Put then applies
// retention (Options.Keep). source is recorded in the history. The store
// keeps its own copy of file.
func (h *Model) Put(file []byte, source string) (int64, error) {
	m, err := h.s.check(file)
	if err != nil {
		return 0, err
	}
	v := m.Version
	file = bytes.Clone(file)
	err = h.update(func(tx mtx) error {
		b := tx.Bucket(bucketModels)
		if old := b.Get(u64(v)); old != nil {
			if bytes.Equal(old, file) {
				return nil
			}
			return fmt.Errorf("%w: version %d", ErrVersionExists, v)
		}
		if err := b.Put(u64(v), file); err != nil {
			return err
		}
		if err := h.s.addEvent(tx, Event{Action: ActionImport, Version: v, Source: source}); err != nil {
			return err
		}
		if h.s.opts.Keep > 0 {
			return h.s.prune(tx, h.s.opts.Keep, "retention", v)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// get returns a copy of the stored bytes of version v.
func (h *Model) get(v int64) ([]byte, error) {
	var file []byte
	err := h.view(func(tx mtx) error {
		file = bytes.Clone(tx.Bucket(bucketModels).Get(u64(v)))
		return nil
	})
	if err == nil && file == nil {
		err = fmt.Errorf("%w: %d", ErrNotFound, v)
	}
	return file, err
}

// Activate makes version v the active model after checking it again, and
// records it in the history with source. The version it replaces becomes
// the one Rollback returns to. Activating the active version does nothing.
func (h *Model) Activate(v int64, source string) error {
	file, err := h.get(v)
	if err != nil {
		return err
	}
	if _, err := h.s.check(file); err != nil {
		return err
	}
	return h.update(func(tx mtx) error {
		if cur := tx.Bucket(bucketModels).Get(u64(v)); !bytes.Equal(cur, file) {
			return fmt.Errorf("%w: %d (removed while activating)", ErrNotFound, v)
		}
		prev := activeVersion(tx)
		if prev == v {
			return nil
		}
		if err := setActive(tx, prev, v); err != nil {
			return err
		}
		return h.s.addEvent(tx, Event{Action: ActionActivate, Version: v, Previous: prev, Source: source})
	})
}

// Rollback makes the previously active version active again (the one the
// current active version replaced), after checking it, and records it with
// source. Repeated rollbacks walk further back. It returns ErrNoPrevious if
// there is none.
func (h *Model) Rollback(source string) error {
	var target, cur int64
	var file []byte
	err := h.view(func(tx mtx) error {
		cur = activeVersion(tx)
		var err error
		target, file, err = previous(tx)
		return err
	})
	if err != nil {
		return err
	}
	if file == nil {
		return fmt.Errorf("%w: previous version %d is gone", ErrNoPrevious, target)
	}
	if _, err := h.s.check(file); err != nil {
		return fmt.Errorf("roll back to %d: %w", target, err)
	}
	return h.update(func(tx mtx) error {
		stack, err := readStack(tx)
		if err != nil {
			return err
		}
		if activeVersion(tx) != cur || len(stack) == 0 || stack[len(stack)-1] != target {
			return errors.New("store: rollback: the active version changed meanwhile; try again")
		}
		if err := writeStack(tx, stack[:len(stack)-1]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keyActive, u64(target)); err != nil {
			return err
		}
		return h.s.addEvent(tx, Event{Action: ActionRollback, Version: target, Previous: cur, Source: source})
	})
}

// Active returns the active model, checked again (CRC, signature policy),
// and a copy of its file. It returns ErrNoActive if none was activated.
func (h *Model) Active() (*model.Model, []byte, error) {
	var v int64
	var file []byte
	err := h.view(func(tx mtx) error {
		v = activeVersion(tx)
		file = bytes.Clone(tx.Bucket(bucketModels).Get(u64(v)))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if v == 0 {
		return nil, nil, ErrNoActive
	}
	if file == nil {
		return nil, nil, fmt.Errorf("%w: active version %d is not stored", ErrDamaged, v)
	}
	m, err := h.s.check(file)
	if err != nil {
		return nil, nil, fmt.Errorf("active version %d: %w", v, err)
	}
	return m, file, nil
}

// ActiveVersion returns the active version, 0 if none.
func (h *Model) ActiveVersion() (int64, error) {
	var v int64
	err := h.view(func(tx mtx) error { v = activeVersion(tx); return nil })
	return v, err
}

// Get returns a copy of the stored file of version v (export), unchecked.
func (h *Model) Get(v int64) ([]byte, error) { return h.get(v) }

// List describes every stored version, oldest first.
func (h *Model) List() ([]Info, error) {
	var active int64
	var files [][]byte
	var versions []int64
	err := h.view(func(tx mtx) error {
		active = activeVersion(tx)
		c := tx.Bucket(bucketModels).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			versions = append(versions, version(k))
			files = append(files, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Info, len(files))
	for i, f := range files {
		in := Info{Version: versions[i], Bytes: len(f), Signed: model.IsSigned(f), Active: versions[i] == active}
		if m, err := model.Decode(f); err != nil {
			in.Err = err.Error()
		} else {
			in.Scheme, in.Width, in.Created = m.Scheme, len(m.Features), m.Created
		}
		out[i] = in
	}
	return out, nil
}

// History returns the recorded events, oldest first.
func (h *Model) History() ([]Event, error) {
	var out []Event
	err := h.view(func(tx mtx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Prune deletes stored versions (and their checkpoints) beyond the newest
// keep, never the active one nor its predecessor (the one Rollback returns
// to). Each deletion is recorded in the history.
func (h *Model) Prune(keep int) error {
	if keep < 0 {
		return fmt.Errorf("store: prune: keep %d is negative", keep)
	}
	return h.update(func(tx mtx) error { return h.s.prune(tx, keep, "prune", 0) })
}

// prune keeps the newest keep versions, the active one, its predecessor and
// also (nonzero) the version just stored.
func (s *Store) prune(tx mtx, keep int, source string, also int64) error {
	b := tx.Bucket(bucketModels)
	var all []int64
	c := b.Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		all = append(all, version(k))
	}
	if len(all) <= keep {
		return nil
	}
	stack, err := readStack(tx)
	if err != nil {
		return err
	}
	protected := map[int64]bool{activeVersion(tx): true, also: true}
	if len(stack) > 0 {
		protected[stack[len(stack)-1]] = true
	}
	// Collect first, delete after: deleting under a cursor can skip keys.
	var del []int64
	for _, v := range all[keep:] {
		if !protected[v] {
			del = append(del, v)
		}
	}
	if len(del) == 0 {
		return nil
	}
	for _, v := range del {
		if err := b.Delete(u64(v)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCheckpoints).Delete(u64(v)); err != nil {
			return err
		}
		if err := s.addEvent(tx, Event{Action: ActionDelete, Version: v, Source: source}); err != nil {
			return err
		}
	}
	stack = slices.DeleteFunc(stack, func(v int64) bool { return slices.Contains(del, v) })
	return writeStack(tx, stack)
}

func activeVersion(tx mtx) int64 {
	if v := tx.Bucket(bucketMeta).Get(keyActive); len(v) == 8 {
		return version(v)
	}
	return 0
}

func readStack(tx mtx) ([]int64, error) {
	v := tx.Bucket(bucketMeta).Get(keyPrevious)
	if len(v)%8 != 0 {
		return nil, fmt.Errorf("%w: rollback stack of %d bytes", ErrDamaged, len(v))
	}
	out := make([]int64, len(v)/8)
	for i := range out {
		out[i] = version(v[8*i:])
	}
	return out, nil
}

func writeStack(tx mtx, stack []int64) error {
	b := make([]byte, 0, 8*len(stack))
	for _, v := range stack {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return tx.Bucket(bucketMeta).Put(keyPrevious, b)
}

// addEvent appends e to the history with the next sequence number and the
// current time, dropping the oldest events beyond MaxHistory.
func (s *Store) addEvent(tx mtx, e Event) error {
	h := tx.Bucket(bucketHistory)
	seq, err := h.NextSequence()
	if err != nil {
		return err
	}
	e.Seq = seq
	e.Time = s.opts.Now().UTC()
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(nil, seq)
	if err := h.Put(key, v); err != nil {
		return err
	}
	if seq <= uint64(s.opts.MaxHistory) {
		return nil
	}
	// Keys are sequence numbers: everything below seq-MaxHistory+1 goes.
	// Collect first, delete after: deleting under a cursor can skip keys.
	limit := seq - uint64(s.opts.MaxHistory) + 1
	var old [][]byte
	c := h.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < limit; k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := h.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func decodeEvent(k, v []byte) (Event, error) {
	var e Event
	if len(k) != 8 {
		return e, fmt.Errorf("%w: history key %x", ErrDamaged, k)
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("%w: history event %d: %v", ErrDamaged, binary.BigEndian.Uint64(k), err)
	}
	return e, nil
}

// setActive makes v the active version inside tx, pushing the version it
// replaces, prev (0 for none), on the rollback stack.
func setActive(tx mtx, prev, v int64) error {
	if prev != 0 {
		stack, err := readStack(tx)
		if err != nil {
			return err
		}
		stack = append(stack, prev)
		if len(stack) > maxStack {
			stack = stack[len(stack)-maxStack:]
		}
		if err := writeStack(tx, stack); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keyActive, u64(v))
}

// previous returns the version on top of the rollback stack and a copy of
// its file (nil if the version is gone), or ErrNoPrevious.
func previous(tx mtx) (int64, []byte, error) {
	stack, err := readStack(tx)
	if err != nil {
		return 0, nil, err
	}
	if len(stack) == 0 {
		return 0, nil, ErrNoPrevious
	}
	v := stack[len(stack)-1]
	return v, bytes.Clone(tx.Bucket(bucketModels).Get(u64(v))), nil
}
