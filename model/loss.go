package model

import (
	"fmt"
	"math"
)

// lossGrad returns the loss of score z against label y and its derivative
// with respect to z.
//
//	squared   (z-y)^2, derivative z-y: the factor 2 is left to the learning rate
//	huber     r^2/2 for |r| <= delta, delta*(|r| - delta/2) beyond; derivative clip(r, ±delta)
//	logistic  log(1+e^z) - y*z with y in {0, 1}; derivative sigmoid(z) - y
//
// Mean squared loss is the MSE, so a squared model's training curve reads
// directly against the test RMSE squared.
func lossGrad(loss Loss, delta, z, y float32) (float64, float32) {
	switch loss {
	case Huber:
		r := z - y
		a := r
		if a < 0 {
			a = -a
		}
		if a <= delta {
			return 0.5 * float64(r) * float64(r), r
		}
		g := delta
		if r < 0 {
			g = -delta
		}
		return float64(delta) * (float64(a) - 0.5*float64(delta)), g
	case Logistic:
		return logLoss(float64(z), float64(y)), sigmoid32(z) - y
	default:
		r := z - y
		return float64(r) * float64(r), r
	}
}

// logLoss is log(1+e^z) - y*z, computed without overflow.
func logLoss(z, y float64) float64 {
	var l float64
	if z > 0 {
		l = z + math.Log1p(math.Exp(-z))
	} else {
		l = math.Log1p(math.Exp(z))
	}
	return l - y*z
}

func sigmoid32(z float32) float32 {
	if z >= 0 {
		return float32(1 / (1 + math.Exp(-float64(z))))
	}
	e := math.Exp(float64(z))
	return float32(e / (1 + e))
}

// Sigmoid returns 1/(1+e^-z), the probability a logistic model's score z
// stands for.
func Sigmoid(z float32) float32 { return sigmoid32(z) }

// checkLoss reports whether loss is one linnet knows.
func checkLoss(loss Loss) error {
	switch loss {
	case Squared, Huber, Logistic:
		return nil
	}
	return fmt.Errorf("unknown loss %q (want squared, huber or logistic)", loss)
}

// checkLabel reports whether y is a valid label for loss.
func checkLabel(loss Loss, y float32) error {
	if loss == Logistic && y != 0 && y != 1 {
		return fmt.Errorf("logistic target must be 0 or 1, got %v", y)
	}
	return nil
}
