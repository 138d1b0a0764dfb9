package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/linnet-edge/linnet/model"
)

// Per-device learner states live in each model's devices bucket, keyed by
// device id: the model's Devices (model.Devices) hands changed states over
// in batches, each batch one transaction, and loads a device's state on
// demand when it is not in memory. Reads copy every value out and page
// through the bucket in short transactions, so a gateway with tens of
// thousands of devices never holds a read transaction across them.

// MaxDeviceID bounds a device id's length in bytes.
const MaxDeviceID = 256

// devicePage is how many devices one read transaction of Devices reads.
const devicePage = 1000

// device value: CRC-32C of the rest | saved time (Unix ns) | model version
// | updates int64 | last update (Unix ns, 0 if none) | learner state.
const deviceHeader = 4 + 8 + 8 + 8 + 8

// A state of more than splitState bytes is stored in two halves: the
// device's value ends with the first, and the second is the value of the
// key that follows the device's id in key order, the id and a NUL byte
// (tailKey); the CRC covers both halves. The states are written with a
// fill of 100% (bbolt's FillPercent), so a page holds three halves of a
// 32-feature state (2,381 bytes), 2.7 KB a device: bbolt puts at least
// two values in a leaf, and two whole states took two pages, 4.1 KB a
// device, of file and of the daemon's memory (the file is mapped, and a
// checkpoint reads every changed device's page). States written whole
// (by an earlier build, or small) have no second half.
const splitState = 1024

// tailKey is the key of the second half of device's state.
func tailKey(device []byte) []byte { return append(device[:len(device):len(device)], 0) }

// isTail reports whether a key of the devices bucket holds a second half.
func isTail(k []byte) bool { return len(k) > 0 && k[len(k)-1] == 0 }

// DeviceInfo describes one device's stored learner state.
type DeviceInfo struct {
	Device  string    `json:"device"`
	Version int64     `json:"version"` // the model version the state belongs to
	Updates int64     `json:"updates"` // readings learned from
	Last    time.Time `json:"last_update,omitzero"`
	Saved   time.Time `json:"saved,omitzero"`
	Bytes   int       `json:"bytes"` // size of the learner state
}

// CheckDevice returns nil if id can name a stored device state, else an
// error wrapping ErrBadDevice.
func CheckDevice(id string) error {
	if id == "" || len(id) > MaxDeviceID || strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("%w: %d bytes (1 to %d, no NUL)", ErrBadDevice, len(id), MaxDeviceID)
	}
	return nil
}

// encodeDevice returns d's value and the second half of its state (nil if
// it is stored whole).
func encodeDevice(d *model.DeviceSnapshot, saved time.Time) (v, tail []byte) {
	head := d.State
	if len(head) > splitState {
		head, tail = head[:len(head)/2], head[len(head)/2:]
	}
	b := make([]byte, 4, deviceHeader+len(head))
	b = binary.LittleEndian.AppendUint64(b, uint64(saved.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(d.Version))
	b = binary.LittleEndian.AppendUint64(b, uint64(d.Updates))
	var last int64
	if !d.Last.IsZero() {
		last = d.Last.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(last))
	b = append(b, head...)
	binary.LittleEndian.PutUint32(b, crc32.Update(crc32.Checksum(b[4:], crcTab), crcTab, tail))
	return b, tail
}

// decodeDevice decodes a device value and the second half of its state
// (nil if none); the state is a new slice if there is a second half, else
// it points into v.
func decodeDevice(v, tail []byte) (*model.DeviceSnapshot, error) {
	if len(v) < deviceHeader {
		return nil, fmt.Errorf("%w: device state of %d bytes", ErrDamaged, len(v))
	}
	if crc32.Update(crc32.Checksum(v[4:], crcTab), crcTab, tail) != binary.LittleEndian.Uint32(v) {
		return nil, fmt.Errorf("%w: device state checksum mismatch", ErrDamaged)
	}
	d := &model.DeviceSnapshot{
		Version: int64(binary.LittleEndian.Uint64(v[12:])),
		Updates: int64(binary.LittleEndian.Uint64(v[20:])),
		State:   v[deviceHeader:],
	}
	if tail != nil {
		d.State = append(d.State[:len(d.State):len(d.State)], tail...)
	}
	if last := int64(binary.LittleEndian.Uint64(v[28:])); last != 0 {
		d.Last = time.Unix(0, last)
	}
	return d, nil
}

func deviceInfo(k, v, tail []byte) (DeviceInfo, error) {
	d, err := decodeDevice(v, tail)
	if err != nil {
		return DeviceInfo{Device: string(k)}, fmt.Errorf("device %q: %w", k, err)
	}
	return DeviceInfo{Device: string(k), Version: d.Version, Updates: d.Updates, Last: d.Last,
		Saved: time.Unix(0, int64(binary.LittleEndian.Uint64(v[4:]))), Bytes: len(d.State)}, nil
}

// SaveDevices writes a batch of device states (model.Devices.Checkpoint, or
// what it evicts) in one transaction: after a crash the store holds every
// state of the batch or none. States are copied. An empty batch writes
// nothing.
func (h *Model) SaveDevices(states []model.DeviceSnapshot) error {
	if len(states) == 0 {
		return nil
	}
	now := h.s.opts.Now()
	vals, tails := make([][]byte, len(states)), make([][]byte, len(states))
	for i := range states {
		if err := CheckDevice(states[i].Device); err != nil {
			return err
		}
		vals[i], tails[i] = encodeDevice(&states[i], now)
	}
	return h.update(func(tx mtx) error {
		b := tx.Bucket(bucketDevices)
		b.FillPercent = 1 // values are rewritten at the same size, rarely inserted
		for i, st := range states {
			k := []byte(st.Device)
			if err := b.Put(k, vals[i]); err != nil {
				return err
			}
			var err error
			if tails[i] != nil {
				err = b.Put(tailKey(k), tails[i])
			} else if b.Get(tailKey(k)) != nil {
				err = b.Delete(tailKey(k))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadDevice returns a copy of device's stored state, nil (and no error)
// if it has none or the model does not exist. Its signature is
// model.DeviceConfig.Load's.
func (h *Model) LoadDevice(device string) (*model.DeviceSnapshot, error) {
	var d *model.DeviceSnapshot
	var bad error
	err := h.s.view(func(btx *bolt.Tx) error {
		tx := mtx{btx, h.name}
		b := tx.Bucket(bucketDevices)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(device)); v != nil {
			// A second half is copied by decodeDevice, a whole state
			// is the clone's.
			d, bad = decodeDevice(bytes.Clone(v), b.Get(tailKey([]byte(device))))
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case bad != nil:
		return nil, fmt.Errorf("device %q of model %q: %w", device, h.name, bad)
	case d != nil:
		d.Device = device
	}
	return d, nil
}

// Device is LoadDevice that returns ErrNoDevice when there is no state.
func (h *Model) Device(device string) (*model.DeviceSnapshot, error) {
	d, err := h.LoadDevice(device)
	if err == nil && d == nil {
		err = fmt.Errorf("%w: %q of model %q", ErrNoDevice, device, h.name)
	}
	return d, err
}

// Devices describes every stored device state, in device id order. It
// reads devicePage devices per read transaction. A state that fails its
// checksum is listed with only its id, and the error joined at the end.
func (h *Model) Devices() ([]DeviceInfo, error) {
	var out []DeviceInfo
	var errs []error
	var after []byte
	for {
		var page []DeviceInfo
		more := false
		err := h.view(func(tx mtx) error {
			b := tx.Bucket(bucketDevices)
			if b == nil {
				return nil // a read-only store of a build before device states
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil; k, v = c.Next() {
				if isTail(k) {
					continue
				}
				if len(page) == devicePage {
					more = true
					break
				}
				in, err := deviceInfo(k, v, b.Get(tailKey(k)))
				if err != nil {
					errs = append(errs, err)
				}
				page = append(page, in)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !more {
			break
		}
		after = []byte(page[len(page)-1].Device)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%w: %w", ErrDamaged, errors.Join(errs...))
	}
	return out, nil
}

// ResetDevice deletes device's stored state: it starts again from the
// active version at its next labelled reading. It returns ErrNoDevice if
// there was none. The caller also drops the device from memory
// (model.Devices.Reset).
func (h *Model) ResetDevice(device string) error {
	return h.update(func(tx mtx) error {
		b := tx.Bucket(bucketDevices)
		k := []byte(device)
		if b.Get(k) == nil {
			return fmt.Errorf("%w: %q of model %q", ErrNoDevice, device, h.name)
		}
		if err := b.Delete(tailKey(k)); err != nil {
			return err
		}
		return b.Delete(k)
	})
}

// PruneDevices deletes the stored states that belong to a version other
// than keep (deltas do not carry over to a new version) and returns how
// many. Keys are collected first and deleted after, in batches of
// devicePage states per transaction. A second half without its state
// goes too.
func (h *Model) PruneDevices(keep int64) (int, error) {
	n := 0
	for {
		var del [][]byte
		states := 0
		err := h.update(func(tx mtx) error {
			b := tx.Bucket(bucketDevices)
			c := b.Cursor()
			for k, v := c.First(); k != nil && states < devicePage; k, v = c.Next() {
				if isTail(k) {
					if b.Get(k[:len(k)-1]) == nil {
						del = append(del, bytes.Clone(k))
					}
					continue
				}
				tail := b.Get(tailKey(k))
				if d, err := decodeDevice(v, tail); err != nil || d.Version != keep {
					del = append(del, bytes.Clone(k))
					if tail != nil {
						del = append(del, tailKey(bytes.Clone(k)))
					}
					states++
				}
			}
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += states
		if states < devicePage {
			return n, nil
		}
	}
}
