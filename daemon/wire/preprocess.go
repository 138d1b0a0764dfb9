package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/linnet-edge/linnet/model"
)

// Readings for a model with preprocessing give its input columns
// (Schema.Inputs), not its features: a number, a category as a string, or
// a missing value (JSON null, an absent name, an empty or NA CSV cell, a
// NaN raw value), and the model's Encoder turns them into features as
// linnet predict does: missing values imputed (or refused with reason
// missing when the model's policy is error), categories one-hot encoded
// or hashed. The reading's Imputed and Unseen say what it had to do.

// encodeJSON fills r.X from a JSON features array (in input order) or
// object (by input name).
func encodeJSON(r *Reading, f []byte, s *Schema) *Reject {
	var rep model.EncodeReport
	var err error
	switch f[0] {
	case '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(f, &raw); err != nil {
			return Rejectf(ReasonMalformed, "features: %v", err)
		}
		if len(raw) != len(s.inputs) {
			return Rejectf(ReasonFeatureCount, "%d values, model has %d inputs (%s)", len(raw), len(s.inputs), clipList(s.inputs))
		}
		vs := make([]model.Value, len(raw))
		for i, b := range raw {
			v, rj := jsonValue(b, s.inputs[i])
			if rj != nil {
				return rj
			}
			vs[i] = v
		}
		err = s.enc.EncodeValues(r.X, vs, &rep)
	case '{':
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(f, &raw); err != nil {
			return Rejectf(ReasonMalformed, "features: %v", err)
		}
		vs := make(map[string]model.Value, len(raw))
		for k, b := range raw {
			v, rj := jsonValue(b, k)
			if rj != nil {
				return rj
			}
			vs[k] = v
		}
		err = s.enc.Encode(r.X, vs, &rep)
	default:
		return Rejectf(ReasonMalformed, "features: want an array or an object")
	}
	if err != nil {
		return encodeReject(err)
	}
	r.setReport(&rep)
	return nil
}

// jsonValue reads one input value: null, a string or a number.
func jsonValue(b json.RawMessage, name string) (model.Value, *Reject) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return model.Value{}, Rejectf(ReasonNonFinite, "input %q: %s out of range", clip(name), clip(string(b)))
		}
		return model.Num(f), nil
	}
	v, err := model.JSONValue(b)
	if err != nil {
		return model.Value{}, Rejectf(ReasonMalformed, "input %q: want a number, a string or null", clip(name))
	}
	return v, nil
}

// encodeReject maps an Encoder's error to its reason.
func encodeReject(err error) *Reject {
	reason := ReasonMalformed
	switch {
	case errors.Is(err, model.ErrMissingFeature):
		reason = ReasonMissing
	case errors.Is(err, model.ErrUnknownFeature):
		reason = ReasonFeatureNames
	case errors.Is(err, model.ErrNotFinite):
		reason = ReasonNonFinite
	case errors.Is(err, model.ErrFeatureCount):
		reason = ReasonFeatureCount
	}
	d := strings.TrimPrefix(err.Error(), "model: ")
	if len(d) > 300 {
		d = d[:300] + "..."
	}
	return &Reject{Reason: reason, Detail: strings.ToValidUTF8(d, "?")}
}

// encodeCSV reads one reading per line: the inputs in column order (a
// category as its text, an empty or NA cell missing), then optionally the
// label.
func encodeCSV(payload []byte, s *Schema, maxBatch int) ([]Reading, bool, *Reject) {
	if !utf8.Valid(payload) {
		return nil, false, Rejectf(ReasonMalformed, "csv: not UTF-8")
	}
	lines := strings.Split(strings.TrimRight(string(payload), "\r\n"), "\n")
	if len(lines) > maxBatch {
		return nil, true, Rejectf(ReasonBatchSize, "%d lines: at most %d", len(lines), maxBatch)
	}
	batch := len(lines) > 1
	n := len(s.inputs)
	rs := make([]Reading, 0, len(lines))
	vs := make([]model.Value, n)
	for li, line := range lines {
		fields := strings.Split(strings.TrimRight(line, "\r"), ",")
		if len(fields) != n && len(fields) != n+1 {
			return nil, batch, Rejectf(ReasonFeatureCount, "line %d: %d fields, model has %d inputs (+1 for a label)", li+1, len(fields), n)
		}
		r := Reading{X: make([]float32, len(s.Features))}
		for i, f := range fields[:n] {
			vs[i] = model.Str(strings.TrimSpace(f))
		}
		if len(fields) > n {
			f := strings.TrimSpace(fields[n])
			v, err := strconv.ParseFloat(f, 64)
			if err != nil && !strings.Contains(err.Error(), "out of range") {
				return nil, batch, Rejectf(ReasonMalformed, "line %d: label %q is not a number", li+1, clip(f))
			}
			y, rj := checkLabel(v, s)
			if rj != nil {
				return nil, batch, rj
			}
			r.Label, r.HasLabel = y, true
		}
		var rep model.EncodeReport
		if err := s.enc.EncodeValues(r.X, vs, &rep); err != nil {
			rj := encodeReject(err)
			rj.Detail = "line " + strconv.Itoa(li+1) + ": " + rj.Detail
			return nil, batch, rj
		}
		r.setReport(&rep)
		rs = append(rs, r)
	}
	return rs, batch, nil
}

func clipList(names []string) string { return clip(strings.Join(names, ",")) }
