package onnx

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// testModel returns a model of n features with scaling of very different
// magnitudes (a timestamp-like mean past the Predictor's fold limit too).
func testModel(n int, loss model.Loss, seed uint64) *model.Model {
	r := rand.New(rand.NewPCG(seed, 15))
	m := &model.Model{Version: 7, Target: "y", Loss: loss, Scheme: model.F32, Bias: float32(r.NormFloat64())}
	for i := 0; i < n; i++ {
		m.Features = append(m.Features, "f"+strconv.Itoa(i)+"_x")
		m.Mean = append(m.Mean, float32(r.NormFloat64()*math.Pow(10, float64(i%6))))
		m.Std = append(m.Std, float32(0.01+r.Float64()*math.Pow(10, float64(i%5))))
		m.Weights = append(m.Weights, float32(r.NormFloat64()))
	}
	if n > 2 {
		m.Mean[2] = 1.7e9 // a Unix time: |mean/std| far past the fold limit
		m.Std[2] = 1e3
	}
	return m
}

func testRows(m *model.Model, rows int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 16))
	x := make([]float32, rows*len(m.Features))
	for i := range x {
		j := i % len(m.Features)
		x[i] = m.Mean[j] + m.Std[j]*float32(r.NormFloat64())
	}
	return x
}

func roundTripModels(t *testing.T) map[string]*model.Model {
	t.Helper()
	out := map[string]*model.Model{
		"regression": testModel(13, model.Squared, 1),
		"logistic":   testModel(9, model.Logistic, 2),
		"huber":      testModel(5, model.Huber, 3),
		"one":        testModel(1, model.Squared, 4),
		"wide":       testModel(300, model.Logistic, 5),
	}
	id := testModel(4, model.Squared, 6)
	for i := range id.Mean {
		id.Mean[i], id.Std[i] = 0, 1
	}
	out["identity"] = id
	for _, s := range []model.Scheme{model.Q8, model.Q4} {
		q, err := testModel(70, model.Logistic, 7).Quantize(s)
		if err != nil {
			t.Fatal(err)
		}
		out[string(s)] = q
	}
	return out
}

// samePredictions checks a and b give bit-identical predictions.
func samePredictions(t *testing.T, a, b *model.Model) {
	t.Helper()
	if !slices.Equal(a.Features, b.Features) || a.Loss != b.Loss && !(a.Loss == model.Huber && b.Loss == model.Squared) {
		t.Fatalf("features %v loss %s became %v %s", a.Features, a.Loss, b.Features, b.Loss)
	}
	x := testRows(a, 1000, 9)
	pa, pb := make([]float32, 1000), make([]float32, 1000)
	model.NewPredictor(a).PredictBatch(pa, x)
	model.NewPredictor(b).PredictBatch(pb, x)
	for i := range pa {
		if math.Float32bits(pa[i]) != math.Float32bits(pb[i]) {
			t.Fatalf("row %d: %v before, %v after the round trip", i, pa[i], pb[i])
		}
	}
}

func TestRoundTripONNX(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for name, m := range roundTripModels(t) {
		file, err := Export(m)
		if err != nil {
			t.Fatalf("%s: Export: %v", name, err)
		}
		back, info, err := Import(file, Options{})
		if err != nil {
			t.Fatalf("%s: Import: %v", name, err)
		}
		if back.Target != m.Target {
			t.Errorf("%s: target %q became %q", name, m.Target, back.Target)
		}
		if m.Loss == model.Logistic && !slices.Equal(info.Classes, []string{"0", "1"}) {
			t.Errorf("%s: classes %v", name, info.Classes)
		}
		// The dequantized weights are what the exported file holds.
		want := m.Clone()
		want.Scheme, want.Q8, want.Q4 = model.F32, back.Q8, back.Q4
		if !slices.Equal(want.Weights, back.Weights) || !slices.Equal(want.Mean, back.Mean) ||
			!slices.Equal(want.Std, back.Std) || want.Bias != back.Bias {
			t.Errorf("%s: parameters changed in the round trip", name)
		}
		samePredictions(t, m, back)
		exportedAsNumpy(t, m, file, testRows(m, 200, 10))
		path := filepath.Join(dir, name+".onnx")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	checkONNX(t, files...)
}

func TestRoundTripJSON(t *testing.T) {
	for name, m := range roundTripModels(t) {
		file, err := ExportJSON(m)
		if err != nil {
			t.Fatalf("%s: ExportJSON: %v", name, err)
		}
		if !IsJSON(file) {
			t.Fatalf("%s: IsJSON false", name)
		}
		back, err := ImportJSON(file)
		if err != nil {
			t.Fatalf("%s: ImportJSON: %v", name, err)
		}
		samePredictions(t, m, back)
	}
}

func TestImportJSONErrors(t *testing.T) {
	for _, c := range []struct{ name, json, want string }{
		{"null intercept", `{"kind":"linear","features":["a"],"coef":[1],"intercept":null}`, "intercept is missing or null"},
		{"null coef", `{"kind":"linear","features":["a"],"coef":[null],"intercept":1}`, "coef[0] is missing or null"},
		{"unknown key", `{"kind":"linear","features":["a"],"coef":[1],"intercept":1,"bias":2}`, "unknown field"},
		{"kind", `{"kind":"poisson","features":["a"],"coef":[1],"intercept":1}`, "kind"},
		{"lengths", `{"kind":"linear","features":["a","b"],"coef":[1],"intercept":1}`, "1 coef values for 2 features"},
		{"zero scale", `{"kind":"linear","features":["a"],"coef":[1],"intercept":1,"scale":[0]}`, "must be > 0"},
		{"overflow", `{"kind":"linear","features":["a"],"coef":[1e39],"intercept":1}`, "not a float32"},
		{"duplicate", `{"kind":"linear","features":["a","a"],"coef":[1,2],"intercept":1}`, "twice"},
		{"trailing", `{"kind":"linear","features":["a"],"coef":[1],"intercept":1} {}`, "after the object"},
		{"no features", `{"kind":"linear","features":[],"coef":[],"intercept":1}`, "no features"},
	} {
		_, err := ImportJSON([]byte(c.json))
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.name, err, c.want)
		}
	}
	m, err := ImportJSON([]byte(`{"kind":"logistic","features":["a","b"],"coef":[0.5,-2],"intercept":0.25}`))
	if err != nil {
		t.Fatal(err)
	}
	// Raw coefficients: z = 0.25 + 0.5*a - 2*b.
	if got, want := model.NewPredictor(m).Predict([]float32{2, 1}), model.Sigmoid(0.25+1-2); got != want {
		t.Errorf("prediction %v, want %v", got, want)
	}
}

// preprocessedModel has imputed numeric columns around a one-hot one.
func preprocessedModel(missing model.MissingPolicy) *model.Model {
	pre := &model.Preprocessing{Missing: missing, Columns: []model.Column{
		{Name: "temp", Fill: 21.5},
		{Name: "site", Kind: model.OneHot, Categories: []string{"north", "south", "east"}},
		{Name: "load", Fill: -3.25},
	}}
	names := pre.FeatureNames()
	m := &model.Model{Version: 3, Target: "fault", Loss: model.Logistic, Scheme: model.F32, Bias: -0.4,
		Features: names, Preprocessing: pre,
		Mean:    []float32{20, 0.3, 0.5, 0.2, 1},
		Std:     []float32{4, 0.46, 0.5, 0.4, 2.5},
		Weights: []float32{0.7, -0.2, 0.4, 0, 1.1},
	}
	return m
}

// encodedRows encodes readings with missing values and an unseen
// category; it returns them raw (nil for missing) and encoded.
func encodedRows(t *testing.T, m *model.Model, rows int) ([][]any, []float32) {
	t.Helper()
	enc := model.NewEncoder(m)
	n := len(m.Features)
	x := make([]float32, rows*n)
	raw := make([][]any, rows)
	sites := []string{"north", "south", "east", "west"}
	for r := 0; r < rows; r++ {
		temp, load := 15+float64(r%13), float64(r%7)-3
		raw[r] = []any{temp, sites[r%4], load}
		vals := []model.Value{model.Num(temp), model.Str(sites[r%4]), model.Num(load)}
		if m.Preprocessing.Missing == model.MissingImpute && r%5 == 0 {
			vals[0], vals[2] = model.Value{}, model.Value{}
			raw[r][0], raw[r][2] = nil, nil
		}
		if err := enc.EncodeValues(x[r*n:(r+1)*n], vals, nil); err != nil {
			t.Fatal(err)
		}
	}
	return raw, x
}

// exportedAsNumpy checks that numpy's evaluation of the exported graph
// gives linnet's predictions of m for the rows x (raw values as raw, or
// x itself when nil): 1e-5 relative to max(|y|, 1).
func exportedAsNumpy(t *testing.T, m *model.Model, file []byte, x []float32) {
	t.Helper()
	exportedAsNumpyRaw(t, m, file, nil, x)
}

func exportedAsNumpyRaw(t *testing.T, m *model.Model, file []byte, raw [][]any, x []float32) {
	t.Helper()
	n := len(m.Features)
	rows := len(x) / n
	if raw == nil {
		raw = make([][]any, rows)
		for r := range raw {
			raw[r] = make([]any, n)
			for j := range raw[r] {
				raw[r][j] = float64(x[r*n+j])
			}
		}
	}
	want := numpyEval(t, file, raw)
	got := make([]float32, rows)
	model.NewPredictor(m).PredictBatch(got, x)
	for r, w := range want {
		if d := math.Abs(float64(got[r]) - w); !(d <= 1e-5*math.Max(math.Abs(w), 1)) {
			t.Fatalf("row %d: linnet %v, numpy on the exported graph %v", r, got[r], w)
		}
	}
}

func TestRoundTripPreprocessing(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, missing := range []model.MissingPolicy{model.MissingImpute, model.MissingError} {
		m := preprocessedModel(missing)
		file, err := Export(m)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := Import(file, Options{})
		if err != nil {
			t.Fatalf("%s: %v", missing, err)
		}
		want := m.Preprocessing.Clone()
		if missing == model.MissingError { // fills unused, so not exported
			want.Columns[0].Fill, want.Columns[2].Fill = 0, 0
		}
		if !reflect.DeepEqual(want, back.Preprocessing) || !slices.Equal(m.Features, back.Features) {
			t.Fatalf("%s: preprocessing %+v became %+v", missing, m.Preprocessing, back.Preprocessing)
		}
		raw, x := encodedRows(t, m, 200)
		exportedAsNumpyRaw(t, m, file, raw, x)
		pa, pb := make([]float32, 200), make([]float32, 200)
		model.NewPredictor(m).PredictBatch(pa, x)
		model.NewPredictor(back).PredictBatch(pb, x)
		if !slices.Equal(pa, pb) {
			t.Fatalf("%s: predictions changed", missing)
		}
		path := filepath.Join(dir, missing.String()+".onnx")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	checkONNX(t, files...)

	// The JSON form has no preprocessing: it refuses rather than drop it.
	if _, err := ExportJSON(preprocessedModel(model.MissingImpute)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ExportJSON of a one-hot model: %v", err)
	}
	m := preprocessedModel(model.MissingImpute)
	m.Preprocessing.Columns[0].Indicator = true
	m.Features = m.Preprocessing.FeatureNames()
	m.Mean, m.Std, m.Weights = append(m.Mean, 0), append(m.Std, 1), append(m.Weights, 0.5)
	if _, err := Export(m); !errors.Is(err, ErrUnsupported) || !contains(err.Error(), "indicator") {
		t.Errorf("Export of a missing indicator: %v", err)
	}
}
