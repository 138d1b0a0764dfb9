package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/linnet-edge/linnet/model"
)

// Actions an over-the-air update records besides import, activate and
// rollback.
const (
	ActionReject = "reject" // an OTA model was refused; nothing changed
	ActionKeep   = "keep"   // a guarded rollout passed: the new version stays
)

// keyWithdrawn holds the versions an automatic rollback withdrew, so the
// retained OTA message that brought one is not applied again at the next
// connection.
var keyWithdrawn = []byte("withdrawn")

// InstallRollback applies a signed rollback file (see model.NewRollback)
// on the gateway named gateway: after the file verifies against
// Options.Trusted, and only if the store has not applied it before (else
// ErrReplay), the active version is its From (else an error wrapping
// model.ErrRollbackSource), it has not expired by Options.Now (else
// model.ErrRollbackExpired) and it names no other gateway (else
// model.ErrRollbackGateway), one transaction stores the model inside (if
// the version is not stored yet), makes it active, marks From withdrawn and
// remembers the file's digest, so the same file never applies twice. A
// refused file changes nothing. The model inside is checked like Put's.
// It returns the verified rollback.
func (h *Model) InstallRollback(file []byte, gateway, source string) (*model.Rollback, error) {
	rb, err := model.OpenRollback(file, h.s.opts.Trusted)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	if _, err := h.s.check(rb.Model); err != nil {
		return nil, fmt.Errorf("rollback to %d: %w", rb.To, err)
	}
	now := h.s.opts.Now()
	err = h.update(func(tx mtx) error {
		consumed, err := readConsumed(tx)
		if err != nil {
			return err
		}
		if slices.Contains(consumed, rb.Digest) {
			return fmt.Errorf("%w: rollback %d -> %d (%x)", ErrReplay, rb.From, rb.To, rb.Digest[:8])
		}
		if err := rb.Check(activeVersion(tx), gateway, h.name, now); err != nil {
			return err
		}
		b := tx.Bucket(bucketModels)
		if b.Get(u64(rb.To)) == nil {
			if err := b.Put(u64(rb.To), rb.Model); err != nil {
				return err
			}
			if err := h.s.addEvent(tx, Event{Action: ActionImport, Version: rb.To, Source: source}); err != nil {
				return err
			}
		}
		// Going back pops the stack down to the target, when it is there.
		stack, err := readStack(tx)
		if err != nil {
			return err
		}
		if i := slices.Index(stack, rb.To); i >= 0 {
			stack = stack[:i]
		}
		if err := writeStack(tx, stack); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keyActive, u64(rb.To)); err != nil {
			return err
		}
		if err := withdraw(tx, rb.From); err != nil {
			return err
		}
		w, err := readWithdrawn(tx)
		if err != nil {
			return err
		}
		if err := writeVersions(tx, keyWithdrawn, slices.DeleteFunc(w, func(v int64) bool { return v == rb.To })); err != nil {
			return err
		}
		if err := writeConsumed(tx, union(consumed, [][32]byte{rb.Digest}, maxConsumed)); err != nil {
			return err
		}
		return h.s.addEvent(tx, Event{Action: ActionRollback, Version: rb.To, Previous: rb.From, Source: source,
			Reason: fmt.Sprintf("signed rollback file %x by key %s", rb.Digest[:8], rb.Signer)})
	})
	if err != nil {
		return nil, err
	}
	return rb, nil
}

// Consumed reports whether the store applied a rollback file with this
// digest (model.Rollback.Digest).
func (h *Model) Consumed(digest [32]byte) (bool, error) {
	var c [][32]byte
	err := h.view(func(tx mtx) error {
		var err error
		c, err = readConsumed(tx)
		return err
	})
	return slices.Contains(c, digest), err
}

// Install checks file like Put, then stores it and makes it the active
// version in one transaction: after a crash the store holds the state before
// (old version active) or after (new version stored and active), never the
// file without the pointer or the pointer without the file. The version it
// replaces is pushed on the rollback stack. reason is recorded with the
// activation. When the version is already stored with other bytes, Install
// returns ErrVersionExists, unless rollback is set: a format-1 signed
// rollback carries a flag the stored original lacks, so its bytes replace
// the stored ones, and the version it replaces is marked withdrawn in the
// same transaction (see Withdrawn), so no retained copy brings it back.
// Such files are bound to nothing and replay forever: rollback is kept only
// until the daemon applies rollback files with InstallRollback, and will
// go. Without rollback, a withdrawn version gives ErrWithdrawn and one
// older than Floor ErrOlder. It
// returns the version that was active before (0 if none). Installing the
// active version's own bytes again does nothing.
func (h *Model) Install(file []byte, source, reason string, rollback bool) (prev int64, err error) {
	m, err := h.s.check(file)
	if err != nil {
		return 0, err
	}
	v := m.Version
	file = bytes.Clone(file)
	err = h.update(func(tx mtx) error {
		b := tx.Bucket(bucketModels)
		prev = activeVersion(tx)
		old := b.Get(u64(v))
		same := old != nil && bytes.Equal(old, file)
		if prev == v && same {
			return nil
		}
		if !rollback {
			if w, err := readWithdrawn(tx); err != nil {
				return err
			} else if slices.Contains(w, v) {
				return fmt.Errorf("%w: %d", ErrWithdrawn, v)
			}
			floor := prev
			if r, _ := storedRecord(tx.Tx); r != nil {
				floor = max(floor, r.model(tx.name).Lost)
			}
			if v < floor {
				return fmt.Errorf("%w: %d, floor %d", ErrOlder, v, floor)
			}
		}
		switch {
		case old == nil:
			if err := b.Put(u64(v), file); err != nil {
				return err
			}
			if err := h.s.addEvent(tx, Event{Action: ActionImport, Version: v, Source: source}); err != nil {
				return err
			}
		case !same && !rollback:
			return fmt.Errorf("%w: version %d", ErrVersionExists, v)
		case !same:
			if err := b.Put(u64(v), file); err != nil {
				return err
			}
			if err := h.s.addEvent(tx, Event{Action: ActionImport, Version: v, Source: source, Reason: "replaces the stored file"}); err != nil {
				return err
			}
		}
		if prev != v {
			if err := setActive(tx, prev, v); err != nil {
				return err
			}
			if rollback && prev != 0 {
				if err := withdraw(tx, prev); err != nil {
					return err
				}
			}
		}
		if err := h.s.addEvent(tx, Event{Action: ActionActivate, Version: v, Previous: prev, Source: source, Reason: reason}); err != nil {
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
	return prev, nil
}

// Withdraw rolls the active version v back to the version it replaced, like
// Rollback, and marks v as withdrawn, in one transaction, recording reason.
// It returns the version now active. It returns ErrNotActive if v is no
// longer active and ErrNoPrevious if there is nothing to go back to.
func (h *Model) Withdraw(v int64, source, reason string) (int64, error) {
	var target int64
	var file []byte
	err := h.view(func(tx mtx) error {
		if activeVersion(tx) != v {
			return fmt.Errorf("%w: %d", ErrNotActive, v)
		}
		var err error
		target, file, err = previous(tx)
		return err
	})
	if err != nil {
		return 0, err
	}
	if file == nil {
		return 0, fmt.Errorf("%w: previous version %d is gone", ErrNoPrevious, target)
	}
	if _, err := h.s.check(file); err != nil {
		return 0, fmt.Errorf("roll back to %d: %w", target, err)
	}
	err = h.update(func(tx mtx) error {
		stack, err := readStack(tx)
		if err != nil {
			return err
		}
		if activeVersion(tx) != v || len(stack) == 0 || stack[len(stack)-1] != target {
			return fmt.Errorf("%w: %d (the active version changed meanwhile)", ErrNotActive, v)
		}
		if err := writeStack(tx, stack[:len(stack)-1]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keyActive, u64(target)); err != nil {
			return err
		}
		if err := withdraw(tx, v); err != nil {
			return err
		}
		return h.s.addEvent(tx, Event{Action: ActionRollback, Version: target, Previous: v, Source: source, Reason: reason})
	})
	if err != nil {
		return 0, err
	}
	return target, nil
}

// Withdrawn reports whether a rollback (automatic, or a signed rollback
// file) withdrew version v (the newest 64 withdrawn versions are
// remembered).
func (h *Model) Withdrawn(v int64) (bool, error) {
	var w []int64
	err := h.view(func(tx mtx) error {
		var err error
		w, err = readWithdrawn(tx)
		return err
	})
	return slices.Contains(w, v), err
}

// Record appends e to the history (its Seq and Time are set here): a
// decision that changed nothing else, such as a refused OTA model.
func (h *Model) Record(e Event) error {
	return h.update(func(tx mtx) error { return h.s.addEvent(tx, e) })
}

// SaveCheckpointFor is SaveCheckpoint for a learner that belongs to version
// v: it returns ErrNotActive, writing nothing, if v is no longer active, so
// a learner that was just replaced never overwrites its successor's state.
func (h *Model) SaveCheckpointFor(v int64, state []byte) error {
	val := make([]byte, checkpointHeader, checkpointHeader+len(state))
	binary.LittleEndian.PutUint64(val[4:], uint64(h.s.opts.Now().UnixNano()))
	val = append(val, state...)
	binary.LittleEndian.PutUint32(val, crc32.Checksum(val[4:], crcTab))
	return h.update(func(tx mtx) error {
		if a := activeVersion(tx); a != v {
			return fmt.Errorf("%w: checkpoint of %d, active %d", ErrNotActive, v, a)
		}
		return tx.Bucket(bucketCheckpoints).Put(u64(v), val)
	})
}

// withdraw adds v to the withdrawn versions (the newest maxStack kept).
func withdraw(tx mtx, v int64) error {
	w, err := readWithdrawn(tx)
	if err != nil || slices.Contains(w, v) {
		return err
	}
	w = append(w, v)
	if len(w) > maxStack {
		w = w[len(w)-maxStack:]
	}
	return writeVersions(tx, keyWithdrawn, w)
}

func readWithdrawn(tx mtx) ([]int64, error) {
	v := tx.Bucket(bucketMeta).Get(keyWithdrawn)
	if len(v)%8 != 0 {
		return nil, fmt.Errorf("%w: withdrawn list of %d bytes", ErrDamaged, len(v))
	}
	out := make([]int64, len(v)/8)
	for i := range out {
		out[i] = version(v[8*i:])
	}
	return out, nil
}

func writeVersions(tx mtx, key []byte, vs []int64) error {
	b := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return tx.Bucket(bucketMeta).Put(key, b)
}
