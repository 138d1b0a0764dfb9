package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// featureStats returns the mean and standard deviation of ds's features
// over its rows from first on (holdout rows left out if skipHold), and the
// number of rows counted.
func featureStats(ds *Dataset, first int, cfg TrainConfig, skipHold bool) (mean, std []float64, n float64) {
	d := len(ds.Names)
	st := NewRunning(d)
	for i := first; i < ds.Len(); i++ {
		if skipHold && InHoldout(cfg.Seed, cfg.Holdout, int64(i-first)) {
			continue
		}
		st.Add(ds.Row(i), ds.Y[i])
	}
	std = make([]float64, d)
	for i := range std {
		std[i] = st.Std(i)
	}
	return st.Mean, std, float64(st.N)
}

// fitLogistic minimizes the summed log loss plus lambda/2 |w|² over
// standardized features by Newton's method with step halving. lambda is
// cfg.L2 per row or, with L2Auto, the one of a grid from 1e-4 to 1e4 (in
// all; 1 is scikit-learn's default C=1) with the lowest approximate
// leave-one-out log loss; past 3e7 rows x width² the grid search is
// skipped for lambda = 1.
func fitLogistic(ctx context.Context, ds *Dataset, first int, cfg TrainConfig, skipHold bool, _ []float64) (*Model, int64, error) {
	mean, std, n := featureStats(ds, first, cfg, skipHold)
	if n == 0 {
		return nil, 0, ErrNoRows
	}
	d := len(ds.Names)
	m1 := d + 1
	lambda := float64(cfg.L2) * n
	if cfg.L2Auto {
		lambda = 1
	}
	w := make([]float64, m1) // standardized weights, bias last
	rows := make([]int, 0, ds.Len()-first)
	for i := first; i < ds.Len(); i++ {
		if !skipHold || !InHoldout(cfg.Seed, cfg.Holdout, int64(i-first)) {
			rows = append(rows, i)
		}
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(rows)/4096))
	// pass computes the penalized loss and, if want, its gradient and
	// Hessian at w.
	pass := func(w []float64, want bool) (loss float64, grad []float64, hess []float64) {
		type part struct {
			loss float64
			g, h []float64
		}
		parts := make([]part, workers)
		var wg sync.WaitGroup
		for k := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := &parts[k]
				z := make([]float64, gramBlock*m1)
				if want {
					p.g, p.h = make([]float64, m1), make([]float64, m1*m1)
				}
				b := 0
				flush := func() {
					if b > 0 && want {
						blas64.Implementation().Dsyrk(blas.Upper, blas.Trans, m1, b, 1, z[:b*m1], m1, 1, p.h, m1)
					}
					b = 0
				}
				for _, i := range rows[len(rows)*k/workers : len(rows)*(k+1)/workers] {
					zr := z[b*m1 : (b+1)*m1]
					s := w[d]
					for j, v := range ds.Row(i) {
						zr[j] = (float64(v) - mean[j]) / std[j]
						s += w[j] * zr[j]
					}
					zr[d] = 1
					y := float64(ds.Y[i])
					// log(1+e^s) - y s, computed without overflow
					if s > 0 {
						p.loss += s + math.Log1p(math.Exp(-s)) - y*s
					} else {
						p.loss += math.Log1p(math.Exp(s)) - y*s
					}
					if !want {
						continue
					}
					pr := 1 / (1 + math.Exp(-s))
					for j := range zr {
						p.g[j] += (pr - y) * zr[j]
					}
					r := math.Sqrt(max(pr*(1-pr), 1e-12))
					for j := range zr {
						zr[j] *= r
					}
					if b++; b == gramBlock {
						flush()
					}
				}
				flush()
			}()
		}
		wg.Wait()
		if want {
			grad, hess = make([]float64, m1), make([]float64, m1*m1)
		}
		for _, p := range parts {
			loss += p.loss
			for j := range grad {
				grad[j] += p.g[j]
			}
			for j := range hess {
				hess[j] += p.h[j]
			}
		}
		for j := range d {
			loss += lambda / 2 * w[j] * w[j]
			if want {
				grad[j] += lambda * w[j]
				hess[j*m1+j] += lambda
			}
		}
		return loss, grad, hess
	}
	// newton minimizes from w0 and returns the optimum, its penalized loss
	// and the Cholesky factor of the Hessian there.
	var hess []float64 // at the last optimum newton found
	// factor factorizes hess, with a jitter that keeps it definite.
	factor := func(ch *mat.Cholesky) error {
		h := mat.NewSymDense(m1, nil)
		for i := range m1 {
			for j := i; j < m1; j++ {
				h.SetSym(i, j, hess[i*m1+j])
			}
			h.SetSym(i, i, hess[i*m1+i]+1e-9*n)
		}
		if !ch.Factorize(h) {
			return errors.New("train: the Hessian is not positive definite; set --l2")
		}
		return nil
	}
	newton := func(w []float64) ([]float64, float64, *mat.Cholesky, error) {
		loss, grad, h0 := pass(w, true)
		hess = h0
		var ch mat.Cholesky
		for it := 0; it < 100; it++ {
			if err := ctx.Err(); err != nil {
				return nil, 0, nil, err
			}
			if err := factor(&ch); err != nil {
				return nil, 0, nil, err
			}
			step := mat.NewVecDense(m1, nil)
			if err := ch.SolveVecTo(step, mat.NewVecDense(m1, grad)); err != nil {
				return nil, 0, nil, fmt.Errorf("train: newton step: %w", err)
			}
			// The full step, with the gradient and Hessian there in the
			// same pass (Newton's step is nearly always taken); else halve
			// it until the loss falls.
			t := 1.0
			nw := make([]float64, m1)
			for j := range nw {
				nw[j] = w[j] - step.AtVec(j)
			}
			nl, ng, nh := pass(nw, true)
			for nl > loss && t >= 1e-6 {
				t /= 2
				for j := range nw {
					nw[j] = w[j] - t*step.AtVec(j)
				}
				nl, _, _ = pass(nw, false)
				ng = nil
			}
			if nl > loss {
				break
			}
			done := loss-nl <= 1e-10*max(1, math.Abs(loss))
			w, loss = nw, nl
			if ng != nil {
				grad, hess = ng, nh
			} else {
				loss, grad, hess = pass(w, true)
			}
			if done {
				break
			}
		}
		if err := factor(&ch); err != nil {
			return nil, 0, nil, err
		}
		return w, loss, &ch, nil
	}
	// aloLoss is the approximate leave-one-out log loss at the optimum w:
	// each row's margin without it is s - h/(1-h) (y-p)/(p(1-p)), h its
	// leverage in the weighted problem.
	aloLoss := func(w []float64, ch *mat.Cholesky) float64 {
		var sum float64
		z := mat.NewVecDense(m1, nil)
		u := mat.NewVecDense(m1, nil)
		for _, i := range rows {
			s := w[d]
			for j, v := range ds.Row(i) {
				zj := (float64(v) - mean[j]) / std[j]
				z.SetVec(j, zj)
				s += w[j] * zj
			}
			z.SetVec(d, 1)
			p := 1 / (1 + math.Exp(-s))
			wt := max(p*(1-p), 1e-12)
			if err := ch.SolveVecTo(u, z); err != nil {
				return math.Inf(1)
			}
			h := min(wt*mat.Dot(z, u), 1-1e-9)
			y := float64(ds.Y[i])
			s -= h / (1 - h) * (y - p) / wt
			if y > 0.5 {
				sum += math.Log1p(math.Exp(-s))
			} else {
				sum += math.Log1p(math.Exp(s))
			}
		}
		return sum / n
	}
	var loss float64
	var err error
	if cfg.L2Auto && n*float64(m1*m1) <= 3e7 {
		// The penalty with the lowest approximate leave-one-out log loss,
		// from strong to weak (each fit starts from the last); 1 (C=1)
		// is on the grid.
		best, bestW, bestLoss, bestLam := math.Inf(1), []float64(nil), 0.0, 1.0
		for k := 8; k >= -8; k-- {
			lambda = math.Pow(10, float64(k)/2)
			var ch *mat.Cholesky
			if w, loss, ch, err = newton(w); err != nil {
				return nil, 0, err
			}
			if a := aloLoss(w, ch); a < best {
				best, bestW, bestLoss, bestLam = a, slices.Clone(w), loss, lambda
			}
		}
		w, loss, lambda = bestW, bestLoss, bestLam
	} else if w, loss, _, err = newton(w); err != nil {
		return nil, 0, err
	}
	if cfg.Scheme != "" && cfg.Scheme != F32 && d > 0 && d <= maxCompensated {
		w = compensateWithBias(w, hess, lambda, cfg.Scheme)
	}
	m := &Model{Created: time.Now().UTC(), Features: append([]string(nil), ds.Names...), Target: ds.Label, Loss: Logistic,
		Mean: make([]float32, d), Std: make([]float32, d), Weights: make([]float32, d), Scheme: F32,
		Bias: float32(w[d]), Metrics: map[string]float64{"l2": lambda / n, "train_loss": loss / n}}
	for j := range d {
		m.Mean[j], m.Std[j], m.Weights[j] = float32(mean[j]), float32(std[j]), float32(w[j])
		if m.Std[j] == 0 || math.IsInf(float64(m.Std[j]), 0) {
			m.Std[j] = 1
		}
	}
	if !allFinite(m.Weights) || !finite32(m.Bias) {
		return nil, 0, fmt.Errorf("train: %w", ErrDiverged)
	}
	return m, int64(n), nil
}
