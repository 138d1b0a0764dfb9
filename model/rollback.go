package model

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The rollback flag.
//
// OTA refuses a model that is not newer than the active one, unless the
// file itself says it is a rollback and is signed: the flag is bit 0 of the
// header's flags word, inside the bytes the CRC and the signature cover, so
// nobody can turn a signed old model into a rollback without the key.
//
// Compatibility: format version 1 reserved the flags word and its readers
// refuse any nonzero value, so an older build refuses a rollback file
// instead of reading it as an ordinary model (it would refuse the downgrade
// anyway). Files without the flag are byte for byte what they were; the
// golden files in testdata still decode. The Model type does not carry the
// flag: it describes the file, not the model, so it is read and set on the
// file's bytes.
const (
	flagRollback uint16 = 1 << 0

	knownFlags = flagRollback
)

// IsRollback reports whether file is structurally a .lnm file whose header
// carries the rollback flag. It checks neither the CRC nor the signature:
// call Verify for that.
func IsRollback(file []byte) bool {
	if _, err := parseLayout(file); err != nil {
		return false
	}
	return binary.LittleEndian.Uint16(file[6:])&flagRollback != 0
}

// MarkRollback returns a copy of file with the rollback flag set and the
// CRC recomputed, without any signature: sign the result (a rollback is only
// honoured when signed). It checks file first (structure and CRC), so it
// never marks a damaged file. file is not modified.
func MarkRollback(file []byte) ([]byte, error) {
	if _, err := Decode(file); err != nil {
		return nil, err
	}
	l, _ := parseLayout(file)
	out := append([]byte(nil), file[:l.crc]...)
	f := binary.LittleEndian.Uint16(out[6:]) | flagRollback
	binary.LittleEndian.PutUint16(out[6:], f)
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, crcTab))
	if _, err := Decode(out); err != nil {
		return nil, fmt.Errorf("mark rollback: %w", err)
	}
	return out, nil
}
