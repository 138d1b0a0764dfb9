// Package model owns linnet's model and its maths: the feature schema and
// the preprocessing a model carries (column selection, imputation, one-hot
// and hashed categories; preprocess.go), standardization, losses, the
// online learner, the exact solvers (solve.go) and the SGD trainer,
// metrics, quantization, the .lnm file codec and CSV reading (a parallel
// table reader in table.go and load.go; the simple streaming CSVReader in
// csv.go).
package model

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/linnet-edge/linnet/simd"
)

// Loss names a training loss; it also decides what a prediction means.
type Loss string

const (
	Squared  Loss = "squared"  // regression
	Huber    Loss = "huber"    // regression, robust to outliers
	Logistic Loss = "logistic" // binary classification: predictions are P(class 1)
)

// Scheme names how a model's weights are stored and served.
type Scheme string

const (
	F32 Scheme = "f32"
	Q8  Scheme = "q8" // block-wise symmetric int8, simd.BlockSize values per scale
	Q4  Scheme = "q4" // block-wise symmetric 4-bit
)

// Model is a linear model over standardized features:
//
//	z = Bias + sum_i Weights[i] * (x[i] - Mean[i]) / Std[i]
//
// and the prediction is z (squared, huber) or 1/(1+exp(-z)) (logistic).
// Weights are the float32 master copy; for a q8 or q4 model they are the
// dequantized values of Q8 or Q4, which is what the file holds.
type Model struct {
	Version  int64     // set by train --version, default DefaultVersion()
	Parent   int64     // the version this one was trained or quantized from, 0 if none
	Created  time.Time // UTC
	Features []string  // names, in the order of Weights
	Target   string
	Loss     Loss
	Delta    float32 // Huber's threshold, in target units; 0 for other losses

	Mean, Std []float32 // standardization, one per feature; Std is never 0
	Weights   []float32
	Bias      float32

	Scheme Scheme
	Q8     simd.Q8 // the weights when Scheme is Q8
	Q4     simd.Q4 // the weights when Scheme is Q4

	Metrics map[string]float64 // training and test metrics, e.g. "test_rmse"

	// Preprocessing turns a reading's columns into Features (selection,
	// imputation, one-hot, hashing); nil for models from format version 1
	// files, whose inputs are their features.
	Preprocessing *Preprocessing

	// Training statistics, 0 or nil when unknown (format version 1): the
	// target's mean, standard deviation and range, and each feature's raw
	// range (0 and 1 for one-hot features). Online learning bounds labels
	// and readings with them.
	TargetMean, TargetStd, TargetMin, TargetMax float32
	Min, Max                                    []float32
}

var lastVersion atomic.Int64

// DefaultVersion returns a new model version: the time in Unix
// milliseconds times 1000 plus a random tie-break below 1000, and above
// any version this process returned before. Two models trained in the same
// millisecond (in one process or two) get different versions, a model
// trained later gets a larger one, and every such version is larger than
// the Unix-seconds versions of older builds, so the no-downgrade rule
// still holds across the change.
func DefaultVersion() int64 {
	v := time.Now().UnixMilli()*1000 + rand.Int64N(1000)
	for {
		last := lastVersion.Load()
		if v <= last {
			v = last + 1
		}
		if lastVersion.CompareAndSwap(last, v) {
			return v
		}
	}
}
