package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

func TestDecode(t *testing.T) {
	s := NewSchema([]string{"a", "b", "c"}, false)
	cls := NewSchema([]string{"a", "b", "c"}, true)
	raw := func(v ...float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	for _, c := range []struct {
		name, format string
		payload      []byte
		sc           *Schema
		want         [][]float32 // nil: rejected
		reason       string
		label        bool
		batch        bool
	}{
		{"positional", "json", []byte(`{"features":[1,2,3]}`), s, [][]float32{{1, 2, 3}}, "", false, false},
		{"named", "json", []byte(`{"features":{"c":3,"b":2,"a":1},"label":4,"id":"x"}`), s, [][]float32{{1, 2, 3}}, "", true, false},
		{"batch", "json", []byte(`{"batch":[{"features":[1,2,3]},{"features":{"a":4,"b":5,"c":6}}]}`), s, [][]float32{{1, 2, 3}, {4, 5, 6}}, "", false, true},
		{"csv", "csv", []byte("1, 2,3\r\n"), s, [][]float32{{1, 2, 3}}, "", false, false},
		{"csv label", "csv", []byte("1,2,3,0.5"), s, [][]float32{{1, 2, 3}}, "", true, false},
		{"csv lines", "csv", []byte("1,2,3\n4,5,6\n"), s, [][]float32{{1, 2, 3}, {4, 5, 6}}, "", false, true},
		{"raw", "raw", raw(1, 2, 3), s, [][]float32{{1, 2, 3}}, "", false, false},
		{"raw label", "raw", raw(1, 2, 3, 1), cls, [][]float32{{1, 2, 3}}, "", true, false},
		{"raw short", "raw", raw(1, 2), s, nil, ReasonFeatureCount, false, false},
		{"raw odd", "raw", []byte{1, 2, 3}, s, nil, ReasonMalformed, false, false},
		{"raw nan", "raw", raw(1, float32(math.NaN()), 3), s, nil, ReasonNonFinite, false, false},
		{"raw inf label", "raw", raw(1, 2, 3, float32(math.Inf(1))), s, nil, ReasonBadLabel, false, false},
		{"class label", "json", []byte(`{"features":[1,2,3],"label":0.5}`), cls, nil, ReasonBadLabel, false, false},
		{"csv nan", "csv", []byte("1,NaN,3"), s, nil, ReasonNonFinite, false, false},
		{"csv huge", "csv", []byte("1,1e39,3"), s, nil, ReasonNonFinite, false, false},
		{"csv text", "csv", []byte("1,x,3"), s, nil, ReasonMalformed, false, false},
		{"csv count", "csv", []byte("1,2"), s, nil, ReasonFeatureCount, false, false},
		{"json names", "json", []byte(`{"features":{"a":1,"b":2,"d":3}}`), s, nil, ReasonFeatureNames, false, false},
		{"json null", "json", []byte(`{"features":null}`), s, nil, ReasonMalformed, false, false},
		{"json nulls", "json", []byte(`{"features":[1,null,3]}`), s, nil, ReasonMissing, false, false},
		{"json named null", "json", []byte(`{"features":{"a":1,"b":null,"c":3}}`), s, nil, ReasonMissing, false, false},
		{"json named absent", "json", []byte(`{"features":{"a":1,"c":3}}`), s, nil, ReasonMissing, false, false},
		{"csv empty cell", "csv", []byte("1,,3"), s, nil, ReasonMissing, false, false},
		{"json id bad utf8", "json", []byte("{\"id\":\"a\xffb\",\"features\":[1,2,3]}"), s, nil, ReasonBadID, false, false},
		{"json ts bad utf8", "json", []byte("{\"ts\":\"\xc3\",\"features\":[1,2,3]}"), s, nil, ReasonBadID, false, false},
		{"json id", "json", []byte(`{"id":[1],"features":[1,2,3]}`), s, nil, ReasonBadID, false, false},
		{"json ts", "json", []byte(`{"ts":true,"features":[1,2,3]}`), s, nil, ReasonBadID, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs, batch, rj := Decode(c.format, c.payload, c.sc, 16)
			if c.want == nil {
				if rj == nil || rj.Reason != c.reason {
					t.Fatalf("got %v, want reason %s", rj, c.reason)
				}
				return
			}
			if rj != nil {
				t.Fatal(rj)
			}
			if batch != c.batch || len(rs) != len(c.want) {
				t.Fatalf("batch %v, %d readings", batch, len(rs))
			}
			for i := range rs {
				if fmt.Sprint(rs[i].X) != fmt.Sprint(c.want[i]) || rs[i].HasLabel != c.label {
					t.Errorf("reading %d: %v label %v", i, rs[i].X, rs[i].HasLabel)
				}
			}
		})
	}
}

// FuzzDecode: no payload panics the decoder, and what it accepts is finite
// and of the model's width.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{`{"features":[1,2,3]}`, `{"features":{"a":1,"b":2,"c":3},"label":1,"id":"x","ts":5}`,
		`{"batch":[{"features":[1,2,3]}]}`, "1,2,3\n4,5,6", "\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40",
		`{"features":{"temp":null,"room":"bath"},"explain":true}`, "NA,living,3\n1,,2,1"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range fuzzSchemas() {
			for _, format := range []string{"json", "csv", "raw"} {
				rs, _, rj := Decode(format, b, s, 64)
				if rj != nil {
					if rj.Reason == "" || !json.Valid(AppendString(nil, rj.Detail)) {
						t.Fatalf("bad reject %+v", rj)
					}
					continue
				}
				for _, r := range rs {
					if len(r.X) != len(s.Features) {
						t.Fatalf("width %d", len(r.X))
					}
					for _, v := range r.X {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
							t.Fatalf("non-finite accepted from %q", b)
						}
					}
					if s.Logistic && r.HasLabel && r.Label != 0 && r.Label != 1 {
						t.Fatalf("classifier label %v accepted", r.Label)
					}
					if r.ID != nil && !json.Valid(r.ID) {
						t.Fatalf("id %q", r.ID)
					}
				}
			}
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"plain", "quote\"back\\slash", "ctl\x00\x1f\n\t", "bad\xffutf8", "ünï"} {
		var got string
		if err := json.Unmarshal(AppendString(nil, s), &got); err != nil {
			t.Errorf("%q: %v", s, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want {
			t.Errorf("%q round-tripped to %q", s, got)
		}
	}
}

// FuzzFastReading: what the fast JSON path accepts, encoding/json decodes
// to the same reading.
func FuzzFastReading(f *testing.F) {
	for _, seed := range []string{`{"features":[1,2,3]}`, `{"id":7,"ts":"2024","features":{"a":1,"b":-2.5e3,"c":0},"label":1}`,
		` { "features" : [ 1 , 2 , 3 ] , "id" : "x" } `, `{"features":[1,2,3],"features":[1,2,3]}`, `{"ID":1,"features":[1,2,3]}`,
		`{"features":[01,2,3]}`, `{"features":[1e400,2,3]}`, `{"features":{"a":1,"a":2,"b":3}}`, `{"id":"\u0041","features":[1,2,3]}`,
		`{"features":[1,2,3],"explain":true}`, `{"explain":false,"explain":true,"features":[1,2,3]}`, `{"features":[3.4028236e38,2,3]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range fuzzSchemas() {
			fastSameAsSlow(t, b, s)
		}
	})
}

func fastSameAsSlow(t *testing.T, b []byte, s *Schema) {
	fast, ok := fastReading(b, s)
	if !ok {
		return
	}
	var top jsonReading
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json: %v", b, err)
	}
	if top.Batch != nil {
		t.Fatalf("fast path accepted a batch %q", b)
	}
	slow, rj := jsonToReading(&top, s)
	if rj != nil {
		t.Fatalf("fast path accepted %q, slow path rejects: %v", b, rj)
	}
	if string(fast.ID) != string(slow.ID) || string(fast.TS) != string(slow.TS) || fast.HasLabel != slow.HasLabel ||
		math.Float32bits(fast.Label) != math.Float32bits(slow.Label) || fmt.Sprint(fast.X) != fmt.Sprint(slow.X) ||
		fast.Explain != slow.Explain || fast.Extra != nil || slow.Extra != nil {
		t.Fatalf("%q: fast %+v, slow %+v", b, fast, slow)
	}
	for i := range fast.X {
		if math.Float32bits(fast.X[i]) != math.Float32bits(slow.X[i]) {
			t.Fatalf("%q: feature %d fast %v slow %v", b, i, fast.X[i], slow.X[i])
		}
	}
}

// FuzzPublished: whatever a device sends on any format, and whatever its
// topic and device names hold, every message the daemon would publish for
// it (the prediction, the batch answer or the error report) is valid JSON,
// and a client reads back the id it was given.
func FuzzPublished(f *testing.F) {
	for _, seed := range []string{`{"id":"a\u00ff","features":[1,2,3]}`, "{\"id\":\"a\xffb\",\"features\":[1,2,3]}",
		`{"batch":[{"id":1,"ts":"x","features":[1,2,3]},{"features":{"a":1,"b":2,"c":3}}]}`, "1,2,3\n4,5,6",
		`{"features":[1,null,3]}`, "{\"ts\":\"\xc3\x28\",\"features\":[1,2,3]}", `{"id":-0.5e3,"features":[1,2,3],"label":1}`,
		`{"features":{"temp":null,"room":"b\u00e4th"},"explain":true}`, "{\"features\":[1,\"\xff\",null],\"explain\":true}", "NA,living,3\n1,,2,1"} {
		f.Add([]byte(seed), "linnet/dev\xff/features", "dev\xff")
	}
	f.Fuzz(func(t *testing.T, b []byte, topic, device string) {
		for _, s := range fuzzSchemas() {
			for _, format := range []string{"json", "csv", "raw"} {
				rs, batch, rj := Decode(format, b, s, 64)
				var msg []byte
				if rj != nil {
					msg = AppendError(nil, topic, rj, 1)
					var e Error
					if err := json.Unmarshal(msg, &e); err != nil || e.Reason != rj.Reason {
						t.Fatalf("%s %q: error message %q: %v", format, b, msg, err)
					}
					continue
				}
				preds := make([]float32, len(rs))
				for i := range preds {
					preds[i] = float32(i) / 3
					if rs[i].Explain == 1 {
						e := explainAll(rs[i].X, s.Features)
						if rs[i].Extra == nil {
							rs[i].Extra = &Extra{}
						}
						rs[i].Extra.Explanation = &e
					}
				}
				if batch {
					msg = AppendBatch(nil, rs, preds, device, "hvac", true, 9, 1)
				} else {
					msg = AppendPrediction(nil, &rs[0], device, "hvac", preds[0], true, 9, 1)
				}
				var p Prediction
				if err := json.Unmarshal(msg, &p); err != nil {
					t.Fatalf("%s %q: prediction message %q: %v", format, b, msg, err)
				}
				if !batch && string(p.ID) != string(rs[0].ID) {
					t.Fatalf("id %q read back as %q", rs[0].ID, p.ID)
				}
				if batch && len(p.Batch) != len(rs) {
					t.Fatalf("batch of %d read back as %d", len(rs), len(p.Batch))
				}
				ps := p.Batch
				if !batch {
					ps = []Prediction{p}
				}
				for i, p := range ps {
					r := &rs[i]
					var e *model.Explanation
					if r.Extra != nil {
						e = r.Extra.Explanation
					}
					if len(p.Imputed) != len(r.Imputed()) || (e != nil) != (p.Score != nil) || (e != nil && len(p.Explain) != len(e.Top)) {
						t.Fatalf("%s %q: reading %d %+v read back as %+v", format, b, i, r, p)
					}
				}
			}
		}
	})
}

// explainAll is an explanation of x with unit weights, names as given.
func explainAll(x []float32, names []string) model.Explanation {
	e := model.Explanation{Bias: 0.5, Score: 0.5}
	for i, v := range x {
		e.Top = append(e.Top, model.Contribution{Feature: names[i], Value: v, Contribution: float64(v)})
		e.Score += float64(v)
	}
	return e
}

func TestStatusAndResultEncode(t *testing.T) {
	v, loss := int64(3), 0.5
	st := Status{State: "online", Gateway: "g\xff", ModelVersion: &v, Kernels: map[string]string{"dot_f32": "avx2"}, ProgressiveLoss: &loss}
	var back Status
	if err := json.Unmarshal(st.Encode(), &back); err != nil || back.State != "online" || *back.ModelVersion != 3 {
		t.Fatalf("status %s: %v", st.Encode(), err)
	}
	r := OTAResult{Version: &v, Reason: "applied", Accepted: true}
	var rb OTAResult
	if err := json.Unmarshal(r.Encode(), &rb); err != nil || !rb.Accepted || *rb.Version != 3 {
		t.Fatalf("result %s: %v", r.Encode(), err)
	}
	for _, c := range []struct {
		id string
		n  int
		ok bool
	}{{`12`, 12, true}, {`"7"`, 7, true}, {`"x"`, 0, false}, {``, 0, false}, {`1.5`, 0, false}} {
		n, ok := IntID(json.RawMessage(c.id))
		if n != c.n || ok != c.ok {
			t.Errorf("IntID(%s) = %d %v", c.id, n, ok)
		}
	}
}

// FuzzScanID: what ScanID reads is what encoding/json reads.
func FuzzScanID(f *testing.F) {
	for _, seed := range []string{`{"id":12,"device":"d","prediction":1.5,"model_version":3,"ts":9}`,
		`{"device":"d","prediction":1,"id":"x"}`, `{"topic":"t","id":3,"reason":"missing","detail":"a","ts":1}`,
		`{"batch":[{"id":1}]}`, `{"id":1,"id":2}`, `{"id":1,"ID":2}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := ScanID(b)
		if !ok {
			return
		}
		var v struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(b, &v); err != nil || string(v.ID) != string(id) {
			t.Fatalf("%q: scanned %q, encoding/json %q (%v)", b, id, v.ID, err)
		}
	})
}
