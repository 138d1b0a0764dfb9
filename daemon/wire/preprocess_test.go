package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// preModel is a model with preprocessing: features temp, missing(temp),
// room=bath, room=kitchen, room=living, hum.
func preModel(policy model.MissingPolicy) *model.Model {
	pre := &model.Preprocessing{Missing: policy, Columns: []model.Column{
		{Name: "temp", Fill: 21.5, Indicator: true},
		{Name: "room", Kind: model.OneHot, Categories: []string{"bath", "kitchen", "living"}, FillCategory: "kitchen"},
		{Name: "hum", Fill: 40},
	}}
	return &model.Model{Features: pre.FeatureNames(), Preprocessing: pre, Loss: model.Squared}
}

func TestDecodePreprocessed(t *testing.T) {
	s := NewModelSchema(preModel(model.MissingImpute))
	strict := NewModelSchema(preModel(model.MissingError))
	if !slices.Equal(s.Inputs(), []string{"temp", "room", "hum"}) || len(s.Features) != 6 || s.plain {
		t.Fatalf("schema inputs %v features %v plain %v", s.Inputs(), s.Features, s.plain)
	}
	raw := func(v ...float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	nan := float32(math.NaN())
	for _, c := range []struct {
		name, format string
		payload      []byte
		sc           *Schema
		want         []float32 // nil: rejected
		reason       string
		imputed      []string
		unseen       int
	}{
		{"named", "json", []byte(`{"features":{"temp":20,"room":"bath","hum":50}}`), s, []float32{20, 0, 1, 0, 0, 50}, "", nil, 0},
		{"null and absent", "json", []byte(`{"features":{"temp":null,"room":"living"}}`), s, []float32{21.5, 1, 0, 0, 1, 40}, "", []string{"temp", "hum"}, 0},
		{"positional", "json", []byte(`{"features":[20,null,"51.5"]}`), s, []float32{20, 0, 0, 1, 0, 51.5}, "", []string{"room"}, 0},
		{"unseen", "json", []byte(`{"features":[20,"garage",50]}`), s, []float32{20, 0, 0, 0, 0, 50}, "", nil, 1},
		{"NA text", "json", []byte(`{"features":{"temp":"NA","room":"bath","hum":1}}`), s, []float32{21.5, 1, 1, 0, 0, 1}, "", []string{"temp"}, 0},
		{"csv", "csv", []byte("20,bath,\n"), s, []float32{20, 0, 1, 0, 0, 40}, "", []string{"hum"}, 0},
		{"csv label", "csv", []byte("NA,,50,3.5"), s, []float32{21.5, 1, 0, 1, 0, 50}, "", []string{"temp", "room"}, 0},
		{"raw", "raw", raw(nan, 7, 50), s, []float32{21.5, 1, 0, 0, 0, 50}, "", []string{"temp"}, 1},
		{"strict null", "json", []byte(`{"features":{"temp":null,"room":"bath","hum":1}}`), strict, nil, ReasonMissing, nil, 0},
		{"strict absent", "json", []byte(`{"features":{"temp":1,"room":"bath"}}`), strict, nil, ReasonMissing, nil, 0},
		{"strict csv", "csv", []byte("1,,2"), strict, nil, ReasonMissing, nil, 0},
		{"unknown name", "json", []byte(`{"features":{"temp":1,"door":2}}`), s, nil, ReasonFeatureNames, nil, 0},
		{"count", "json", []byte(`{"features":[1,"bath"]}`), s, nil, ReasonFeatureCount, nil, 0},
		{"bool", "json", []byte(`{"features":[1,true,2]}`), s, nil, ReasonMalformed, nil, 0},
		{"huge", "json", []byte(`{"features":[1e400,"bath",2]}`), s, nil, ReasonNonFinite, nil, 0},
		{"beyond float32", "json", []byte(`{"features":{"temp":3.4028236e38,"room":"bath","hum":2}}`), s, nil, ReasonNonFinite, nil, 0},
		{"text number", "json", []byte(`{"features":["warm","bath",2]}`), s, nil, ReasonMalformed, nil, 0},
		{"csv count", "csv", []byte("1,bath"), s, nil, ReasonFeatureCount, nil, 0},
		{"raw count", "raw", raw(1, 2), s, nil, ReasonFeatureCount, nil, 0},
		{"raw inf", "raw", raw(float32(math.Inf(1)), 2, 3), s, nil, ReasonNonFinite, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs, _, rj := Decode(c.format, c.payload, c.sc, 16)
			if c.want == nil {
				if rj == nil || rj.Reason != c.reason {
					t.Fatalf("got %v, want reason %s", rj, c.reason)
				}
				return
			}
			if rj != nil {
				t.Fatal(rj)
			}
			r := rs[0]
			unseen := 0
			if r.Extra != nil {
				unseen = r.Extra.Unseen
			}
			if !slices.Equal(r.X, c.want) || !slices.Equal(r.Imputed(), c.imputed) || unseen != c.unseen {
				t.Errorf("got %v imputed %v unseen %d, want %v %v %d", r.X, r.Imputed(), unseen, c.want, c.imputed, c.unseen)
			}
		})
	}
}

// A model whose preprocessing only copies numbers keeps the fast path.
func TestPlainPreprocessingIsFast(t *testing.T) {
	pre := &model.Preprocessing{Columns: []model.Column{{Name: "a", Fill: 1}, {Name: "b", Fill: 2}}}
	s := NewModelSchema(&model.Model{Features: pre.FeatureNames(), Preprocessing: pre})
	if r, ok := fastReading([]byte(`{"features":{"a":3,"b":4},"explain":true}`), s); !ok || !slices.Equal(r.X, []float32{3, 4}) || r.Explain != 1 {
		t.Errorf("fast path: %v %+v", ok, r)
	}
	rs, _, rj := Decode("json", []byte(`{"features":{"a":3}}`), s, 1)
	if rj != nil || !slices.Equal(rs[0].X, []float32{3, 2}) || !slices.Equal(rs[0].Imputed(), []string{"b"}) {
		t.Errorf("absent name: %v %+v", rj, rs)
	}
}

func TestExplainField(t *testing.T) {
	s := NewSchema([]string{"a"}, false)
	for payload, want := range map[string]int8{`{"features":[1],"explain":true}`: 1, `{"features":[1],"explain":false}`: -1,
		`{"features":[1]}`: 0, `{"features":[1],"explain":null}`: 0, `{"explain":true,"features":[1],"id":"\u0041"}`: 1} {
		rs, _, rj := Decode("json", []byte(payload), s, 1)
		if rj != nil || rs[0].Explain != want {
			t.Errorf("%s: %v, explain %d", payload, rj, rs[0].Explain)
		}
	}
	if _, _, rj := Decode("json", []byte(`{"features":[1],"explain":3}`), s, 1); rj == nil || rj.Reason != ReasonMalformed {
		t.Errorf("explain 3: %v", rj)
	}
	r := Reading{Extra: &Extra{Imputed: []string{"t\"emp"}, Explanation: &model.Explanation{Bias: 1, Score: 3.5,
		Top: []model.Contribution{{Feature: "room=bath", Value: 1, Contribution: 2}, {Feature: "t", Value: 0.5, Contribution: math.Inf(1)}}}}}
	msg := AppendPrediction(nil, &r, "d", "", 4, false, 1, 2)
	var p Prediction
	if err := json.Unmarshal(msg, &p); err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	if !slices.Equal(p.Imputed, r.Imputed()) || *p.Bias != 1 || *p.Score != 3.5 || len(p.Explain) != 2 || p.Explain[0] != r.Extra.Explanation.Top[0] {
		t.Errorf("%s read back as %+v", msg, p)
	}
}

// fuzzSchemas are the schemas the fuzz targets decode with: a plain model,
// one with categories and imputation, one whose preprocessing only copies.
func fuzzSchemas() []*Schema {
	pre := &model.Preprocessing{Columns: []model.Column{{Name: "a", Fill: 1}, {Name: "b", Fill: 2}, {Name: "c", Fill: 3}}}
	return []*Schema{NewSchema([]string{"a", "b", "c"}, true), NewModelSchema(preModel(model.MissingImpute)),
		NewModelSchema(&model.Model{Features: pre.FeatureNames(), Preprocessing: pre, Loss: model.Logistic})}
}

func ExampleAppendPrediction_explained() {
	s := NewModelSchema(preModel(model.MissingImpute))
	rs, _, _ := Decode("json", []byte(`{"id":1,"features":{"temp":null,"room":"bath","hum":50}}`), s, 1)
	fmt.Println(string(AppendPrediction(nil, &rs[0], "d1", "", 21, false, 7, 0)))
	// Output: {"id":1,"device":"d1","prediction":21,"imputed":["temp"],"model_version":7,"ts":0}
}
