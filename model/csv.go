package model

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// CSVError reports a bad CSV input: the 1-based line and column, the
// column's name from the header, and why. Column is 0 when the whole line is
// at fault (a wrong number of fields).
type CSVError struct {
	Line, Column int
	Name         string
	Reason       string
}

func (e *CSVError) Error() string {
	if e.Column == 0 {
		return fmt.Sprintf("csv line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("csv line %d, column %d (%s): %s", e.Line, e.Column, e.Name, e.Reason)
}

// CSVOptions says which columns a CSVReader returns.
type CSVOptions struct {
	// Target names the target column; empty means the file has none to
	// read (predict), and every other column is a feature.
	Target string
	// Features, if not nil, names the feature columns to read, in this
	// order (a model's schema); other columns are ignored. If nil, every
	// column but the target is a feature, in file order.
	Features []string
	// DropNonFinite drops rows that hold a NaN, an infinity or an empty
	// value in a column that is read, instead of failing; Dropped counts
	// them.
	DropNonFinite bool
	// Binary requires the target to be 0 or 1 (a logistic model's label).
	Binary bool
}

// CSVReader streams rows of numbers from a CSV file with a header line.
// The delimiter (comma, semicolon or tab) is detected from the header; a
// field may be wrapped in double quotes and then hold the delimiter (or ""
// for a quote); blank lines are skipped; CRLF line ends are accepted. For
// text columns and missing values, read with a TableReader. It never holds more than one line plus its buffer in
// memory, so it reads files larger than memory.
//
// A CSVReader is not safe for concurrent use.
type CSVReader struct {
	src  io.Reader
	opt  CSVOptions
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	eof  bool

	delim    byte
	header   []string
	features []string
	cols     []int // per file column: feature index, colTarget or colSkip
	hasY     bool
	line     int // the line last returned
	dropped  int64
	bytes    int64 // bytes consumed
}

const (
	colSkip   = -1
	colTarget = -2
)

// ErrNoHeader is returned when a CSV input holds no header line.
var ErrNoHeader = errors.New("csv: no header line")

// NewCSVReader reads the header of r and returns a reader for its rows.
// It fails if the target or a requested feature is not in the header.
func NewCSVReader(r io.Reader, opt CSVOptions) (*CSVReader, error) {
	c := &CSVReader{src: r, opt: opt, buf: make([]byte, 256<<10)}
	if err := c.readHeader(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CSVReader) readHeader() error {
	var line []byte
	for {
		l, err := c.nextLine()
		if err == io.EOF {
			return ErrNoHeader
		}
		if err != nil {
			return err
		}
		if !isBlank(l) {
			line = l
			break
		}
	}
	c.delim = detectDelimiter(line)
	fields, err := splitRecord(line, c.delim, nil)
	if err != nil {
		return &CSVError{Line: c.line, Reason: err.Error()}
	}
	c.features = nil
	c.header = make([]string, len(fields))
	index := map[string]int{}
	for i, f := range fields {
		name := string(bytes.TrimSpace(f))
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		if name == "" {
			return &CSVError{Line: c.line, Column: i + 1, Reason: "empty column name"}
		}
		if _, dup := index[name]; dup {
			return &CSVError{Line: c.line, Column: i + 1, Name: name, Reason: "duplicate column name"}
		}
		index[name] = i
		c.header[i] = name
	}
	c.cols = make([]int, len(fields))
	for i := range c.cols {
		c.cols[i] = colSkip
	}
	if c.opt.Target != "" {
		i, ok := index[c.opt.Target]
		if !ok {
			return fmt.Errorf("csv: target column %q is not in the header (%s)", c.opt.Target, strings.Join(c.header, ","))
		}
		c.cols[i] = colTarget
		c.hasY = true
	}
	if c.opt.Features != nil {
		for k, name := range c.opt.Features {
			i, ok := index[name]
			if !ok {
				return fmt.Errorf("csv: feature column %q is not in the header (%s)", name, strings.Join(c.header, ","))
			}
			if c.cols[i] == colTarget {
				return fmt.Errorf("csv: column %q is both the target and a feature", name)
			}
			c.cols[i] = k
		}
		c.features = append([]string(nil), c.opt.Features...)
	} else {
		for i, name := range c.header {
			if c.cols[i] == colTarget {
				continue
			}
			c.cols[i] = len(c.features)
			c.features = append(c.features, name)
		}
	}
	return nil
}

// Features returns the feature names, in the order Next fills x.
func (c *CSVReader) Features() []string { return c.features }

// Target returns the target column's name, or "" if none is read.
func (c *CSVReader) Target() string { return c.opt.Target }

// Header returns every column name of the file.
func (c *CSVReader) Header() []string { return c.header }

// Line returns the 1-based line number of the row Next returned last.
func (c *CSVReader) Line() int { return c.line }

// Dropped returns how many rows DropNonFinite has dropped so far.
func (c *CSVReader) Dropped() int64 { return c.dropped }

// BytesRead returns how many bytes of input have been consumed.
func (c *CSVReader) BytesRead() int64 { return c.bytes }

// Reset rewinds to the first row, if the underlying reader is an
// io.Seeker; streaming training reads a file more than once.
func (c *CSVReader) Reset() error {
	s, ok := c.src.(io.Seeker)
	if !ok {
		return errors.New("csv: input cannot be rewound")
	}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("csv: rewind: %w", err)
	}
	c.r, c.w, c.eof, c.line, c.dropped, c.bytes = 0, 0, false, 0, 0, 0
	return c.readHeader()
}

// Next reads the next row's features into x, which must hold
// len(Features()) values, and returns its target (0 if none is read). It
// returns io.EOF after the last row, and a *CSVError for a bad row.
func (c *CSVReader) Next(x []float32) (y float32, err error) {
	if len(x) != len(c.features) {
		panic(fmt.Sprintf("model: CSVReader.Next: x holds %d values, want %d", len(x), len(c.features)))
	}
	for {
		line, err := c.nextLine()
		if err != nil {
			return 0, err
		}
		if isBlank(line) {
			continue
		}
		// One pass over the line: each field is parsed as it is found,
		// with no per-field slices (see scanField).
		drop := false
		pos := 0
		for i, k := range c.cols {
			if pos > len(line) {
				return 0, c.fieldCountError(line)
			}
			if k == colSkip {
				_, end, reason := nextField(line, pos, c.delim, nil)
				if reason != "" {
					return 0, &CSVError{Line: c.line, Column: i + 1, Name: c.header[i], Reason: reason}
				}
				pos = end + 1
				continue
			}
			v, end, reason := scanField(line, pos, c.delim)
			pos = end + 1
			if reason == "" && (math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)) {
				reason = "not a finite number"
			}
			if reason != "" {
				if c.opt.DropNonFinite && (reason == "not a finite number" || reason == "empty value") {
					drop = true
					break
				}
				return 0, &CSVError{Line: c.line, Column: i + 1, Name: c.header[i], Reason: reason}
			}
			if k == colTarget {
				if c.opt.Binary && v != 0 && v != 1 {
					return 0, &CSVError{Line: c.line, Column: i + 1, Name: c.header[i], Reason: fmt.Sprintf("a logistic target must be 0 or 1, not %v", v)}
				}
				y = v
			} else {
				x[k] = v
			}
		}
		if (!drop && pos <= len(line)) || (drop && c.fieldCount(line) != len(c.cols)) {
			return 0, c.fieldCountError(line)
		}
		if drop {
			c.dropped++
			continue
		}
		return y, nil
	}
}

func (c *CSVReader) fieldCountError(line []byte) error {
	n := c.fieldCount(line)
	return &CSVError{Line: c.line, Reason: fmt.Sprintf("has %d fields, the header has %d", n, len(c.cols))}
}

// fieldCount returns how many fields line holds (-1 if its quotes are bad).
func (c *CSVReader) fieldCount(line []byte) int {
	f, err := splitRecord(line, c.delim, nil)
	if err != nil {
		return -1
	}
	return len(f)
}

// scanField parses the field of line that starts at pos and returns its
// value, the index of the delimiter that ends it (or len(line)), and a
// reason if it is not a number. Plain decimals are parsed in the same pass
// that finds the delimiter; anything else (spaces, quotes, exponents, long
// mantissas) goes to parseField.
func scanField(line []byte, pos int, delim byte) (float32, int, string) {
	if v, end, ok := scanNumber(line, pos, delim); ok {
		return v, end, ""
	}
	f, end, reason := nextField(line, pos, delim, nil)
	if reason != "" {
		return 0, end, reason
	}
	v, reason := parseField(f)
	return v, end, reason
}

func isBlank(b []byte) bool {
	for _, ch := range b {
		if ch != ' ' && ch != '\t' && ch != '\r' {
			return false
		}
	}
	return true
}

// nextLine returns the next line without its end; the slice is valid until
// the next call.
func (c *CSVReader) nextLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.r:c.w], '\n'); i >= 0 {
			line := c.buf[c.r : c.r+i]
			c.r += i + 1
			c.bytes += int64(i + 1)
			c.line++
			return trimCR(line), nil
		}
		if c.eof {
			if c.r == c.w {
				return nil, io.EOF
			}
			line := c.buf[c.r:c.w]
			c.bytes += int64(c.w - c.r)
			c.r = c.w
			c.line++
			return trimCR(line), nil
		}
		if c.r > 0 {
			n := copy(c.buf, c.buf[c.r:c.w])
			c.r, c.w = 0, n
		}
		if c.w == len(c.buf) {
			c.buf = append(c.buf, make([]byte, len(c.buf))...)
		}
		n, err := c.src.Read(c.buf[c.w:])
		c.w += n
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			return nil, fmt.Errorf("csv: read: %w", err)
		}
	}
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

func unquote(b []byte) []byte {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		return b[1 : len(b)-1]
	}
	return b
}

var pow10f32 = [...]float32{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// parseField parses one numeric field; a non-empty reason says why it is
// not a number. The common case (an optional sign, at most 7 significant
// digits, at most 10 decimals, no exponent) is parsed here exactly: the
// digits form an integer below 2^24 and 10^k is exact in float32, so one
// IEEE division rounds correctly, as strconv.ParseFloat(s, 32) would.
// Anything else goes to strconv, without allocating a string.
func parseField(f []byte) (float32, string) {
	// Trim spaces and quotes by hand: this runs once per value.
	for len(f) > 0 && (f[0] == ' ' || f[0] == '\t') {
		f = f[1:]
	}
	for len(f) > 0 && (f[len(f)-1] == ' ' || f[len(f)-1] == '\t') {
		f = f[:len(f)-1]
	}
	f = unquote(f)
	if len(f) == 0 {
		return 0, "empty value"
	}
	i := 0
	neg := false
	if f[0] == '-' || f[0] == '+' {
		neg = f[0] == '-'
		i = 1
	}
	var m uint32
	digits, frac := 0, -1
	for ; i < len(f); i++ {
		ch := f[i]
		if ch >= '0' && ch <= '9' {
			m = m*10 + uint32(ch-'0')
			digits++
			if m >= 1<<24 || digits > 9 {
				return parseSlow(f)
			}
			if frac >= 0 {
				frac++
			}
			continue
		}
		if ch == '.' && frac < 0 {
			frac = 0
			continue
		}
		return parseSlow(f)
	}
	if digits == 0 || frac > 10 {
		return parseSlow(f)
	}
	v := float32(m)
	if frac > 0 {
		v /= pow10f32[frac]
	}
	if neg {
		v = -v
	}
	return v, ""
}

func parseSlow(f []byte) (float32, string) {
	s := unsafe.String(unsafe.SliceData(f), len(f))
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, "out of range for float32"
		}
		// The message quotes a copy, never the buffer.
		return 0, fmt.Sprintf("not a number: %q", string(f))
	}
	return float32(v), ""
}
