package model

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestV2FileSizeAndFormat(t *testing.T) {
	m := testModelV2(Squared, 9)
	for _, s := range []Scheme{F32, Q8, Q4} {
		q := mustQuantize(t, m, s)
		b := mustMarshal(t, q)
		if got := m.FileSize(s); got != len(b) {
			t.Errorf("%s: FileSize %d, encoded %d bytes", s, got, len(b))
		}
		if f, _ := FileFormat(b); f != 2 {
			t.Errorf("%s: format %d, want 2", s, f)
		}
	}
	if f, _ := FileFormat(mustMarshal(t, testModel(5, Squared, 1))); f != 1 {
		t.Errorf("a model without preprocessing or statistics is written as format %d, want 1", f)
	}
}

func TestPreprocessingMustMatchFeatures(t *testing.T) {
	m := testModelV2(Squared, 1)
	m.Preprocessing.Columns[1].Categories = []string{"bath", "living", "kitchen"}
	if _, err := m.MarshalBinary(); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("columns that do not expand to the features: %v", err)
	}
	m = testModelV2(Squared, 1)
	m.Preprocessing.Columns[1].FillCategory = "garage"
	if _, err := m.MarshalBinary(); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("fill category outside the categories: %v", err)
	}
	m = testModelV2(Squared, 1)
	m.Min[0] = 100
	if _, err := m.MarshalBinary(); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("min above max: %v", err)
	}
}

func TestEncoder(t *testing.T) {
	m := testModelV2(Squared, 1)
	e := NewEncoder(m)
	if !slices.Equal(e.Inputs(), []string{"temp", "room", "site", "hum"}) {
		t.Fatalf("inputs %v", e.Inputs())
	}
	// features: temp, missing(temp), room=bath, room=kitchen, room=living,
	// site#0..3, missing(site), hum
	x := make([]float32, e.Width())
	var rep EncodeReport
	err := e.Encode(x, map[string]Value{"temp": Num(25), "room": Str("living"), "site": Str("south"), "hum": {}}, &rep)
	if err != nil {
		t.Fatal(err)
	}
	site := make([]float32, 4)
	site[HashBucket(HashCategory("south"), 2)] = 1
	want := append([]float32{25, 0, 0, 0, 1}, site...)
	want = append(want, 0, 40)
	if !slices.Equal(x, want) {
		t.Errorf("encoded %v, want %v", x, want)
	}
	if !slices.Equal(rep.Imputed, []string{"hum"}) || len(rep.Unseen) != 0 {
		t.Errorf("report %+v", rep)
	}

	rep = EncodeReport{}
	if err := e.Encode(x, map[string]Value{"room": Str("garage"), "site": Str("null"), "hum": Str("41.5")}, &rep); err != nil {
		t.Fatal(err)
	}
	site = make([]float32, 4)
	site[HashBucket(HashCategory("north"), 2)] = 1
	want = append([]float32{21.5, 1, 0, 0, 0}, site...)
	want = append(want, 1, 41.5)
	if !slices.Equal(x, want) {
		t.Errorf("encoded %v, want %v", x, want)
	}
	if !slices.Equal(rep.Imputed, []string{"temp", "site"}) || !slices.Equal(rep.Unseen, []string{"room"}) {
		t.Errorf("report %+v", rep)
	}

	if err := e.Encode(x, map[string]Value{"temp": Str("warm")}, nil); !errors.Is(err, ErrNotNumber) {
		t.Errorf("text in a numeric column: %v", err)
	}
	if err := e.Encode(x, map[string]Value{"temp": Num(math.Inf(1))}, nil); !errors.Is(err, ErrNotFinite) {
		t.Errorf("infinite value: %v", err)
	}
	if err := e.Encode(x, map[string]Value{"door": Num(1)}, nil); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("unknown column: %v", err)
	}
	m.Preprocessing.Missing = MissingError
	if err := NewEncoder(m).Encode(x, map[string]Value{"temp": Num(1), "room": Str("bath"), "site": Str("x")}, nil); !errors.Is(err, ErrMissingValue) || !errors.Is(err, ErrMissingFeature) {
		t.Errorf("missing under the error policy: %v", err)
	}
}

func TestEncoderNumericCategories(t *testing.T) {
	pre := &Preprocessing{Columns: []Column{{Name: "floor", Kind: OneHot, Categories: []string{"1", "2.0", "3"}}}}
	m := &Model{Features: pre.FeatureNames(), Preprocessing: pre, Loss: Squared, Scheme: F32,
		Mean: make([]float32, 3), Std: []float32{1, 1, 1}, Weights: make([]float32, 3)}
	x := make([]float32, 3)
	if err := m.Vector(x, map[string]float64{"floor": 2}); err != nil || !slices.Equal(x, []float32{0, 1, 0}) {
		t.Errorf("category 2 as a number: %v %v", x, err)
	}
	if err := m.Positional(x, []float64{3}); err != nil || !slices.Equal(x, []float32{0, 0, 1}) {
		t.Errorf("positional category 3: %v %v", x, err)
	}
	if err := m.Positional(x, []float64{math.NaN()}); err != nil || !slices.Equal(x, []float32{0, 0, 0}) {
		t.Errorf("missing category without a fill: %v %v", x, err)
	}
}

func TestJSONValue(t *testing.T) {
	for raw, want := range map[string]Value{`null`: {}, ` 2.5 `: Num(2.5), `"bath"`: Str("bath"), `"\u00e9"`: Str("é"), `-1e3`: Num(-1000)} {
		if got, err := JSONValue([]byte(raw)); err != nil || got != want {
			t.Errorf("%s: %+v %v", raw, got, err)
		}
	}
	for _, raw := range []string{``, `true`, `[1]`, `{"a":1}`, `"unterminated`} {
		if _, err := JSONValue([]byte(raw)); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
}

// An online learner's snapshots keep the model's preprocessing and
// training statistics: a reading's inputs do not change with the weights.
func TestLearnerKeepsPreprocessing(t *testing.T) {
	m := testModelV2(Squared, 3)
	l := NewLearner(m, LearnerConfig{})
	x := make([]float32, len(m.Features))
	l.Learn(x, 1)
	s := l.Snapshot()
	if s.Preprocessing == nil || !slices.Equal(s.Preprocessing.FeatureNames(), s.Features) || !slices.Equal(s.Min, m.Min) || s.TargetStd != m.TargetStd {
		t.Fatalf("snapshot lost the preprocessing: %+v", s.Preprocessing)
	}
	if _, err := s.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultVersion(t *testing.T) {
	last := int64(2_000_000_000) // any Unix-seconds version of older builds
	for range 1000 {
		v := DefaultVersion()
		if v <= last {
			t.Fatalf("version %d after %d", v, last)
		}
		last = v
	}
}
