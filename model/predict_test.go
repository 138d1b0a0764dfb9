package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// reference computes the prediction in float64 straight from the formula
// in the Model comment.
func reference(m *Model, x []float32) float64 {
	z := float64(m.Bias)
	for i, w := range m.Weights {
		z += float64(w) * (float64(x[i]) - float64(m.Mean[i])) / float64(m.Std[i])
	}
	if m.Loss == Logistic {
		return 1 / (1 + math.Exp(-z))
	}
	return z
}

func randomReading(m *Model, r *rand.Rand) []float32 {
	x := make([]float32, len(m.Features))
	for i := range x {
		x[i] = m.Mean[i] + m.Std[i]*float32(r.NormFloat64())
	}
	return x
}

// tolerance for a prediction: float32 rounding for f32; for q8 the
// reading's own quantization (half a step of 1/127 of each block's largest
// |u|) times the weights.
func tolerance(m *Model, kind predictKind) float64 {
	var sw float64
	for _, w := range m.Weights {
		sw += math.Abs(float64(w))
	}
	switch kind {
	case kindQ8, kindQ4:
		return 6*sw/127 + 1e-3
	}
	return 1e-4 * (sw + 1 + math.Abs(float64(m.Bias)))
}

func TestPredictorKinds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 13, 32, 33, 300} {
		for _, loss := range []Loss{Squared, Logistic} {
			for _, s := range []Scheme{F32, Q8, Q4} {
				m := mustQuantize(t, testModel(n, loss, uint64(n)), s)
				for _, expand := range []bool{true, false} {
					p := newPredictor(m, expand)
					tol := tolerance(m, p.kind)
					rows := make([]float32, 0, 5*n)
					var want []float64
					for range 5 {
						x := randomReading(m, r)
						rows = append(rows, x...)
						w := reference(m, x)
						want = append(want, w)
						if got := p.Predict(x); math.Abs(float64(got)-w) > tol {
							t.Errorf("n=%d %s %s %s: Predict %v, want %v ± %v", n, loss, s, p.Kernel(), got, w, tol)
						}
					}
					dst := make([]float32, 5)
					p.PredictBatch(dst, rows)
					for i, w := range want {
						if math.Abs(float64(dst[i])-w) > tol {
							t.Errorf("n=%d %s %s %s: PredictBatch[%d] %v, want %v", n, loss, s, p.Kernel(), i, dst[i], w)
						}
					}
				}
			}
		}
	}
}

func TestPredictorUnfoldable(t *testing.T) {
	// A feature whose mean is far from zero in standard deviations (a
	// year): folding would cancel large float32 terms.
	m := testModel(4, Squared, 1)
	m.Mean[0], m.Std[0] = 2000, 0.5
	p := NewPredictor(m)
	if p.Kernel() != "f32" {
		t.Fatalf("kernel %s, want f32 (standardize per reading)", p.Kernel())
	}
	x := []float32{2000.5, m.Mean[1], m.Mean[2], m.Mean[3]}
	if got, want := p.Predict(x), reference(m, x); math.Abs(float64(got)-want) > 1e-5 {
		t.Errorf("Predict %v, want %v", got, want)
	}
}

func TestPredictorChoosesByWidth(t *testing.T) {
	narrow := NewPredictor(mustQuantize(t, testModel(13, Squared, 1), Q8))
	wide := NewPredictor(mustQuantize(t, testModel(ExpandWidth+1, Squared, 1), Q8))
	if narrow.Kernel() != "f32-folded" || wide.Kernel() != "q8" {
		t.Errorf("13 wide: %s, %d wide: %s", narrow.Kernel(), ExpandWidth+1, wide.Kernel())
	}
}

func TestPredictorLogisticTails(t *testing.T) {
	for _, z := range []float32{-1e6, -100, 0, 100, 1e6} {
		s := sigmoid(z)
		if math.IsNaN(float64(s)) || s < 0 || s > 1 {
			t.Errorf("sigmoid(%v) = %v", z, s)
		}
	}
}

func TestPredictorConcurrent(t *testing.T) {
	m := mustQuantize(t, testModel(100, Squared, 1), Q8)
	p := newPredictor(m, false)
	x := randomReading(m, rand.New(rand.NewPCG(3, 4)))
	want := p.Predict(x)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if got := p.Predict(x); got != want {
					t.Errorf("concurrent Predict %v, want %v", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestPredictorNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, s := range []Scheme{F32, Q8, Q4} {
		m := mustQuantize(t, testModel(200, Logistic, 1), s)
		for _, expand := range []bool{true, false} {
			p := newPredictor(m, expand)
			x := randomReading(m, rand.New(rand.NewPCG(3, 4)))
			rows := append(append([]float32{}, x...), x...)
			dst := make([]float32, 2)
			a := testing.AllocsPerRun(200, func() { p.Predict(x); p.PredictBatch(dst, rows) })
			// A GC may empty the pool once in a while.
			if a > 0.1 {
				t.Errorf("%s %s: %v allocations per call", s, p.Kernel(), a)
			}
		}
	}
}

func TestPredictorPanicsOnWidth(t *testing.T) {
	p := NewPredictor(testModel(3, Squared, 1))
	defer func() {
		if recover() == nil {
			t.Error("no panic on a short reading")
		}
	}()
	p.Predict(make([]float32, 2))
}

// BenchmarkPredictWidth compares, at each width, serving a q8 (and q4)
// model from expanded float32 weights with serving it quantized. The
// crossover sets ExpandWidth.
//
//	go test -run XXX -bench PredictWidth ./model/
func BenchmarkPredictWidth(b *testing.B) {
	for _, n := range []int{13, 64, 256, 1024, 4096, 16384, 65536} {
		for _, s := range []Scheme{Q8, Q4} {
			m := mustQuantize(b, testModel(n, Squared, 1), s)
			x := randomReading(m, rand.New(rand.NewPCG(1, 1)))
			for _, expand := range []bool{true, false} {
				p := newPredictor(m, expand)
				b.Run(fmt.Sprintf("n=%d/%s/%s", n, s, p.Kernel()), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(4 * n))
					for b.Loop() {
						p.Predict(x)
					}
				})
			}
		}
	}
}

// BenchmarkPredictBatch serves 256 readings per call.
func BenchmarkPredictBatch(b *testing.B) {
	for _, n := range []int{13, 256} {
		for _, s := range []Scheme{F32, Q8} {
			m := mustQuantize(b, testModel(n, Squared, 1), s)
			p := NewPredictor(m)
			r := rand.New(rand.NewPCG(1, 1))
			var rows []float32
			for range 256 {
				rows = append(rows, randomReading(m, r)...)
			}
			dst := make([]float32, 256)
			b.Run(fmt.Sprintf("n=%d/%s/%s", n, s, p.Kernel()), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p.PredictBatch(dst, rows)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*256), "ns/row")
			})
		}
	}
}
