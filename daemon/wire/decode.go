package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/linnet-edge/linnet/model"
)

// Reading is one decoded feature vector.
type Reading struct {
	ID       []byte    // as sent (a JSON string or number, valid JSON), nil if none
	TS       []byte    // as sent, likewise
	X        []float32 // raw features in model order
	Label    float32
	HasLabel bool
	// Explain is the reading's "explain": 1 for true, -1 for false, 0 when
	// it did not say (the subscription decides).
	Explain int8
	// Extra is what preprocessing and explaining added, nil when nothing
	// (behind a pointer: a plain reading stays small).
	Extra *Extra
}

// Extra is what a reading's answer says beyond the prediction.
type Extra struct {
	// Imputed names the columns whose missing value the model's
	// preprocessing filled in; Unseen counts the categories training never
	// saw (they set no feature).
	Imputed []string
	Unseen  int
	// Explanation is set by the worker when the reading asked for one.
	Explanation *model.Explanation
}

// Imputed returns r.Extra.Imputed, nil without Extra.
func (r *Reading) Imputed() []string {
	if r.Extra == nil {
		return nil
	}
	return r.Extra.Imputed
}

// setReport records what encoding r had to do.
func (r *Reading) setReport(rep *model.EncodeReport) {
	if len(rep.Imputed) > 0 || len(rep.Unseen) > 0 {
		r.Extra = &Extra{Imputed: rep.Imputed, Unseen: len(rep.Unseen)}
	}
}

// Schema is what decoding needs from the serving model.
type Schema struct {
	Features []string // names, in the order the model wants them
	Logistic bool     // a classifier: labels are 0 or 1
	index    map[string]int
	// enc is the model's preprocessing, nil for a model without one (its
	// inputs are its features, numeric, and a missing one is refused).
	// inputs are then the names a reading gives, in column order.
	enc    *model.Encoder
	inputs []string
	// plain: enc only copies numbers (every column numeric, no
	// indicator), so the fast JSON path applies.
	plain bool
}

// NewSchema indexes features for decoding by name: a model without
// preprocessing.
func NewSchema(features []string, logistic bool) *Schema {
	s := &Schema{Features: features, index: make(map[string]int, len(features)), Logistic: logistic, plain: true}
	for i, f := range features {
		s.index[f] = i
	}
	return s
}

// NewModelSchema is m's schema: readings give m.Inputs() and go through
// m's preprocessing (one Encoder, built here) as in linnet predict.
func NewModelSchema(m *model.Model) *Schema {
	s := NewSchema(m.Features, m.Loss == model.Logistic)
	if m.Preprocessing == nil {
		return s
	}
	s.enc, s.inputs = model.NewEncoder(m), m.Inputs()
	s.plain = len(s.inputs) == len(m.Features)
	for i, c := range m.Preprocessing.Columns {
		if c.Kind != model.Numeric || c.Indicator || !s.plain || c.Name != m.Features[i] {
			s.plain = false
			break
		}
	}
	return s
}

// Inputs returns the names a reading gives, in the order positional
// formats (a JSON array, CSV, raw) send them.
func (s *Schema) Inputs() []string {
	if s.enc != nil {
		return s.inputs
	}
	return s.Features
}

// Decode turns one payload into readings. batch reports whether the
// payload was a batch (answered with one batch message).
func Decode(format string, payload []byte, s *Schema, maxBatch int) (rs []Reading, batch bool, rj *Reject) {
	switch format {
	case "json":
		return decodeJSON(payload, s, maxBatch)
	case "csv":
		if s.enc != nil {
			return encodeCSV(payload, s, maxBatch)
		}
		return decodeCSV(payload, s, maxBatch)
	case "raw":
		r, rj := decodeRaw(payload, s)
		if rj != nil {
			return nil, false, rj
		}
		return []Reading{r}, false, nil
	}
	return nil, false, Rejectf(ReasonMalformed, "unknown format %q", format)
}

type jsonReading struct {
	ID       json.RawMessage   `json:"id"`
	TS       json.RawMessage   `json:"ts"`
	Label    json.RawMessage   `json:"label"`
	Features json.RawMessage   `json:"features"`
	Explain  json.RawMessage   `json:"explain"`
	Batch    []json.RawMessage `json:"batch"`
}

func decodeJSON(payload []byte, s *Schema, maxBatch int) ([]Reading, bool, *Reject) {
	if r, ok := fastReading(payload, s); ok {
		return []Reading{r}, false, nil
	}
	var top jsonReading
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, false, Rejectf(ReasonMalformed, "json: %v", err)
	}
	if top.Batch != nil {
		if top.Features != nil {
			return nil, false, Rejectf(ReasonMalformed, "both batch and features")
		}
		if len(top.Batch) == 0 || len(top.Batch) > maxBatch {
			return nil, true, Rejectf(ReasonBatchSize, "batch of %d: want 1 to %d", len(top.Batch), maxBatch)
		}
		rs := make([]Reading, len(top.Batch))
		for i, raw := range top.Batch {
			var jr jsonReading
			if err := json.Unmarshal(raw, &jr); err != nil {
				return nil, true, Rejectf(ReasonMalformed, "batch[%d]: json: %v", i, err)
			}
			if jr.Batch != nil {
				return nil, true, Rejectf(ReasonMalformed, "batch[%d]: nested batch", i)
			}
			r, rj := jsonToReading(&jr, s)
			if rj != nil {
				rj.Detail = fmt.Sprintf("batch[%d]: %s", i, rj.Detail)
				return nil, true, rj
			}
			rs[i] = r
		}
		return rs, true, nil
	}
	r, rj := jsonToReading(&top, s)
	if rj != nil {
		return nil, false, rj
	}
	return []Reading{r}, false, nil
}

func jsonToReading(jr *jsonReading, s *Schema) (Reading, *Reject) {
	var r Reading
	if jr.ID != nil {
		if !scalarJSON(jr.ID, 128) {
			return r, Rejectf(ReasonBadID, "id: want a number or a UTF-8 string of at most 128 bytes")
		}
		r.ID = jr.ID
	}
	if jr.TS != nil {
		if !scalarJSON(jr.TS, 64) {
			return r, &Reject{Reason: ReasonBadID, Detail: "ts: want a number or a UTF-8 string of at most 64 bytes", ID: r.ID}
		}
		r.TS = jr.TS
	}
	fail := func(rj *Reject) (Reading, *Reject) { rj.ID = r.ID; return Reading{}, rj }
	switch e := string(bytes.TrimSpace(jr.Explain)); e {
	case "true":
		r.Explain = 1
	case "false":
		r.Explain = -1
	case "", "null":
	default:
		return fail(Rejectf(ReasonMalformed, "explain: want true or false"))
	}
	f := bytes.TrimSpace(jr.Features)
	if len(f) == 0 || bytes.Equal(f, []byte("null")) {
		return fail(Rejectf(ReasonMalformed, "no features"))
	}
	n := len(s.Features)
	r.X = make([]float32, n)
	if s.enc != nil {
		if rj := encodeJSON(&r, f, s); rj != nil {
			return fail(rj)
		}
		f = nil
	}
	switch {
	case f == nil:
	case f[0] == '[':
		// Pointers, because encoding/json turns null into 0 in a float64:
		// a failed sensor must not get a confident prediction.
		var vs []*float64
		if err := json.Unmarshal(f, &vs); err != nil {
			return fail(jsonValueReject("features", err))
		}
		if len(vs) != n {
			return fail(Rejectf(ReasonFeatureCount, "%d features, model has %d", len(vs), n))
		}
		for i, pv := range vs {
			if pv == nil {
				return fail(Rejectf(ReasonMissing, "feature %d (%s) is null", i, clip(s.Features[i])))
			}
			v := *pv
			x, ok := finite32(v)
			if !ok {
				return fail(Rejectf(ReasonNonFinite, "feature %d: %g", i, v))
			}
			r.X[i] = x
		}
	case f[0] == '{':
		var m map[string]*float64
		if err := json.Unmarshal(f, &m); err != nil {
			return fail(jsonValueReject("features", err))
		}
		for k := range m {
			if _, ok := s.index[k]; !ok {
				return fail(Rejectf(ReasonFeatureNames, "unknown feature %q (model has %s)", clip(k), clip(strings.Join(s.Features, ","))))
			}
		}
		if len(m) < n {
			var absent []string
			for _, name := range s.Features {
				if _, ok := m[name]; !ok {
					absent = append(absent, name)
				}
			}
			return fail(Rejectf(ReasonMissing, "%d of %d features absent: %s", len(absent), n, clip(strings.Join(absent, ","))))
		}
		for k, pv := range m {
			i := s.index[k]
			if pv == nil {
				return fail(Rejectf(ReasonMissing, "feature %q is null", clip(k)))
			}
			v := *pv
			x, ok := finite32(v)
			if !ok {
				return fail(Rejectf(ReasonNonFinite, "feature %q: %g", clip(k), v))
			}
			r.X[i] = x
		}
	default:
		return fail(Rejectf(ReasonMalformed, "features: want an array or an object"))
	}
	if l := bytes.TrimSpace(jr.Label); len(l) > 0 && !bytes.Equal(l, []byte("null")) {
		var v float64
		if err := json.Unmarshal(l, &v); err != nil {
			return fail(Rejectf(ReasonBadLabel, "label: want a number"))
		}
		y, rj := checkLabel(v, s)
		if rj != nil {
			return fail(rj)
		}
		r.Label, r.HasLabel = y, true
	}
	return r, nil
}

// jsonValueReject tells a number out of range (non-finite) from bad JSON.
func jsonValueReject(what string, err error) *Reject {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && strings.HasPrefix(te.Value, "number") {
		return Rejectf(ReasonNonFinite, "%s: %v", what, err)
	}
	return Rejectf(ReasonMalformed, "%s: %v", what, err)
}

func checkLabel(v float64, s *Schema) (float32, *Reject) {
	y, ok := finite32(v)
	if !ok {
		return 0, Rejectf(ReasonBadLabel, "label %g not finite", v)
	}
	if s.Logistic && y != 0 && y != 1 {
		return 0, Rejectf(ReasonBadLabel, "label %g: a classifier wants 0 or 1", v)
	}
	return y, nil
}

// decodeCSV reads one reading per line: the features in model order, then
// optionally the label.
func decodeCSV(payload []byte, s *Schema, maxBatch int) ([]Reading, bool, *Reject) {
	if !utf8.Valid(payload) {
		return nil, false, Rejectf(ReasonMalformed, "csv: not UTF-8")
	}
	lines := strings.Split(strings.TrimRight(string(payload), "\r\n"), "\n")
	if len(lines) > maxBatch {
		return nil, true, Rejectf(ReasonBatchSize, "%d lines: at most %d", len(lines), maxBatch)
	}
	n := len(s.Features)
	rs := make([]Reading, 0, len(lines))
	for li, line := range lines {
		line = strings.TrimRight(line, "\r")
		fields := strings.Split(line, ",")
		if len(fields) != n && len(fields) != n+1 {
			return nil, len(lines) > 1, Rejectf(ReasonFeatureCount, "line %d: %d fields, model has %d features (+1 for a label)", li+1, len(fields), n)
		}
		r := Reading{X: make([]float32, n)}
		for i, f := range fields {
			f = strings.TrimSpace(f)
			if f == "" && i < n {
				return nil, len(lines) > 1, Rejectf(ReasonMissing, "line %d field %d: empty", li+1, i+1)
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil && !strings.Contains(err.Error(), "out of range") {
				return nil, len(lines) > 1, Rejectf(ReasonMalformed, "line %d field %d: %q is not a number", li+1, i+1, clip(f))
			}
			if i == n {
				y, rj := checkLabel(v, s)
				if rj != nil {
					return nil, len(lines) > 1, rj
				}
				r.Label, r.HasLabel = y, true
				continue
			}
			x, ok := finite32(v)
			if !ok || err != nil {
				return nil, len(lines) > 1, Rejectf(ReasonNonFinite, "line %d field %d: %q", li+1, i+1, clip(f))
			}
			r.X[i] = x
		}
		rs = append(rs, r)
	}
	return rs, len(rs) > 1, nil
}

// decodeRaw reads little-endian float32 features in model order (for a
// model with preprocessing its inputs, NaN for a missing value, a category
// as its number), then optionally the label.
func decodeRaw(payload []byte, s *Schema) (Reading, *Reject) {
	n, what := len(s.Features), "features"
	var vs []model.Value
	if s.enc != nil {
		n, what = len(s.inputs), "inputs"
		vs = make([]model.Value, n)
	}
	if len(payload)%4 != 0 {
		return Reading{}, Rejectf(ReasonMalformed, "raw: %d bytes is not a whole number of float32", len(payload))
	}
	k := len(payload) / 4
	if k != n && k != n+1 {
		return Reading{}, Rejectf(ReasonFeatureCount, "raw: %d values, model has %d %s (+1 for a label)", k, n, what)
	}
	r := Reading{X: make([]float32, len(s.Features))}
	for i := 0; i < k; i++ {
		v := math.Float32frombits(binary.LittleEndian.Uint32(payload[4*i:]))
		switch {
		case i == n:
			y, rj := checkLabel(float64(v), s)
			if rj != nil {
				return Reading{}, rj
			}
			r.Label, r.HasLabel = y, true
		case vs != nil:
			if v == v {
				vs[i] = model.Num(float64(v))
			}
		case math.IsNaN(float64(v)) || math.IsInf(float64(v), 0):
			return Reading{}, Rejectf(ReasonNonFinite, "raw: value %d is %v", i, v)
		default:
			r.X[i] = v
		}
	}
	if vs != nil {
		var rep model.EncodeReport
		if err := s.enc.EncodeValues(r.X, vs, &rep); err != nil {
			return Reading{}, encodeReject(err)
		}
		r.setReport(&rep)
	}
	return r, nil
}

func finite32(v float64) (float32, bool) {
	x := float32(v)
	if math.IsNaN(v) || math.IsInf(float64(x), 0) {
		return 0, false
	}
	return x, true
}

// scalarJSON accepts a JSON string or number no longer than max bytes.
func scalarJSON(b json.RawMessage, max int) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > max {
		return false
	}
	switch c := b[0]; {
	case c == '"':
		// Echoed as sent, so it must be valid JSON as it stands:
		// encoding/json would accept invalid UTF-8 (and replace it).
		var s string
		return utf8.Valid(b) && json.Unmarshal(b, &s) == nil
	case c == '-' || (c >= '0' && c <= '9'):
		var f float64
		return json.Unmarshal(b, &f) == nil
	}
	return false
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
