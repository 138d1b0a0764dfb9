package model

import (
	"context"
	"math"
	"slices"
)

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
