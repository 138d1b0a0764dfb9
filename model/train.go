package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/linnet-edge/linnet/simd"
)

// TrainConfig configures the batch trainer. The zero value trains a
// squared-loss model with the Adaptive optimizer, which needs no tuning.
//
// Features are standardized with the training rows' statistics (kept in
// the model) and, for squared and Huber losses, so is the target, so
// learning rates and penalties mean the same on any data. The model holds
// the mean of the weights over the steps of its best epoch (Polyak-Ruppert
// averaging), which cancels most of the noise of the last steps; the
// holdout loss is measured on that mean. With L1 it holds the last step's
// weights, whose zeros averaging would undo.
type TrainConfig struct {
	Loss  Loss    // default Squared
	Delta float32 // Huber's threshold in target units; default 1.345 target standard deviations (exact solver: 1.345 robust residual scales)
	OptimConfig

	BatchSize int     // rows per step; default 32
	Epochs    int     // passes over the training rows; default 20
	Seed      uint64  // shuffling and the holdout split
	Holdout   float64 // fraction of rows held out (see InHoldout); 0 for none
	// Patience is how many epochs the holdout loss may fail to improve
	// before training stops and keeps the best epoch's weights; default 3,
	// negative never stops early. Without a holdout every epoch runs.
	Patience int
	// Stream reads the source once per epoch (plus one pass for the
	// scaling statistics) instead of holding it in memory, so a file larger
	// than memory can be trained on; the source must be a Rewinder and rows
	// are used in file order. In memory, rows are shuffled once and the
	// order of the mini-batches is shuffled every epoch.
	Stream bool
	// OnEpoch, if set, is called after every epoch (progress, loss curve).
	OnEpoch func(EpochStats)

	// Solver is SolverSGD (the default) or SolverExact. The exact solvers
	// ignore the optimizer, epochs and batches; logistic and Huber fits
	// need the rows in memory, so with Stream they fall back to SGD.
	Solver Solver
	// L2Auto lets the exact squared-loss solver choose the ridge by
	// generalized cross-validation (L2 is then ignored); the exact
	// logistic solver then uses a penalty of 1 over all rows, scikit-
	// learn's default C=1.
	L2Auto bool
	// Scheme, if set, asks the exact squared-loss solver for a model in
	// that scheme: it rounds the weights one at a time and lets the
	// weights not yet rounded absorb each rounding error through XᵀX
	// (GPTQ's idea), which keeps q4 models near the optimum. Other solvers
	// ignore it; the model returned is then float32 for the caller to
	// Quantize (which leaves an already quantized model as it is).
	Scheme Scheme
	// Refit makes the SGD family fit the returned model on every row: the
	// holdout rows first choose the number of epochs (early stopping) and
	// are measured, then a second run trains on all rows for that many
	// epochs. The exact solvers always return the model of all rows.
	// Either way TrainReport.HoldoutModel is the one fitted without the
	// holdout rows, the model to measure them on.
	Refit bool
}

// EpochStats describes one finished epoch. Losses are means per row in
// target units (the MSE for squared loss): the training loss is measured
// on each mini-batch before its step, the holdout loss after the epoch
// (streaming: as the holdout rows go by). HoldoutLoss is NaN without a
// holdout.
type EpochStats struct {
	Epoch       int // from 1
	Epochs      int // as configured
	TrainLoss   float64
	HoldoutLoss float64
	Rows        int64 // training rows seen so far, over all epochs
	Elapsed     time.Duration
}

// TrainReport describes a finished training run.
type TrainReport struct {
	RowsTrain, RowsHoldout int64
	Epochs                 []EpochStats
	BestEpoch              int // the epoch whose weights the model holds
	StoppedEarly           bool
	Elapsed                time.Duration
	RowsPerSec             float64 // training rows processed per second, all epochs
	// Solver describes what ran, e.g. "sgd (adaptive)" or "exact (Newton's method)".
	Solver string
	// HoldoutModel, with a holdout and an exact solver or Refit, is the
	// model fitted without the holdout rows; the returned model saw them.
	HoldoutModel *Model
}

func (c *TrainConfig) fill() error {
	if c.Loss == "" {
		c.Loss = Squared
	}
	if err := checkLoss(c.Loss); err != nil {
		return err
	}
	if err := c.OptimConfig.fill(); err != nil {
		return err
	}
	if c.BatchSize == 0 {
		c.BatchSize = 32
	}
	if c.Epochs == 0 {
		c.Epochs = 20
	}
	if c.Patience == 0 {
		c.Patience = 3
	}
	if c.BatchSize < 1 || c.Epochs < 1 || c.Delta < 0 || !(c.Holdout >= 0 && c.Holdout < 1) {
		return fmt.Errorf("train: batch size %d and epochs %d must be positive, delta %v not negative, holdout %v in [0, 1)",
			c.BatchSize, c.Epochs, c.Delta, c.Holdout)
	}
	return nil
}

// Errors of Train. (The codec's sentinels live in errors.go; these belong
// to the trainer alone.)
var (
	// ErrNoRows is returned when there is nothing to train on.
	ErrNoRows = errors.New("no training rows")
	// ErrDiverged is returned when the weights or the loss stop being
	// finite: the learning rate is too large for the data.
	ErrDiverged = errors.New("training diverged (the loss is no longer finite); lower the learning rate")
)

// diverged reports whether training has blown up.
func (t *trainer) diverged(trainLoss float64) bool {
	return math.IsNaN(trainLoss) || math.IsInf(trainLoss, 0) || !allFinite(t.p)
}

// trainer holds the standardized training rows and the parameters.
type trainer struct {
	cfg       TrainConfig
	d, stride int // features; stride = d+1, the bias input last
	mean, std []float32
	ym, ys    float32 // target scaling: internal y = (y-ym)/ys; 0, 1 for logistic
	delta     float32 // Huber's threshold, internal units
	x, y      []float32
	hx, hy    []float32 // holdout rows, same layout
	p         []float32 // weights, then bias
	avg       []float32 // mean of p over the current epoch's steps
	steps     int       // steps in the current epoch
	grad, z   []float32
	r         []float32
	opt       *optim
	order     []int32 // mini-batch order
	rng       *rand.Rand
}

func newTrainer(cfg TrainConfig, d int, st *Running) *trainer {
	t := &trainer{cfg: cfg, d: d, stride: d + 1, ys: 1}
	t.mean, t.std = st.Scaling()
	if cfg.Loss != Logistic {
		t.ym, t.ys = float32(st.YMean), float32(st.YStd())
		if t.ys == 0 || math.IsInf(float64(t.ys), 0) {
			t.ys = 1
		}
	}
	if cfg.Loss == Huber {
		if t.cfg.Delta == 0 {
			t.cfg.Delta = 1.345 * t.ys
		}
		t.delta = t.cfg.Delta / t.ys
	}
	t.p = make([]float32, t.stride)
	t.avg = make([]float32, t.stride)
	t.grad = make([]float32, t.stride)
	t.z = make([]float32, max(cfg.BatchSize, 1024))
	t.r = make([]float32, cfg.BatchSize)
	t.opt = newOptim(cfg.OptimConfig, cfg.Loss, d)
	t.rng = rand.New(rand.NewPCG(cfg.Seed, 0x6c696e6e6574))
	return t
}

// put writes x standardized, then the bias input 1, to dst.
func (t *trainer) put(dst, x []float32, y float32) float32 {
	for i, v := range x {
		dst[i] = (v - t.mean[i]) / t.std[i]
	}
	dst[t.d] = 1
	return (y - t.ym) / t.ys
}

// batch takes one step on rows xs (stride t.stride) with internal targets
// ys and returns their summed loss before the step.
func (t *trainer) batch(xs, ys []float32) float64 {
	b := len(ys)
	z := t.z[:b]
	simd.Gemv(z, xs, t.p)
	var sum float64
	inv := 1 / float32(b)
	for j := range z {
		l, g := lossGrad(t.cfg.Loss, t.delta, z[j], ys[j])
		sum += l
		t.r[j] = g * inv
	}
	clear(t.grad)
	for j := range z {
		simd.Axpy(t.r[j], xs[j*t.stride:(j+1)*t.stride], t.grad)
	}
	t.opt.step(t.p, t.grad, float64(t.stride), nil)
	// Running mean of the iterates: avg += (p - avg)/steps. L1's zeros
	// would not survive averaging, so with L1 the last iterate is kept.
	t.steps++
	if t.cfg.L1 > 0 {
		copy(t.avg, t.p)
	} else {
		a := 1 / float32(t.steps)
		simd.ScaleAdd(a, t.p, 1-a, t.avg)
	}
	return sum
}

// epoch runs the mini-batches once in a new random order and returns the
// mean training loss in internal units.
func (t *trainer) epoch() float64 {
	n := len(t.y)
	b := t.cfg.BatchSize
	nb := (n + b - 1) / b
	if len(t.order) != nb {
		t.order = make([]int32, nb)
		for i := range t.order {
			t.order[i] = int32(i)
		}
	}
	t.rng.Shuffle(nb, func(i, j int) { t.order[i], t.order[j] = t.order[j], t.order[i] })
	t.steps = 0
	var sum float64
	for _, k := range t.order {
		lo := int(k) * b
		hi := min(lo+b, n)
		sum += t.batch(t.x[lo*t.stride:hi*t.stride], t.y[lo:hi])
	}
	return sum / float64(n)
}

// holdoutLoss returns the mean loss on the holdout rows, internal units.
func (t *trainer) holdoutLoss() float64 {
	n := len(t.hy)
	if n == 0 {
		return math.NaN()
	}
	var sum float64
	for lo := 0; lo < n; lo += len(t.z) {
		hi := min(lo+len(t.z), n)
		z := t.z[:hi-lo]
		simd.Gemv(z, t.hx[lo*t.stride:hi*t.stride], t.avg)
		for j, v := range z {
			l, _ := lossGrad(t.cfg.Loss, t.delta, v, t.hy[lo+j])
			sum += l
		}
	}
	return sum / float64(n)
}

// toTarget converts a mean loss from internal to target units: squared and
// Huber losses scale with the square of the target's scale.
func (t *trainer) toTarget(l float64) float64 {
	return l * float64(t.ys) * float64(t.ys)
}

// model returns the parameters as a Model.
func (t *trainer) model(src RowSource) *Model {
	m := &Model{
		Created:  time.Now().UTC(),
		Features: append([]string(nil), src.Features()...),
		Target:   src.Target(),
		Loss:     t.cfg.Loss,
		Mean:     t.mean,
		Std:      t.std,
		Weights:  make([]float32, t.d),
		Scheme:   F32,
		Metrics:  map[string]float64{},
	}
	if t.cfg.Loss == Huber {
		m.Delta = t.cfg.Delta
	}
	for i := range m.Weights {
		m.Weights[i] = t.p[i] * t.ys
	}
	m.Bias = t.ym + t.ys*t.p[t.d]
	if t.cfg.Loss != Logistic {
		m.Metrics["target_mean"] = float64(t.ym)
		m.Metrics["target_std"] = float64(t.ys)
	}
	return m
}

// Train fits a model to the rows of src with cfg. Rows that InHoldout
// puts in the holdout are kept out of training, used for early stopping
// and reported as HoldoutLoss. The model's Version is left 0 for the
// caller to set.
func Train(ctx context.Context, src RowSource, cfg TrainConfig) (*Model, *TrainReport, error) {
	if err := cfg.fill(); err != nil {
		return nil, nil, err
	}
	wide := cfg.Solver == SolverExact && len(src.Features()) > MaxExactWidth
	if wide {
		// XᵀX would take width² float64s and its decomposition width³
		// steps: wide (hashed) models train by SGD.
		cfg.Solver = SolverSGD
		m, rep, err := Train(ctx, src, cfg)
		if rep != nil {
			rep.Solver += fmt.Sprintf("; %d features are too many for the exact solver (at most %d)", len(src.Features()), MaxExactWidth)
		}
		return m, rep, err
	}
	if cfg.Solver == SolverExact && (!cfg.Stream || cfg.Loss == Squared) {
		if cfg.Stream {
			rw, ok := src.(Rewinder)
			if !ok {
				return nil, nil, errors.New("train: streaming needs a source that can be rewound")
			}
			return trainExactStream(ctx, rw, cfg)
		}
		ds, ok := src.(*Dataset)
		if !ok {
			var err error
			if ds, err = loadRows(src, cfg.Loss); err != nil {
				return nil, nil, err
			}
		}
		first := ds.pos
		ds.pos = ds.Len()
		return trainExact(ctx, ds, first, cfg)
	}
	if cfg.Solver != "" && cfg.Solver != SolverSGD && cfg.Solver != SolverExact {
		return nil, nil, fmt.Errorf("train: unknown solver %q (want sgd or exact)", cfg.Solver)
	}
	if !cfg.Refit || cfg.Holdout == 0 {
		return trainSGD(ctx, src, cfg)
	}
	// Refit: measure on the holdout with early stopping, then train on
	// every row for the best number of epochs.
	if !cfg.Stream {
		if _, ok := src.(*Dataset); !ok {
			ds, err := loadRows(src, cfg.Loss)
			if err != nil {
				return nil, nil, err
			}
			src = ds
		}
	}
	rw, ok := src.(Rewinder)
	if !ok {
		return nil, nil, errors.New("train: refitting needs a source that can be rewound")
	}
	var first int
	if ds, ok := src.(*Dataset); ok {
		first = ds.pos
	}
	hm, rep, err := trainSGD(ctx, src, cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := rw.Reset(); err != nil {
		return nil, nil, err
	}
	if ds, ok := src.(*Dataset); ok {
		ds.pos = first
	}
	all := cfg
	all.Holdout, all.Epochs, all.Patience, all.OnEpoch = 0, max(rep.BestEpoch, 1), -1, nil
	m, rep2, err := trainSGD(ctx, src, all)
	if err != nil {
		return nil, nil, err
	}
	rep.HoldoutModel = hm
	rep.RowsTrain += rep.RowsHoldout
	rep.Elapsed += rep2.Elapsed
	return m, rep, nil
}

// trainSGD fits with the SGD family.
func trainSGD(ctx context.Context, src RowSource, cfg TrainConfig) (*Model, *TrainReport, error) {
	if cfg.Stream {
		rw, ok := src.(Rewinder)
		if !ok {
			return nil, nil, errors.New("train: streaming needs a source that can be rewound")
		}
		return trainStream(ctx, rw, cfg)
	}
	start := time.Now()
	ds, ok := src.(*Dataset)
	if !ok {
		var err error
		if ds, err = loadRows(src, cfg.Loss); err != nil {
			return nil, nil, err
		}
	}
	d := len(ds.Names)
	first := ds.pos // a Dataset yields its remaining rows, like any source
	ds.pos = ds.Len()
	var train, hold []int32
	st := NewRunning(d)
	for i := first; i < ds.Len(); i++ {
		if err := checkLabel(cfg.Loss, ds.Y[i]); err != nil {
			return nil, nil, rowError(src, int64(i-first), err.Error())
		}
		if InHoldout(cfg.Seed, cfg.Holdout, int64(i-first)) {
			hold = append(hold, int32(i))
			continue
		}
		train = append(train, int32(i))
		st.Add(ds.Row(i), ds.Y[i])
	}
	if len(train) == 0 {
		return nil, nil, ErrNoRows
	}
	t := newTrainer(cfg, d, st)
	// Shuffle the rows once as they are standardized: each epoch then only
	// shuffles the order of contiguous mini-batches, which keeps the reads
	// sequential and the epoch fast.
	n := len(train)
	t.rng.Shuffle(n, func(i, j int) { train[i], train[j] = train[j], train[i] })
	t.x, t.y = make([]float32, n*t.stride), make([]float32, n)
	for j, i := range train {
		t.y[j] = t.put(t.x[j*t.stride:(j+1)*t.stride], ds.Row(int(i)), ds.Y[i])
	}
	t.hx, t.hy = make([]float32, len(hold)*t.stride), make([]float32, len(hold))
	for j, i := range hold {
		t.hy[j] = t.put(t.hx[j*t.stride:(j+1)*t.stride], ds.Row(int(i)), ds.Y[i])
	}
	rep := &TrainReport{RowsTrain: int64(n), RowsHoldout: int64(len(hold)), Solver: "sgd (" + string(cfg.Optimizer) + ")"}
	trainStart := time.Now()
	stop := earlyStop{patience: cfg.Patience, best: math.Inf(1)}
	for e := 1; e <= cfg.Epochs; e++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		tl := t.epoch()
		if t.diverged(tl) {
			return nil, nil, fmt.Errorf("epoch %d: %w", e, ErrDiverged)
		}
		hl := t.holdoutLoss()
		es := t.epochStats(e, tl, hl, int64(e)*int64(n), start)
		rep.Epochs = append(rep.Epochs, es)
		if cfg.OnEpoch != nil {
			cfg.OnEpoch(es)
		}
		if stop.observe(e, hl, t.avg, rep) {
			break
		}
	}
	copy(t.p, stop.weights(t.avg))
	rep.Elapsed = time.Since(start)
	rows := float64(len(rep.Epochs)) * float64(n)
	rep.RowsPerSec = rows / max(time.Since(trainStart).Seconds(), 1e-9)
	m := t.model(src)
	t.note(m, rep)
	return m, rep, nil
}

func (t *trainer) epochStats(e int, tl, hl float64, rows int64, start time.Time) EpochStats {
	if t.cfg.Loss != Logistic {
		tl, hl = t.toTarget(tl), t.toTarget(hl)
	}
	return EpochStats{Epoch: e, Epochs: t.cfg.Epochs, TrainLoss: tl, HoldoutLoss: hl, Rows: rows, Elapsed: time.Since(start)}
}

// note records the best epoch's losses in the model's metrics.
func (t *trainer) note(m *Model, rep *TrainReport) {
	if rep.BestEpoch > 0 && rep.BestEpoch <= len(rep.Epochs) {
		es := rep.Epochs[rep.BestEpoch-1]
		m.Metrics["train_loss"] = es.TrainLoss
		if !math.IsNaN(es.HoldoutLoss) {
			m.Metrics["holdout_loss"] = es.HoldoutLoss
		}
	}
	m.Metrics["epochs"] = float64(len(rep.Epochs))
}

// loadRows reads every remaining row of src into memory, checking labels
// as it goes so that a bad one is reported with its line.
func loadRows(src RowSource, loss Loss) (*Dataset, error) {
	ds := &Dataset{Names: src.Features(), Label: src.Target()}
	x := make([]float32, len(ds.Names))
	for i := int64(0); ; i++ {
		y, err := src.Next(x)
		if errors.Is(err, io.EOF) {
			return ds, nil
		}
		if err != nil {
			return nil, err
		}
		if err := checkLabel(loss, y); err != nil {
			return nil, rowError(src, i, err.Error())
		}
		ds.X = append(ds.X, x...)
		ds.Y = append(ds.Y, y)
	}
}

// trainStream trains from a source read once per epoch.
func trainStream(ctx context.Context, src Rewinder, cfg TrainConfig) (*Model, *TrainReport, error) {
	start := time.Now()
	d := len(src.Features())
	x := make([]float32, d)
	st := NewRunning(d)
	var nHold int64
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
		if InHoldout(cfg.Seed, cfg.Holdout, i) {
			nHold++
			continue
		}
		st.Add(x, y)
		if i&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
	}
	if st.N == 0 {
		return nil, nil, ErrNoRows
	}
	t := newTrainer(cfg, d, st)
	b := cfg.BatchSize
	bx, by := make([]float32, b*t.stride), make([]float32, b)
	hrow := make([]float32, t.stride)
	rep := &TrainReport{RowsTrain: st.N, RowsHoldout: nHold, Solver: "sgd (" + string(cfg.Optimizer) + ")"}
	trainStart := time.Now()
	stop := earlyStop{patience: cfg.Patience, best: math.Inf(1)}
	for e := 1; e <= cfg.Epochs; e++ {
		if err := src.Reset(); err != nil {
			return nil, nil, err
		}
		var tl, hl float64
		k := 0
		t.steps = 0
		for i := int64(0); ; i++ {
			y, err := src.Next(x)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, nil, err
			}
			if InHoldout(cfg.Seed, cfg.Holdout, i) {
				yy := t.put(hrow, x, y)
				l, _ := lossGrad(cfg.Loss, t.delta, simd.DotF32(hrow, t.avg), yy)
				hl += l
				continue
			}
			by[k] = t.put(bx[k*t.stride:(k+1)*t.stride], x, y)
			if k++; k == b {
				tl += t.batch(bx, by)
				k = 0
				if i&0xffff == 0 {
					if err := ctx.Err(); err != nil {
						return nil, nil, err
					}
				}
			}
		}
		if k > 0 {
			tl += t.batch(bx[:k*t.stride], by[:k])
		}
		if t.diverged(tl) {
			return nil, nil, fmt.Errorf("epoch %d: %w", e, ErrDiverged)
		}
		hm := math.NaN()
		if nHold > 0 {
			hm = hl / float64(nHold)
		}
		es := t.epochStats(e, tl/float64(st.N), hm, int64(e)*st.N, start)
		rep.Epochs = append(rep.Epochs, es)
		if cfg.OnEpoch != nil {
			cfg.OnEpoch(es)
		}
		if stop.observe(e, hm, t.avg, rep) {
			break
		}
	}
	copy(t.p, stop.weights(t.avg))
	rep.Elapsed = time.Since(start)
	rep.RowsPerSec = float64(len(rep.Epochs)) * float64(st.N) / max(time.Since(trainStart).Seconds(), 1e-9)
	m := t.model(src)
	t.note(m, rep)
	return m, rep, nil
}

// earlyStop keeps the weights of the epoch with the lowest holdout loss and
// says when patience epochs in a row have not improved on it by 0.01%.
// Without a holdout (loss NaN) every epoch is the best so far.
type earlyStop struct {
	patience int
	best     float64
	bad      int
	bestW    []float32
}

// observe records epoch e's holdout loss and weights, updates rep's best
// epoch, and reports whether training should stop.
func (s *earlyStop) observe(e int, loss float64, w []float32, rep *TrainReport) bool {
	if math.IsNaN(loss) || loss < s.best-1e-4*math.Abs(s.best) || s.bestW == nil {
		if !math.IsNaN(loss) {
			s.best, s.bad = loss, 0
		}
		rep.BestEpoch = e
		s.bestW = append(s.bestW[:0], w...)
		return false
	}
	if s.bad++; s.patience > 0 && s.bad >= s.patience {
		rep.StoppedEarly = true
		return true
	}
	return false
}

// weights returns the best epoch's weights, or last if no epoch ran.
func (s *earlyStop) weights(last []float32) []float32 {
	if s.bestW == nil {
		return last
	}
	return s.bestW
}
