package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
}

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

	xs, g, xx []float32 // scratch
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
// A reading with a NaN or infinite value, or a logistic label other than
// 0 or 1, is not learned from: Learn returns the prediction and a NaN
// loss, and the counters do not move.
func (l *Learner) Learn(x []float32, y float32) (pred float32, loss float64) {
	pred = l.Predict(x)
	if !finite32(y) || !allFinite(x) || checkLabel(l.loss, y) != nil {
		return pred, math.NaN()
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
		return pred, loss
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
	return pred, loss
}

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
		},
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
const learnerFormat = 1

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
	if v := d.u32(); v != learnerFormat {
		return fmt.Errorf("%w: format %d, this build reads %d", ErrLearnerState, v, learnerFormat)
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
