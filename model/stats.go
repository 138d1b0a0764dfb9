package model

import (
	"math"
)

// Running keeps running means and variances (Welford's algorithm) of a
// vector of features and of a target, in float64 so that millions of rows
// do not lose precision. The online learner standardizes with it; the
// batch trainer uses it for one pass over the training rows.
type Running struct {
	N     int64
	Mean  []float64
	M2    []float64 // sum of squared deviations from the mean
	YMean float64
	YM2   float64
}

// NewRunning returns empty statistics for d features.
func NewRunning(d int) *Running {
	return &Running{Mean: make([]float64, d), M2: make([]float64, d)}
}

// Add counts one row.
func (s *Running) Add(x []float32, y float32) {
	s.N++
	n := float64(s.N)
	inv := 1 / n
	for i, v := range x {
		d := float64(v) - s.Mean[i]
		s.Mean[i] += d * inv
		s.M2[i] += d * (float64(v) - s.Mean[i])
	}
	d := float64(y) - s.YMean
	s.YMean += d / n
	s.YM2 += d * (float64(y) - s.YMean)
}

// Std returns feature i's population standard deviation, or 1 when it is
// not defined or zero (fewer than two rows, a constant column), so dividing
// by it is always safe and a constant feature stays as it is.
func (s *Running) Std(i int) float64 { return safeStd(s.M2[i], s.N) }

// YStd returns the target's standard deviation, or 1 as Std does.
func (s *Running) YStd() float64 { return safeStd(s.YM2, s.N) }

func safeStd(m2 float64, n int64) float64 {
	if n < 2 {
		return 1
	}
	sd := math.Sqrt(m2 / float64(n))
	if !(sd > 1e-12) || math.IsInf(sd, 0) {
		return 1
	}
	return sd
}

// Scaling returns the statistics as a Model's Mean and Std.
func (s *Running) Scaling() (mean, std []float32) {
	mean = make([]float32, len(s.Mean))
	std = make([]float32, len(s.Mean))
	for i := range s.Mean {
		mean[i] = float32(s.Mean[i])
		std[i] = float32(s.Std(i))
		if std[i] == 0 || math.IsInf(float64(std[i]), 0) {
			std[i] = 1
		}
	}
	return mean, std
}
