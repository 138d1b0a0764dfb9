package model

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// TableOptions says how to read a CSV file as a table of input columns and
// a target: which columns, which are text, and how missing values count.
//
// The file has a header line. Its delimiter is detected from the header
// (comma, semicolon or tab, whichever occurs most outside quotes) unless
// Delimiter is set. A field may be quoted with double quotes, and then
// holds the delimiter or "" for a quote; a field never spans lines. Blank
// lines are skipped and CRLF line ends accepted. The values "", NA, N/A,
// NaN, nan, null and NULL are missing.
type TableOptions struct {
	// Target names the target column; "" reads none (predict).
	Target string
	// Columns, if not nil, names the input columns in this order; else
	// every column but the target and Ignore, in file order.
	Columns []string
	// Ignore names columns not to read (timestamps, ids).
	Ignore []string
	// Text names columns to read as categories even if they hold numbers.
	// Other columns are text if a value in the first lines of the file
	// (the sample) is neither a number nor missing; a later non-number in
	// a numeric column is an error, never a silent number.
	Text []string
	// Delimiter, if not 0, is the field delimiter; else it is detected.
	Delimiter byte
	// Binary requires the target to be 0 or 1 (a logistic model's label).
	Binary bool
	// DropMissing drops rows with a missing input value or an infinity
	// (Dropped counts them); otherwise missing inputs are kept (NaN, or hash 0 for text)
	// for the preprocessing to impute. A row with a missing target is
	// always dropped and counted.
	DropMissing bool
	// RejectMissing makes a missing input value an error naming its line
	// and column (the model's MissingError policy).
	RejectMissing bool
	// Model, if set, reads the model's input columns with its column
	// kinds (Columns and Text are ignored), and Scan's blocks carry the
	// encoded model features in X.
	Model *Model
	// Workers parse chunks of the file in parallel; default GOMAXPROCS.
	Workers int
}

// ColumnStats summarizes one input column over the rows read: for a
// numeric column its count, mean, standard deviation and range of the
// present values; for a text column its categories and their counts.
type ColumnStats struct {
	Name    string
	Text    bool
	Missing int64 // missing values
	// numeric
	N         int64
	Mean, Std float64
	Min, Max  float32
	// text: count per category, capped at maxTracked distinct values
	Counts   map[string]int64
	Overflow bool // more than maxTracked distinct values: Counts is partial
	m2       float64
	hashes   map[uint32]string // category by hash
	counts   map[uint32]int64
}

// maxTracked bounds the distinct values counted per text column.
const maxTracked = 1 << 16

// A TableReader reads a CSV file as rows of raw input values: numbers,
// with NaN for a missing one, and for text columns the category's
// HashCategory stored in the float32's bits (0 when missing). Scan parses
// chunks of the file on every core and hands them over in file order.
type TableReader struct {
	src     io.Reader
	opt     TableOptions
	delim   byte
	header  []string
	inputs  []string
	text    []bool
	roles   []int // per file column: input index, colTarget or colSkip
	target  int   // file column of the target, -1 if none
	enc     *Encoder
	sample  []byte // the start of the file after the header, already read
	avgLine float64
	hdrLen  int64
	line1   int // the line number of the first line after the header
	scans   int
	// Chunk buffers and blocks are recycled once fn has returned, across
	// scans too: parsing a large file allocates a few of each, not one per
	// chunk, and the heap stays at the size of what the caller keeps.
	bufs, blocks sync.Pool
}

// OpenTable reads the header and a sample of the file and returns a reader
// for its rows. It fails if a named column is not in the header.
func OpenTable(r io.Reader, opt TableOptions) (*TableReader, error) {
	t := &TableReader{src: r, opt: opt, target: -1}
	t.bufs.New = func() any { b := make([]byte, 0, chunkSize+4096); return &b }
	t.blocks.New = func() any { return new(Block) }
	buf := make([]byte, 0, 1<<20)
	buf, err := readAtLeast(r, buf, 1<<20)
	if err != nil {
		return nil, err
	}
	// The header line, skipping blank lines before it.
	line, rest, lines := []byte(nil), buf, 0
	for {
		i := bytes.IndexByte(rest, '\n')
		for i < 0 && len(rest) == cap(buf) {
			return nil, fmt.Errorf("csv: header line longer than %d bytes", cap(buf))
		}
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		lines++
		if !isBlank(line) || rest == nil {
			break
		}
	}
	if isBlank(line) {
		return nil, ErrNoHeader
	}
	line = trimCR(line)
	t.hdrLen = int64(len(buf) - len(rest))
	t.delim = opt.Delimiter
	if t.delim == 0 {
		t.delim = detectDelimiter(line)
	}
	fields, err := splitRecord(line, t.delim, nil)
	if err != nil {
		return nil, &CSVError{Line: lines, Reason: err.Error()}
	}
	index := map[string]int{}
	for i, f := range fields {
		name := strings.TrimSpace(string(f))
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		if name == "" {
			return nil, &CSVError{Line: lines, Column: i + 1, Reason: "empty column name"}
		}
		if _, dup := index[name]; dup {
			return nil, &CSVError{Line: lines, Column: i + 1, Name: name, Reason: "duplicate column name"}
		}
		index[name] = i
		t.header = append(t.header, name)
	}
	if err := t.plan(index); err != nil {
		return nil, err
	}
	t.sample = rest
	t.line1 = lines + 1
	t.infer()
	return t, nil
}

// readAtLeast reads from r into buf until it holds n bytes or r ends.
func readAtLeast(r io.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		k, err := r.Read(buf[len(buf):n])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: read: %w", err)
		}
	}
	return buf, nil
}

// detectDelimiter picks the most frequent of , ; and tab outside quotes.
func detectDelimiter(line []byte) byte {
	var n [3]int
	quoted := false
	for _, c := range line {
		switch c {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				n[0]++
			}
		case ';':
			if !quoted {
				n[1]++
			}
		case '\t':
			if !quoted {
				n[2]++
			}
		}
	}
	best := 0
	for i := range n {
		if n[i] > n[best] {
			best = i
		}
	}
	return ",;\t"[best]
}

// plan assigns each file column its role.
func (t *TableReader) plan(index map[string]int) error {
	opt := &t.opt
	t.roles = make([]int, len(t.header))
	for i := range t.roles {
		t.roles[i] = colSkip
	}
	has := func(name string) (int, error) {
		i, ok := index[name]
		if !ok {
			return 0, fmt.Errorf("csv: column %q is not in the header (%s)", name, strings.Join(t.header, ","))
		}
		return i, nil
	}
	if opt.Target != "" {
		i, err := has(opt.Target)
		if err != nil {
			return fmt.Errorf("csv: target %w", errors.Unwrap(err))
		}
		t.roles[i] = colTarget
		t.target = i
	}
	for _, name := range opt.Ignore {
		if _, err := has(name); err != nil {
			return err
		}
	}
	cols := opt.Columns
	textSet := map[string]bool{}
	for _, name := range opt.Text {
		textSet[name] = true
	}
	if opt.Model != nil {
		t.enc = NewEncoder(opt.Model)
		cols = t.enc.Inputs()
		clear(textSet)
		for _, c := range t.enc.pre.Columns {
			if c.Kind != Numeric {
				textSet[c.Name] = true
			}
		}
	}
	if cols == nil {
		for i, name := range t.header {
			if t.roles[i] != colTarget && !slices.Contains(opt.Ignore, name) {
				cols = append(cols, name)
			}
		}
	}
	for k, name := range cols {
		i, err := has(name)
		if err != nil {
			return err
		}
		if t.roles[i] == colTarget {
			return fmt.Errorf("csv: column %q is both the target and an input", name)
		}
		if t.roles[i] != colSkip {
			return fmt.Errorf("csv: column %q is named twice", name)
		}
		t.roles[i] = k
	}
	for name := range textSet {
		if !slices.Contains(cols, name) {
			return fmt.Errorf("csv: text column %q is not an input column", name)
		}
	}
	t.inputs = slices.Clone(cols)
	t.text = make([]bool, len(cols))
	for k, name := range cols {
		t.text[k] = textSet[name]
	}
	return nil
}

// infer marks as text the columns whose sampled values include one that is
// neither a number nor missing, and measures the mean line length.
func (t *TableReader) infer() {
	s := t.sample
	if t.opt.Model == nil && len(s) == cap(s) { // a full sample: the last line may be cut
		if i := bytes.LastIndexByte(s, '\n'); i >= 0 {
			s = s[:i+1]
		}
	}
	var fields [][]byte
	lines := 0
	// Per input column: sampled values that are numbers, and that are not.
	nums, texts := make([]int, len(t.inputs)), make([]int, len(t.inputs))
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n')
		var line []byte
		if i < 0 {
			line, s = s, nil
		} else {
			line, s = s[:i], s[i+1:]
		}
		lines++
		line = trimCR(line)
		if isBlank(line) || t.opt.Model != nil {
			continue
		}
		var err error
		fields, err = splitRecord(line, t.delim, fields[:0])
		if err != nil || len(fields) != len(t.roles) {
			continue // Scan reports it with its line
		}
		for i, f := range fields {
			k := t.roles[i]
			if k < 0 || t.text[k] {
				continue
			}
			f = bytes.TrimSpace(f)
			if isMissingBytes(f) {
				continue
			}
			if _, reason := parseField(f); reason != "" && reason != "out of range for float32" {
				texts[k]++
			} else {
				nums[k]++
			}
		}
	}
	// Text if most sampled values are not numbers: a numeric column with a
	// stray word stays numeric, and the word is an error naming its line.
	for k := range t.text {
		if texts[k] > nums[k] {
			t.text[k] = true
		}
	}
	if lines > 0 {
		t.avgLine = float64(len(t.sample)) / float64(lines)
	}
}

// Inputs returns the input column names, in the order rows hold them.
func (t *TableReader) Inputs() []string { return t.inputs }

// IsText reports which input columns are text (categories).
func (t *TableReader) IsText() []bool { return t.text }

// Target returns the target column's name, or "".
func (t *TableReader) Target() string { return t.opt.Target }

// Delimiter returns the field delimiter in use.
func (t *TableReader) Delimiter() byte { return t.delim }

// Block is a run of consecutive rows of the file, as Scan hands them over.
type Block struct {
	Rows     int
	FirstRow int64     // index of the first row among all rows kept, from 0
	Raw      []float32 // Rows x len(Inputs()) raw values
	Y        []float32 // targets, if a target is read
	// X holds the model features when TableOptions.Model is set: Rows x
	// the model's width.
	X []float32
	// Imputed and Unseen count the missing values imputed and the unseen
	// categories met while encoding X.
	Imputed, Unseen int64
	Dropped         int64 // rows dropped (missing target, DropMissing)
	Stats           []ColumnStats

	seq  int
	err  error
	line int // first line of the chunk
	buf  []byte
}

// reset empties b for reuse, keeping its memory.
func (b *Block) reset() {
	*b = Block{Raw: b.Raw[:0], Y: b.Y[:0], X: b.X[:0], Stats: b.Stats[:0]}
}

// Scan reads every row of the file and calls fn with consecutive blocks in
// file order; fn must not keep the block. A second Scan rewinds the file,
// which must then be an io.Seeker. The first bad row (in file order) ends
// the scan with a *CSVError; an error from fn ends it with that error.
func (t *TableReader) Scan(ctx context.Context, fn func(*Block) error) error {
	var src io.Reader
	if t.scans == 0 {
		src = io.MultiReader(bytes.NewReader(t.sample), t.src)
	} else {
		s, ok := t.src.(io.Seeker)
		if !ok {
			return errors.New("csv: input cannot be rewound")
		}
		if _, err := s.Seek(t.hdrLen, io.SeekStart); err != nil {
			return fmt.Errorf("csv: rewind: %w", err)
		}
		src = t.src
	}
	t.scans++
	return t.scan(ctx, src, fn)
}

// chunkSize is the unit of parallel parsing.
const chunkSize = 512 << 10

func (t *TableReader) scan(ctx context.Context, src io.Reader, fn func(*Block) error) error {
	workers := t.opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	inflight := 2*workers + 1
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tokens := make(chan struct{}, inflight)
	jobs := make(chan *Block, inflight)
	results := make(chan *Block, inflight)
	var wg sync.WaitGroup
	bufs, blockPool := &t.bufs, &t.blocks

	// The reader cuts the input at line ends into chunks.
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		line := t.line1
		var carry []byte
		eof := false
		for seq := 0; !eof; seq++ {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			bp := bufs.Get().(*[]byte)
			buf := append((*bp)[:0], carry...)
			for {
				var err error
				n := len(buf)
				want := max(chunkSize, 2*n)
				if cap(buf) < want {
					buf = slices.Grow(buf, want-n)
				}
				buf, err = readAtLeast(src, buf, cap(buf))
				if err != nil {
					readErr = err
					cancel()
					return
				}
				if len(buf) < cap(buf) {
					eof = true
				}
				if i := bytes.LastIndexByte(buf, '\n'); i >= 0 && !eof {
					carry = append(carry[:0], buf[i+1:]...)
					buf = buf[:i+1]
					break
				}
				if eof {
					carry = carry[:0]
					break
				}
				// One line longer than the buffer: grow it and read on.
				buf = slices.Grow(buf, len(buf))
			}
			*bp = buf
			b := blockPool.Get().(*Block)
			b.reset()
			b.seq, b.line, b.buf = seq, line, buf
			line += bytes.Count(buf, []byte{'\n'})
			select {
			case jobs <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newRowParser(t)
			for b := range jobs {
				p.parse(b)
				select {
				case results <- b:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	pending := map[int]*Block{}
	next := 0
	var row int64
	var err error
	for b := range results {
		if err != nil {
			continue // drain
		}
		pending[b.seq] = b
		for {
			b, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if b.err != nil {
				err = b.err
				cancel()
				break
			}
			b.FirstRow = row
			row += int64(b.Rows)
			if err = fn(b); err != nil {
				cancel()
				break
			}
			buf := b.buf[:0]
			bufs.Put(&buf)
			b.buf = nil
			blockPool.Put(b)
			<-tokens
		}
	}
	if err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	return ctx.Err()
}

// rowParser parses the lines of a chunk; each worker owns one.
type rowParser struct {
	t      *TableReader
	stats  []ColumnStats // the current block's
	k      int           // inputs
	scr    []byte
	fields [][]byte
	vals   []float32
}

func newRowParser(t *TableReader) *rowParser {
	return &rowParser{t: t, k: len(t.inputs), vals: make([]float32, len(t.inputs))}
}

func (p *rowParser) parse(b *Block) {
	t := p.t
	k := p.k
	if cap(b.Stats) < k {
		b.Stats = make([]ColumnStats, k)
	}
	b.Stats = b.Stats[:k]
	for i := range b.Stats {
		b.Stats[i] = ColumnStats{}
		st := &b.Stats[i]
		st.Name, st.Text = t.inputs[i], t.text[i]
		st.Min, st.Max = float32(math.Inf(1)), float32(math.Inf(-1))
		if st.Text && t.enc == nil {
			st.hashes, st.counts = map[uint32]string{}, map[uint32]int64{}
		}
	}
	p.stats = b.Stats
	shift := make([]float64, k)
	s1 := make([]float64, k)
	var width int
	if t.enc != nil {
		width = t.enc.Width()
	}
	buf := b.buf
	line := b.line - 1
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		var l []byte
		if i < 0 {
			l, buf = buf, nil
		} else {
			l, buf = buf[:i], buf[i+1:]
		}
		line++
		l = trimCR(l)
		if isBlank(l) {
			continue
		}
		y, drop, err := p.row(l, line)
		if err != nil {
			b.err = err
			return
		}
		if drop {
			b.Dropped++
			continue
		}
		if t.enc != nil {
			n := len(b.X)
			b.X = slices.Grow(b.X, width)[:n+width]
			imp, uns, err := t.enc.encodeRaw(b.X[n:], p.vals)
			if err != nil {
				b.err = &CSVError{Line: line, Reason: err.Error()}
				return
			}
			b.Imputed += int64(imp)
			b.Unseen += int64(uns)
		}
		for j, v := range p.vals {
			st := &b.Stats[j]
			if t.text[j] {
				if h := math.Float32bits(v); h == 0 {
					st.Missing++
				} else {
					st.N++
					if st.counts != nil {
						if _, ok := st.hashes[h]; ok {
							st.counts[h]++
						}
					}
				}
				continue
			}
			if v != v {
				st.Missing++
				continue
			}
			if st.N == 0 {
				shift[j] = float64(v)
			}
			st.N++
			d := float64(v) - shift[j]
			s1[j] += d
			st.m2 += d * d
			st.Min = min(st.Min, v)
			st.Max = max(st.Max, v)
		}
		b.Raw = append(b.Raw, p.vals...)
		if t.target >= 0 {
			b.Y = append(b.Y, y)
		}
		b.Rows++
	}
	for j := range b.Stats {
		st := &b.Stats[j]
		if !st.Text && st.N > 0 {
			st.Mean = shift[j] + s1[j]/float64(st.N)
			st.m2 -= s1[j] * s1[j] / float64(st.N)
		}
	}
}

// row parses one line into p.vals and returns its target.
func (p *rowParser) row(l []byte, line int) (y float32, drop bool, err error) {
	t := p.t
	d := t.delim
	pos := 0
	missing := false
	for i, k := range t.roles {
		if pos > len(l) {
			return 0, false, p.countError(l, line)
		}
		if k == colSkip {
			_, end, ferr := nextField(l, pos, d, nil)
			if ferr != "" {
				return 0, false, &CSVError{Line: line, Column: i + 1, Name: t.header[i], Reason: ferr}
			}
			pos = end + 1
			continue
		}
		if k >= 0 && t.text[k] {
			f, end, ferr := nextField(l, pos, d, &p.scr)
			if ferr != "" {
				return 0, false, &CSVError{Line: line, Column: i + 1, Name: t.header[i], Reason: ferr}
			}
			pos = end + 1
			f = bytes.TrimSpace(f)
			var h uint32
			if !isMissingBytes(f) {
				h = hashBytes(f)
				if st := &p.stats[k]; st.counts != nil {
					if s, ok := st.hashes[h]; ok {
						if s != string(f) {
							return 0, false, &CSVError{Line: line, Column: i + 1, Name: t.header[i],
								Reason: fmt.Sprintf("categories %q and %q share a hash; rename one", s, f)}
						}
					} else if len(st.hashes) < maxTracked {
						st.hashes[h] = string(f)
					} else {
						st.Overflow = true
					}
				}
			} else {
				missing = true
			}
			p.vals[k] = math.Float32frombits(h)
			continue
		}
		// A number: the fast path parses plain decimals while it looks for
		// the delimiter.
		v, end, ok := scanNumber(l, pos, d)
		var reason string
		if !ok {
			var f []byte
			f, end, reason = nextField(l, pos, d, &p.scr)
			if reason == "" {
				f = bytes.TrimSpace(f)
				if isMissingBytes(f) {
					v = float32(math.NaN())
				} else {
					v, reason = parseField(f)
					if reason == "" && (v != v || math.IsInf(float64(v), 0)) {
						reason = "not a finite number"
					}
					if reason != "" && strings.HasPrefix(reason, "not a number") && k >= 0 {
						reason += " (the column held only numbers in the first lines of the file; name it in --text to read it as categories, or --ignore it)"
					}
				}
			}
		}
		pos = end + 1
		if reason == "not a finite number" && t.opt.DropMissing {
			reason, drop = "", true
		}
		if reason != "" {
			return 0, false, &CSVError{Line: line, Column: i + 1, Name: t.header[i], Reason: reason}
		}
		if k == colTarget {
			if v != v {
				drop = true
			} else if t.opt.Binary && v != 0 && v != 1 {
				return 0, false, &CSVError{Line: line, Column: i + 1, Name: t.header[i], Reason: fmt.Sprintf("a logistic target must be 0 or 1, not %v", v)}
			}
			y = v
			continue
		}
		if v != v {
			missing = true
		}
		p.vals[k] = v
	}
	if pos <= len(l) {
		return 0, false, p.countError(l, line)
	}
	if missing {
		if t.opt.RejectMissing {
			for k, v := range p.vals {
				if (t.text[k] && math.Float32bits(v) == 0) || (!t.text[k] && v != v) {
					return 0, false, &CSVError{Line: line, Column: slices.Index(t.roles, k) + 1, Name: t.inputs[k], Reason: "missing value (the missing-value policy is error)"}
				}
			}
		}
		if t.opt.DropMissing {
			drop = true
		}
	}
	return y, drop, nil
}

func (p *rowParser) countError(l []byte, line int) error {
	f, err := splitRecord(l, p.t.delim, p.fields[:0])
	p.fields = f
	if err != nil {
		return &CSVError{Line: line, Reason: err.Error()}
	}
	return &CSVError{Line: line, Reason: fmt.Sprintf("has %d fields, the header has %d", len(f), len(p.t.roles))}
}

// scanNumber parses a plain decimal field starting at pos, ending at the
// delimiter or the line's end, in one pass; ok is false for anything else
// (quotes, spaces, exponents, long mantissas, missing values), which the
// caller parses the slow way.
func scanNumber(line []byte, pos int, delim byte) (float32, int, bool) {
	i := pos
	neg := false
	if i < len(line) && (line[i] == '-' || line[i] == '+') {
		neg = line[i] == '-'
		i++
	}
	var m uint32
	digits, frac := 0, -1
	for ; i < len(line); i++ {
		ch := line[i]
		if d := ch - '0'; d <= 9 {
			m = m*10 + uint32(d)
			digits++
			if frac >= 0 {
				frac++
			}
			if m >= 1<<24 {
				return 0, 0, false
			}
			continue
		}
		if ch == '.' && frac < 0 {
			frac = 0
			continue
		}
		break
	}
	if digits == 0 || frac > 10 || (i < len(line) && line[i] != delim) {
		return 0, 0, false
	}
	v := float32(m)
	if frac > 0 {
		v /= pow10f32[frac]
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// nextField returns the field of line starting at pos (unquoted, with ""
// turned into " using *scr when scr is not nil) and the index of the
// delimiter that ends it, or len(line). A quoted field may hold the
// delimiter; text after its closing quote other than spaces is an error.
func nextField(line []byte, pos int, delim byte, scr *[]byte) ([]byte, int, string) {
	start := pos
	for start < len(line) && (line[start] == ' ' || (line[start] == '\t' && delim != '\t')) {
		start++
	}
	if start >= len(line) || line[start] != '"' {
		j := bytes.IndexByte(line[pos:], delim)
		if j < 0 {
			return line[pos:], len(line), ""
		}
		return line[pos : pos+j], pos + j, ""
	}
	i := start + 1
	escaped := false
	for {
		j := bytes.IndexByte(line[i:], '"')
		if j < 0 {
			return nil, 0, "unterminated quoted field"
		}
		i += j
		if i+1 < len(line) && line[i+1] == '"' {
			escaped = true
			i += 2
			continue
		}
		break
	}
	f := line[start+1 : i]
	end := i + 1
	for end < len(line) && line[end] != delim {
		if line[end] != ' ' && line[end] != '\t' {
			return nil, 0, "text after a closing quote"
		}
		end++
	}
	if escaped && scr != nil {
		*scr = append((*scr)[:0], f...)
		*scr = bytes.ReplaceAll(*scr, []byte(`""`), []byte(`"`))
		f = *scr
	}
	return f, end, ""
}

// splitRecord appends the fields of line to dst (unquoted; a quoted field
// with "" keeps a fresh copy).
func splitRecord(line []byte, delim byte, dst [][]byte) ([][]byte, error) {
	pos := 0
	for {
		var scr []byte
		f, end, reason := nextField(line, pos, delim, &scr)
		if reason != "" {
			return dst, errors.New(reason)
		}
		dst = append(dst, f)
		if end >= len(line) {
			return dst, nil
		}
		pos = end + 1
	}
}

func isMissingBytes(f []byte) bool {
	switch string(f) {
	case "", "NA", "N/A", "NaN", "nan", "null", "NULL", "Null":
		return true
	}
	return false
}

// encodeRaw is Encode for a raw row as a TableReader reads it (NaN or hash
// 0 for a missing value); it returns how many values it imputed and how
// many categories were unseen.
func (e *Encoder) encodeRaw(dst, raw []float32) (imputed, unseen int, err error) {
	for i := range e.pre.Columns {
		c := &e.pre.Columns[i]
		off := e.offset[i]
		v := raw[i]
		var miss bool
		switch c.Kind {
		case Numeric:
			miss = v != v
			if miss {
				v = c.Fill
			}
			dst[off] = v
		default:
			w := c.Width()
			clear(dst[off : off+w])
			h := math.Float32bits(v)
			miss = h == 0
			code := e.fillCode[i]
			if !miss {
				if c.Kind == Hashed {
					code = HashBucket(h, c.HashBits)
				} else {
					code = e.codeHash(i, h)
					if code < 0 {
						unseen++
					}
				}
			}
			if code >= 0 {
				dst[off+code] = 1
			}
		}
		if miss {
			if e.pre.Missing == MissingError {
				return 0, 0, fmt.Errorf("%w: %q", ErrMissingValue, c.Name)
			}
			imputed++
		}
		if c.Indicator {
			w := c.Width()
			dst[off+w-1] = 0
			if miss {
				dst[off+w-1] = 1
			}
		}
	}
	return imputed, unseen, nil
}
