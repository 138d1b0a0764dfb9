package model

import (
	"errors"
	"fmt"
)

// Errors of the .lnm codec (Decode, ReadFile, MarshalBinary).
var (
	// ErrNotModel is returned when a file does not start with the .lnm magic.
	ErrNotModel = errors.New("model: not a linnet model file (bad magic)")
	// ErrUnsupportedVersion is returned when a file's format version is newer
	// than this build reads.
	ErrUnsupportedVersion = errors.New("model: unsupported .lnm format version")
	// ErrChecksum is returned when a file's CRC-32C does not match its bytes:
	// the file was damaged or altered.
	ErrChecksum = errors.New("model: checksum mismatch")
	// ErrTooLarge is returned when a file, or a count inside it, is beyond
	// MaxFileSize or MaxFeatures.
	ErrTooLarge = errors.New("model: too large")
	// ErrInvalidModel is returned when a model's fields are inconsistent or
	// not finite (lengths differ, Std is 0, unknown loss or scheme...).
	ErrInvalidModel = errors.New("model: invalid model")
)

// Errors of signing and verification (Sign, Verify, key files).
var (
	// ErrUnsigned is returned when Verify is given a file without a signature.
	ErrUnsigned = errors.New("model: file is not signed")
	// ErrUntrustedKey is returned when a file is signed by a key that is not
	// among the trusted ones (or no key is trusted at all).
	ErrUntrustedKey = errors.New("model: signed by an untrusted key")
	// ErrBadSignature is returned when a file names a trusted key but its
	// signature does not verify: the file was altered after signing.
	ErrBadSignature = errors.New("model: bad signature")
	// ErrBadKey is returned when a key file holds neither a PEM Ed25519 key
	// nor raw key bytes of the right length.
	ErrBadKey = errors.New("model: not an Ed25519 key")
)

// Errors of the feature schema (Vector, Positional, Predictor.Check).
var (
	// ErrMissingFeature is returned when a named reading lacks a feature the
	// model needs.
	ErrMissingFeature = errors.New("model: missing feature")
	// ErrUnknownFeature is returned when a named reading has a feature the
	// model does not know.
	ErrUnknownFeature = errors.New("model: unknown feature")
	// ErrFeatureCount is returned when a positional reading has the wrong
	// number of values.
	ErrFeatureCount = errors.New("model: wrong number of features")
	// ErrNotFinite is returned when a reading holds NaN or an infinity.
	ErrNotFinite = errors.New("model: feature value is not finite")
)

// FormatError reports a structural problem in a .lnm file: a truncated or
// inconsistent section, an impossible length, a bad field. Offset is the
// byte offset in the file where the problem was found.
type FormatError struct {
	Offset int
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("model: bad .lnm file at byte %d: %s", e.Offset, e.Reason)
}
