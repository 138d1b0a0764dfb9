package onnx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/linnet-edge/linnet/model"
)

// jsonModel is the plain JSON form of a linear model:
//
//	{"kind": "linear" | "logistic", "features": [...], "coef": [...],
//	 "intercept": b, "mean": [...], "scale": [...], "target": "y"}
//
// with z = intercept + sum_i coef[i] * (x[i] - mean[i]) / scale[i] (mean
// and scale optional, 0 and 1 when absent: coefficients over the raw
// features, as statsmodels or R print them) and the prediction z, or
// 1/(1+exp(-z)) for "logistic". Numbers are kept as text until checked, so
// a null is an error rather than a silent 0.
type jsonModel struct {
	Kind      string        `json:"kind"`
	Target    string        `json:"target,omitempty"`
	Features  []string      `json:"features"`
	Coef      []json.Number `json:"coef"`
	Intercept json.Number   `json:"intercept"`
	Mean      []json.Number `json:"mean,omitempty"`
	Scale     []json.Number `json:"scale,omitempty"`
}

// IsJSON reports whether file looks like the JSON form rather than ONNX
// (an ONNX file never starts with '{').
func IsJSON(file []byte) bool {
	t := bytes.TrimLeft(file, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// ImportJSON decodes the JSON form. Unknown keys, nulls, non-finite
// numbers, lengths that disagree and scales that are not positive are
// errors wrapping ErrMalformed.
func ImportJSON(file []byte) (*model.Model, error) {
	if len(file) > MaxFileSize {
		return nil, tooLarge("file is %d bytes, limit %d", len(file), MaxFileSize)
	}
	var j jsonModel
	dec := json.NewDecoder(bytes.NewReader(file))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&j); err != nil {
		return nil, malformed("JSON model: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("JSON model: data after the object")
	}
	m := &model.Model{Target: j.Target, Scheme: model.F32, Features: j.Features}
	switch j.Kind {
	case "linear":
		m.Loss = model.Squared
	case "logistic":
		m.Loss = model.Logistic
	default:
		return nil, malformed("JSON model: kind %q (want \"linear\" or \"logistic\")", j.Kind)
	}
	n := len(j.Features)
	if n == 0 {
		return nil, malformed("JSON model: no features")
	}
	if n > model.MaxFeatures {
		return nil, tooLarge("%d features, limit %d", n, model.MaxFeatures)
	}
	var err error
	if m.Weights, err = numbers("coef", j.Coef, n, 0); err != nil {
		return nil, err
	}
	if m.Mean, err = numbers("mean", j.Mean, n, 0); err != nil {
		return nil, err
	}
	if m.Std, err = numbers("scale", j.Scale, n, 1); err != nil {
		return nil, err
	}
	for i, s := range m.Std {
		if !(s > 0) {
			return nil, malformed("JSON model: scale of %q is %v (must be > 0)", j.Features[i], s)
		}
	}
	b, err := number("intercept", j.Intercept)
	if err != nil {
		return nil, err
	}
	m.Bias = b
	if _, err := m.MarshalBinary(); err != nil { // names, duplicates
		return nil, fmt.Errorf("JSON model: %w", err)
	}
	return m, nil
}

// numbers checks a list of n numbers; absent (nil) gives n copies of def.
func numbers(key string, v []json.Number, n int, def float32) ([]float32, error) {
	out := make([]float32, n)
	if v == nil {
		for i := range out {
			out[i] = def
		}
		return out, nil
	}
	if len(v) != n {
		return nil, malformed("JSON model: %d %s values for %d features", len(v), key, n)
	}
	for i, s := range v {
		f, err := number(fmt.Sprintf("%s[%d]", key, i), s)
		if err != nil {
			return nil, err
		}
		out[i] = f
	}
	return out, nil
}

func number(key string, s json.Number) (float32, error) {
	if s == "" {
		return 0, malformed("JSON model: %s is missing or null", key)
	}
	f, err := strconv.ParseFloat(string(s), 32)
	if err != nil {
		return 0, malformed("JSON model: %s is %s, not a float32 number", key, s)
	}
	return float32(f), nil
}

// ExportJSON encodes m in the JSON form, with mean and scale, every
// number written so that it reads back to the same float32. A q8 or q4
// model gives its dequantized weights; Huber is written as "linear". A
// model with one-hot, hashed or imputed columns is refused
// (ErrUnsupported): the form has no preprocessing.
func ExportJSON(m *model.Model) ([]byte, error) {
	if _, err := m.MarshalBinary(); err != nil {
		return nil, err
	}
	if p := m.Preprocessing; p != nil {
		for _, c := range p.Columns {
			if c.Kind != model.Numeric || c.Indicator || p.Missing == model.MissingImpute {
				return nil, fmt.Errorf("%w: the JSON form has no preprocessing (column %q: %s, missing values %s); export as ONNX", ErrUnsupported, c.Name, c.Kind, p.Missing)
			}
		}
	}
	j := jsonModel{Kind: "linear", Target: m.Target, Features: m.Features,
		Coef: texts(m.Weights), Intercept: text(m.Bias), Mean: texts(m.Mean), Scale: texts(m.Std)}
	if m.Loss == model.Logistic {
		j.Kind = "logistic"
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func text(v float32) json.Number { return json.Number(strconv.FormatFloat(float64(v), 'g', -1, 32)) }

func texts(v []float32) []json.Number {
	out := make([]json.Number, len(v))
	for i, x := range v {
		out[i] = text(x)
	}
	return out
}
