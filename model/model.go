// Package model owns linnet's model and its maths: the feature schema,
// standardization, losses, the online learner and the batch trainer,
// metrics, quantization, the .lnm file codec and CSV reading.
package model

import (
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
	Version  int64     // set by train --version, default the training time in Unix seconds
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

	// Training statistics: the target's mean, standard deviation and range
	// and each raw feature's range over the training rows. Zero (nil) means
	// unknown (a file written before they were kept); then the online
	// learner's plausibility bounds fall back to Mean and Std.
	TargetMean, TargetStd, TargetMin, TargetMax float32
	Min, Max                                    []float32
}
