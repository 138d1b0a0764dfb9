package model

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"
)

// Rollback files.
//
// OTA refuses a model that is not newer than the active one, unless a
// signed rollback file says otherwise. A rollback file is its own format,
// not a model file: it names the version it rolls back from, optionally the
// one gateway it is for, and when it expires, and carries the model file to
// go back to, all under one Ed25519 signature:
//
//	magic      [4]byte  "\x89LNR"
//	format     uint16   1
//	flags      uint16   bit 0: a model name follows the gateway (a reader
//	                    refuses any other bit)
//	from       int64    the version a gateway must be serving to apply it
//	to         int64    the version of the model inside (older than from)
//	expires    int64    Unix seconds; refused at and after this time
//	gateway    str      uint16 length + UTF-8; "" for any gateway
//	name       str      with flag bit 0: the served model's name; without
//	                    it the file is for the model named "default"
//	model      uint32 length + the .lnm file of version to
//	signature  76 bytes "LSIG", key id, Ed25519 over every byte before it
//
// Every number is little-endian. A gateway applies a rollback only while it
// serves from, only before expires, only if gateway is "" or its own id,
// only to the model it names (a gateway serves several: [[models]]), and
// only once: the store remembers the SHA-256 of every rollback file it
// applied (Rollback.Digest) and refuses a replay. From and the digest make
// a copy kept from a retained message useless after its one use.
//
// Format 1 of the .lnm file expressed a rollback as bit 0 of a model file's
// flags (MarkRollback): bound to nothing, such a file downgrades any
// gateway at any time, forever. Gateways refuse those files now
// (ErrLegacyRollback); IsRollback still recognizes them so they can be
// refused by name.

// Errors of rollback files.
var (
	// ErrNotRollback is returned by OpenRollback for bytes that do not
	// start with the rollback magic.
	ErrNotRollback = errors.New("model: not a rollback file")
	// ErrLegacyRollback is returned for a model file carrying the format-1
	// rollback flag: it names no source version, gateway nor expiry.
	ErrLegacyRollback = errors.New("model: unbound rollback file (format 1 rollback flag); sign a new rollback file")
	// ErrRollbackExpired is returned by Rollback.Check after its expiry.
	ErrRollbackExpired = errors.New("model: rollback file expired")
	// ErrRollbackGateway is returned by Rollback.Check on a gateway the
	// file does not name.
	ErrRollbackGateway = errors.New("model: rollback file is for another gateway")
	// ErrRollbackSource is returned by Rollback.Check on a gateway that
	// does not serve the version the file rolls back from.
	ErrRollbackSource = errors.New("model: gateway does not serve the version the rollback file rolls back from")
	// ErrRollbackModel is returned by Rollback.Check for a model the file
	// does not name.
	ErrRollbackModel = errors.New("model: rollback file is for another model")
)

// Rollback is a verified rollback file.
type Rollback struct {
	From, To int64
	Gateway  string // "" for any gateway
	Name     string // the served model's name; "" for the model named "default"
	Expires  time.Time
	Model    []byte   // the .lnm file of version To (the caller owns it)
	Digest   [32]byte // SHA-256 of the whole rollback file: what "once" remembers
	Signer   string   // hex key id of the signing key
}

var rollbackMagic = [4]byte{0x89, 'L', 'N', 'R'}

const rollbackFormat = 1

// rollbackNamed is the flag bit of a rollback file that names its model.
const rollbackNamed = 1

// defaultName is the model a rollback file without a name is for.
const defaultName = "default"

// IsRollbackFile reports whether b starts like a rollback file.
func IsRollbackFile(b []byte) bool {
	return len(b) >= 4 && [4]byte(b) == rollbackMagic
}

// NewRollback returns a signed rollback file that takes a gateway serving
// version from back to the model in file (which must be older), for
// gateway ("" for any) until expires. file is checked (structure and CRC);
// it is not modified.
func NewRollback(file []byte, from int64, gateway string, expires time.Time, key ed25519.PrivateKey) ([]byte, error) {
	return NewModelRollback(file, from, gateway, "", expires, key)
}

// NewModelRollback is NewRollback for the served model named name on
// gateways serving several ("" or "default": the model named "default",
// which older gateways also read).
func NewModelRollback(file []byte, from int64, gateway, name string, expires time.Time, key ed25519.PrivateKey) ([]byte, error) {
	if name == defaultName {
		name = ""
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(key), ed25519.PrivateKeySize)
	}
	m, err := Decode(file)
	if err != nil {
		return nil, err
	}
	if IsRollback(file) {
		return nil, ErrLegacyRollback
	}
	switch {
	case m.Version >= from:
		return nil, fmt.Errorf("model: rollback from %d to %d: not older", from, m.Version)
	case expires.IsZero():
		return nil, errors.New("model: a rollback file needs an expiry")
	case len(gateway) > maxName || !utf8.ValidString(gateway):
		return nil, fmt.Errorf("model: rollback gateway id of %d bytes", len(gateway))
	case len(name) > maxName || !utf8.ValidString(name):
		return nil, fmt.Errorf("model: rollback model name of %d bytes", len(name))
	}
	var flags uint16
	if name != "" {
		flags |= rollbackNamed
	}
	b := append([]byte(nil), rollbackMagic[:]...)
	b = binary.LittleEndian.AppendUint16(b, rollbackFormat)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(from))
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Version))
	b = binary.LittleEndian.AppendUint64(b, uint64(expires.Unix()))
	b = appendStr(b, gateway)
	if name != "" {
		b = appendStr(b, name)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(file)))
	b = append(b, file...)
	b = append(b, sigTag[:]...)
	id := keyID(key.Public().(ed25519.PublicKey))
	b = append(b, id[:]...)
	return append(b, ed25519.Sign(key, b)...), nil
}

// OpenRollback verifies a rollback file's signature against the trusted
// keys and parses it. The model inside must decode (CRC included) and be
// version To, older than From. Errors wrap ErrNotRollback, ErrUnsigned,
// ErrUntrustedKey, ErrBadSignature, a *FormatError or a Decode error.
// OpenRollback never panics.
func OpenRollback(b []byte, trusted []ed25519.PublicKey) (*Rollback, error) {
	if len(b) > MaxFileSize+1<<16 {
		return nil, fmt.Errorf("%w: rollback file is %d bytes", ErrTooLarge, len(b))
	}
	if !IsRollbackFile(b) {
		if IsRollback(b) {
			return nil, ErrLegacyRollback
		}
		return nil, ErrNotRollback
	}
	if len(b) < 8+24+2+4+sigSize {
		return nil, &FormatError{len(b), "truncated rollback file"}
	}
	body, sig := b[:len(b)-sigSize], b[len(b)-sigSize:]
	if [4]byte(sig) != sigTag {
		return nil, ErrUnsigned
	}
	id := [keyIDSize]byte(sig[sigTagSize:])
	ok := false
	for _, k := range trusted {
		if len(k) != ed25519.PublicKeySize || keyID(k) != id {
			continue
		}
		if !ed25519.Verify(k, b[:len(b)-64], sig[sigTagSize+keyIDSize:]) {
			return nil, fmt.Errorf("%w (key %x)", ErrBadSignature, id)
		}
		ok = true
		break
	}
	if !ok {
		return nil, fmt.Errorf("%w: key %x is not among the %d trusted", ErrUntrustedKey, id, len(trusted))
	}
	if v := binary.LittleEndian.Uint16(body[4:]); v != rollbackFormat {
		return nil, fmt.Errorf("%w: rollback format %d (this build reads %d)", ErrUnsupportedVersion, v, rollbackFormat)
	}
	flags := binary.LittleEndian.Uint16(body[6:])
	if flags&^rollbackNamed != 0 {
		return nil, &FormatError{6, fmt.Sprintf("unknown rollback flags %#04x", flags)}
	}
	r := &Rollback{
		From:    int64(binary.LittleEndian.Uint64(body[8:])),
		To:      int64(binary.LittleEndian.Uint64(body[16:])),
		Expires: time.Unix(int64(binary.LittleEndian.Uint64(body[24:])), 0).UTC(),
		Digest:  sha256.Sum256(b),
		Signer:  fmt.Sprintf("%x", id),
	}
	rest := body[32:]
	gl := int(binary.LittleEndian.Uint16(rest))
	if 2+gl+4 > len(rest) {
		return nil, &FormatError{32, "truncated gateway id"}
	}
	r.Gateway = string(rest[2 : 2+gl])
	rest = rest[2+gl:]
	if flags&rollbackNamed != 0 {
		nl := int(binary.LittleEndian.Uint16(rest))
		if 2+nl+4 > len(rest) || nl == 0 {
			return nil, &FormatError{len(body) - len(rest), "truncated model name"}
		}
		r.Name = string(rest[2 : 2+nl])
		rest = rest[2+nl:]
	}
	ml := uint64(binary.LittleEndian.Uint32(rest))
	if ml != uint64(len(rest)-4) {
		return nil, &FormatError{len(body) - len(rest), fmt.Sprintf("model of %d bytes, %d left", ml, len(rest)-4)}
	}
	r.Model = append([]byte(nil), rest[4:]...)
	m, err := Decode(r.Model)
	if err != nil {
		return nil, fmt.Errorf("rollback file's model: %w", err)
	}
	if IsRollback(r.Model) {
		return nil, ErrLegacyRollback
	}
	if m.Version != r.To || r.To >= r.From {
		return nil, &FormatError{16, fmt.Sprintf("rolls back from %d to %d, model inside is version %d", r.From, r.To, m.Version)}
	}
	return r, nil
}

// Check reports whether the rollback applies to the model named name on
// gateway, serving version serving, at time now: nil, or an error
// wrapping ErrRollbackExpired, ErrRollbackGateway, ErrRollbackModel or
// ErrRollbackSource. Whether it was applied before is the store's to say.
func (r *Rollback) Check(serving int64, gateway, name string, now time.Time) error {
	want := r.Name
	if want == "" {
		want = defaultName
	}
	switch {
	case !now.Before(r.Expires):
		return fmt.Errorf("%w at %s", ErrRollbackExpired, r.Expires.Format(time.RFC3339))
	case r.Gateway != "" && r.Gateway != gateway:
		return fmt.Errorf("%w: %q, this is %q", ErrRollbackGateway, r.Gateway, gateway)
	case want != name:
		return fmt.Errorf("%w: %q, this is %q", ErrRollbackModel, want, name)
	case serving != r.From:
		return fmt.Errorf("%w: rolls back from %d, serving %d", ErrRollbackSource, r.From, serving)
	}
	return nil
}

// The format-1 rollback flag (legacy, refused by gateways).
//
// Bit 0 of a model file's flags word marked it as a rollback. Files
// without the flag are byte for byte what they were; the golden files in
// testdata still decode. Unknown flag bits are still refused.
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

// MarkRollback returns a copy of file with the format-1 rollback flag set
// and the CRC recomputed, without any signature. Gateways refuse such files
// (ErrLegacyRollback): write rollbacks with NewRollback. It checks file
// first (structure and CRC), so it never marks a damaged file. file is not
// modified.
//
// Deprecated: a flagged file names no source version, gateway nor expiry
// and replays forever; use NewRollback.
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
