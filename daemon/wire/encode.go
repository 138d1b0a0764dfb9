package wire

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendString appends s as a JSON string literal; invalid UTF-8 becomes
// U+FFFD, so the result is always valid JSON.
func AppendString(b []byte, s string) []byte {
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

func AppendFloat32(b []byte, v float32) []byte {
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}

// AppendPrediction appends the prediction message of one reading:
// {"id":..,"device":..,"model":..,"prediction":..,["class":..,]"model_version":..,"ts":..}.
// model is the served model's name (left out when empty); ts is the
// reading's own when it had one, else now (Unix ms).
func AppendPrediction(b []byte, r *Reading, device, model string, p float32, logistic bool, version, now int64) []byte {
	b = append(b, '{')
	if r.ID != nil {
		b = append(b, `"id":`...)
		b = append(b, r.ID...)
		b = append(b, ',')
	}
	b = append(b, `"device":`...)
	b = AppendString(b, device)
	b = appendModel(b, model)
	b = append(b, ',')
	b = appendPredictionFields(b, p, logistic)
	b = appendReadingFields(b, r)
	b = append(b, `,"model_version":`...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, `,"ts":`...)
	if r.TS != nil {
		b = append(b, r.TS...)
	} else {
		b = strconv.AppendInt(b, now, 10)
	}
	return append(b, '}')
}

// AppendBatch appends the answer to a batch: one message with a
// prediction per reading, in order.
func AppendBatch(b []byte, rs []Reading, preds []float32, device, model string, logistic bool, version, now int64) []byte {
	b = append(b, `{"device":`...)
	b = AppendString(b, device)
	b = appendModel(b, model)
	b = append(b, `,"model_version":`...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `,"batch":[`...)
	for i := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if rs[i].ID != nil {
			b = append(b, `"id":`...)
			b = append(b, rs[i].ID...)
			b = append(b, ',')
		}
		b = appendPredictionFields(b, preds[i], logistic)
		b = appendReadingFields(b, &rs[i])
		if rs[i].TS != nil {
			b = append(b, `,"ts":`...)
			b = append(b, rs[i].TS...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendModel appends the served model's name, when there is one.
func appendModel(b []byte, model string) []byte {
	if model == "" {
		return b
	}
	b = append(b, `,"model":`...)
	return AppendString(b, model)
}

func appendPredictionFields(b []byte, p float32, logistic bool) []byte {
	b = append(b, `"prediction":`...)
	b = AppendFloat32(b, p)
	if logistic {
		b = append(b, `,"class":`...)
		if p >= 0.5 {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	return b
}

// appendReadingFields appends what preprocessing and explaining added:
// ,"imputed":[names] when a value was imputed, and when the reading asked
// for an explanation ,"bias":..,"score":..,"explain":[{"feature","value",
// "contribution"},...] (score is bias plus every feature's contribution:
// the prediction, or a classifier's logit).
func appendReadingFields(b []byte, r *Reading) []byte {
	x := r.Extra
	if x == nil {
		return b
	}
	if len(x.Imputed) > 0 {
		b = append(b, `,"imputed":[`...)
		for i, name := range x.Imputed {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, name)
		}
		b = append(b, ']')
	}
	if e := x.Explanation; e != nil {
		b = append(b, `,"bias":`...)
		b = appendFloat64(b, e.Bias)
		b = append(b, `,"score":`...)
		b = appendFloat64(b, e.Score)
		b = append(b, `,"explain":[`...)
		for i, c := range e.Top {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"feature":`...)
			b = AppendString(b, c.Feature)
			b = append(b, `,"value":`...)
			b = AppendFloat32(b, c.Value) // a decoded feature: finite
			b = append(b, `,"contribution":`...)
			b = appendFloat64(b, c.Contribution)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return b
}

// appendFloat64 appends v, or null when it is not finite (JSON has no
// infinities).
func appendFloat64(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// AppendError appends the errors-topic message for one rejected message:
// {"topic":..,"id":..,"reason":..,"detail":..,"ts":..}.
func AppendError(b []byte, topic string, rj *Reject, now int64) []byte {
	b = append(b, `{"topic":`...)
	b = AppendString(b, topic)
	if rj.ID != nil {
		b = append(b, `,"id":`...)
		b = append(b, rj.ID...)
	}
	b = append(b, `,"reason":`...)
	b = AppendString(b, rj.Reason)
	b = append(b, `,"detail":`...)
	b = AppendString(b, rj.Detail)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, now, 10)
	return append(b, '}')
}
