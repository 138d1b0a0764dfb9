package daemon

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
)

// Reasons a message is rejected: the label of linnet_rejected_total and the
// "reason" of the errors topic. The set is closed so the metric stays small.
const (
	ReasonOversize     = "oversize"      // payload larger than payload.max_bytes
	ReasonMalformed    = "malformed"     // not the subscription's format
	ReasonFeatureCount = "feature_count" // wrong number of values
	ReasonFeatureNames = "feature_names" // unknown or missing feature names
	ReasonNonFinite    = "non_finite"    // NaN, Inf, or out of float32 range
	ReasonBadID        = "bad_id"        // id or ts not a short string or number
	ReasonBadLabel     = "bad_label"     // label not finite, or not 0/1 for a classifier
	ReasonBatchSize    = "batch_size"    // empty batch or more than payload.max_batch
	ReasonNoModel      = "no_model"      // nothing to serve yet
	ReasonQueueFull    = "queue_full"    // intake queue full: message dropped
	ReasonBadTopic     = "bad_topic"     // no device level in the topic
)

// Reasons lists every rejection reason, for metrics initialisation.
var Reasons = []string{ReasonOversize, ReasonMalformed, ReasonFeatureCount, ReasonFeatureNames,
	ReasonNonFinite, ReasonBadID, ReasonBadLabel, ReasonBatchSize, ReasonNoModel, ReasonQueueFull, ReasonBadTopic}

// reject is why one message was refused; it becomes an errors-topic message.
type reject struct {
	reason string
	detail string
	id     json.RawMessage // the message's id when it could be read
}

func (r *reject) Error() string { return r.reason + ": " + r.detail }

func rejectf(reason, format string, a ...any) *reject {
	return &reject{reason: reason, detail: fmt.Sprintf(format, a...)}
}

// reading is one decoded feature vector.
type reading struct {
	id       json.RawMessage // as sent (string or number), nil if none
	ts       json.RawMessage // as sent, nil if none
	x        []float32       // raw features in model order
	label    float32
	hasLabel bool
}

// schema is what decoding needs from the serving model.
type schema struct {
	features []string
	index    map[string]int
	logistic bool
}

func newSchema(features []string, logistic bool) *schema {
	s := &schema{features: features, index: make(map[string]int, len(features)), logistic: logistic}
	for i, f := range features {
		s.index[f] = i
	}
	return s
}

// decode turns one payload into readings. batch reports whether the
// payload was a batch (answered with one batch message).
func decode(format string, payload []byte, s *schema, maxBatch int) (rs []reading, batch bool, rj *reject) {
	switch format {
	case "json":
		return decodeJSON(payload, s, maxBatch)
	case "csv":
		return decodeCSV(payload, s, maxBatch)
	case "raw":
		r, rj := decodeRaw(payload, s)
		if rj != nil {
			return nil, false, rj
		}
		return []reading{r}, false, nil
	}
	return nil, false, rejectf(ReasonMalformed, "unknown format %q", format)
}

type jsonReading struct {
	ID       json.RawMessage   `json:"id"`
	TS       json.RawMessage   `json:"ts"`
	Label    json.RawMessage   `json:"label"`
	Features json.RawMessage   `json:"features"`
	Batch    []json.RawMessage `json:"batch"`
}

func decodeJSON(payload []byte, s *schema, maxBatch int) ([]reading, bool, *reject) {
	if r, ok := fastReading(payload, s); ok {
		return []reading{r}, false, nil
	}
	var top jsonReading
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, false, rejectf(ReasonMalformed, "json: %v", err)
	}
	if top.Batch != nil {
		if top.Features != nil {
			return nil, false, rejectf(ReasonMalformed, "both batch and features")
		}
		if len(top.Batch) == 0 || len(top.Batch) > maxBatch {
			return nil, true, rejectf(ReasonBatchSize, "batch of %d: want 1 to %d", len(top.Batch), maxBatch)
		}
		rs := make([]reading, len(top.Batch))
		for i, raw := range top.Batch {
			var jr jsonReading
			if err := json.Unmarshal(raw, &jr); err != nil {
				return nil, true, rejectf(ReasonMalformed, "batch[%d]: json: %v", i, err)
			}
			if jr.Batch != nil {
				return nil, true, rejectf(ReasonMalformed, "batch[%d]: nested batch", i)
			}
			r, rj := jsonToReading(&jr, s)
			if rj != nil {
				rj.detail = fmt.Sprintf("batch[%d]: %s", i, rj.detail)
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
	return []reading{r}, false, nil
}

func jsonToReading(jr *jsonReading, s *schema) (reading, *reject) {
	var r reading
	if jr.ID != nil {
		if !scalarJSON(jr.ID, 128) {
			return r, rejectf(ReasonBadID, "id: want a string or number of at most 128 bytes")
		}
		r.id = jr.ID
	}
	if jr.TS != nil {
		if !scalarJSON(jr.TS, 64) {
			return r, &reject{reason: ReasonBadID, detail: "ts: want a string or number of at most 64 bytes", id: r.id}
		}
		r.ts = jr.TS
	}
	fail := func(rj *reject) (reading, *reject) { rj.id = r.id; return reading{}, rj }
	f := bytes.TrimSpace(jr.Features)
	if len(f) == 0 || bytes.Equal(f, []byte("null")) {
		return fail(rejectf(ReasonMalformed, "no features"))
	}
	n := len(s.features)
	r.x = make([]float32, n)
	switch f[0] {
	case '[':
		var vs []float64
		if err := json.Unmarshal(f, &vs); err != nil {
			return fail(jsonValueReject("features", err))
		}
		if len(vs) != n {
			return fail(rejectf(ReasonFeatureCount, "%d features, model has %d", len(vs), n))
		}
		for i, v := range vs {
			x, ok := finite32(v)
			if !ok {
				return fail(rejectf(ReasonNonFinite, "feature %d: %g", i, v))
			}
			r.x[i] = x
		}
	case '{':
		var m map[string]float64
		if err := json.Unmarshal(f, &m); err != nil {
			return fail(jsonValueReject("features", err))
		}
		if len(m) != n {
			return fail(rejectf(ReasonFeatureNames, "%d named features, model has %d (%s)", len(m), n, strings.Join(s.features, ",")))
		}
		for k, v := range m {
			i, ok := s.index[k]
			if !ok {
				return fail(rejectf(ReasonFeatureNames, "unknown feature %q", clip(k)))
			}
			x, ok := finite32(v)
			if !ok {
				return fail(rejectf(ReasonNonFinite, "feature %q: %g", clip(k), v))
			}
			r.x[i] = x
		}
	default:
		return fail(rejectf(ReasonMalformed, "features: want an array or an object"))
	}
	if l := bytes.TrimSpace(jr.Label); len(l) > 0 && !bytes.Equal(l, []byte("null")) {
		var v float64
		if err := json.Unmarshal(l, &v); err != nil {
			return fail(rejectf(ReasonBadLabel, "label: want a number"))
		}
		y, rj := checkLabel(v, s)
		if rj != nil {
			return fail(rj)
		}
		r.label, r.hasLabel = y, true
	}
	return r, nil
}

// jsonValueReject tells a number out of range (non-finite) from bad JSON.
func jsonValueReject(what string, err error) *reject {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && strings.HasPrefix(te.Value, "number") {
		return rejectf(ReasonNonFinite, "%s: %v", what, err)
	}
	return rejectf(ReasonMalformed, "%s: %v", what, err)
}

func checkLabel(v float64, s *schema) (float32, *reject) {
	y, ok := finite32(v)
	if !ok {
		return 0, rejectf(ReasonBadLabel, "label %g not finite", v)
	}
	if s.logistic && y != 0 && y != 1 {
		return 0, rejectf(ReasonBadLabel, "label %g: a classifier wants 0 or 1", v)
	}
	return y, nil
}

// decodeCSV reads one reading per line: the features in model order, then
// optionally the label.
func decodeCSV(payload []byte, s *schema, maxBatch int) ([]reading, bool, *reject) {
	if !utf8.Valid(payload) {
		return nil, false, rejectf(ReasonMalformed, "csv: not UTF-8")
	}
	lines := strings.Split(strings.TrimRight(string(payload), "\r\n"), "\n")
	if len(lines) > maxBatch {
		return nil, true, rejectf(ReasonBatchSize, "%d lines: at most %d", len(lines), maxBatch)
	}
	n := len(s.features)
	rs := make([]reading, 0, len(lines))
	for li, line := range lines {
		line = strings.TrimRight(line, "\r")
		fields := strings.Split(line, ",")
		if len(fields) != n && len(fields) != n+1 {
			return nil, len(lines) > 1, rejectf(ReasonFeatureCount, "line %d: %d fields, model has %d features (+1 for a label)", li+1, len(fields), n)
		}
		r := reading{x: make([]float32, n)}
		for i, f := range fields {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil && !strings.Contains(err.Error(), "out of range") {
				return nil, len(lines) > 1, rejectf(ReasonMalformed, "line %d field %d: %q is not a number", li+1, i+1, clip(f))
			}
			if i == n {
				y, rj := checkLabel(v, s)
				if rj != nil {
					return nil, len(lines) > 1, rj
				}
				r.label, r.hasLabel = y, true
				continue
			}
			x, ok := finite32(v)
			if !ok || err != nil {
				return nil, len(lines) > 1, rejectf(ReasonNonFinite, "line %d field %d: %q", li+1, i+1, clip(f))
			}
			r.x[i] = x
		}
		rs = append(rs, r)
	}
	return rs, len(rs) > 1, nil
}

// decodeRaw reads little-endian float32 features in model order, then
// optionally the label.
func decodeRaw(payload []byte, s *schema) (reading, *reject) {
	n := len(s.features)
	if len(payload)%4 != 0 {
		return reading{}, rejectf(ReasonMalformed, "raw: %d bytes is not a whole number of float32", len(payload))
	}
	k := len(payload) / 4
	if k != n && k != n+1 {
		return reading{}, rejectf(ReasonFeatureCount, "raw: %d values, model has %d features (+1 for a label)", k, n)
	}
	r := reading{x: make([]float32, n)}
	for i := 0; i < k; i++ {
		v := math.Float32frombits(binary.LittleEndian.Uint32(payload[4*i:]))
		if i == n {
			y, rj := checkLabel(float64(v), s)
			if rj != nil {
				return reading{}, rj
			}
			r.label, r.hasLabel = y, true
			continue
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return reading{}, rejectf(ReasonNonFinite, "raw: value %d is %v", i, v)
		}
		r.x[i] = v
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
		var s string
		return json.Unmarshal(b, &s) == nil
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

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\t':
				b = append(b, '\\', 't')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func appendFloat32(b []byte, v float32) []byte {
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}
