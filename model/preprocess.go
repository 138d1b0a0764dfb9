package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Preprocessing is what a model does to a reading before its linear part,
// in the spirit of a scikit-learn pipeline: it selects input columns
// (Columns, by name), imputes missing values (Column.Fill,
// Column.FillCategory, Missing), one-hot encodes or hashes text columns,
// and may add a missing-indicator feature per column. Standardization
// (Model.Mean, Model.Std) follows on the resulting features.
//
// Columns expand, in order, to the model's features (FeatureNames):
//
//	Numeric  name                             the value itself (Fill if missing)
//	OneHot   name=cat for each of Categories  1 for the reading's category, else 0
//	Hashed   name#0 ... name#(2^HashBits-1)   1 at HashBucket(category), else 0
//	Indicator (any kind)  missing(name)       1 if the value was missing, else 0
//
// A category that training never saw sets no one-hot feature (all zeros)
// and is counted (EncodeReport.Unseen). A missing category takes
// FillCategory (all zeros if that is empty). A model decoded from a format
// version 1 file has no Preprocessing: its inputs are its features, all
// numeric, and a missing value is an error.
//
// For exporters: Numeric with Fill is ONNX's Imputer; OneHot is
// OneHotEncoder with handle_unknown=ignore (Categories in order); the
// indicator is MissingIndicator; Model.Mean/Std is Scaler (offset Mean,
// scale 1/Std). Hashed has no ONNX counterpart.
type Preprocessing struct {
	Columns []Column
	Missing MissingPolicy
}

// ColumnKind says how one input column becomes model features.
type ColumnKind uint8

const (
	Numeric ColumnKind = iota // one feature: the number
	OneHot                    // one 0/1 feature per training category
	Hashed                    // 2^HashBits 0/1 features; the category's hash picks one
)

func (k ColumnKind) String() string {
	switch k {
	case Numeric:
		return "numeric"
	case OneHot:
		return "onehot"
	case Hashed:
		return "hashed"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MissingPolicy says what a missing value in a reading does.
type MissingPolicy uint8

const (
	// MissingImpute replaces a missing value with the column's Fill or
	// FillCategory (the training mean or most frequent category).
	MissingImpute MissingPolicy = iota
	// MissingError refuses a reading with a missing value.
	MissingError
)

func (p MissingPolicy) String() string {
	switch p {
	case MissingImpute:
		return "impute"
	case MissingError:
		return "error"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ParseMissingPolicy returns the policy a name stands for ("impute", "error").
func ParseMissingPolicy(s string) (MissingPolicy, error) {
	switch s {
	case "impute", "":
		return MissingImpute, nil
	case "error":
		return MissingError, nil
	}
	return 0, fmt.Errorf("unknown missing-value policy %q (want impute or error)", s)
}

// Column is one input column of a model.
type Column struct {
	Name string
	Kind ColumnKind
	// Fill is the value a missing Numeric value becomes (the training mean).
	Fill float32
	// Categories are a OneHot column's training values, in feature order.
	Categories []string
	// FillCategory is the category a missing OneHot or Hashed value
	// becomes (the most frequent in training); "" sets no feature.
	FillCategory string
	// HashBits is a Hashed column's width: 2^HashBits features.
	HashBits uint8
	// Indicator adds a feature after the column's own: 1 when the value
	// was missing, else 0.
	Indicator bool
}

// MaxHashBits bounds Column.HashBits (2^22 = MaxFeatures features).
const MaxHashBits = 22

// Width returns how many model features c expands to.
func (c *Column) Width() int {
	w := 1
	switch c.Kind {
	case OneHot:
		w = len(c.Categories)
	case Hashed:
		w = 1 << c.HashBits
	}
	if c.Indicator {
		w++
	}
	return w
}

// FeatureNames returns the model features p's columns expand to, in order.
func (p *Preprocessing) FeatureNames() []string {
	var names []string
	for i := range p.Columns {
		c := &p.Columns[i]
		switch c.Kind {
		case Numeric:
			names = append(names, c.Name)
		case OneHot:
			for _, v := range c.Categories {
				names = append(names, c.Name+"="+v)
			}
		case Hashed:
			for k := range 1 << c.HashBits {
				names = append(names, c.Name+"#"+strconv.Itoa(k))
			}
		}
		if c.Indicator {
			names = append(names, IndicatorName(c.Name))
		}
	}
	return names
}

// IndicatorName is the name of column's missing-indicator feature.
func IndicatorName(column string) string { return "missing(" + column + ")" }

// Inputs returns the names of the columns a reading gives: p's columns.
func (p *Preprocessing) Inputs() []string {
	names := make([]string, len(p.Columns))
	for i, c := range p.Columns {
		names[i] = c.Name
	}
	return names
}

// Clone returns a deep copy of p (nil for nil).
func (p *Preprocessing) Clone() *Preprocessing {
	if p == nil {
		return nil
	}
	c := &Preprocessing{Missing: p.Missing, Columns: slices.Clone(p.Columns)}
	for i := range c.Columns {
		c.Columns[i].Categories = slices.Clone(c.Columns[i].Categories)
	}
	return c
}

// validate checks p against the model's feature names.
func (p *Preprocessing) validate(features []string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: preprocessing: %s", ErrInvalidModel, fmt.Sprintf(format, a...))
	}
	if p.Missing > MissingError {
		return bad("unknown missing-value policy %d", p.Missing)
	}
	width := 0
	seen := make(map[string]bool, len(p.Columns))
	for i := range p.Columns {
		c := &p.Columns[i]
		if c.Name == "" || len(c.Name) > maxName || !utf8.ValidString(c.Name) {
			return bad("column %d has an empty, overlong or non-UTF-8 name", i)
		}
		if seen[c.Name] {
			return bad("column %q appears twice", c.Name)
		}
		seen[c.Name] = true
		if !finite32(c.Fill) {
			return bad("column %q: fill %v", c.Name, c.Fill)
		}
		if len(c.FillCategory) > maxName || !utf8.ValidString(c.FillCategory) {
			return bad("column %q: fill category is overlong or not UTF-8", c.Name)
		}
		switch c.Kind {
		case Numeric:
			if len(c.Categories) > 0 || c.HashBits != 0 || c.FillCategory != "" {
				return bad("numeric column %q has categories or hash bits", c.Name)
			}
		case OneHot:
			if c.HashBits != 0 {
				return bad("one-hot column %q has hash bits", c.Name)
			}
			cats := make(map[string]bool, len(c.Categories))
			for _, v := range c.Categories {
				if len(v) > maxName || !utf8.ValidString(v) || cats[v] {
					return bad("column %q: category %q is overlong, not UTF-8 or repeated", c.Name, v)
				}
				cats[v] = true
			}
			if c.FillCategory != "" && !cats[c.FillCategory] {
				return bad("column %q: fill category %q is not a category", c.Name, c.FillCategory)
			}
		case Hashed:
			if c.HashBits == 0 || c.HashBits > MaxHashBits || len(c.Categories) > 0 {
				return bad("hashed column %q: %d hash bits (1 to %d), %d categories", c.Name, c.HashBits, MaxHashBits, len(c.Categories))
			}
		default:
			return bad("column %q: unknown kind %d", c.Name, c.Kind)
		}
		if width += c.Width(); width > len(features) {
			return bad("the columns expand to more than the model's %d features", len(features))
		}
	}
	if width != len(features) {
		return bad("the columns expand to %d features, the model has %d", width, len(features))
	}
	if !slices.Equal(p.FeatureNames(), features) {
		return bad("the columns' feature names are not the model's")
	}
	return nil
}

// Errors of encoding a reading (Encoder.Encode, Model.Vector).
var (
	// ErrMissingValue is returned when a reading lacks a value and the
	// model's policy is MissingError; it wraps ErrMissingFeature.
	ErrMissingValue = fmt.Errorf("%w (the model's missing-value policy is error)", ErrMissingFeature)
	// ErrNotNumber is returned when a numeric column gets text that is not
	// a number.
	ErrNotNumber = errors.New("model: value is not a number")
)

// ValueKind says what a Value holds.
type ValueKind uint8

const (
	Missing ValueKind = iota // no value (JSON null, NA, an empty CSV cell)
	Number                   // Value.Num
	Text                     // Value.Str: a category, or a number as text
)

// Value is one raw input value of a reading: a number, a text (a
// category), or missing. The zero Value is missing.
type Value struct {
	Kind ValueKind
	Num  float64
	Str  string
}

// Num returns a number Value.
func Num(v float64) Value { return Value{Kind: Number, Num: v} }

// Str returns a text Value.
func Str(s string) Value { return Value{Kind: Text, Str: s} }

// EncodeReport says what Encode had to fill in: the columns whose value was
// missing and imputed, and the one-hot columns whose category training
// never saw (they set no feature). Encode appends to its slices, so one
// report can be reused after truncating them.
type EncodeReport struct {
	Imputed []string
	Unseen  []string
}

// An Encoder turns readings into a model's input vectors, applying the
// model's Preprocessing. It is immutable and safe for concurrent use; build
// one per model with NewEncoder.
type Encoder struct {
	pre      Preprocessing
	features []string
	offset   []int            // first feature of each column
	index    map[string]int   // column by name
	cats     []map[uint32]int // OneHot column: category hash -> feature
	numCats  []map[string]int // OneHot column: numeric category, canonically spelled -> feature
	fillCode []int            // per column: the FillCategory's feature offset, -1 if none
}

// NewEncoder prepares m's preprocessing. A model without Preprocessing
// (format version 1) gets the identity: its inputs are its features,
// numeric, and a missing value is an error.
func NewEncoder(m *Model) *Encoder {
	e := &Encoder{features: m.Features}
	if m.Preprocessing == nil {
		e.pre.Missing = MissingError
		e.pre.Columns = make([]Column, len(m.Features))
		for i, f := range m.Features {
			e.pre.Columns[i] = Column{Name: f}
		}
	} else {
		e.pre = *m.Preprocessing
	}
	n := len(e.pre.Columns)
	e.offset = make([]int, n)
	e.index = make(map[string]int, n)
	e.cats = make([]map[uint32]int, n)
	e.numCats = make([]map[string]int, n)
	e.fillCode = make([]int, n)
	off := 0
	for i := range e.pre.Columns {
		c := &e.pre.Columns[i]
		e.offset[i] = off
		e.index[c.Name] = i
		e.fillCode[i] = -1
		switch c.Kind {
		case OneHot:
			e.cats[i] = make(map[uint32]int, len(c.Categories))
			for k, v := range c.Categories {
				e.cats[i][HashCategory(v)] = k
				if v == c.FillCategory {
					e.fillCode[i] = k
				}
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					if e.numCats[i] == nil {
						e.numCats[i] = map[string]int{}
					}
					e.numCats[i][strconv.FormatFloat(f, 'g', -1, 64)] = k
				}
			}
		case Hashed:
			if c.FillCategory != "" {
				e.fillCode[i] = HashBucket(HashCategory(c.FillCategory), c.HashBits)
			}
		}
		off += c.Width()
	}
	return e
}

// Inputs returns the names of the values a reading gives, in column order.
func (e *Encoder) Inputs() []string { return e.pre.Inputs() }

// Width returns the number of model features Encode writes.
func (e *Encoder) Width() int { return len(e.features) }

// Encode fills dst (len(dst) == the model's feature count) with the model
// features of a reading given as column name -> Value. A column absent
// from named, or given as Missing, is missing: it is imputed (and named in
// rep.Imputed) or, under MissingError, refused with ErrMissingValue. A name
// the model does not know is refused with ErrUnknownFeature; a number that
// is not finite with ErrNotFinite; text in a numeric column that is not a
// number with ErrNotNumber. rep may be nil.
func (e *Encoder) Encode(dst []float32, named map[string]Value, rep *EncodeReport) error {
	if len(dst) != len(e.features) {
		return fmt.Errorf("%w: vector of %d for %d features", ErrFeatureCount, len(dst), len(e.features))
	}
	found := 0
	var missing []string
	for i := range e.pre.Columns {
		c := &e.pre.Columns[i]
		v, ok := named[c.Name]
		if ok {
			found++
		}
		if v.Kind == Missing && e.pre.Missing == MissingError {
			missing = append(missing, c.Name)
			continue
		}
		if err := e.put(dst, i, v, rep); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (the model needs %s)", ErrMissingValue, listNames(missing), listNames(e.Inputs()))
	}
	if found != len(named) {
		var unknown []string
		for k := range named {
			if _, ok := e.index[k]; !ok {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
		return fmt.Errorf("%w: %s (the model knows %s)", ErrUnknownFeature, listNames(unknown), listNames(e.Inputs()))
	}
	return nil
}

// EncodeValues is Encode for a reading given in column order (Inputs).
func (e *Encoder) EncodeValues(dst []float32, values []Value, rep *EncodeReport) error {
	if len(values) != len(e.pre.Columns) {
		return fmt.Errorf("%w: got %d values, the model needs %d (%s)", ErrFeatureCount, len(values), len(e.pre.Columns), listNames(e.Inputs()))
	}
	if len(dst) != len(e.features) {
		return fmt.Errorf("%w: vector of %d for %d features", ErrFeatureCount, len(dst), len(e.features))
	}
	for i, v := range values {
		if v.Kind == Missing && e.pre.Missing == MissingError {
			return fmt.Errorf("%w: %q", ErrMissingValue, e.pre.Columns[i].Name)
		}
		if err := e.put(dst, i, v, rep); err != nil {
			return err
		}
	}
	return nil
}

// put writes column i's features for v.
func (e *Encoder) put(dst []float32, i int, v Value, rep *EncodeReport) error {
	c := &e.pre.Columns[i]
	off := e.offset[i]
	w := c.Width()
	miss := v.Kind == Missing
	switch c.Kind {
	case Numeric:
		x := float64(c.Fill)
		switch v.Kind {
		case Number:
			x = v.Num
		case Text:
			t := strings.TrimSpace(v.Str)
			if IsMissingText(t) {
				miss = true
				break
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return fmt.Errorf("%w: %q is %q", ErrNotNumber, c.Name, v.Str)
			}
			x = f
		}
		if miss {
			x = float64(c.Fill)
		} else if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxFloat32 {
			return fmt.Errorf("%w: %q is %v", ErrNotFinite, c.Name, x)
		}
		dst[off] = float32(x)
	default:
		clear(dst[off : off+w])
		var code int
		switch v.Kind {
		case Missing:
			code = e.fillCode[i]
		case Number:
			if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
				return fmt.Errorf("%w: %q is %v", ErrNotFinite, c.Name, v.Num)
			}
			code = e.code(i, "", v.Num, true)
		case Text:
			if IsMissingText(v.Str) {
				miss = true
				code = e.fillCode[i]
			} else {
				code = e.code(i, v.Str, 0, false)
			}
		}
		if code >= 0 {
			dst[off+code] = 1
		} else if !miss && rep != nil {
			rep.Unseen = append(rep.Unseen, c.Name)
		}
	}
	if miss {
		if e.pre.Missing == MissingError {
			return fmt.Errorf("%w: %q", ErrMissingValue, c.Name)
		}
		if rep != nil {
			rep.Imputed = append(rep.Imputed, c.Name)
		}
	}
	if c.Indicator {
		dst[off+w-1] = 0
		if miss {
			dst[off+w-1] = 1
		}
	}
	return nil
}

// code returns the feature offset within column i for a category given as
// text s or, if isNum, as the number f; -1 for an unseen one-hot category.
func (e *Encoder) code(i int, s string, f float64, isNum bool) int {
	c := &e.pre.Columns[i]
	if isNum {
		s = strconv.FormatFloat(f, 'g', -1, 64)
		if k, ok := e.numCats[i][s]; ok && c.Kind == OneHot {
			return k
		}
	}
	h := HashCategory(s)
	if c.Kind == Hashed {
		return HashBucket(h, c.HashBits)
	}
	return e.codeHash(i, h)
}

// codeHash returns the one-hot offset of the category whose hash is h, or -1.
func (e *Encoder) codeHash(i int, h uint32) int {
	if k, ok := e.cats[i][h]; ok {
		return k
	}
	return -1
}

// IsMissingText reports whether a text value stands for a missing one: "",
// NA, N/A, NaN, nan, null, NULL (surrounding spaces ignored).
func IsMissingText(s string) bool {
	s = strings.TrimSpace(s)
	switch s {
	case "", "NA", "N/A", "NaN", "nan", "null", "NULL", "Null":
		return true
	}
	return false
}

// HashCategory is the 32-bit FNV-1a hash of a category's text, never 0
// (0 marks a missing value where hashes are stored). Categories are
// matched by this hash: two categories of one column that share it are
// refused at training, and an unseen value that shares a known one's hash
// (a chance of about one in 4·10^9 per known category) counts as it.
func HashCategory(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	if h == 0 {
		h = 1
	}
	return h
}

// hashBytes is HashCategory for a byte slice.
func hashBytes(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	if h == 0 {
		h = 1
	}
	return h
}

// HashBucket returns the feature a Hashed column with bits hash bits sets
// for a category of hash h: the top bits of h times a Fibonacci constant.
func HashBucket(h uint32, bits uint8) int {
	if bits == 0 {
		return 0
	}
	return int((h * 2654435769) >> (32 - bits))
}

// trainingOnly returns a Model holding only m's preprocessing and training
// statistics (nil if it has neither), for carryTraining.
func (m *Model) trainingOnly() *Model {
	if m.Preprocessing == nil && m.Min == nil && !m.hasTargetStats() {
		return nil
	}
	return &Model{Features: m.Features, Preprocessing: m.Preprocessing.Clone(), Min: slices.Clone(m.Min), Max: slices.Clone(m.Max),
		TargetMean: m.TargetMean, TargetStd: m.TargetStd, TargetMin: m.TargetMin, TargetMax: m.TargetMax}
}

// carryTraining gives m (a model derived from another, e.g. a learner's
// snapshot) from's preprocessing and training statistics, when from has
// the same features: the inputs a reading gives do not change when the
// weights do.
func (m *Model) carryTraining(from *Model) {
	if from == nil || !slices.Equal(from.Features, m.Features) {
		return
	}
	m.Preprocessing = from.Preprocessing.Clone()
	m.Min, m.Max = slices.Clone(from.Min), slices.Clone(from.Max)
	m.TargetMean, m.TargetStd, m.TargetMin, m.TargetMax = from.TargetMean, from.TargetStd, from.TargetMin, from.TargetMax
}

// JSONValue returns the Value a JSON value in a reading stands for: null
// is Missing, a string is Text, a number is Number; anything else is an
// error. (json.Unmarshal into a float64 would turn null into 0.)
func JSONValue(raw []byte) (Value, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return Value{}, errors.New("model: empty JSON value")
	case string(raw) == "null":
		return Value{}, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, fmt.Errorf("model: bad JSON string: %w", err)
		}
		return Str(s), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return Value{}, fmt.Errorf("%w: JSON value %.40q is not a number, a string or null", ErrNotNumber, raw)
	}
	return Num(f), nil
}
