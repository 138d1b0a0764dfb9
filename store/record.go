package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// What must survive a damaged store file lives twice: in the file (meta/
// "state") and in a small record next to it (path + RecordSuffix), each
// with its own CRC-32C and a generation number that grows with every
// change. The bbolt transaction commits first, then the record is written
// (temp file, fsync, rename, fsync of the directory), so a crash leaves
// the record at most one generation behind the file, never ahead of it. A
// record ahead of the file, or a file whose state fails its CRC, means the
// file lost something: the record wins. The record's existence also says a
// store existed, so a missing or empty store file is reported as lost
// instead of silently starting a new one.
//
// Record (and meta/"state") layout, little-endian:
//
//	magic "LNST" | format uint16 | reserved uint16 | generation uint64 |
//	the default model's state |
//	format 2 only: count uint32, then per other model: name length uint8,
//	name, its state |
//	CRC-32C of every byte before it
//
// and one model's state:
//
//	active int64 | lost int64 | history sequence uint64 |
//	stack: count uint32, int64 x count | withdrawn: count uint32, int64 x count |
//	versions: count uint32, int64 x count | consumed: count uint32, [32]byte x count
//
// A store that holds only the default model writes format 1, which is the
// layout of the single-model build, byte for byte.
const RecordSuffix = ".state"

var (
	keyState    = []byte("state")
	keyConsumed = []byte("consumed")
	stateMagic  = [4]byte{'L', 'N', 'S', 'T'}
)

const (
	stateFormat      = 1
	stateFormatNamed = 2
	maxState         = 1 << 20 // a record larger than this is damage, not data
)

// state is what a damaged store must not forget about one model.
type state struct {
	Active     int64
	Lost       int64   // a version that was active when its file was lost (see Floor)
	HistorySeq uint64  // the history bucket's sequence when the state last changed otherwise
	Stack      []int64 // the rollback stack, oldest first
	Withdrawn  []int64
	Versions   []int64 // stored model versions, ascending
	Consumed   [][32]byte
}

// record is the state of every model, with one generation.
type record struct {
	Gen    uint64
	Models map[string]*state
}

// model returns the state of model name, an empty one if r has none.
func (r *record) model(name string) *state {
	if r == nil || r.Models[name] == nil {
		return &state{}
	}
	return r.Models[name]
}

// names returns the models of r and of o, DefaultModel first.
func (r *record) names(o *record) []string {
	out := []string{DefaultModel}
	for _, x := range []*record{r, o} {
		if x == nil {
			continue
		}
		for n := range x.Models {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out[1:])
	return out
}

// same reports whether a and b hold the same state, generations aside and
// the history sequence too: a history event alone is not worth rewriting
// the record (HistorySeq only sizes what a repair reports lost).
func (a *state) same(b *state) bool {
	return a.Active == b.Active && a.Lost == b.Lost &&
		slices.Equal(a.Stack, b.Stack) && slices.Equal(a.Withdrawn, b.Withdrawn) &&
		slices.Equal(a.Versions, b.Versions) && slices.Equal(a.Consumed, b.Consumed)
}

// same reports whether every model of a and b holds the same state.
func (a *record) same(b *record) bool {
	for _, n := range a.names(b) {
		if !a.model(n).same(b.model(n)) {
			return false
		}
	}
	return true
}

// disagrees reports whether some model's active version or rollback stack
// differs between a and b.
func (a *record) disagrees(b *record) bool {
	for _, n := range a.names(b) {
		x, y := a.model(n), b.model(n)
		if x.Active != y.Active || !slices.Equal(x.Stack, y.Stack) {
			return true
		}
	}
	return false
}

func (st *state) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(st.Active))
	b = binary.LittleEndian.AppendUint64(b, uint64(st.Lost))
	b = binary.LittleEndian.AppendUint64(b, st.HistorySeq)
	for _, vs := range [][]int64{st.Stack, st.Withdrawn, st.Versions} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(vs)))
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.Consumed)))
	for _, d := range st.Consumed {
		b = append(b, d[:]...)
	}
	return b
}

func (r *record) encode() []byte {
	var others []string
	for _, n := range r.names(nil)[1:] {
		others = append(others, n)
	}
	format := uint16(stateFormat)
	if len(others) > 0 {
		format = stateFormatNamed
	}
	b := append([]byte(nil), stateMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, format)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, r.Gen)
	b = r.model(DefaultModel).append(b)
	if len(others) > 0 {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(others)))
		for _, n := range others {
			b = append(b, byte(len(n)))
			b = append(b, n...)
			b = r.Models[n].append(b)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTab))
}

// stateReader reads a record's fields; a short read empties it and sets bad.
type stateReader struct {
	r   []byte
	bad bool
}

func (sr *stateReader) u64() uint64 {
	if len(sr.r) < 8 {
		sr.r, sr.bad = nil, true
		return 0
	}
	v := binary.LittleEndian.Uint64(sr.r)
	sr.r = sr.r[8:]
	return v
}

func (sr *stateReader) count(size int) int {
	if len(sr.r) < 4 {
		sr.r, sr.bad = nil, true
		return 0
	}
	n := int(binary.LittleEndian.Uint32(sr.r))
	sr.r = sr.r[4:]
	if n > len(sr.r)/size {
		sr.r, sr.bad = nil, true
		return 0
	}
	return n
}

func (sr *stateReader) state() *state {
	st := &state{Active: int64(sr.u64()), Lost: int64(sr.u64()), HistorySeq: sr.u64()}
	for _, vs := range []*[]int64{&st.Stack, &st.Withdrawn, &st.Versions} {
		for range sr.count(8) {
			*vs = append(*vs, int64(sr.u64()))
		}
	}
	for range sr.count(32) {
		st.Consumed = append(st.Consumed, [32]byte(sr.r))
		sr.r = sr.r[32:]
	}
	return st
}

func decodeRecord(b []byte) (*record, error) {
	bad := func(why string) (*record, error) { return nil, fmt.Errorf("%w: state record: %s", ErrDamaged, why) }
	if len(b) < 4+4+32+4 || len(b) > maxState {
		return bad(fmt.Sprintf("%d bytes", len(b)))
	}
	if [4]byte(b) != stateMagic {
		return bad("bad magic")
	}
	if crc32.Checksum(b[:len(b)-4], crcTab) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return bad("checksum mismatch")
	}
	f := binary.LittleEndian.Uint16(b[4:])
	if f != stateFormat && f != stateFormatNamed {
		return bad(fmt.Sprintf("format %d, this build reads %d and %d", f, stateFormat, stateFormatNamed))
	}
	sr := &stateReader{r: b[8 : len(b)-4]}
	r := &record{Gen: sr.u64(), Models: map[string]*state{}}
	r.Models[DefaultModel] = sr.state()
	if f == stateFormatNamed {
		for range sr.count(2) {
			if len(sr.r) < 1 || len(sr.r) < 1+int(sr.r[0]) {
				return bad("truncated")
			}
			name := string(sr.r[1 : 1+int(sr.r[0])])
			sr.r = sr.r[1+len(name):]
			if CheckName(name) != nil || r.Models[name] != nil {
				return bad(fmt.Sprintf("model name %q", name))
			}
			r.Models[name] = sr.state()
		}
	}
	if sr.bad {
		return bad("truncated")
	}
	if len(sr.r) != 0 {
		return bad("trailing bytes")
	}
	return r, nil
}

// readRecord reads the record at path. It returns an error wrapping
// os.ErrNotExist if there is none, ErrDamaged if it fails its checks.
func readRecord(path string) (*record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, maxState+1)
	n, err := f.ReadAt(b, 0)
	if n == 0 && err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: state record %q: empty or unreadable: %v", ErrDamaged, path, err)
	}
	st, err := decodeRecord(b[:n])
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return st, nil
}

// writeRecord replaces the record at path atomically.
func writeRecord(path string, b []byte) error {
	err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err })
	if err != nil {
		return fmt.Errorf("write state record %q: %w", path, err)
	}
	return nil
}

// writeAtomic replaces the file at path with what write writes: temp file,
// fsync, rename, fsync of the directory.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}

// currentState reads the state a model's keys describe (Lost aside, which
// only meta/"state" holds).
func currentState(tx mtx) (*state, error) {
	st := &state{Active: activeVersion(tx)}
	var err error
	if st.Stack, err = readStack(tx); err != nil {
		return nil, err
	}
	if st.Withdrawn, err = readWithdrawn(tx); err != nil {
		return nil, err
	}
	if st.Consumed, err = readConsumed(tx); err != nil {
		return nil, err
	}
	c := tx.Bucket(bucketModels).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == 8 {
			st.Versions = append(st.Versions, version(k))
		}
	}
	st.HistorySeq = tx.Bucket(bucketHistory).Sequence()
	return st, nil
}

// currentRecord reads the state of every model the file holds.
func currentRecord(tx *bolt.Tx) (*record, error) {
	r := &record{Models: map[string]*state{}}
	for _, n := range modelNames(tx) {
		t := mtx{tx, n}
		if !t.exists() || t.Bucket(bucketHistory) == nil {
			continue
		}
		st, err := currentState(t)
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", n, err)
		}
		r.Models[n] = st
	}
	return r, nil
}

// storedRecord returns meta/"state" (in the default model's meta bucket),
// nil if absent, ErrDamaged if bad.
func storedRecord(tx *bolt.Tx) (*record, error) {
	v := tx.Bucket(bucketMeta).Get(keyState)
	if v == nil {
		return nil, nil
	}
	return decodeRecord(v)
}

// applyState writes st's active version, stack, withdrawn and consumed
// lists to the model's keys, keeping only stack entries that are stored.
func applyState(tx mtx, st *state) error {
	models := tx.Bucket(bucketModels)
	stack := slices.DeleteFunc(slices.Clone(st.Stack), func(v int64) bool { return models.Get(u64(v)) == nil })
	if err := writeStack(tx, stack); err != nil {
		return err
	}
	if err := writeVersions(tx, keyWithdrawn, st.Withdrawn); err != nil {
		return err
	}
	if err := writeConsumed(tx, st.Consumed); err != nil {
		return err
	}
	if st.Active == 0 || models.Get(u64(st.Active)) == nil {
		return tx.Bucket(bucketMeta).Delete(keyActive)
	}
	return tx.Bucket(bucketMeta).Put(keyActive, u64(st.Active))
}

func readConsumed(tx mtx) ([][32]byte, error) {
	v := tx.Bucket(bucketMeta).Get(keyConsumed)
	if len(v)%32 != 0 {
		return nil, fmt.Errorf("%w: consumed rollbacks of %d bytes", ErrDamaged, len(v))
	}
	var out [][32]byte
	for ; len(v) > 0; v = v[32:] {
		out = append(out, [32]byte(v))
	}
	return out, nil
}

func writeConsumed(tx mtx, ds [][32]byte) error {
	b := make([]byte, 0, 32*len(ds))
	for _, d := range ds {
		b = append(b, d[:]...)
	}
	return tx.Bucket(bucketMeta).Put(keyConsumed, b)
}

// union appends to a the elements of b it lacks, keeping the newest max.
func union[T comparable](a, b []T, max int) []T {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}
