package model

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// Table is a CSV file held in memory as raw input values (see
// TableReader), with the statistics of every input column.
type Table struct {
	Inputs  []string
	Text    []bool
	Target  string
	Raw     []float32 // Len() rows of len(Inputs) values
	Y       []float32
	Stats   []ColumnStats
	Dropped int64 // rows dropped while reading (missing target, DropMissing)
}

// Len returns the number of rows.
func (t *Table) Len() int {
	if len(t.Inputs) == 0 {
		return len(t.Y)
	}
	return len(t.Raw) / len(t.Inputs)
}

// LoadTable reads every row of r into memory, parsing on every core. size,
// the file's size if known (else 0), lets it allocate the rows once.
func LoadTable(ctx context.Context, r *TableReader, size int64) (*Table, error) {
	k := len(r.inputs)
	t := &Table{Inputs: r.inputs, Text: r.text, Target: r.opt.Target}
	if size > 0 && r.avgLine > 0 {
		// A little over the estimate: untouched capacity costs address
		// space, not memory, and regrowing would double the peak.
		rows := int(float64(size)/r.avgLine*1.05) + 1024
		t.Raw = make([]float32, 0, rows*k)
		if r.target >= 0 {
			t.Y = make([]float32, 0, rows)
		}
	}
	var acc statsAcc
	err := r.Scan(ctx, func(b *Block) error {
		t.Raw = append(t.Raw, b.Raw...)
		t.Y = append(t.Y, b.Y...)
		t.Dropped += b.Dropped
		return acc.add(b)
	})
	if err != nil {
		return nil, err
	}
	t.Stats = acc.finish()
	if r.target < 0 {
		t.Y = make([]float32, t.Len())
	}
	return t, nil
}

// ScanStats reads every row of r once and returns the statistics of its
// input columns and of its target, the number of rows kept and dropped:
// the first pass of streaming training.
func ScanStats(ctx context.Context, r *TableReader) (stats []ColumnStats, target ColumnStats, rows, dropped int64, err error) {
	var acc statsAcc
	var ty statsAcc
	err = r.Scan(ctx, func(b *Block) error {
		rows += int64(b.Rows)
		dropped += b.Dropped
		if b.Y != nil {
			yb := Block{Stats: []ColumnStats{numericStats(r.opt.Target, b.Y)}}
			if err := ty.add(&yb); err != nil {
				return err
			}
		}
		return acc.add(b)
	})
	if err != nil {
		return nil, ColumnStats{}, 0, 0, err
	}
	if ys := ty.finish(); len(ys) == 1 {
		target = ys[0]
	}
	return acc.finish(), target, rows, dropped, nil
}

// numericStats returns the (unfinished) statistics of the values v.
func numericStats(name string, v []float32) ColumnStats {
	st := ColumnStats{Name: name, Min: float32(math.Inf(1)), Max: float32(math.Inf(-1))}
	if len(v) == 0 {
		return st
	}
	shift := float64(v[0])
	var s1 float64
	for _, x := range v {
		d := float64(x) - shift
		s1 += d
		st.m2 += d * d
		st.Min, st.Max = min(st.Min, x), max(st.Max, x)
	}
	st.N = int64(len(v))
	st.Mean = shift + s1/float64(st.N)
	st.m2 -= s1 * s1 / float64(st.N)
	return st
}

// Summary returns the mean, standard deviation, minimum and maximum of a
// numeric column's statistics, as float32.
func (s *ColumnStats) Summary() (mean, std, lo, hi float32) {
	return float32(s.Mean), float32(s.Std), s.Min, s.Max
}

// statsAcc merges the column statistics of blocks, in file order.
type statsAcc struct {
	s []ColumnStats
}

func (a *statsAcc) add(b *Block) error {
	if a.s == nil {
		a.s = make([]ColumnStats, len(b.Stats))
		for i, st := range b.Stats {
			a.s[i] = ColumnStats{Name: st.Name, Text: st.Text, Min: st.Min, Max: st.Max}
			if st.Text {
				a.s[i].hashes, a.s[i].counts = map[uint32]string{}, map[uint32]int64{}
			}
		}
	}
	for i := range b.Stats {
		if err := a.s[i].merge(&b.Stats[i]); err != nil {
			return err
		}
	}
	return nil
}

// merge folds o (a later block) into s: Chan et al.'s pairwise update for
// the mean and the sum of squared deviations.
func (s *ColumnStats) merge(o *ColumnStats) error {
	s.Missing += o.Missing
	if s.Text {
		s.N += o.N
		s.Overflow = s.Overflow || o.Overflow
		for h, c := range o.counts {
			str := o.hashes[h]
			if old, ok := s.hashes[h]; ok {
				if old != str {
					return fmt.Errorf("csv: column %q: categories %q and %q share a hash; rename one", s.Name, old, str)
				}
			} else if len(s.hashes) >= maxTracked {
				s.Overflow = true
				continue
			} else {
				s.hashes[h] = str
			}
			s.counts[h] += c
		}
		return nil
	}
	if o.N == 0 {
		return nil
	}
	n := float64(s.N + o.N)
	d := o.Mean - s.Mean
	s.m2 += o.m2 + d*d*float64(s.N)*float64(o.N)/n
	s.Mean += d * float64(o.N) / n
	s.N += o.N
	s.Min = min(s.Min, o.Min)
	s.Max = max(s.Max, o.Max)
	return nil
}

func (a *statsAcc) finish() []ColumnStats {
	for i := range a.s {
		s := &a.s[i]
		if s.Text {
			s.Counts = make(map[string]int64, len(s.counts))
			for h, c := range s.counts {
				s.Counts[s.hashes[h]] = c
			}
			s.hashes, s.counts = nil, nil
			continue
		}
		if s.N == 0 {
			s.Min, s.Max = 0, 0
		} else {
			s.Std = math.Sqrt(max(s.m2, 0) / float64(s.N))
		}
	}
	return a.s
}

// PrepOptions say how BuildPreprocessing turns columns into features.
type PrepOptions struct {
	// MaxCategories is the most distinct values a text column may have to
	// be one-hot encoded; default 100.
	MaxCategories int
	// HashBits, if not 0, hashes text columns with more than MaxCategories
	// values into 2^HashBits features; if 0 such a column is an error.
	HashBits uint8
	// Indicators adds a missing-indicator feature for every column that
	// had a missing value in training.
	Indicators bool
	// Missing is the policy stored in the model.
	Missing MissingPolicy
}

// TooManyCategoriesError is returned by BuildPreprocessing for a text
// column with too many distinct values to one-hot encode.
type TooManyCategoriesError struct {
	Column   string
	Distinct int // at least this many
	Limit    int
}

func (e *TooManyCategoriesError) Error() string {
	return fmt.Sprintf("column %q is text with %d or more distinct values, too many to one-hot encode (limit %d): "+
		"hash it into 2^B features with --hash-bits B, raise --max-categories, or leave it out with --ignore %s",
		e.Column, e.Distinct, e.Limit, e.Column)
}

// BuildPreprocessing returns the preprocessing for columns with the
// training statistics stats: numeric columns imputed with their mean, text
// columns one-hot encoded over their categories (sorted) and imputed with
// the most frequent one, or hashed when they have too many.
func BuildPreprocessing(stats []ColumnStats, opt PrepOptions) (*Preprocessing, error) {
	if opt.MaxCategories == 0 {
		opt.MaxCategories = 100
	}
	if opt.HashBits > MaxHashBits {
		return nil, fmt.Errorf("hash bits %d, at most %d", opt.HashBits, MaxHashBits)
	}
	p := &Preprocessing{Missing: opt.Missing}
	for _, s := range stats {
		c := Column{Name: s.Name, Indicator: opt.Indicators && s.Missing > 0}
		if !s.Text {
			c.Fill = float32(s.Mean)
			p.Columns = append(p.Columns, c)
			continue
		}
		cats := make([]string, 0, len(s.Counts))
		for v := range s.Counts {
			cats = append(cats, v)
		}
		sort.Strings(cats)
		for _, v := range cats {
			if c.FillCategory == "" || s.Counts[v] > s.Counts[c.FillCategory] {
				c.FillCategory = v
			}
		}
		if s.Overflow || len(cats) > opt.MaxCategories {
			if opt.HashBits == 0 {
				return nil, &TooManyCategoriesError{Column: s.Name, Distinct: len(cats), Limit: opt.MaxCategories}
			}
			c.Kind, c.HashBits = Hashed, opt.HashBits
		} else {
			c.Kind, c.Categories = OneHot, cats
		}
		p.Columns = append(p.Columns, c)
	}
	if w := len(p.FeatureNames()); w > MaxFeatures {
		return nil, fmt.Errorf("%w: the columns expand to %d features, limit %d", ErrTooLarge, w, MaxFeatures)
	}
	return p, nil
}

// FeatureRanges returns each model feature's range in training: a numeric
// column's [min, max] (its fill if it had no value), [0, 1] for one-hot,
// hashed and indicator features.
func (p *Preprocessing) FeatureRanges(stats []ColumnStats) (lo, hi []float32) {
	for i, c := range p.Columns {
		w := c.Width()
		if c.Kind == Numeric {
			s := stats[i]
			a, b := s.Min, s.Max
			if s.N == 0 {
				a, b = c.Fill, c.Fill
			}
			lo, hi = append(lo, a), append(hi, b)
			w--
			if c.Indicator {
				lo, hi = append(lo, 0), append(hi, 1)
			}
			continue
		}
		for range w {
			lo, hi = append(lo, 0), append(hi, 1)
		}
	}
	return lo, hi
}

// identity reports whether p maps raw rows of inputs to features one to
// one, apart from imputing: only numeric columns, no indicators.
func (p *Preprocessing) identity(inputs []string) bool {
	if len(p.Columns) != len(inputs) {
		return false
	}
	for i, c := range p.Columns {
		if c.Kind != Numeric || c.Indicator || c.Name != inputs[i] {
			return false
		}
	}
	return true
}

// Dataset returns t's rows as model features under p (its columns must be
// t's inputs, in order). When p only imputes numeric columns the dataset
// takes over t's memory, imputing in place: t must not be used afterwards.
func (t *Table) Dataset(p *Preprocessing) (*Dataset, error) {
	names := p.FeatureNames()
	if !slices.Equal(p.Inputs(), t.Inputs) {
		return nil, fmt.Errorf("preprocessing columns %v are not the table's %v", p.Inputs(), t.Inputs)
	}
	n := t.Len()
	ds := &Dataset{Names: names, Label: t.Target, Y: t.Y}
	if p.identity(t.Inputs) {
		k := len(t.Inputs)
		fill := make([]float32, k)
		for i, c := range p.Columns {
			fill[i] = c.Fill
		}
		for r := range n {
			row := t.Raw[r*k : (r+1)*k]
			for i, v := range row {
				if v != v {
					row[i] = fill[i]
				}
			}
		}
		ds.X = t.Raw
		t.Raw = nil
		return ds, nil
	}
	e := NewEncoder(&Model{Features: names, Preprocessing: p})
	d, k := len(names), len(t.Inputs)
	ds.X = make([]float32, n*d)
	for r := range n {
		if _, _, err := e.encodeRaw(ds.X[r*d:(r+1)*d], t.Raw[r*k:(r+1)*k]); err != nil {
			return nil, fmt.Errorf("row %d: %w", r+1, err)
		}
	}
	t.Raw = nil
	return ds, nil
}

// TargetStats returns the statistics of a target column's values.
func TargetStats(ys []float32) ColumnStats {
	var acc statsAcc
	b := Block{Stats: []ColumnStats{numericStats("", ys)}}
	acc.add(&b)
	return acc.finish()[0]
}

// TableRows reads a TableReader's blocks one row at a time, as a Rewinder:
// the streaming trainer, Evaluate and predict take it like any RowSource.
// With TableOptions.Model the rows are the model's features, else the raw
// inputs (valid as features only when they are all numeric). Close it to
// stop the scan it runs in the background.
type TableRows struct {
	t        *TableReader
	ctx      context.Context
	features []string
	width    int
	cur      *Block
	pos      int
	blocks   chan *Block
	ack      chan struct{} // Next is done with the block it received
	done     chan struct{}
	errc     chan error
	stop     context.CancelFunc
	imputed  int64
	unseen   int64
	dropped  int64
	started  bool
}

// Rows returns a row-at-a-time view of r.
func (r *TableReader) Rows(ctx context.Context) *TableRows {
	tr := &TableRows{t: r, ctx: ctx, features: r.inputs, width: len(r.inputs)}
	if r.enc != nil {
		tr.features, tr.width = r.enc.features, r.enc.Width()
	}
	return tr
}

// Features returns the names of the values Next fills.
func (tr *TableRows) Features() []string { return tr.features }

// Target returns the target column's name.
func (tr *TableRows) Target() string { return tr.t.opt.Target }

// Counts returns the missing values imputed, the unseen categories met and
// the rows dropped so far in this pass.
func (tr *TableRows) Counts() (imputed, unseen, dropped int64) {
	return tr.imputed, tr.unseen, tr.dropped
}

func (tr *TableRows) start() {
	ctx, stop := context.WithCancel(tr.ctx)
	tr.stop = stop
	tr.blocks = make(chan *Block)
	tr.ack = make(chan struct{})
	tr.errc = make(chan error, 1)
	tr.done = make(chan struct{})
	tr.cur, tr.pos = nil, 0
	tr.imputed, tr.unseen, tr.dropped = 0, 0, 0
	tr.started = true
	blocks, errc, done := tr.blocks, tr.errc, tr.done
	go func() {
		defer close(done)
		err := tr.t.Scan(ctx, func(b *Block) error {
			// Scan recycles b when fn returns: wait until Next is done
			// with it (it asks for the next block, or Close stops us).
			select {
			case blocks <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-tr.ack:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		close(blocks)
		errc <- err
	}()
}

// Next fills x with the next row and returns its target.
func (tr *TableRows) Next(x []float32) (float32, error) {
	if !tr.started {
		tr.start()
	}
	for tr.cur == nil || tr.pos >= tr.cur.Rows {
		if tr.cur != nil {
			tr.cur = nil
			tr.ack <- struct{}{}
		}
		b, ok := <-tr.blocks
		if !ok {
			if err := <-tr.errc; err != nil {
				tr.errc <- err
				return 0, err
			}
			tr.errc <- nil
			return 0, io.EOF
		}
		tr.cur, tr.pos = b, 0
		tr.imputed += b.Imputed
		tr.unseen += b.Unseen
		tr.dropped += b.Dropped
	}
	b, i := tr.cur, tr.pos
	tr.pos++
	if b.X != nil {
		copy(x, b.X[i*tr.width:(i+1)*tr.width])
	} else {
		copy(x, b.Raw[i*tr.width:(i+1)*tr.width])
	}
	if b.Y == nil {
		return 0, nil
	}
	return b.Y[i], nil
}

// Reset starts the rows over from the first.
func (tr *TableRows) Reset() error {
	tr.Close()
	tr.start()
	return nil
}

// Close stops the background scan and waits for it.
func (tr *TableRows) Close() {
	if !tr.started {
		return
	}
	tr.stop()
	for range tr.blocks {
	}
	<-tr.done
	tr.started = false
}

// OpenModelRows reads a CSV file's rows as m's features: the model's input
// columns are found by name (other columns are ignored) and preprocessed
// as the model says, exactly as in training. target names the target
// column ("" for none); dropMissing drops rows with a missing input
// instead of imputing it. Close the rows when done.
func OpenModelRows(ctx context.Context, r io.Reader, m *Model, target string, dropMissing bool) (*TableRows, error) {
	t, err := OpenTable(r, TableOptions{Target: target, Model: m, DropMissing: dropMissing, Binary: m.Loss == Logistic && target != ""})
	if err != nil {
		return nil, err
	}
	return t.Rows(ctx), nil
}

// SetPreprocessing records in m (trained on the features p expands to)
// its preprocessing and the training statistics: the input columns' and
// the target's.
func (m *Model) SetPreprocessing(p *Preprocessing, stats []ColumnStats, target ColumnStats) {
	m.Preprocessing = p
	m.Min, m.Max = p.FeatureRanges(stats)
	if target.N > 0 {
		m.TargetMean, m.TargetStd, m.TargetMin, m.TargetMax = target.Summary()
	}
}
