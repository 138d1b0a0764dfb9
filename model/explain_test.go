package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// explainModel is a 4-feature model over one numeric column, t, and a
// one-hot column, color.
func explainModel(loss Loss) *Model {
	return &Model{Loss: loss, Scheme: F32, Bias: 0.25,
		Features: []string{"t", "color=red", "color=green", "color=blue"},
		Mean:     []float32{20, 0.5, 0.3, 0.2},
		Std:      []float32{5, 0.5, 0.46, 0.4},
		Weights:  []float32{0.8, 0.1, -0.2, 1.5},
		Preprocessing: &Preprocessing{Columns: []Column{
			{Name: "t", Kind: Numeric, Fill: 20},
			{Name: "color", Kind: OneHot, Categories: []string{"red", "green", "blue"}, FillCategory: "red"},
		}},
	}
}

func TestExplainSumsToPrediction(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, loss := range []Loss{Squared, Logistic} {
		for _, scheme := range []Scheme{F32, Q8} {
			m := explainModel(loss)
			if scheme == Q8 {
				var err error
				if m, err = m.Quantize(Q8); err != nil {
					t.Fatal(err)
				}
			}
			p := NewPredictor(m)
			// The logit as the predictor computes it, before the sigmoid: the
			// same weights served as a regression.
			twin := m.Clone()
			twin.Loss = Squared
			logit := NewPredictor(twin)
			enc := NewEncoder(m)
			x := make([]float32, 4)
			for range 1000 {
				color := []string{"red", "green", "blue", "purple"}[r.IntN(4)]
				if err := enc.Encode(x, map[string]Value{"t": Num(20 + 10*r.NormFloat64()), "color": Str(color)}, nil); err != nil {
					t.Fatal(err)
				}
				e, err := m.Explain(x, 0)
				if err != nil {
					t.Fatal(err)
				}
				sum := e.Bias
				for _, c := range e.Top {
					sum += c.Contribution
				}
				if math.Abs(sum-e.Score) > 1e-12 {
					t.Fatalf("contributions sum to %v, score %v", sum, e.Score)
				}
				if z := float64(logit.Predict(x)); math.Abs(z-e.Score) > 1e-5 {
					t.Fatalf("%s %s %v: bias + contributions %v, logit %v", loss, scheme, x, e.Score, z)
				}
				got, want := float64(p.Predict(x)), e.Score
				if loss == Logistic {
					want = 1 / (1 + math.Exp(-want))
				}
				if math.Abs(got-want) > 1e-5 {
					t.Fatalf("%s %s %v: prediction %v from the contributions, %v from Predict", loss, scheme, x, want, got)
				}
			}
		}
	}
}

func TestExplainTopFeature(t *testing.T) {
	m := explainModel(Squared)
	enc := NewEncoder(m)
	x := make([]float32, 4)
	cases := []struct {
		reading map[string]Value
		top     string
	}{
		{map[string]Value{"t": Num(20), "color": Str("blue")}, "color=blue"}, // 1.5*0.8/0.4 = 3
		{map[string]Value{"t": Num(45), "color": Str("red")}, "t"},           // 0.8*25/5 = 4
		// green's own -0.30 is smaller than blue's absence, 1.5*-0.2/0.4
		{map[string]Value{"t": Num(20), "color": Str("green")}, "color=blue"},
	}
	for _, c := range cases {
		if err := enc.Encode(x, c.reading, nil); err != nil {
			t.Fatal(err)
		}
		e, err := m.Explain(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Top) != 2 || e.Top[0].Feature != c.top {
			t.Errorf("%v: top %+v, want %s first", c.reading, e.Top, c.top)
		}
		if math.Abs(e.Top[0].Contribution) < math.Abs(e.Top[1].Contribution) {
			t.Errorf("%v: not sorted: %+v", c.reading, e.Top)
		}
	}
	if _, err := m.Explain(x[:3], 1); err == nil {
		t.Error("short reading explained")
	}
	x[0] = float32(math.NaN())
	if _, err := m.Explain(x, 1); err == nil {
		t.Error("NaN reading explained")
	}
}
