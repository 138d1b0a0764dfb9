package model

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchTrainer holds rows x d standardized features in memory, the bias
// column included, as Train lays them out.
func benchTrainer(b *testing.B, rows, d int, cfg TrainConfig) *trainer {
	b.Helper()
	if err := cfg.fill(); err != nil {
		b.Fatal(err)
	}
	st := NewRunning(d)
	st.N = 2
	for i := range st.M2 {
		st.M2[i] = 2
	}
	st.YM2 = 2
	t := newTrainer(cfg, d, st)
	rng := rand.New(rand.NewPCG(1, 1))
	t.x = make([]float32, rows*t.stride)
	t.y = make([]float32, rows)
	for r := range rows {
		row := t.x[r*t.stride : (r+1)*t.stride]
		var y float32
		for i := range d {
			row[i] = float32(rng.NormFloat64())
			y += row[i] * float32(i+1) / float32(d)
		}
		row[d] = 1
		t.y[r] = y + float32(rng.NormFloat64())
	}
	return t
}

// BenchmarkSGDEpoch is one epoch over 1,000,000 rows x 32 features held in
// memory, on one core (the aim: under 0.1 s).
func BenchmarkSGDEpoch(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  TrainConfig
	}{
		{"sgd/batch32", TrainConfig{OptimConfig: OptimConfig{Optimizer: SGD}, BatchSize: 32}},
		{"adaptive/batch32", TrainConfig{BatchSize: 32}},
		{"adagrad/batch32", TrainConfig{OptimConfig: OptimConfig{Optimizer: AdaGrad}, BatchSize: 32}},
		{"sgd/batch1", TrainConfig{OptimConfig: OptimConfig{Optimizer: SGD}, BatchSize: 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			const rows, d = 1_000_000, 32
			t := benchTrainer(b, rows, d, c.cfg)
			for b.Loop() {
				t.epoch()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkLearn is the online learner's cost per reading.
func BenchmarkLearn(b *testing.B) {
	for _, d := range []int{8, 32, 256} {
		b.Run(fmt.Sprint("d", d), func(b *testing.B) {
			names := make([]string, d)
			for i := range names {
				names[i] = fmt.Sprint("f", i)
			}
			l := NewLearner(&Model{Features: names}, LearnerConfig{})
			rng := rand.New(rand.NewPCG(1, 1))
			xs := make([][]float32, 1024)
			for i := range xs {
				xs[i] = make([]float32, d)
				for j := range xs[i] {
					xs[i][j] = float32(rng.NormFloat64())
				}
			}
			// Past the warm-up, where a blank learner only gathers statistics.
			for i := range 1000 {
				l.Learn(xs[i&1023], xs[i&1023][0])
			}
			i := 0
			for b.Loop() {
				x := xs[i&1023]
				l.Learn(x, x[0])
				i++
			}
		})
	}
}
