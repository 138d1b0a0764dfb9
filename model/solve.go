package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
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

// rowGrams reads src twice, a few rows for offsets near the means and
// then every row into the training and holdout grams.
func rowGrams(ctx context.Context, src Rewinder, cfg TrainConfig) (tr, ho *gram, err error) {
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
	tr, ho = newGram(d, shift), newGram(d, shift)
	err = eachRow(ctx, src, cfg, x, func(hold bool, y float32) {
		if hold {
			ho.add(x, y, 1)
		} else {
			tr.add(x, y, 1)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return tr, ho, nil
}

// blockGrams reads the file behind rows once, block by block in file
// order, splitting each block's rows between goroutines that keep grams
// of their own; the first block's means are the offsets.
func blockGrams(ctx context.Context, rows *TableRows, cfg TrainConfig) (tr, ho *gram, err error) {
	rows.Close()
	d := rows.width
	workers := runtime.GOMAXPROCS(0)
	trs, hos := make([]*gram, workers), make([]*gram, workers)
	err = rows.t.Scan(ctx, func(b *Block) error {
		if trs[0] == nil {
			shift := make([]float64, d+1)
			for i := range b.Rows {
				for j, v := range b.X[i*d : (i+1)*d] {
					shift[j] += float64(v)
				}
				shift[d] += float64(b.Y[i])
			}
			for j := range shift {
				shift[j] /= float64(max(b.Rows, 1))
			}
			for w := range workers {
				trs[w], hos[w] = newGram(d, shift), newGram(d, shift)
			}
		}
		for i := range b.Rows {
			if err := checkLabel(cfg.Loss, b.Y[i]); err != nil {
				return fmt.Errorf("row %d: %w", b.FirstRow+int64(i)+1, err)
			}
		}
		var wg sync.WaitGroup
		for w := range workers {
			lo, hi := b.Rows*w/workers, b.Rows*(w+1)/workers
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					x, y := b.X[i*d:(i+1)*d], b.Y[i]
					if InHoldout(cfg.Seed, cfg.Holdout, b.FirstRow+int64(i)) {
						hos[w].add(x, y, 1)
					} else {
						trs[w].add(x, y, 1)
					}
				}
			}()
		}
		wg.Wait()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if trs[0] == nil {
		return nil, nil, ErrNoRows
	}
	for w := 1; w < workers; w++ {
		trs[0].merge(trs[w])
		hos[0].merge(hos[w])
	}
	return trs[0], hos[0], nil
}

// trainExactStream fits squared loss from a source read without holding
// it: the grams of its training and holdout rows, then the solve.
func trainExactStream(ctx context.Context, src Rewinder, cfg TrainConfig) (*Model, *TrainReport, error) {
	start := time.Now()
	var tr, ho *gram
	var err error
	if rows, ok := src.(*TableRows); ok && rows.t.enc != nil {
		tr, ho, err = blockGrams(ctx, rows, cfg)
	} else {
		tr, ho, err = rowGrams(ctx, src, cfg)
	}
	if err != nil {
		return nil, nil, err
	}
	d := len(src.Features())
	all := newGram(d, tr.shift)
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
