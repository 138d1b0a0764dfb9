package model

import (
	"fmt"
	"math"

	"github.com/linnet-edge/linnet/simd"
)

// Optimizer names how a gradient becomes a step.
type Optimizer string

const (
	// Adaptive is the default: AdaGrad's per-weight rates on standardized
	// features and target, a rate normalized by the running mean squared
	// norm of the inputs, and, for squared and Huber losses, a step that
	// can never carry a prediction past its label (the importance-invariant
	// update). That is Vowpal Wabbit's default (--adaptive --normalized
	// --invariant) in spirit: standardization does the per-feature scale
	// normalization, so raw sensor units need no tuning.
	Adaptive Optimizer = "adaptive"
	// SGD is plain stochastic gradient descent with a Schedule.
	SGD Optimizer = "sgd"
	// AdaGrad divides each weight's rate by the root of its summed squared
	// gradients.
	AdaGrad Optimizer = "adagrad"
)

// Schedule names how plain SGD's learning rate changes with the number of
// updates t (from 1).
type Schedule string

const (
	Constant   Schedule = "constant"   // lr
	InvScaling Schedule = "invscaling" // lr / t^PowerT
)

// OptimConfig chooses the optimizer and its regularization. Weights are
// those of standardized features, so L1 and L2 weigh every feature alike
// whatever its unit; the bias is never regularized.
type OptimConfig struct {
	Optimizer Optimizer // default Adaptive
	LR        float32   // default 0.5 (adaptive, adagrad) or 0.01 (sgd)
	Schedule  Schedule  // sgd only; default Constant
	PowerT    float32   // InvScaling's exponent; default 0.25
	L1        float32   // proximal: each step soft-thresholds weights by rate*L1
	L2        float32   // weight decay: the gradient gains L2*w
}

func (c *OptimConfig) fill() error {
	if c.Optimizer == "" {
		c.Optimizer = Adaptive
	}
	switch c.Optimizer {
	case Adaptive, AdaGrad:
		if c.LR == 0 {
			c.LR = 0.5
		}
	case SGD:
		if c.LR == 0 {
			c.LR = 0.01
		}
	default:
		return fmt.Errorf("unknown optimizer %q (want adaptive, sgd or adagrad)", c.Optimizer)
	}
	if c.Schedule == "" {
		c.Schedule = Constant
	}
	if c.Schedule != Constant && c.Schedule != InvScaling {
		return fmt.Errorf("unknown schedule %q (want constant or invscaling)", c.Schedule)
	}
	if c.PowerT == 0 {
		c.PowerT = 0.25
	}
	if !(c.LR > 0) || c.L1 < 0 || c.L2 < 0 || math.IsInf(float64(c.LR), 0) {
		return fmt.Errorf("learning rate must be positive and L1, L2 not negative (lr %v, l1 %v, l2 %v)", c.LR, c.L1, c.L2)
	}
	return nil
}

// optim is an optimizer's state over parameters p of d weights and a bias
// (p[d]).
type optim struct {
	cfg     OptimConfig
	bounded bool      // the loss is squared or huber (curvature 1), not logistic (at most 1/4)
	t       int64     // updates so far
	g2      []float32 // summed squared gradients per parameter (adagrad, adaptive)
	norm    float64   // adaptive: summed squared input norms
	rate    []float32 // scratch: per-parameter rates of the current step
}

func newOptim(cfg OptimConfig, loss Loss, d int) *optim {
	o := &optim{cfg: cfg, bounded: loss != Logistic}
	if cfg.Optimizer != SGD {
		o.g2 = make([]float32, d+1)
		o.rate = make([]float32, d+1)
	}
	return o
}

const adaEps = 1e-12

// step applies the gradient grad (bias last, like p) to p. norm2 is the
// mean squared norm of the inputs behind the gradient, the bias's 1
// included; xx, if not nil, holds each input's square (a single row), and
// nil means 1 for each (standardized inputs on average). grad is
// clobbered.
func (o *optim) step(p, grad []float32, norm2 float64, xx []float32) {
	o.t++
	d := len(p) - 1
	l1, l2 := o.cfg.L1, o.cfg.L2
	if o.cfg.Optimizer == SGD {
		eta := o.cfg.LR
		if o.cfg.Schedule == InvScaling {
			eta = float32(float64(eta) / math.Pow(float64(o.t), float64(o.cfg.PowerT)))
		}
		if l2 > 0 {
			simd.ScaleAdd(-eta, grad[:d], 1-eta*l2, p[:d])
		} else {
			simd.Axpy(-eta, grad[:d], p[:d])
		}
		p[d] -= eta * grad[d]
		if l1 > 0 {
			softThreshold(p[:d], eta*l1)
		}
		return
	}
	if l2 > 0 {
		simd.Axpy(l2, p[:d], grad[:d])
	}
	// Separate loops without branches: this runs once per parameter per
	// step, a third of an epoch's time at 32 features and batch 32.
	g2, rate := o.g2[:len(grad)], o.rate[:len(grad)]
	for i, g := range grad {
		v := g2[i] + g*g
		g2[i] = v
		rate[i] = float32(1 / math.Sqrt(float64(v)+adaEps))
	}
	var h float32
	if xx != nil {
		xx = xx[:len(rate)]
		for i, r := range rate {
			h += xx[i] * r
		}
	} else {
		for _, r := range rate {
			h += r
		}
	}
	eta := float64(o.cfg.LR)
	if o.cfg.Optimizer == Adaptive {
		o.norm += norm2
		eta /= math.Sqrt(o.norm / float64(o.t))
		if h := float64(h); h > 0 {
			// Importance-invariant step: along x, squared loss's residual
			// decays as exp(-eta*h) and never changes sign. The logistic
			// loss's curvature is at most 1/4, so the same bound with
			// curvature 1/4 keeps a step from jumping past where the
			// quadratic model of the loss has its minimum.
			k := 1.0
			if !o.bounded {
				k = 0.25
			}
			eta = -math.Expm1(-eta*k*h) / (k * h)
		}
	}
	e := float32(eta)
	p = p[:len(grad)]
	for i, g := range grad {
		p[i] -= e * rate[i] * g
	}
	if l1 > 0 {
		for i := range p[:d] {
			softThreshold(p[i:i+1], e*o.rate[i]*l1)
		}
	}
}

// softThreshold moves each w toward zero by t, stopping at zero: the
// proximal step of t*|w|.
func softThreshold(w []float32, t float32) {
	for i, v := range w {
		switch {
		case v > t:
			w[i] = v - t
		case v < -t:
			w[i] = v + t
		default:
			w[i] = 0
		}
	}
}
