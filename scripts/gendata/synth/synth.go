// Package synth generates the synthetic data sets linnet's tests, demo and
// benchmarks train on, each with a known linear ground truth. The numbers
// below are the documentation of that truth: tests compare fitted models
// against Truth.
//
// houses: the house-price example, with features in very different units,
// as sensor data has (rooms ~ 1-9, age ~ 0-80, area ~ 30-300, lot ~ 150-3000,
// distance and income ~ 10^3-10^4). The target price_k (thousands) is
//
//	price_k = 40 + 1.1*area_m2 + 12*rooms - 0.9*age_years
//	          - 0.0025*distance_m + 0.02*lot_m2 + 0.002*income_eur + N(0, 25²)
//
// computed from the values as written (rounded), so an exact least-squares
// fit of the file recovers the coefficients up to the noise.
//
// logistic-separable and logistic-noisy: machine readings with a score
//
//	z = -103.65 + 0.25*temp_c - 0.07*humidity_pct + 0.1*pressure_hpa
//	    + 1.6*vibration_mms - 0.3*current_a
//
// and the label fault = 1 if z > 0 (separable), or fault ~ Bernoulli(1/(1+e^-z))
// (noisy, whose best possible accuracy is that of the rule z > 0, about 0.85).
//
// bench: 32 standard normal features f00..f31, y = sum_i (i+1)/32 * f_i + N(0, 1):
// the shape of the speed benchmarks.
package synth

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
)

// Kinds lists the data sets Generate knows.
var Kinds = []string{"houses", "logistic-separable", "logistic-noisy", "bench"}

// Truth is a data set's generating model: y = Intercept + sum Coef[i]*x[i]
// (plus noise of standard deviation Noise), or, for a logistic set, the
// label follows that score.
type Truth struct {
	Kind      string
	Names     []string
	Target    string
	Coef      []float64
	Intercept float64
	Noise     float64 // standard deviation of the target's noise (regression)
	Logistic  bool
	Separable bool
}

// Score returns Intercept + sum Coef[i]*x[i].
func (t Truth) Score(x []float64) float64 {
	s := t.Intercept
	for i, c := range t.Coef {
		s += c * x[i]
	}
	return s
}

// For returns the ground truth of a kind.
func For(kind string) (Truth, error) {
	switch kind {
	case "houses":
		return Truth{Kind: kind,
			Names:     []string{"area_m2", "rooms", "age_years", "distance_m", "lot_m2", "income_eur"},
			Target:    "price_k",
			Coef:      []float64{1.1, 12, -0.9, -0.0025, 0.02, 0.002},
			Intercept: 40, Noise: 25}, nil
	case "logistic-separable", "logistic-noisy":
		return Truth{Kind: kind,
			Names:     []string{"temp_c", "humidity_pct", "pressure_hpa", "vibration_mms", "current_a"},
			Target:    "fault",
			Coef:      []float64{0.25, -0.07, 0.1, 1.6, -0.3},
			Intercept: -103.65, Logistic: true, Separable: kind == "logistic-separable"}, nil
	case "bench":
		t := Truth{Kind: kind, Target: "y", Noise: 1}
		for i := range 32 {
			t.Names = append(t.Names, fmt.Sprintf("f%02d", i))
			t.Coef = append(t.Coef, float64(i+1)/32)
		}
		return t, nil
	}
	return Truth{}, fmt.Errorf("synth: unknown kind %q (want one of %v)", kind, Kinds)
}

// Row draws one row's features and target.
type gen struct {
	t   Truth
	rng *rand.Rand
}

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// decimals says how each column is written.
func (g *gen) decimals() []int {
	switch g.t.Kind {
	case "houses":
		return []int{1, 0, 0, 0, 0, 0, 2}
	case "bench":
		d := make([]int, 33)
		for i := range d {
			d[i] = 4
		}
		return d
	}
	return []int{2, 2, 2, 2, 2, 0}
}

func (g *gen) row(x []float64) float64 {
	r := g.rng
	switch g.t.Kind {
	case "houses":
		area := round(clamp(110+35*r.NormFloat64(), 30, 300), 1)
		x[0] = area
		x[1] = clamp(math.Round(area/30+0.7*r.NormFloat64()), 1, 9)
		x[2] = math.Floor(r.Float64() * 81)
		x[3] = math.Round(200 + r.Float64()*14800)
		x[4] = math.Round(150 + r.Float64()*2850)
		x[5] = math.Round(18000 + r.Float64()*42000)
		return round(g.t.Score(x)+g.t.Noise*r.NormFloat64(), 2)
	case "bench":
		for i := range x {
			x[i] = round(r.NormFloat64(), 4)
		}
		return round(g.t.Score(x)+g.t.Noise*r.NormFloat64(), 4)
	}
	x[0] = round(20+6*r.NormFloat64(), 2)
	x[1] = round(55+15*r.NormFloat64(), 2)
	x[2] = round(1013+8*r.NormFloat64(), 2)
	x[3] = round(3+1.2*r.NormFloat64(), 2)
	x[4] = round(12+4*r.NormFloat64(), 2)
	z := g.t.Score(x)
	if g.t.Separable {
		if z > 0 {
			return 1
		}
		return 0
	}
	if r.Float64() < 1/(1+math.Exp(-z)) {
		return 1
	}
	return 0
}

// WriteCSV writes a header and rows rows of kind, drawn with seed, and
// returns the truth behind them. The same kind, rows and seed always give
// the same bytes.
func WriteCSV(w io.Writer, kind string, rows int, seed uint64) (Truth, error) {
	t, err := For(kind)
	if err != nil {
		return t, err
	}
	g := &gen{t: t, rng: rand.New(rand.NewPCG(seed, 0x73796e7468))}
	dec := g.decimals()
	bw := bufio.NewWriterSize(w, 1<<16)
	for i, n := range t.Names {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(n)
	}
	fmt.Fprintf(bw, ",%s\n", t.Target)
	x := make([]float64, len(t.Names))
	var buf []byte
	for range rows {
		y := g.row(x)
		buf = buf[:0]
		for i, v := range x {
			buf = strconv.AppendFloat(buf, v, 'f', dec[i], 64)
			buf = append(buf, ',')
		}
		buf = strconv.AppendFloat(buf, y, 'f', dec[len(dec)-1], 64)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return t, err
		}
	}
	return t, bw.Flush()
}
