package model

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/linnet-edge/linnet/simd"
)

// The .lnm file, format version 1. Every number is little-endian.
//
//	header   16 bytes
//	  magic          [4]byte  "\x89LNM" (the high byte catches 7-bit transfers)
//	  format version uint16   1
//	  flags          uint16   bit 0: signed rollback (see rollback.go); a
//	                          reader refuses any other bit
//	  meta length    uint32   M
//	  payload length uint32   P
//	meta     M bytes
//	  version, parent, created (Unix ns)    int64 x 3
//	  target, loss                          str  (uint16 length + UTF-8)
//	  delta                                 float32
//	  scheme                                str  ("f32", "q8", "q4")
//	  block size                            uint16 (simd.BlockSize)
//	  scaling                               uint8: 0 identity (Mean 0, Std 1,
//	                                        not stored), 1 stored in the payload
//	  feature count n                       uint32
//	  naming                                uint8: 0 listed, 1 generated
//	  feature names (naming 0)              str x n
//	  name prefix (naming 1)                str: feature i is prefix+i in
//	                                        decimal (wide hashed models)
//	  metric count                          uint32
//	  metrics, sorted by name               (str, float64) x count
//	payload  P bytes
//	  bias                                  float32
//	  mean, std (scaling 1 only)            float32 x n, float32 x n
//	  f32: weights                          float32 x n
//	  q8:  scales, values                   float32 x blocks, int8 x n
//	  q4:  scales, packed nibbles           float32 x blocks, byte x blocks*16
//	crc      uint32   CRC-32C (Castagnoli) of every byte before it
//	signature, optional, 76 bytes
//	  tag            [4]byte  "LSIG"
//	  key id         [8]byte  first 8 bytes of SHA-256 of the public key
//	  signature      [64]byte Ed25519 over every byte before it (header,
//	                          meta, payload, crc, tag and key id)
//
// The weights are in standardized space (see Model); the q8 and q4 padding
// of the last block is not stored.
//
// Format version 2 adds the preprocessing and the training statistics.
// The header is the same; the metadata continues after the metrics with
//
//	stats flags                           uint8: bit 0 target statistics,
//	                                      bit 1 feature ranges (payload)
//	target mean, std, min, max (bit 0)    float32 x 4
//	preprocessing                         uint8: 0 none, 1 follows
//	  missing policy                      uint8: 0 impute, 1 error
//	  column count c                      uint32
//	  per column                          name str, kind uint8 (0 numeric,
//	                                      1 one-hot, 2 hashed), indicator
//	                                      uint8, fill float32, fill
//	                                      category str, hash bits uint8,
//	                                      category count uint32, str each
//
// and the payload holds, after mean and std, the feature ranges (bit 1):
// min float32 x n, max float32 x n. The columns must expand to exactly the
// listed feature names (see Preprocessing). A model with neither
// preprocessing nor statistics is written as version 1, byte for byte what
// older builds wrote and read. Later format versions must keep reading
// versions 1 and 2: the golden files in testdata hold the proof.
const (
	// FormatVersion is the newest .lnm format version this build writes.
	FormatVersion = 2

	// MaxFeatures bounds a model's width: a decoder refuses larger counts
	// before allocating anything.
	MaxFeatures = 1 << 22
	// MaxFileSize bounds the size of a .lnm file ReadFile and Decode accept.
	MaxFileSize = 256 << 20

	maxName    = 1 << 10 // longest feature, target or metric name, in bytes
	maxMetrics = 1 << 10

	headerSize = 16
	crcSize    = 4
	sigTagSize = 4
	keyIDSize  = 8
	sigSize    = sigTagSize + keyIDSize + 64 // the whole trailer

	scalingIdentity = 0
	scalingStored   = 1

	namesListed    = 0
	namesGenerated = 1

	statsTarget = 1 << 0
	statsRanges = 1 << 1
)

var (
	magic  = [4]byte{0x89, 'L', 'N', 'M'}
	sigTag = [4]byte{'L', 'S', 'I', 'G'}
	crcTab = crc32.MakeTable(crc32.Castagnoli)
)

// MarshalBinary encodes m as an unsigned .lnm file: format version 2, or 1
// when m has neither Preprocessing nor training statistics.
// It checks m first and returns an error wrapping ErrInvalidModel if its
// fields are inconsistent. For a q8 or q4 model it writes m.Q8 or m.Q4, not
// m.Weights.
func (m *Model) MarshalBinary() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	n := len(m.Features)
	identity := m.identityScaling()
	format := m.format()

	meta := make([]byte, 0, 64+n*8)
	meta = binary.LittleEndian.AppendUint64(meta, uint64(m.Version))
	meta = binary.LittleEndian.AppendUint64(meta, uint64(m.Parent))
	var created int64
	if !m.Created.IsZero() {
		created = m.Created.UnixNano()
	}
	meta = binary.LittleEndian.AppendUint64(meta, uint64(created))
	meta = appendStr(meta, m.Target)
	meta = appendStr(meta, string(m.Loss))
	meta = binary.LittleEndian.AppendUint32(meta, math.Float32bits(m.Delta))
	meta = appendStr(meta, string(m.Scheme))
	meta = binary.LittleEndian.AppendUint16(meta, simd.BlockSize)
	if identity {
		meta = append(meta, scalingIdentity)
	} else {
		meta = append(meta, scalingStored)
	}
	meta = binary.LittleEndian.AppendUint32(meta, uint32(n))
	if prefix, ok := generatedPrefix(m.Features); ok {
		meta = append(meta, namesGenerated)
		meta = appendStr(meta, prefix)
	} else {
		meta = append(meta, namesListed)
		for _, f := range m.Features {
			meta = appendStr(meta, f)
		}
	}
	keys := make([]string, 0, len(m.Metrics))
	for k := range m.Metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	meta = binary.LittleEndian.AppendUint32(meta, uint32(len(keys)))
	for _, k := range keys {
		meta = appendStr(meta, k)
		meta = binary.LittleEndian.AppendUint64(meta, math.Float64bits(m.Metrics[k]))
	}
	if format >= 2 {
		meta = m.appendV2Meta(meta)
	}

	pay := make([]byte, 0, m.payloadSize(identity))
	pay = appendF32(pay, m.Bias)
	if !identity {
		pay = appendF32s(pay, m.Mean)
		pay = appendF32s(pay, m.Std)
	}
	if m.Min != nil {
		pay = appendF32s(pay, m.Min)
		pay = appendF32s(pay, m.Max)
	}
	switch m.Scheme {
	case F32:
		pay = appendF32s(pay, m.Weights)
	case Q8:
		pay = appendF32s(pay, m.Q8.Scales)
		for _, q := range m.Q8.Q[:n] {
			pay = append(pay, byte(q))
		}
	case Q4:
		pay = appendF32s(pay, m.Q4.Scales)
		pay = append(pay, m.Q4.Q...)
	}

	out := make([]byte, 0, headerSize+len(meta)+len(pay)+crcSize)
	out = append(out, magic[:]...)
	out = binary.LittleEndian.AppendUint16(out, uint16(format))
	out = binary.LittleEndian.AppendUint16(out, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(meta)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(pay)))
	out = append(out, meta...)
	out = append(out, pay...)
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, crcTab))
	if len(out) > MaxFileSize {
		return nil, fmt.Errorf("%w: encoded model is %d bytes, limit %d", ErrTooLarge, len(out), MaxFileSize)
	}
	return out, nil
}

// generatedPrefix reports whether names are prefix+"0", prefix+"1", ... and
// returns the prefix: a wide model's names then cost a few bytes, not a few
// bytes per feature, and the file shrinks with its weights.
func generatedPrefix(names []string) (string, bool) {
	if len(names) == 0 || !strings.HasSuffix(names[0], "0") {
		return "", false
	}
	prefix := names[0][:len(names[0])-1]
	var buf [20]byte
	for i, f := range names {
		d := strconv.AppendInt(buf[:0], int64(i), 10)
		if len(f) != len(prefix)+len(d) || !strings.HasPrefix(f, prefix) || f[len(prefix):] != string(d) {
			return "", false
		}
	}
	return prefix, true
}

// generateNames returns prefix+"0" ... prefix+(n-1).
func generateNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = prefix + strconv.Itoa(i)
	}
	return names
}

// payloadSize is the number of payload bytes m encodes to.
func (m *Model) payloadSize(identity bool) int {
	return payloadSize(m.Scheme, len(m.Features), identity, m.Min != nil)
}

func payloadSize(scheme Scheme, n int, identity, ranges bool) int {
	s := 4
	if !identity {
		s += 8 * n
	}
	if ranges {
		s += 8 * n
	}
	return s + weightBytes(scheme, n)
}

// format returns the format version m is written in: 1 when it has
// nothing that needs version 2, so older builds keep reading it.
func (m *Model) format() int {
	if m.Preprocessing == nil && m.Min == nil && !m.hasTargetStats() {
		return 1
	}
	return 2
}

func (m *Model) hasTargetStats() bool {
	return m.TargetMean != 0 || m.TargetStd != 0 || m.TargetMin != 0 || m.TargetMax != 0
}

// appendV2Meta appends the metadata format version 2 adds.
func (m *Model) appendV2Meta(meta []byte) []byte {
	var flags uint8
	if m.hasTargetStats() {
		flags |= statsTarget
	}
	if m.Min != nil {
		flags |= statsRanges
	}
	meta = append(meta, flags)
	if flags&statsTarget != 0 {
		for _, v := range []float32{m.TargetMean, m.TargetStd, m.TargetMin, m.TargetMax} {
			meta = appendF32(meta, v)
		}
	}
	p := m.Preprocessing
	if p == nil {
		return append(meta, 0)
	}
	meta = append(meta, 1, uint8(p.Missing))
	meta = binary.LittleEndian.AppendUint32(meta, uint32(len(p.Columns)))
	for _, c := range p.Columns {
		meta = appendStr(meta, c.Name)
		ind := uint8(0)
		if c.Indicator {
			ind = 1
		}
		meta = append(meta, uint8(c.Kind), ind)
		meta = appendF32(meta, c.Fill)
		meta = appendStr(meta, c.FillCategory)
		meta = append(meta, c.HashBits)
		meta = binary.LittleEndian.AppendUint32(meta, uint32(len(c.Categories)))
		for _, v := range c.Categories {
			meta = appendStr(meta, v)
		}
	}
	return meta
}

// v2MetaSize is the size of what appendV2Meta appends.
func (m *Model) v2MetaSize() int {
	size := 2
	if m.hasTargetStats() {
		size += 16
	}
	if p := m.Preprocessing; p != nil {
		size += 1 + 4
		for _, c := range p.Columns {
			size += 2 + len(c.Name) + 2 + 4 + 2 + len(c.FillCategory) + 1 + 4
			for _, v := range c.Categories {
				size += 2 + len(v)
			}
		}
	}
	return size
}

// readV2Meta reads what appendV2Meta wrote and reports whether the
// payload holds feature ranges.
func (m *Model) readV2Meta(r *reader) (ranges bool) {
	flags := r.u8("stats flags")
	if r.err == nil && flags&^(statsTarget|statsRanges) != 0 {
		r.fail("unknown stats flags %#02x", flags)
	}
	if flags&statsTarget != 0 {
		m.TargetMean = r.f32("target mean")
		m.TargetStd = r.f32("target std")
		m.TargetMin = r.f32("target min")
		m.TargetMax = r.f32("target max")
	}
	switch has := r.u8("preprocessing flag"); {
	case r.err != nil:
	case has == 0:
	case has == 1:
		p := &Preprocessing{Missing: MissingPolicy(r.u8("missing policy"))}
		k := r.count(MaxFeatures, 15, "columns")
		if r.err == nil {
			p.Columns = make([]Column, k)
		}
		for i := range p.Columns {
			c := &p.Columns[i]
			c.Name = r.str("column name")
			c.Kind = ColumnKind(r.u8("column kind"))
			ind := r.u8("indicator flag")
			if r.err == nil && ind > 1 {
				r.fail("indicator flag %d", ind)
			}
			c.Indicator = ind == 1
			c.Fill = r.f32("fill value")
			c.FillCategory = r.str("fill category")
			c.HashBits = r.u8("hash bits")
			if nc := r.count(MaxFeatures, 2, "categories"); r.err == nil && nc > 0 {
				c.Categories = make([]string, nc)
				for j := range c.Categories {
					c.Categories[j] = r.str("category")
				}
			}
			if r.err != nil {
				break
			}
		}
		m.Preprocessing = p
	default:
		r.fail("preprocessing flag %d", has)
	}
	return flags&statsRanges != 0
}

// weightBytes is the size of n weights stored with scheme s.
func weightBytes(s Scheme, n int) int {
	switch s {
	case Q8:
		return 4*simd.Blocks(n) + n
	case Q4:
		return 4*simd.Blocks(n) + simd.Blocks(n)*simd.BlockSize/2
	}
	return 4 * n
}

// identityScaling reports whether m's standardization does nothing, so the
// file can leave Mean and Std out (wide hashed models have no scaling).
func (m *Model) identityScaling() bool {
	for i := range m.Mean {
		if m.Mean[i] != 0 || m.Std[i] != 1 {
			return false
		}
	}
	return true
}

// validate checks that m's fields agree with each other.
func (m *Model) validate() error {
	n := len(m.Features)
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidModel, fmt.Sprintf(format, a...))
	}
	if n > MaxFeatures {
		return fmt.Errorf("%w: %d features, limit %d", ErrTooLarge, n, MaxFeatures)
	}
	if len(m.Mean) != n || len(m.Std) != n || len(m.Weights) != n {
		return bad("%d features but %d means, %d stds, %d weights", n, len(m.Mean), len(m.Std), len(m.Weights))
	}
	switch m.Loss {
	case Squared, Huber, Logistic:
	default:
		return bad("unknown loss %q", m.Loss)
	}
	if !finite32(m.Delta) || m.Delta < 0 {
		return bad("Huber delta %v", m.Delta)
	}
	if !finite32(m.Bias) {
		return bad("bias %v", m.Bias)
	}
	seen := make(map[string]bool, n)
	for i, f := range m.Features {
		if f == "" || len(f) > maxName || !utf8.ValidString(f) {
			return bad("feature %d has an empty, overlong or non-UTF-8 name", i)
		}
		if seen[f] {
			return bad("feature %q appears twice", f)
		}
		seen[f] = true
		if !finite32(m.Mean[i]) || !finite32(m.Std[i]) || !(m.Std[i] > 0) {
			return bad("feature %q: mean %v, std %v (std must be finite and > 0)", f, m.Mean[i], m.Std[i])
		}
		if !finite32(m.Weights[i]) {
			return bad("feature %q: weight %v", f, m.Weights[i])
		}
	}
	if len(m.Target) > maxName || !utf8.ValidString(m.Target) {
		return bad("target name is overlong or not UTF-8")
	}
	if !allFinite([]float32{m.TargetMean, m.TargetStd, m.TargetMin, m.TargetMax}) || m.TargetStd < 0 || m.TargetMin > m.TargetMax {
		return bad("target statistics mean %v, std %v, min %v, max %v", m.TargetMean, m.TargetStd, m.TargetMin, m.TargetMax)
	}
	if m.Min != nil || m.Max != nil {
		if len(m.Min) != n || len(m.Max) != n {
			return bad("%d features but %d minima and %d maxima", n, len(m.Min), len(m.Max))
		}
		for i := range m.Min {
			if !finite32(m.Min[i]) || !finite32(m.Max[i]) || m.Min[i] > m.Max[i] {
				return bad("feature %q: range [%v, %v]", m.Features[i], m.Min[i], m.Max[i])
			}
		}
	}
	if m.Preprocessing != nil {
		if err := m.Preprocessing.validate(m.Features); err != nil {
			return err
		}
	}
	if len(m.Metrics) > maxMetrics {
		return bad("%d metrics, limit %d", len(m.Metrics), maxMetrics)
	}
	for k := range m.Metrics {
		if len(k) > maxName || !utf8.ValidString(k) {
			return bad("metric name %q is overlong or not UTF-8", k)
		}
	}
	switch m.Scheme {
	case F32:
	case Q8:
		if m.Q8.N != n || m.Q8.Check() != nil {
			return bad("q8 weights hold %d values for %d features", m.Q8.N, n)
		}
		if !allFinite(m.Q8.Scales) {
			return bad("q8 weights have a non-finite scale")
		}
	case Q4:
		if m.Q4.N != n || m.Q4.Check() != nil {
			return bad("q4 weights hold %d values for %d features", m.Q4.N, n)
		}
		if !allFinite(m.Q4.Scales) {
			return bad("q4 weights have a non-finite scale")
		}
	default:
		return bad("unknown scheme %q", m.Scheme)
	}
	return nil
}

func finite32(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

func allFinite(v []float32) bool {
	for _, x := range v {
		if !finite32(x) {
			return false
		}
	}
	return true
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendF32(b []byte, v float32) []byte {
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
}

func appendF32s(b []byte, v []float32) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// layout is where the sections of a file lie, found from its header alone.
type layout struct {
	version     int
	meta, pay   int // offsets
	crc         int // offset of the CRC; the signed message ends at crc+4
	signed      bool
	metaLen, pl int
}

// parseLayout reads b's header and checks that the lengths it gives add up
// to len(b), with or without a signature trailer. It does not check the CRC.
func parseLayout(b []byte) (layout, error) {
	if len(b) > MaxFileSize {
		return layout{}, fmt.Errorf("%w: file is %d bytes, limit %d", ErrTooLarge, len(b), MaxFileSize)
	}
	if len(b) < len(magic) || [4]byte(b[:4]) != magic {
		return layout{}, ErrNotModel
	}
	if len(b) < headerSize {
		return layout{}, &FormatError{len(b), fmt.Sprintf("truncated header: %d of %d bytes", len(b), headerSize)}
	}
	v := int(binary.LittleEndian.Uint16(b[4:]))
	if v == 0 || v > FormatVersion {
		return layout{}, fmt.Errorf("%w: %d (this build reads 1 to %d)", ErrUnsupportedVersion, v, FormatVersion)
	}
	if f := binary.LittleEndian.Uint16(b[6:]); f&^knownFlags != 0 {
		return layout{}, &FormatError{6, fmt.Sprintf("unknown flags %#04x", f)}
	}
	ml := uint64(binary.LittleEndian.Uint32(b[8:]))
	pl := uint64(binary.LittleEndian.Uint32(b[12:]))
	end := uint64(headerSize) + ml + pl + crcSize // no overflow: each term < 2^33
	l := layout{version: v, meta: headerSize, pay: headerSize + int(min(ml, MaxFileSize)),
		metaLen: int(min(ml, MaxFileSize)), pl: int(min(pl, MaxFileSize))}
	switch {
	case uint64(len(b)) == end:
	case uint64(len(b)) == end+sigSize && [4]byte(b[end:end+4]) == sigTag:
		l.signed = true
	case uint64(len(b)) < end:
		return layout{}, &FormatError{len(b), fmt.Sprintf("truncated: header announces %d bytes, file has %d", end, len(b))}
	default:
		return layout{}, &FormatError{int(end), fmt.Sprintf("%d unexpected bytes after the checksum", uint64(len(b))-end)}
	}
	l.crc = int(end) - crcSize
	return l, nil
}

// Decode parses a .lnm file of any format version this build reads. It
// checks the structure and the CRC-32C, but not the signature: call Verify
// for that. Problems come back as *FormatError or wrap ErrNotModel,
// ErrUnsupportedVersion, ErrChecksum, ErrTooLarge or ErrInvalidModel; Decode
// never panics. The Model owns its memory: it keeps no reference to b.
func Decode(b []byte) (*Model, error) {
	l, err := parseLayout(b)
	if err != nil {
		return nil, err
	}
	want := binary.LittleEndian.Uint32(b[l.crc:])
	if got := crc32.Checksum(b[:l.crc], crcTab); got != want {
		return nil, fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, want, got)
	}
	switch l.version {
	case 1, 2:
		return decodeV1(b, l)
	}
	return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, l.version)
}

// reader walks a section of a file, keeping the file offset for errors.
// After the first error every read returns zero values; check err once.
type reader struct {
	b    []byte // the section
	base int    // file offset of b[0]
	off  int
	err  error
}

func (r *reader) fail(reason string, a ...any) {
	if r.err == nil {
		r.err = &FormatError{r.base + r.off, fmt.Sprintf(reason, a...)}
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("truncated %s: need %d bytes, %d left", what, n, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8(what string) uint8 {
	if p := r.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if p := r.take(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if p := r.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if p := r.take(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) f32(what string) float32 { return math.Float32frombits(r.u32(what)) }

func (r *reader) str(what string) string {
	n := int(r.u16(what))
	if n > maxName {
		r.fail("%s is %d bytes, limit %d", what, n, maxName)
		return ""
	}
	p := r.take(n, what)
	if p != nil && !utf8.Valid(p) {
		r.fail("%s is not UTF-8", what)
	}
	return string(p)
}

// f32s reads n float32 values; the caller has bounded n by the bytes left.
func (r *reader) f32s(n int, what string) []float32 {
	p := r.take(4*n, what)
	if p == nil {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return v
}

// count reads a uint32 count and refuses it if it exceeds limit or if the
// rest of the section cannot hold count items of at least minSize bytes:
// nothing is allocated for a count the file cannot back.
func (r *reader) count(limit, minSize int, what string) int {
	at := r.off
	c := r.u32(what)
	if r.err != nil {
		return 0
	}
	if uint64(c) > uint64(limit) {
		r.off = at
		r.err = fmt.Errorf("%w: %d %s, limit %d (at byte %d)", ErrTooLarge, c, what, limit, r.base+at)
		return 0
	}
	if uint64(c)*uint64(minSize) > uint64(len(r.b)-r.off) {
		r.off = at
		r.fail("%d %s cannot fit in the %d bytes left", c, what, len(r.b)-r.off-4)
		return 0
	}
	return int(c)
}

// decodeV1 decodes format versions 1 and 2 (2 extends 1; see the top of
// this file).
func decodeV1(b []byte, l layout) (*Model, error) {
	mr := &reader{b: b[l.meta:l.pay], base: l.meta}
	m := &Model{}
	m.Version = int64(mr.u64("version"))
	m.Parent = int64(mr.u64("parent"))
	if c := int64(mr.u64("created time")); c != 0 {
		m.Created = time.Unix(0, c).UTC()
	}
	m.Target = mr.str("target name")
	m.Loss = Loss(mr.str("loss"))
	m.Delta = mr.f32("huber delta")
	m.Scheme = Scheme(mr.str("scheme"))
	if bs := mr.u16("block size"); mr.err == nil && bs != simd.BlockSize {
		mr.fail("block size %d, this build uses %d", bs, simd.BlockSize)
	}
	scaling := mr.u8("scaling kind")
	if mr.err == nil && scaling != scalingIdentity && scaling != scalingStored {
		mr.fail("unknown scaling kind %d", scaling)
	}
	// A listed name takes at least 2 bytes, which bounds n by the metadata
	// left; generated names are bounded by the payload check below, before
	// they are made.
	n := mr.count(MaxFeatures, 0, "features")
	naming := mr.u8("naming kind")
	var prefix string
	switch {
	case mr.err != nil:
	case naming == namesListed:
		if uint64(n)*2 > uint64(len(mr.b)-mr.off) {
			mr.fail("%d feature names cannot fit in the %d bytes left", n, len(mr.b)-mr.off)
			break
		}
		m.Features = make([]string, n)
		for i := range m.Features {
			m.Features[i] = mr.str("feature name")
		}
	case naming == namesGenerated:
		prefix = mr.str("feature name prefix")
	default:
		mr.fail("unknown naming kind %d", naming)
	}
	if k := mr.count(maxMetrics, 10, "metrics"); mr.err == nil && k > 0 {
		m.Metrics = make(map[string]float64, k)
		for range k {
			name := mr.str("metric name")
			m.Metrics[name] = math.Float64frombits(mr.u64("metric value"))
		}
	}
	ranges := false
	if l.version >= 2 && mr.err == nil {
		ranges = m.readV2Meta(mr)
	}
	if mr.err == nil && mr.off != len(mr.b) {
		mr.fail("%d unexpected bytes at the end of the metadata", len(mr.b)-mr.off)
	}
	if mr.err != nil {
		return nil, mr.err
	}
	switch m.Scheme {
	case F32, Q8, Q4:
	default:
		return nil, &FormatError{l.meta, fmt.Sprintf("unknown scheme %q", m.Scheme)}
	}

	// The payload's size follows from n and the scheme: check it whole
	// before allocating any of it.
	pr := &reader{b: b[l.pay:l.crc], base: l.pay}
	identity := scaling == scalingIdentity
	if want := payloadSize(m.Scheme, n, identity, ranges); want != len(pr.b) {
		return nil, &FormatError{l.pay, fmt.Sprintf("payload is %d bytes, %d %s features need %d", len(pr.b), n, m.Scheme, want)}
	}
	if naming == namesGenerated {
		m.Features = generateNames(prefix, n)
	}
	m.Bias = pr.f32("bias")
	if identity {
		m.Mean = make([]float32, n)
		m.Std = make([]float32, n)
		for i := range m.Std {
			m.Std[i] = 1
		}
	} else {
		m.Mean = pr.f32s(n, "means")
		m.Std = pr.f32s(n, "stds")
	}
	if ranges {
		m.Min = pr.f32s(n, "feature minima")
		m.Max = pr.f32s(n, "feature maxima")
	}
	m.Weights = make([]float32, n)
	switch m.Scheme {
	case F32:
		m.Weights = pr.f32s(n, "weights")
	case Q8:
		m.Q8 = simd.NewQ8(n)
		copy(m.Q8.Scales, pr.f32s(simd.Blocks(n), "q8 scales"))
		for i, v := range pr.take(n, "q8 weights") {
			m.Q8.Q[i] = int8(v)
		}
		for k := range m.Q8.Sums {
			var s int32
			for _, q := range m.Q8.Q[k*simd.BlockSize : (k+1)*simd.BlockSize] {
				s += int32(q)
			}
			m.Q8.Sums[k] = s
		}
		if pr.err == nil && allFinite(m.Q8.Scales) {
			simd.DequantizeQ8(m.Weights, m.Q8)
		}
	case Q4:
		m.Q4 = simd.NewQ4(n)
		copy(m.Q4.Scales, pr.f32s(simd.Blocks(n), "q4 scales"))
		copy(m.Q4.Q, pr.take(len(m.Q4.Q), "q4 weights"))
		if pr.err == nil && allFinite(m.Q4.Scales) {
			simd.DequantizeQ4(m.Weights, m.Q4)
		}
	}
	if pr.err != nil {
		return nil, pr.err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w (at byte %d)", err, l.meta)
	}
	return m, nil
}

// FileSize returns the number of bytes m's unsigned .lnm file takes with
// scheme s (add 76 for a signature), without encoding it.
func (m *Model) FileSize(s Scheme) int {
	size := headerSize + crcSize
	size += 8*3 + 2 + len(m.Target) + 2 + len(m.Loss) + 4 + 2 + len(s) + 2 + 1 + 4 + 1
	if prefix, ok := generatedPrefix(m.Features); ok {
		size += 2 + len(prefix)
	} else {
		for _, f := range m.Features {
			size += 2 + len(f)
		}
	}
	size += 4
	for k := range m.Metrics {
		size += 2 + len(k) + 8
	}
	if m.format() >= 2 {
		size += m.v2MetaSize()
	}
	c := *m
	c.Scheme = s
	return size + c.payloadSize(m.identityScaling())
}

// Clone returns a deep copy of m.
func (m *Model) Clone() *Model {
	c := *m
	c.Features = slices.Clone(m.Features)
	c.Mean = slices.Clone(m.Mean)
	c.Std = slices.Clone(m.Std)
	c.Weights = slices.Clone(m.Weights)
	c.Min = slices.Clone(m.Min)
	c.Max = slices.Clone(m.Max)
	c.Preprocessing = m.Preprocessing.Clone()
	c.Q8 = simd.Q8{N: m.Q8.N, Q: slices.Clone(m.Q8.Q), Scales: slices.Clone(m.Q8.Scales), Sums: slices.Clone(m.Q8.Sums)}
	c.Q4 = simd.Q4{N: m.Q4.N, Q: slices.Clone(m.Q4.Q), Scales: slices.Clone(m.Q4.Scales)}
	if m.Metrics != nil {
		c.Metrics = make(map[string]float64, len(m.Metrics))
		for k, v := range m.Metrics {
			c.Metrics[k] = v
		}
	}
	return &c
}

// ReadFile reads and decodes the .lnm file at path. It returns the model and
// the file's bytes (for Verify or a store); it does not verify a signature.
// A file larger than MaxFileSize is refused before it is read whole.
func ReadFile(path string) (*Model, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > MaxFileSize {
		return nil, nil, fmt.Errorf("read model %q: %w: %d bytes, limit %d", path, ErrTooLarge, st.Size(), MaxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read model %q: %w", path, err)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("read model %q: %w", path, err)
	}
	return m, b, nil
}

// WriteFile writes file to path so that a crash leaves either the old file
// or the new one: it writes a temporary file in the same directory, syncs
// it, renames it over path and syncs the directory. The file is mode 0644.
func WriteFile(path string, file []byte) error {
	return writeAtomic(path, file, 0o644)
}

func writeAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// FileFormat returns the format version a .lnm file's header declares, after
// checking that its section lengths add up (not its CRC).
func FileFormat(file []byte) (int, error) {
	l, err := parseLayout(file)
	if err != nil {
		return 0, err
	}
	return l.version, nil
}
