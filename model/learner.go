package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// LearnerConfig configures an online Learner. The zero value uses the
// Adaptive optimizer, which needs no tuning.
type LearnerConfig struct {
	OptimConfig
	// Delta is Huber's threshold in target units; default the model's
	// Delta, else 1.345 running standard deviations of the target.
	Delta float32
	// PriorRows is how many rows the starting model's Mean and Std stand
	// for in the running statistics: the larger, the more slowly the
	// scaling drifts. 0 starts the statistics afresh from the first
	// reading (the model's scaling is still honoured until then).
	PriorRows int64
	// Warmup is how many rows the running statistics must hold before the
	// learner standardizes with them; until then it keeps the starting
	// model's scaling, which statistics of a handful of rows would only
	// make worse. A blank model (no weights) does not learn during the
	// warm-up: it predicts the running mean of the target (for a logistic
	// model, the smoothed rate of class 1). Default 50.
	Warmup int64
	// Margin widens the plausibility bounds derived from the starting
	// model's training statistics (see NewBounds), in widths of the
	// training range; a reading outside them is not learned from. Default
	// DefaultMargin; negative disables the bounds. A model without
	// statistics is bounded by the running statistics once warm.
	Margin float64
	// MaxStep bounds one update: no single reading moves the prediction
	// of any reading within clipSigmas standard deviations of the feature
	// means (nor its own) by more than MaxStep times the starting model's
	// target standard deviation (logits, for a logistic model), whatever
	// the running statistics do. Default DefaultMaxStep; negative disables
	// the bound.
	MaxStep float32
}

// DefaultMaxStep is LearnerConfig.MaxStep's default.
const DefaultMaxStep = 0.25

// clipSigmas is how far from the mean, in standard deviations, a feature
// may lie for MaxStep's promise to hold.
const clipSigmas = 3

// Learner trains a model online, one reading at a time: Learn predicts
// first and learns second, so Progressive is an honest estimate of the
// loss on unseen data (progressive validation).
//
// It standardizes features and target with running statistics (Welford).
// After the warm-up (LearnerConfig.Warmup), whenever they move the weights
// are re-expressed so that the function the model computes does not
// change; steps are then taken in standardized units, which is what lets
// the Adaptive optimizer work on raw sensor units without tuning. Master
// weights are float32.
//
// A Learner is not safe for concurrent use: the daemon feeds it from one
// goroutine and takes Snapshots from that same goroutine.
type Learner struct {
	cfg      LearnerConfig
	loss     Loss
	features []string
	target   string
	parent   int64
	base     *Model // the starting model's preprocessing and training statistics (see carryTraining)
	d        int

	w        []float32 // d weights then the bias, in standardized units
	cm, cs   []float64 // the standardization w is expressed in
	ci       []float64 // 1/cs: divisions are the costliest part of Learn
	cym, csy float64   // target standardization (0, 1 for logistic)
	st       *Running
	opt      *optim
	warm     bool // the scaling in use follows st
	blank    bool // started without weights: nothing to learn with until warm

	n       int64   // readings learned
	lossSum float64 // summed progressive loss
	undone  int64   // steps undone because they made a weight non-finite
	backup  []float32

	ysRef   float64    // the starting target scale: MaxStep's unit
	bounds  Bounds     // plausibility bounds from the starting model
	stats   trainStats // the starting model's training statistics, for Snapshot
	frozen  bool       // Freeze: predict only
	refused int64      // readings refused as implausible
	clipped int64      // steps shortened to MaxStep

	xs, g, xx []float32 // scratch
}

// trainStats are the training statistics a Learner carries from its
// starting model to its Snapshots.
type trainStats struct {
	tmean, tstd, tmin, tmax float32
	min, max                []float32
}

// Check reports what is wrong with c, if anything: NewLearner panics on
// what Check rejects, so validate configuration from users with it first.
func (c LearnerConfig) Check() error {
	if err := c.OptimConfig.fill(); err != nil {
		return err
	}
	if c.Delta < 0 || c.PriorRows < 0 || c.Warmup < 0 {
		return fmt.Errorf("delta %v, prior rows %d and warm-up %d must not be negative", c.Delta, c.PriorRows, c.Warmup)
	}
	if math.IsNaN(c.Margin) || math.IsInf(c.Margin, 0) || !finite32(c.MaxStep) || !finite32(c.Delta) {
		return fmt.Errorf("margin %v, max step %v and delta %v must be finite", c.Margin, c.MaxStep, c.Delta)
	}
	return nil
}

// NewLearner returns a learner that starts from m's weights and scaling.
// m may be a blank model with only Features, Target and Loss set: missing
// weights start at zero, missing scaling at mean 0 and std 1. m is not
// modified or retained. Configuration errors (an unknown optimizer, a
// negative rate) panic: validate them with LearnerConfig.Check.
func NewLearner(m *Model, cfg LearnerConfig) *Learner {
	if err := cfg.Check(); err != nil {
		panic("model: NewLearner: " + err.Error())
	}
	cfg.OptimConfig.fill()
	loss := m.Loss
	if loss == "" {
		loss = Squared
	}
	if err := checkLoss(loss); err != nil {
		panic("model: NewLearner: " + err.Error())
	}
	d := len(m.Features)
	if d == 0 {
		d = len(m.Weights)
	}
	if cfg.Delta == 0 && loss == Huber {
		cfg.Delta = m.Delta
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 50
	}
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.MaxStep == 0 {
		cfg.MaxStep = DefaultMaxStep
	}
	l := &Learner{
		cfg: cfg, loss: loss, d: d, parent: m.Version, base: m.trainingOnly(),
		features: append([]string(nil), m.Features...), target: m.Target,
		w:  make([]float32, d+1),
		cm: make([]float64, d), cs: make([]float64, d),
		csy: 1,
		st:  NewRunning(d),
		opt: newOptim(cfg.OptimConfig, loss, d),
		xs:  make([]float32, d+1), g: make([]float32, d+1), xx: make([]float32, d+1),
	}
	for i := range d {
		l.cs[i] = 1
		if i < len(m.Mean) {
			l.cm[i] = float64(m.Mean[i])
		}
		if i < len(m.Std) && m.Std[i] > 0 && !math.IsInf(float64(m.Std[i]), 0) {
			l.cs[i] = float64(m.Std[i])
		}
	}
	if loss != Logistic {
		l.cym = float64(m.Bias)
		if v, ok := m.Metrics["target_mean"]; ok {
			l.cym = v
		}
		if v, ok := m.Metrics["target_std"]; ok && v > 0 {
			l.csy = v
		} else {
			// A model without the statistic: guess the spread of its own
			// predictions, which is the target's up to the noise.
			var s float64
			for _, w := range m.Weights {
				s += float64(w) * float64(w)
			}
			l.csy = math.Max(math.Sqrt(s), 1)
		}
	}
	for i := range d {
		if i < len(m.Weights) {
			l.w[i] = float32(float64(m.Weights[i]) / l.csy)
		}
	}
	l.w[d] = float32((float64(m.Bias) - l.cym) / l.csy)
	if p := cfg.PriorRows; p > 0 {
		l.st.N = p
		for i := range d {
			l.st.Mean[i] = l.cm[i]
			l.st.M2[i] = l.cs[i] * l.cs[i] * float64(p)
		}
		l.st.YMean, l.st.YM2 = l.cym, l.csy*l.csy*float64(p)
		// The optimizer has, in effect, seen those rows too: without this
		// AdaGrad's first steps would be as large as on a blank model and
		// undo the training. Each squared gradient is about the residual
		// variance (internal units) times a standardized input's square, 1.
		g2 := 0.1
		if v, ok := m.Metrics["train_loss"]; ok && loss != Logistic && v > 0 {
			g2 = v / (l.csy * l.csy)
			if loss == Huber {
				g2 *= 2
			}
		}
		for i := range l.opt.g2 {
			l.opt.g2[i] = float32(g2 * float64(p))
		}
		l.opt.t, l.opt.norm = p, float64(p)*float64(d+1)
	}
	l.blank = m.Bias == 0
	for _, w := range m.Weights {
		l.blank = l.blank && w == 0
	}
	l.warm = l.st.N >= cfg.Warmup
	l.ci = inverses(l.cs)
	if cfg.Margin > 0 {
		l.bounds = NewBounds(m, cfg.Margin)
	}
	l.ysRef = l.csy
	l.stats = trainStats{tmean: m.TargetMean, tstd: m.TargetStd, tmin: m.TargetMin, tmax: m.TargetMax}
	if len(m.Min) == d && len(m.Max) == d {
		l.stats.min, l.stats.max = slices.Clone(m.Min), slices.Clone(m.Max)
	}
	return l
}

func inverses(v []float64) []float64 {
	r := make([]float64, len(v))
	for i, x := range v {
		r[i] = 1 / x
	}
	return r
}

// score returns the internal score of x under the current parameters.
func (l *Learner) score(x []float32) float64 {
	z := float64(l.w[l.d])
	for i, v := range x {
		z += float64(l.w[i]) * (float64(v) - l.cm[i]) * l.ci[i]
	}
	return z
}

// Predict returns the prediction for x without learning: a value in target
// units, or P(class 1) for a logistic model.
func (l *Learner) Predict(x []float32) float32 {
	if len(x) != l.d {
		panic(fmt.Sprintf("model: Learner.Predict: %d features, want %d", len(x), l.d))
	}
	if l.blank && !l.warm {
		if l.loss == Logistic {
			// The class-1 rate so far, smoothed so that it is never 0 or 1.
			n := float64(l.st.N)
			return float32((l.st.YMean*n + 0.5) / (n + 1))
		}
		return float32(l.st.YMean)
	}
	z := l.score(x)
	if l.loss == Logistic {
		return sigmoid32(float32(z))
	}
	return float32(l.cym + l.csy*z)
}

// Learn predicts x's target, then learns from the true y, and returns the
// prediction and its loss (squared error, Huber loss or log loss, in
// target units). x must hold one value per feature (it panics otherwise).
// A reading LearnChecked refuses (NaN or infinite values, a logistic label
// other than 0 or 1, an implausible value, a frozen learner) is not
// learned from: Learn returns the prediction and a NaN loss, and the
// counters do not move.
func (l *Learner) Learn(x []float32, y float32) (pred float32, loss float64) {
	pred, loss, _ = l.LearnChecked(x, y)
	return pred, loss
}

// LearnChecked is Learn that says why it refused a reading: ErrNotFinite,
// the label error of the loss, an *ImplausibleError (wrapping
// ErrImplausible) for a label or feature outside the bounds, or ErrFrozen.
// The prediction is returned in every case.
func (l *Learner) LearnChecked(x []float32, y float32) (pred float32, loss float64, err error) {
	pred = l.Predict(x)
	switch {
	case !finite32(y) || !allFinite(x):
		return pred, math.NaN(), ErrNotFinite
	case l.frozen:
		return pred, math.NaN(), ErrFrozen
	}
	if err := checkLabel(l.loss, y); err != nil {
		return pred, math.NaN(), err
	}
	if err := l.plausible(x, y); err != nil {
		l.refused++
		return pred, math.NaN(), err
	}
	if l.loss == Logistic {
		p := math.Min(math.Max(float64(pred), 1e-15), 1-1e-15)
		loss = -math.Log(p)
		if y == 0 {
			loss = -math.Log1p(-p)
		}
	} else {
		loss, _ = lossGrad(l.loss, l.delta(), pred, y)
	}
	l.n++
	l.lossSum += loss

	l.st.Add(x, y)
	switch {
	case l.warm:
		l.rescale()
	case l.st.N < l.cfg.Warmup && l.blank:
		return pred, loss, nil
	case l.st.N >= l.cfg.Warmup:
		l.warm = true
		if l.blank {
			// Nothing learned yet: take the statistics as they are.
			for i := range l.d {
				l.cm[i], l.cs[i] = l.st.Mean[i], l.st.Std(i)
				l.ci[i] = 1 / l.cs[i]
			}
			if l.loss != Logistic {
				l.cym, l.csy = l.st.YMean, l.st.YStd()
				l.ysRef = l.csy
			}
			l.blank = false
		} else {
			l.rescale()
		}
	}

	d := l.d
	var norm2 float64
	for i, v := range x {
		s := float32((float64(v) - l.cm[i]) * l.ci[i])
		l.xs[i] = s
		l.xx[i] = s * s
		norm2 += float64(s * s)
	}
	l.xs[d], l.xx[d] = 1, 1
	norm2++
	yy := y
	delta := float32(0)
	if l.loss != Logistic {
		yy = float32((float64(y) - l.cym) / l.csy)
		delta = float32(float64(l.delta()) / l.csy)
	}
	z := float32(0)
	for i, v := range l.xs {
		z += l.w[i] * v
	}
	_, g := lossGrad(l.loss, delta, z, yy)
	for i, v := range l.xs {
		l.g[i] = g * v
	}
	// A step that leaves a weight NaN or infinite (a learning rate far too
	// large, a reading of 1e38) is undone: the serving copy must stay a
	// valid model. The optimizer's counters keep the step.
	l.backup = append(l.backup[:0], l.w...)
	l.opt.step(l.w, l.g, norm2, l.xx)
	if !allFinite(l.w) {
		copy(l.w, l.backup)
		l.undone++
	}
	l.clip()
	return pred, loss, nil
}

// plausible checks a reading against the bounds: the starting model's, or
// for a model that brought none, the running statistics' once warm.
func (l *Learner) plausible(x []float32, y float32) error {
	if l.bounds.known() {
		return l.bounds.Check(x, y, l.features)
	}
	if l.cfg.Margin <= 0 || !l.warm {
		return nil
	}
	b := Bounds{YLo: math.Inf(-1), YHi: math.Inf(1), XLo: make([]float64, l.d), XHi: make([]float64, l.d), set: true}
	if l.loss != Logistic {
		m, s := l.st.YMean, l.st.YStd()
		b.YLo, b.YHi = widen(m-sigmas*s, m+sigmas*s, l.cfg.Margin)
	}
	for i := range l.d {
		m, s := l.st.Mean[i], l.st.Std(i)
		b.XLo[i], b.XHi[i] = widen(m-sigmas*s, m+sigmas*s, l.cfg.Margin)
	}
	return b.Check(x, y, l.features)
}

// clip shortens the step just taken (from l.backup to l.w) so that it
// moves no prediction of a reading within clipSigmas of the feature means,
// nor the reading's own (l.xs), by more than MaxStep in standardized
// target units.
func (l *Learner) clip() {
	if l.cfg.MaxStep <= 0 {
		return
	}
	d := l.d
	c := math.Abs(float64(l.w[d] - l.backup[d]))
	for i := range d {
		c += math.Abs(float64(l.w[i]-l.backup[i])) * math.Max(clipSigmas, math.Abs(float64(l.xs[i])))
	}
	// MaxStep is in units of the starting target scale: running
	// statistics that a reading has just stretched do not stretch it.
	limit := float64(l.cfg.MaxStep)
	if l.ysRef > 0 {
		limit *= l.ysRef / l.csy
	}
	if c <= limit {
		return
	}
	k := float32(limit / c)
	for i, b := range l.backup {
		l.w[i] = b + k*(l.w[i]-b)
	}
	l.clipped++
}

// Freeze stops learning: the learner still predicts, and LearnChecked
// returns ErrFrozen. The daemon freezes a learner a Watchdog found
// diverged, after restoring its last good checkpoint.
func (l *Learner) Freeze() { l.frozen = true }

// Unfreeze resumes learning after Freeze.
func (l *Learner) Unfreeze() { l.frozen = false }

// Frozen reports whether learning is frozen.
func (l *Learner) Frozen() bool { return l.frozen }

// Refused returns how many readings were refused as implausible.
func (l *Learner) Refused() int64 { return l.refused }

// Clipped returns how many steps were shortened to MaxStep.
func (l *Learner) Clipped() int64 { return l.clipped }

// Bounds returns the plausibility bounds taken from the starting model
// (the zero Bounds when it brought none).
func (l *Learner) Bounds() Bounds { return l.bounds }

// Undone returns how many steps were undone because they would have made
// a weight NaN or infinite; a growing count means the learning rate is too
// large for the data.
func (l *Learner) Undone() int64 { return l.undone }

func (l *Learner) delta() float32 {
	if l.cfg.Delta > 0 {
		return l.cfg.Delta
	}
	return float32(1.345 * l.csy)
}

// rescale moves the parameters to the new running statistics, keeping
// the function they compute:
//
//	w'_i = w_i * (sy/sy') * (s'_i/s_i)
//	b'   = (my - my' + sy*b)/sy' + sum_i (sy/sy') * w_i * (m'_i - m_i)/s_i
func (l *Learner) rescale() {
	nym, nsy := l.cym, l.csy
	if l.loss != Logistic {
		nym, nsy = l.st.YMean, l.st.YStd()
	}
	ry := l.csy / nsy
	b := (l.cym - nym + l.csy*float64(l.w[l.d])) / nsy
	for i := range l.d {
		nm, ns := l.st.Mean[i], l.st.Std(i)
		w := float64(l.w[i])
		b += ry * w * (nm - l.cm[i]) * l.ci[i]
		l.w[i] = float32(w * ry * ns * l.ci[i])
		l.cm[i], l.cs[i], l.ci[i] = nm, ns, 1/ns
	}
	l.w[l.d] = float32(b)
	l.cym, l.csy = nym, nsy
}

// Progressive returns the mean loss of the predictions Learn made before
// learning from each reading; 0 before the first.
func (l *Learner) Progressive() float64 {
	if l.n == 0 {
		return 0
	}
	return l.lossSum / float64(l.n)
}

// Updates returns how many readings have been learned from.
func (l *Learner) Updates() int64 { return l.n }

// Snapshot returns the current weights as a new float32 Model, expressed
// in the current running scaling: what the daemon quantizes its serving
// copy from. Its Parent is the starting model's Version; Version is left
// 0 for the caller.
func (l *Learner) Snapshot() *Model {
	m := &Model{
		Parent:   l.parent,
		Created:  time.Now().UTC(),
		Features: append([]string(nil), l.features...),
		Target:   l.target,
		Loss:     l.loss,
		Mean:     make([]float32, l.d),
		Std:      make([]float32, l.d),
		Weights:  make([]float32, l.d),
		Scheme:   F32,
		Metrics: map[string]float64{
			"progressive_loss": l.Progressive(),
			"updates":          float64(l.n),
			"undone_steps":     float64(l.undone),
			"refused_readings": float64(l.refused),
			"clipped_steps":    float64(l.clipped),
		},
		TargetMean: l.stats.tmean, TargetStd: l.stats.tstd, TargetMin: l.stats.tmin, TargetMax: l.stats.tmax,
		Min: slices.Clone(l.stats.min), Max: slices.Clone(l.stats.max),
	}
	if l.loss == Huber {
		m.Delta = l.delta()
	}
	m.carryTraining(l.base)
	for i := range l.d {
		m.Mean[i] = float32(l.cm[i])
		m.Std[i] = float32(l.cs[i])
		m.Weights[i] = float32(float64(l.w[i]) * l.csy)
	}
	m.Bias = float32(l.cym + l.csy*float64(l.w[l.d]))
	if l.loss != Logistic {
		m.Metrics["target_mean"] = l.cym
		m.Metrics["target_std"] = l.csy
	}
	return m
}

// ErrLearnerState is returned by UnmarshalBinary for data that is not a
// learner state this version can read.
var ErrLearnerState = errors.New("model: bad learner state")

const learnerMagic = "LNLS"

// learnerFormat 2 adds, after format 1's fields: margin, max step, the
// bounds, the training statistics, the frozen flag and the refused and
// clipped counters. Format 1 states still load: they keep the receiving
// learner's bounds and statistics (NewLearner's, from the model).
const learnerFormat = 2

// MarshalBinary returns the learner's full state: configuration, weights,
// optimizer accumulators, running statistics and counters. A learner
// restored from it with UnmarshalBinary continues bit for bit as this one
// would.
func (l *Learner) MarshalBinary() ([]byte, error) {
	var e enc
	e.b = append(e.b, learnerMagic...)
	e.u32(learnerFormat)
	c := l.cfg
	e.str(string(c.Optimizer))
	e.f32(c.LR)
	e.str(string(c.Schedule))
	e.f32(c.PowerT)
	e.f32(c.L1)
	e.f32(c.L2)
	e.f32(c.Delta)
	e.i64(c.PriorRows)
	e.i64(c.Warmup)
	e.str(string(l.loss))
	e.u32(uint32(len(l.features)))
	for _, f := range l.features {
		e.str(f)
	}
	e.str(l.target)
	e.i64(l.parent)
	e.u32(uint32(l.d))
	e.f32s(l.w)
	e.f64s(l.cm)
	e.f64s(l.cs)
	e.f64(l.cym)
	e.f64(l.csy)
	e.i64(l.st.N)
	e.f64s(l.st.Mean)
	e.f64s(l.st.M2)
	e.f64(l.st.YMean)
	e.f64(l.st.YM2)
	e.i64(l.opt.t)
	e.f64(l.opt.norm)
	e.u32(uint32(len(l.opt.g2)))
	e.f32s(l.opt.g2)
	e.i64(l.n)
	e.f64(l.lossSum)
	e.i64(l.undone)
	e.b = append(e.b, b2u8(l.warm), b2u8(l.blank))
	e.f64(c.Margin)
	e.f32(c.MaxStep)
	e.f64(l.ysRef)
	e.b = append(e.b, b2u8(l.bounds.set))
	e.f64(l.bounds.YLo)
	e.f64(l.bounds.YHi)
	e.u32(uint32(len(l.bounds.XLo)))
	e.f64s(l.bounds.XLo)
	e.f64s(l.bounds.XHi)
	st := l.stats
	e.f32s([]float32{st.tmean, st.tstd, st.tmin, st.tmax})
	e.u32(uint32(len(st.min)))
	e.f32s(st.min)
	e.f32s(st.max)
	e.b = append(e.b, b2u8(l.frozen))
	e.i64(l.refused)
	e.i64(l.clipped)
	return e.b, nil
}

// UnmarshalBinary replaces l's whole state with one MarshalBinary wrote.
// l may be a zero Learner. It returns an error wrapping ErrLearnerState,
// and leaves l unchanged, for data it cannot read.
func (l *Learner) UnmarshalBinary(data []byte) error {
	d := dec{b: data}
	if len(data) < 4 || string(data[:4]) != learnerMagic {
		return fmt.Errorf("%w: no magic", ErrLearnerState)
	}
	d.b = d.b[4:]
	format := d.u32()
	if format != 1 && format != learnerFormat {
		return fmt.Errorf("%w: format %d, this build reads 1 to %d", ErrLearnerState, format, learnerFormat)
	}
	var c LearnerConfig
	c.Optimizer = Optimizer(d.str())
	c.LR = d.f32()
	c.Schedule = Schedule(d.str())
	c.PowerT = d.f32()
	c.L1 = d.f32()
	c.L2 = d.f32()
	c.Delta = d.f32()
	c.PriorRows = d.i64()
	c.Warmup = d.i64()
	loss := Loss(d.str())
	nf := int(d.u32())
	if nf < 0 || nf > len(d.b) {
		return fmt.Errorf("%w: %d feature names in %d bytes", ErrLearnerState, nf, len(d.b))
	}
	feats := make([]string, 0, nf)
	for range nf {
		feats = append(feats, d.str())
	}
	target := d.str()
	parent := d.i64()
	n := int(d.u32())
	if d.err != nil || n < 0 || n > len(d.b)/4 || (nf != 0 && nf != n) {
		return fmt.Errorf("%w: %d features", ErrLearnerState, n)
	}
	nl := &Learner{cfg: c, loss: loss, features: feats, target: target, parent: parent, d: n}
	nl.w = d.f32s(n + 1)
	nl.cm = d.f64s(n)
	nl.cs = d.f64s(n)
	nl.cym = d.f64()
	nl.csy = d.f64()
	nl.st = &Running{N: d.i64()}
	nl.st.Mean = d.f64s(n)
	nl.st.M2 = d.f64s(n)
	nl.st.YMean = d.f64()
	nl.st.YM2 = d.f64()
	check := c.OptimConfig
	if err := check.fill(); err != nil || check != c.OptimConfig {
		return fmt.Errorf("%w: optimizer configuration %+v", ErrLearnerState, c.OptimConfig)
	}
	if err := checkLoss(loss); err != nil {
		return fmt.Errorf("%w: %v", ErrLearnerState, err)
	}
	nl.opt = newOptim(c.OptimConfig, loss, n)
	nl.opt.t = d.i64()
	nl.opt.norm = d.f64()
	ng := int(d.u32())
	if ng != len(nl.opt.g2) {
		return fmt.Errorf("%w: %d accumulators for %d parameters", ErrLearnerState, ng, n+1)
	}
	copy(nl.opt.g2, d.f32s(ng))
	nl.n = d.i64()
	nl.lossSum = d.f64()
	nl.undone = d.i64()
	flags := d.take(2)
	if flags != nil {
		nl.warm, nl.blank = flags[0] != 0, flags[1] != 0
	}
	if format == 1 {
		nl.cfg.Margin, nl.cfg.MaxStep, nl.ysRef = DefaultMargin, DefaultMaxStep, nl.csy
		if len(l.bounds.XLo) == n || l.bounds.XLo == nil {
			nl.bounds, nl.stats = l.bounds, l.stats
		}
	} else {
		nl.cfg.Margin = d.f64()
		nl.cfg.MaxStep = d.f32()
		nl.ysRef = d.f64()
		if f := d.take(1); f != nil {
			nl.bounds.set = f[0] != 0
		}
		nl.bounds.YLo, nl.bounds.YHi = d.f64(), d.f64()
		if nb := int(d.u32()); nb == n {
			nl.bounds.XLo, nl.bounds.XHi = d.f64s(n), d.f64s(n)
		} else if nb != 0 {
			return fmt.Errorf("%w: %d feature bounds for %d features", ErrLearnerState, nb, n)
		}
		ts := d.f32s(4)
		nl.stats = trainStats{tmean: ts[0], tstd: ts[1], tmin: ts[2], tmax: ts[3]}
		if nr := int(d.u32()); nr == n {
			nl.stats.min, nl.stats.max = d.f32s(n), d.f32s(n)
		} else if nr != 0 {
			return fmt.Errorf("%w: %d feature ranges for %d features", ErrLearnerState, nr, n)
		}
		if f := d.take(1); f != nil {
			nl.frozen = f[0] != 0
		}
		nl.refused, nl.clipped = d.i64(), d.i64()
		if nl.bounds.YLo > nl.bounds.YHi || math.IsNaN(nl.bounds.YLo) || math.IsNaN(nl.bounds.YHi) ||
			math.IsNaN(nl.cfg.Margin) || !finite32(nl.cfg.MaxStep) || !(nl.ysRef > 0) || math.IsInf(nl.ysRef, 0) {
			return fmt.Errorf("%w: bounds or limits not valid", ErrLearnerState)
		}
	}
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrLearnerState, d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes left over", ErrLearnerState, len(d.b))
	}
	for i := range n {
		if !(nl.cs[i] > 0) {
			return fmt.Errorf("%w: scale %d is %v", ErrLearnerState, i, nl.cs[i])
		}
	}
	if !(nl.csy > 0) {
		return fmt.Errorf("%w: target scale %v", ErrLearnerState, nl.csy)
	}
	nl.ci = inverses(nl.cs)
	nl.xs, nl.g, nl.xx = make([]float32, n+1), make([]float32, n+1), make([]float32, n+1)
	*l = *nl
	return nil
}

func b2u8(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// enc and dec write and read the little-endian learner state.
type enc struct{ b []byte }

func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) i64(v int64)  { e.b = binary.LittleEndian.AppendUint64(e.b, uint64(v)) }
func (e *enc) f32(v float32) {
	e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(v))
}
func (e *enc) f64(v float64) {
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *enc) f32s(v []float32) {
	for _, x := range v {
		e.f32(x)
	}
}
func (e *enc) f64s(v []float64) {
	for _, x := range v {
		e.f64(x)
	}
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errors.New("truncated")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}
func (d *dec) i64() int64 {
	if p := d.take(8); p != nil {
		return int64(binary.LittleEndian.Uint64(p))
	}
	return 0
}
func (d *dec) f32() float32 { return math.Float32frombits(d.u32()) }
func (d *dec) f64() float64 { return math.Float64frombits(uint64(d.i64())) }
func (d *dec) str() string {
	n := d.u32()
	if uint64(n) > uint64(len(d.b)) {
		d.err = errors.New("truncated string")
		return ""
	}
	return string(d.take(int(n)))
}
func (d *dec) f32s(n int) []float32 {
	v := make([]float32, n)
	if n > len(d.b)/4 {
		d.err = errors.New("truncated")
		return v
	}
	for i := range v {
		v[i] = d.f32()
	}
	return v
}
func (d *dec) f64s(n int) []float64 {
	v := make([]float64, n)
	if n > len(d.b)/8 {
		d.err = errors.New("truncated")
		return v
	}
	for i := range v {
		v[i] = d.f64()
	}
	return v
}
