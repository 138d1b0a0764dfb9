package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/linnet-edge/linnet/simd"
)

// Solver names how Train fits a model.
type Solver string

const (
	// SolverSGD is the stochastic-gradient family (TrainConfig.Optimizer):
	// it streams files larger than memory and is what online learning
	// runs. It is the zero value's choice.
	SolverSGD Solver = "sgd"
	// SolverExact solves to the optimum: squared loss from the normal equations
	// (one pass accumulating XᵀX and Xᵀy in float64, shifted by the
	// means, solved through one eigendecomposition, with the ridge chosen
	// by generalized cross-validation when TrainConfig.L2Auto is set);
	// logistic loss by Newton's method; Huber loss by iteratively
	// reweighted least squares. Squared loss streams (one pass); logistic
	// and Huber need the rows in memory.
	SolverExact Solver = "exact"
)

// MaxExactWidth is the widest model the exact solvers fit; Train fits
// wider ones (hashed categories) with SGD instead and says so.
const MaxExactWidth = 2048

// gram accumulates, over rows of d features and a target, the count, the
// sums and the cross products of the values minus fixed shifts (near the
// means, so the sums of squares do not cancel), in float64, optionally
// weighted per row. Rows are buffered in blocks and folded in with a
// symmetric rank-k update.
type gram struct {
	d     int // features; the target is column d
	n     float64
	shift []float64
	s     []float64 // d+1 sums of shifted values
	g     []float64 // (d+1)x(d+1) cross products, upper triangle
	z     []float64 // block of shifted rows, scaled by sqrt(weight)
	w     []float64 // the block's weights
	k     int       // rows in the block
}

const gramBlock = 256

func newGram(d int, shift []float64) *gram {
	m := d + 1
	return &gram{d: d, shift: shift, s: make([]float64, m), g: make([]float64, m*m),
		z: make([]float64, gramBlock*m), w: make([]float64, gramBlock)}
}

// add counts one row with weight wt.
func (g *gram) add(x []float32, y float32, wt float64) {
	m := g.d + 1
	z := g.z[g.k*m : (g.k+1)*m]
	r := math.Sqrt(wt)
	for i, v := range x {
		d := float64(v) - g.shift[i]
		g.s[i] += wt * d
		z[i] = r * d
	}
	d := float64(y) - g.shift[g.d]
	g.s[g.d] += wt * d
	z[g.d] = r * d
	g.n += wt
	if g.k++; g.k == gramBlock {
		g.flush()
	}
}

func (g *gram) flush() {
	if g.k == 0 {
		return
	}
	m := g.d + 1
	blas64.Implementation().Dsyrk(blas.Upper, blas.Trans, m, g.k, 1, g.z[:g.k*m], m, 1, g.g, m)
	g.k = 0
}

// merge adds o's rows to g (same shifts).
func (g *gram) merge(o *gram) {
	g.flush()
	o.flush()
	g.n += o.n
	for i := range g.s {
		g.s[i] += o.s[i]
	}
	for i := range g.g {
		g.g[i] += o.g[i]
	}
}

// centered returns the sums of squares and products about the means:
// xx (d x d), xy (d), yy, and the means of the features and the target.
func (g *gram) centered() (xx *mat.SymDense, xy []float64, yy float64, mean []float64) {
	g.flush()
	m := g.d + 1
	mean = make([]float64, m)
	for i := range mean {
		mean[i] = g.shift[i] + g.s[i]/g.n
	}
	c := func(i, j int) float64 {
		if i > j {
			i, j = j, i
		}
		return g.g[i*m+j] - g.s[i]*g.s[j]/g.n
	}
	xx = mat.NewSymDense(g.d, nil)
	xy = make([]float64, g.d)
	for i := range g.d {
		for j := i; j < g.d; j++ {
			xx.SetSym(i, j, c(i, j))
		}
		xy[i] = c(i, g.d)
	}
	return xx, xy, c(g.d, g.d), mean
}

// ridgeFit is a squared-loss fit in standardized space.
type ridgeFit struct {
	mean, std []float64 // features
	ymean     float64
	w         []float64 // standardized weights, target units
	l2        float64   // the ridge strength per row (TrainConfig.L2 units)
	rss       float64   // residual sum of squares on the rows fitted
	df        float64   // effective degrees of freedom (without the bias)
	n         float64
	a         *mat.SymDense // XᵀX of the standardized features
	ystd      float64
}

// quantized returns the fit's model with its weights in scheme s, rounded
// with compensate when the model is narrow enough, else by Quantize.
func (f *ridgeFit) quantized(m *Model, s Scheme) (*Model, error) {
	if s == "" || s == F32 {
		return m, nil
	}
	if d := len(f.w); d > 0 && d <= maxCompensated && f.a != nil {
		h := mat.NewSymDense(d, nil)
		lam := f.l2 * f.n
		for i := range d {
			for j := i; j < d; j++ {
				h.SetSym(i, j, f.a.At(i, j))
			}
			h.SetSym(i, i, f.a.At(i, i)+lam)
		}
		if w := compensate(f.w, h, s); w != nil {
			m = m.Clone()
			for i := range w {
				m.Weights[i] = float32(w[i])
			}
		}
	}
	return m.Quantize(s)
}

// solveRidge fits the rows g holds: the ridge l2 (per row, on weights of
// standardized features and target) or, if auto, the one of a grid that
// minimizes the generalized cross-validation score, all from one
// eigendecomposition of the standardized XᵀX.
func solveRidge(g *gram, l2 float64, auto bool) (*ridgeFit, error) {
	xx, xy, yy, mean := g.centered()
	d, n := g.d, g.n
	f := &ridgeFit{mean: mean[:d], ymean: mean[d], std: make([]float64, d), n: n, w: make([]float64, d)}
	for i := range d {
		f.std[i] = safeStdF(xx.At(i, i), n)
	}
	ys := safeStdF(yy, n)
	f.ystd = ys
	// In units where the target's variance is 1: a is XᵀX of standardized
	// features, b their products with the standardized target.
	a := mat.NewSymDense(d, nil)
	b := make([]float64, d)
	for i := range d {
		for j := i; j < d; j++ {
			a.SetSym(i, j, xx.At(i, j)/(f.std[i]*f.std[j]))
		}
		b[i] = xy[i] / (f.std[i] * ys)
	}
	f.a = a
	syy := yy / (ys * ys)
	if d == 0 {
		f.rss = yy
		return f, nil
	}
	var eig mat.EigenSym
	if !eig.Factorize(a, true) {
		return nil, errors.New("train: the eigendecomposition of XᵀX did not converge")
	}
	ev := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	c := make([]float64, d)
	for k := range d {
		for i := range d {
			c[k] += vecs.At(i, k) * b[i]
		}
	}
	top := 0.0
	for _, e := range ev {
		top = max(top, e)
	}
	tol := 1e-10 * max(top, 1e-300)
	score := func(lam float64) (rss, df float64) {
		rss = syy
		for k, e := range ev {
			if e <= tol && lam <= tol {
				continue // a direction the data do not determine: weight 0
			}
			e = max(e, 0)
			rss -= c[k] * c[k] * (e + 2*lam) / ((e + lam) * (e + lam))
			df += e / (e + lam)
		}
		return max(rss, 0), df
	}
	lam := l2 * n
	if auto {
		best := math.Inf(1)
		for k := -1; k <= 48; k++ {
			l := 0.0
			if k >= 0 {
				l = n * math.Pow(10, -9+float64(k)/4) // 1e-9 to 1e3 per row
			}
			rss, df := score(l)
			den := n - df - 1
			if den <= 0 {
				continue
			}
			if gcv := n * rss / (den * den); gcv < best*(1-1e-9) {
				best, lam = gcv, l
			}
		}
	}
	beta := make([]float64, d)
	for k, e := range ev {
		if e <= tol && lam <= tol {
			continue
		}
		s := c[k] / (max(e, 0) + lam)
		for i := range d {
			beta[i] += vecs.At(i, k) * s
		}
	}
	rss, df := score(lam)
	f.rss, f.df, f.l2 = rss*ys*ys, df, lam/n
	for i := range d {
		f.w[i] = beta[i] * ys
	}
	return f, nil
}

// safeStdF is the population standard deviation from a sum of squares
// about the mean, or 1 when it is zero or undefined.
func safeStdF(ss, n float64) float64 {
	if n < 2 {
		return 1
	}
	sd := math.Sqrt(max(ss, 0) / n)
	if !(sd > 1e-12) || math.IsInf(sd, 0) {
		return 1
	}
	return sd
}

// model returns the fit as a Model.
func (f *ridgeFit) model(names []string, target string, loss Loss) *Model {
	d := len(names)
	// target_mean and target_std seed an online learner's target scaling,
	// as the SGD trainer's models do.
	m := &Model{Created: time.Now().UTC(), Features: append([]string(nil), names...), Target: target, Loss: loss,
		Mean: make([]float32, d), Std: make([]float32, d), Weights: make([]float32, d), Scheme: F32,
		Bias: float32(f.ymean), Metrics: map[string]float64{"target_mean": f.ymean, "target_std": f.ystd}}
	for i := range d {
		m.Mean[i] = float32(f.mean[i])
		m.Std[i] = float32(f.std[i])
		if m.Std[i] == 0 || math.IsInf(float64(m.Std[i]), 0) {
			m.Std[i] = 1
		}
		m.Weights[i] = float32(f.w[i])
	}
	return m
}

// splitGrams accumulates the grams of ds's rows from first on, split into
// training and holdout rows as InHoldout says, on every core. shift holds
// d+1 offsets (features, then target).
func splitGrams(ctx context.Context, ds *Dataset, first int, seed uint64, frac float64, shift []float64, weight func(i int) float64) (train, hold *gram, err error) {
	d := len(ds.Names)
	n := ds.Len() - first
	workers := max(1, min(runtime.GOMAXPROCS(0), n/4096))
	trains, holds := make([]*gram, workers), make([]*gram, workers)
	var wg sync.WaitGroup
	for w := range workers {
		trains[w], holds[w] = newGram(d, shift), newGram(d, shift)
		lo, hi := first+n*w/workers, first+n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if i&0xffff == 0 && ctx.Err() != nil {
					return
				}
				wt := 1.0
				if weight != nil {
					wt = weight(i)
				}
				if InHoldout(seed, frac, int64(i-first)) {
					holds[w].add(ds.Row(i), ds.Y[i], wt)
				} else {
					trains[w].add(ds.Row(i), ds.Y[i], wt)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for w := 1; w < workers; w++ {
		trains[0].merge(trains[w])
		holds[0].merge(holds[w])
	}
	return trains[0], holds[0], nil
}

// roughShift returns offsets near the means of ds's rows from first on (a
// sample), so the grams' sums of squares stay well conditioned.
func roughShift(ds *Dataset, first int) []float64 {
	d := len(ds.Names)
	shift := make([]float64, d+1)
	n := ds.Len() - first
	step := max(1, n/1024)
	k := 0
	for i := first; i < ds.Len(); i += step {
		for j, v := range ds.Row(i) {
			shift[j] += float64(v)
		}
		shift[d] += float64(ds.Y[i])
		k++
	}
	for j := range shift {
		shift[j] /= float64(max(k, 1))
	}
	return shift
}

// trainExact fits ds with the exact solvers; see Exact.
func trainExact(ctx context.Context, ds *Dataset, first int, cfg TrainConfig) (*Model, *TrainReport, error) {
	start := time.Now()
	for i := first; i < ds.Len(); i++ {
		if err := checkLabel(cfg.Loss, ds.Y[i]); err != nil {
			return nil, nil, rowError(ds, int64(i-first), err.Error())
		}
	}
	if ds.Len()-first == 0 {
		return nil, nil, ErrNoRows
	}
	var fit func(hold bool) (*Model, int64, error)
	var solver string
	shift := roughShift(ds, first)
	switch cfg.Loss {
	case Squared:
		tr, ho, err := splitGrams(ctx, ds, first, cfg.Seed, cfg.Holdout, shift, nil)
		if err != nil {
			return nil, nil, err
		}
		all := newGram(tr.d, shift)
		all.merge(tr)
		all.merge(ho)
		solver = "exact (normal equations, eigendecomposition)"
		if cfg.L2Auto {
			solver = "exact (normal equations, eigendecomposition, ridge by GCV)"
		}
		fit = func(hold bool) (*Model, int64, error) {
			g := all
			if hold {
				g = tr
			}
			if g.n == 0 {
				return nil, 0, ErrNoRows
			}
			f, err := solveRidge(g, float64(cfg.L2), cfg.L2Auto)
			if err != nil {
				return nil, 0, err
			}
			m := f.model(ds.Names, ds.Label, Squared)
			m.Metrics["l2"] = f.l2
			m.Metrics["train_loss"] = f.rss / f.n
			m, err = f.quantized(m, cfg.Scheme)
			return m, int64(g.n), err
		}
	case Logistic:
		solver = "exact (Newton's method)"
		fit = func(hold bool) (*Model, int64, error) {
			return fitLogistic(ctx, ds, first, cfg, hold, shift)
		}
	case Huber:
		solver = "exact (iteratively reweighted least squares)"
		fit = func(hold bool) (*Model, int64, error) {
			return fitHuber(ctx, ds, first, cfg, hold, shift)
		}
	default:
		return nil, nil, fmt.Errorf("train: unknown loss %q", cfg.Loss)
	}
	rep := &TrainReport{Solver: solver}
	m, n, err := fit(false)
	if err != nil {
		return nil, nil, err
	}
	rep.RowsTrain = n
	if cfg.Holdout > 0 {
		hm, nt, err := fit(true)
		if err == nil {
			rep.HoldoutModel = hm
			rep.RowsHoldout = n - nt
		} else if !errors.Is(err, ErrNoRows) {
			return nil, nil, err
		}
	}
	rep.Elapsed = time.Since(start)
	rep.RowsPerSec = float64(n) / max(rep.Elapsed.Seconds(), 1e-9)
	return m, rep, nil
}

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
			t := 1.0
			nw := make([]float64, m1)
			var nl float64
			for {
				for j := range nw {
					nw[j] = w[j] - t*step.AtVec(j)
				}
				nl, _, _ = pass(nw, false)
				if nl <= loss || t < 1e-6 {
					break
				}
				t /= 2
			}
			if nl > loss {
				break
			}
			done := loss-nl <= 1e-10*max(1, math.Abs(loss))
			w, loss = nw, nl
			loss, grad, hess = pass(w, true)
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

// residualScale returns the median absolute residual of fit over ds's
// rows from first on, divided by 0.6745 (the standard deviation, for
// normal residuals), or the targets' scale if that is 0.
func residualScale(ds *Dataset, first int, fit *ridgeFit) float64 {
	r := make([]float64, 0, ds.Len()-first)
	for i := first; i < ds.Len(); i++ {
		p := fit.ymean
		for j, v := range ds.Row(i) {
			p += fit.w[j] * (float64(v) - fit.mean[j]) / fit.std[j]
		}
		r = append(r, math.Abs(float64(ds.Y[i])-p))
	}
	slices.Sort(r)
	if s := r[len(r)/2] / 0.6745; s > 0 {
		return s
	}
	return 1
}

// fitHuber minimizes the Huber loss by iteratively reweighted least
// squares: rows whose residual exceeds delta weigh delta/|residual|.
func fitHuber(ctx context.Context, ds *Dataset, first int, cfg TrainConfig, skipHold bool, shift []float64) (*Model, int64, error) {
	frac := cfg.Holdout
	if !skipHold {
		frac = 0
	}
	var f *ridgeFit
	delta := float64(cfg.Delta)
	for it := 0; it < 50; it++ {
		var weight func(i int) float64
		if f != nil {
			fit := f
			weight = func(i int) float64 {
				p := fit.ymean
				for j, v := range ds.Row(i) {
					p += fit.w[j] * (float64(v) - fit.mean[j]) / fit.std[j]
				}
				r := math.Abs(float64(ds.Y[i]) - p)
				if r <= delta {
					return 1
				}
				return delta / r
			}
		}
		tr, _, err := splitGrams(ctx, ds, first, cfg.Seed, frac, shift, weight)
		if err != nil {
			return nil, 0, err
		}
		if tr.n == 0 {
			return nil, 0, ErrNoRows
		}
		nf, err := solveRidge(tr, float64(cfg.L2), false)
		if err != nil {
			return nil, 0, err
		}
		conv := f != nil
		if f != nil {
			for j := range nf.w {
				if math.Abs(nf.w[j]-f.w[j]) > 1e-7*(1+math.Abs(f.w[j])) {
					conv = false
				}
			}
		}
		f = nf
		if conv {
			break
		}
		if cfg.Delta == 0 {
			// A robust scale of the residuals (their median absolute
			// value / 0.6745), so gross outliers do not set the threshold
			// that is meant to discount them.
			delta = 1.345 * residualScale(ds, first, f)
		}
	}
	m := f.model(ds.Names, ds.Label, Huber)
	m.Delta = float32(delta)
	mean, std, n := featureStats(ds, first, cfg, skipHold)
	// Re-express the weights over the unweighted statistics, so the
	// scaling describes the data and not the final weights' emphasis.
	var b float64 = f.ymean
	for j := range m.Weights {
		raw := f.w[j] / f.std[j]
		b += raw * (mean[j] - f.mean[j])
		m.Mean[j], m.Std[j] = float32(mean[j]), float32(std[j])
		m.Weights[j] = float32(raw * std[j])
	}
	m.Bias = float32(b)
	m.Metrics["l2"] = f.l2
	return m, int64(n), nil
}

// trainExactStream fits squared loss from a source read twice: once for
// offsets near the means, once accumulating the grams.
func trainExactStream(ctx context.Context, src Rewinder, cfg TrainConfig) (*Model, *TrainReport, error) {
	start := time.Now()
	d := len(src.Features())
	x := make([]float32, d)
	shift := make([]float64, d+1)
	// The first rows give the offsets: the grams only need them near the
	// means, and the sums they keep make the centering exact.
	for i := 0; i < 1024; i++ {
		y, err := src.Next(x)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		for j, v := range x {
			shift[j] += (float64(v) - shift[j]) / float64(i+1)
		}
		shift[d] += (float64(y) - shift[d]) / float64(i+1)
	}
	if err := src.Reset(); err != nil {
		return nil, nil, err
	}
	tr, ho := newGram(d, shift), newGram(d, shift)
	for i := int64(0); ; i++ {
		y, err := src.Next(x)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if err := checkLabel(cfg.Loss, y); err != nil {
			return nil, nil, rowError(src, i, err.Error())
		}
		if i&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		if InHoldout(cfg.Seed, cfg.Holdout, i) {
			ho.add(x, y, 1)
		} else {
			tr.add(x, y, 1)
		}
	}
	all := newGram(d, shift)
	all.merge(tr)
	all.merge(ho)
	if all.n == 0 {
		return nil, nil, ErrNoRows
	}
	fit := func(g *gram) (*Model, error) {
		f, err := solveRidge(g, float64(cfg.L2), cfg.L2Auto)
		if err != nil {
			return nil, err
		}
		m := f.model(src.Features(), src.Target(), Squared)
		m.Metrics["l2"] = f.l2
		m.Metrics["train_loss"] = f.rss / f.n
		return f.quantized(m, cfg.Scheme)
	}
	m, err := fit(all)
	if err != nil {
		return nil, nil, err
	}
	rep := &TrainReport{Solver: "exact (normal equations, eigendecomposition, streamed)", RowsTrain: int64(all.n), RowsHoldout: int64(ho.n)}
	if cfg.L2Auto {
		rep.Solver = "exact (normal equations, eigendecomposition, ridge by GCV, streamed)"
	}
	if ho.n > 0 && tr.n > 0 {
		if rep.HoldoutModel, err = fit(tr); err != nil {
			return nil, nil, err
		}
	}
	rep.Elapsed = time.Since(start)
	rep.RowsPerSec = all.n / max(rep.Elapsed.Seconds(), 1e-9)
	return m, rep, nil
}

// compensateWithBias is compensate for weights w whose last entry is an
// unquantized bias, with hess the Hessian over all of them (row-major,
// upper triangle, without the penalty lambda on the weights): the bias is
// eliminated (the Schur complement) so it absorbs what it can, then moved
// to its best value for the rounded weights.
func compensateWithBias(w, hess []float64, lambda float64, s Scheme) []float64 {
	m1 := len(w)
	d := m1 - 1
	at := func(i, j int) float64 {
		if i > j {
			i, j = j, i
		}
		return hess[i*m1+j]
	}
	hbb := at(d, d)
	if !(hbb > 0) {
		return w
	}
	h := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			h.SetSym(i, j, at(i, j)-at(i, d)*at(j, d)/hbb)
		}
		h.SetSym(i, i, h.At(i, i)+lambda)
	}
	q := compensate(w[:d], h, s)
	if q == nil {
		return w
	}
	out := append(q, w[d])
	for j := range d {
		out[d] -= at(d, j) * (q[j] - w[j]) / hbb
	}
	return out
}

// maxCompensated bounds the width for which quantization compensates
// rounding errors (the work grows as the cube of the width); up to
// maxScaleSearch the block scales are searched too.
const (
	maxCompensated = 1024
	maxScaleSearch = 128
)

// compensate rounds standardized weights w to scheme s's grid (blocks of
// simd.BlockSize sharing a scale, the block's largest |weight| / qmax) so
// that the loss grows as little as it can: each weight's rounding error is
// carried by the weights not yet rounded, through the inverse of h, the
// Hessian of the squared loss (GPTQ's idea). Within a block the largest
// weight is rounded first, to the grid's end, so Quantize keeps the block's
// scale and quantizing the result again changes nothing; for narrow models
// that end is searched around the weight (a coarse q4 grid then fits the
// other weights better). It returns nil if h cannot be inverted.
func compensate(w []float64, h *mat.SymDense, s Scheme) []float64 {
	d := len(w)
	qmax := 127.0
	if s == Q4 {
		qmax = 7
	}
	beta := w
	hj := mat.NewSymDense(d, nil)
	tr := 0.0
	for i := range d {
		tr += h.At(i, i)
	}
	for i := range d {
		for j := i; j < d; j++ {
			hj.SetSym(i, j, h.At(i, j))
		}
		hj.SetSym(i, i, h.At(i, i)+1e-6*tr/float64(d)+1e-12)
	}
	var ch mat.Cholesky
	if !ch.Factorize(hj) {
		return nil
	}
	var inv mat.SymDense
	if err := ch.InverseTo(&inv); err != nil {
		return nil
	}
	st := &roundState{w: append([]float64(nil), w...), hinv: mat.DenseCopyOf(&inv), free: make([]bool, d)}
	for i := range st.free {
		st.free[i] = true
	}
	loss := func(w []float64) float64 {
		var l float64
		for i := range d {
			for j := range d {
				l += (w[i] - beta[i]) * h.At(i, j) * (w[j] - beta[j])
			}
		}
		return l
	}
	bs := simd.BlockSize
	for lo := 0; lo < d; lo += bs {
		hi := min(lo+bs, d)
		amax := 0.0
		for i := lo; i < hi; i++ {
			amax = max(amax, math.Abs(st.w[i]))
		}
		if amax == 0 {
			continue
		}
		if d > maxScaleSearch {
			st.block(lo, hi, amax/qmax, qmax)
			continue
		}
		var best *roundState
		bestLoss := math.Inf(1)
		for k := -12; k <= 12; k++ {
			c := st.clone()
			c.block(lo, hi, amax*(1+float64(k)/40)/qmax, qmax)
			if l := loss(c.w); l < bestLoss {
				best, bestLoss = c, l
			}
		}
		st = best
	}
	return st.w
}

// roundState is compensate's progress: the weights, the inverse Hessian
// of the weights still free, and which are.
type roundState struct {
	w    []float64
	hinv *mat.Dense
	free []bool
}

func (st *roundState) clone() *roundState {
	return &roundState{w: append([]float64(nil), st.w...), hinv: mat.DenseCopyOf(st.hinv), free: append([]bool(nil), st.free...)}
}

// block rounds weights lo..hi-1 to multiples of scale (at most qmax of
// them), the largest first, which goes to the grid's end.
func (st *roundState) block(lo, hi int, scale, qmax float64) {
	d := len(st.w)
	scale = float64(float32(scale))
	order := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		order = append(order, i)
	}
	sortByAbs(order, st.w)
	col := make([]float64, d)
	for n, j := range order {
		q := math.Max(-qmax, math.Min(qmax, math.RoundToEven(st.w[j]/scale))) * scale
		if n == 0 {
			q = math.Copysign(qmax*scale, st.w[j])
		}
		djj := st.hinv.At(j, j)
		e := (st.w[j] - q) / djj
		st.w[j] = q
		st.free[j] = false
		for i := range d {
			col[i] = st.hinv.At(i, j)
			if st.free[i] {
				st.w[i] -= e * col[i]
			}
		}
		// Remove j from the inverse Hessian of the free weights.
		for i := range d {
			if !st.free[i] || col[i] == 0 {
				continue
			}
			for k := range d {
				if st.free[k] {
					st.hinv.Set(i, k, st.hinv.At(i, k)-col[i]*col[k]/djj)
				}
			}
		}
	}
}

func sortByAbs(idx []int, w []float64) {
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && math.Abs(w[idx[j]]) > math.Abs(w[idx[j-1]]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}
