package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// The last readings a model served, kept so that the shadow run of an OTA
// candidate that arrives right after a restart has readings to run on.
// Each model keeps its own.

// MaxRecentBytes bounds what SaveRecent keeps: the newest rows that fit.
const MaxRecentBytes = 256 << 10

var keyRecent = []byte("recent")

// SaveRecent replaces the kept readings: rows (each one value per name, in
// the order of names), the newest last; only the newest rows that fit in
// MaxRecentBytes are kept. Each call is a transaction (two fsyncs): call it
// at checkpoint time, not per reading.
func (h *Model) SaveRecent(names []string, rows [][]float32) error {
	d := len(names)
	size := 12
	for _, n := range names {
		size += 4 + len(n)
	}
	if room := (MaxRecentBytes - size) / max(4*d, 1); len(rows) > room {
		rows = rows[len(rows)-max(room, 0):]
	}
	b := make([]byte, 4, size+4*d*len(rows))
	b = binary.LittleEndian.AppendUint32(b, uint32(d))
	for _, n := range names {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(rows)))
	for i, r := range rows {
		if len(r) != d {
			return fmt.Errorf("store: recent row %d has %d values for %d features", i, len(r), d)
		}
		for _, v := range r {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	binary.LittleEndian.PutUint32(b, crc32.Checksum(b[4:], crcTab))
	return h.update(func(tx mtx) error { return tx.Bucket(bucketMeta).Put(keyRecent, b) })
}

// Recent returns the readings SaveRecent kept, oldest first; none if there
// are none or they fail their checksum (they are only a convenience).
func (h *Model) Recent() (names []string, rows [][]float32, err error) {
	var b []byte
	err = h.view(func(tx mtx) error {
		b = clone(tx.Bucket(bucketMeta).Get(keyRecent))
		return nil
	})
	if err != nil || len(b) < 12 || crc32.Checksum(b[4:], crcTab) != binary.LittleEndian.Uint32(b) {
		return nil, nil, err
	}
	r := b[4:]
	next := func() (uint32, bool) {
		if len(r) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(r)
		r = r[4:]
		return v, true
	}
	d, ok := next()
	if !ok || uint64(d) > uint64(len(r)) {
		return nil, nil, nil
	}
	for range d {
		n, ok := next()
		if !ok || uint64(n) > uint64(len(r)) {
			return nil, nil, nil
		}
		names = append(names, string(r[:n]))
		r = r[n:]
	}
	nr, ok := next()
	if !ok || uint64(nr)*uint64(d)*4 != uint64(len(r)) {
		return nil, nil, nil
	}
	rows = make([][]float32, nr)
	for i := range rows {
		rows[i] = make([]float32, d)
		for j := range rows[i] {
			rows[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(r))
			r = r[4:]
		}
	}
	return names, rows, nil
}
