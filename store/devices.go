package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// device value: CRC-32C of the rest | saved time (Unix ns) | model version
// | updates uint64 | last update (Unix ns) | learner state.
const deviceHeader = 4 + 8 + 8 + 8 + 8

// DeviceState is one device's learner state as the store keeps it.
type DeviceState struct {
	Device  string    `json:"device"`
	Version int64     `json:"version"` // the model version the state belongs to
	Updates uint64    `json:"updates"` // learning steps taken
	Last    time.Time `json:"last_update,omitzero"`
	Saved   time.Time `json:"saved,omitzero"`
	State   []byte    `json:"-"` // opaque to the store (model.DeviceLearner's encoding)
}

func encodeDevice(d *DeviceState, saved time.Time) []byte {
	b := make([]byte, 4, deviceHeader+len(d.State))
	b = binary.LittleEndian.AppendUint64(b, uint64(saved.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(d.Version))
	b = binary.LittleEndian.AppendUint64(b, d.Updates)
	var last int64
	if !d.Last.IsZero() {
		last = d.Last.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(last))
	b = append(b, d.State...)
	binary.LittleEndian.PutUint32(b, crc32.Checksum(b[4:], crcTab))
	return b
}

// decodeDevice decodes a device value; the state points into v.
func decodeDevice(v []byte) (*DeviceState, error) {
	if len(v) < deviceHeader {
		return nil, fmt.Errorf("%w: device state of %d bytes", ErrDamaged, len(v))
	}
	if crc32.Checksum(v[4:], crcTab) != binary.LittleEndian.Uint32(v) {
		return nil, fmt.Errorf("%w: device state checksum mismatch", ErrDamaged)
	}
	d := &DeviceState{
		Saved:   time.Unix(0, int64(binary.LittleEndian.Uint64(v[4:]))),
		Version: int64(binary.LittleEndian.Uint64(v[12:])),
		Updates: binary.LittleEndian.Uint64(v[20:]),
		State:   v[deviceHeader:],
	}
	if last := int64(binary.LittleEndian.Uint64(v[28:])); last != 0 {
		d.Last = time.Unix(0, last)
	}
	return d, nil
}
