package model

import (
	"errors"
	"fmt"
	"math"
)

// Online SGD has no natural bound: one label of 1e30 moves the weights by
// 1e30, and a checkpoint makes it permanent. Three defences, each usable
// on its own:
//
//   - Bounds: a reading whose label or a feature lies far outside what the
//     model was trained on (the training statistics it carries, widened by
//     a margin) is refused for learning, with an *ImplausibleError; it is
//     still predicted.
//   - a bounded step: Learner clips each update so that no single reading
//     moves any plausible prediction by more than LearnerConfig.MaxStep
//     target standard deviations.
//   - Watchdog: compares the loss since the last good checkpoint with the
//     loss before it and tells the caller to restore that checkpoint and
//     freeze the learner when it has blown up.

// ErrImplausible is returned (inside an *ImplausibleError) when a reading's
// label or feature is outside the learner's plausibility bounds.
var ErrImplausible = errors.New("model: reading outside the plausible range")

// ErrFrozen is returned by Learner.LearnChecked when the learner is frozen.
var ErrFrozen = errors.New("model: learning is frozen")

// ImplausibleError says which value of a reading was out of bounds.
type ImplausibleError struct {
	Feature string  // the feature's name, "" for the label
	Index   int     // the feature's index, -1 for the label
	Value   float32 // the value refused
	Lo, Hi  float64 // the plausible range
}

func (e *ImplausibleError) Error() string {
	what := "label"
	if e.Index >= 0 {
		what = fmt.Sprintf("feature %q", e.Feature)
		if e.Feature == "" {
			what = fmt.Sprintf("feature %d", e.Index)
		}
	}
	return fmt.Sprintf("model: %s %g outside the plausible range [%g, %g]", what, e.Value, e.Lo, e.Hi)
}

func (e *ImplausibleError) Unwrap() error { return ErrImplausible }

// DefaultMargin is how far beyond the training range a value may lie, in
// widths of that range, before it is implausible: with 1, a target trained
// on [100, 600] is learned from in [-400, 1100].
const DefaultMargin = 1.0

// sigmas is how many standard deviations on each side of the mean stand
// for the training range when only Mean and Std are known.
const sigmas = 4

// Bounds are the plausible ranges of a model's label and features. The
// zero value bounds nothing.
type Bounds struct {
	YLo, YHi float64   // ±Inf when unknown
	XLo, XHi []float64 // per feature; nil, or ±Inf entries, when unknown
	set      bool      // made by NewBounds (or a learner): the zero value bounds nothing
}

// NewBounds derives bounds from the training statistics m carries (Min,
// Max, TargetMin, TargetMax; else Mean and Std, TargetMean and TargetStd,
// or the target_mean and target_std metrics), each range widened by margin
// times its width on both sides. What m does not describe is unbounded. A
// logistic model's label is not bounded here (it must be 0 or 1 anyway).
func NewBounds(m *Model, margin float64) Bounds {
	b := Bounds{YLo: math.Inf(-1), YHi: math.Inf(1), set: true}
	if m.Loss != Logistic {
		lo, hi := float64(m.TargetMin), float64(m.TargetMax)
		if !(hi > lo) {
			mean, std := float64(m.TargetMean), float64(m.TargetStd)
			if !(std > 0) {
				mean, std = m.Metrics["target_mean"], m.Metrics["target_std"]
			}
			lo, hi = mean-sigmas*std, mean+sigmas*std
		}
		b.YLo, b.YHi = widen(lo, hi, margin)
	}
	d := len(m.Features)
	if d == 0 {
		return b
	}
	b.XLo, b.XHi = make([]float64, d), make([]float64, d)
	identity := true
	for i := range d {
		if i < len(m.Std) && (m.Std[i] != 1 || m.Mean[i] != 0) {
			identity = false
		}
	}
	for i := range d {
		lo, hi := math.Inf(-1), math.Inf(1)
		if len(m.Min) == d && len(m.Max) == d && m.Max[i] >= m.Min[i] {
			lo, hi = float64(m.Min[i]), float64(m.Max[i])
			if hi == lo && i < len(m.Std) {
				// A constant column: allow a standard deviation's play.
				lo, hi = lo-float64(m.Std[i]), hi+float64(m.Std[i])
			}
		} else if !identity && i < len(m.Std) {
			lo = float64(m.Mean[i]) - sigmas*float64(m.Std[i])
			hi = float64(m.Mean[i]) + sigmas*float64(m.Std[i])
		}
		b.XLo[i], b.XHi[i] = widen(lo, hi, margin)
	}
	return b
}

// widen returns [lo, hi] widened by margin widths on each side, or an
// unbounded range for one that is not finite and non-empty.
func widen(lo, hi, margin float64) (float64, float64) {
	w := hi - lo
	if !(w > 0) || math.IsInf(w, 0) || math.IsNaN(w) {
		return math.Inf(-1), math.Inf(1)
	}
	return lo - margin*w, hi + margin*w
}

// Check returns an *ImplausibleError for the first value of the reading
// outside the bounds, nil if all are plausible. names, if not nil, name the
// features in the error.
func (b *Bounds) Check(x []float32, y float32, names []string) error {
	if !b.set {
		return nil
	}
	if v := float64(y); v < b.YLo || v > b.YHi {
		return &ImplausibleError{Index: -1, Value: y, Lo: b.YLo, Hi: b.YHi}
	}
	for i := range min(len(x), len(b.XLo)) {
		if v := float64(x[i]); v < b.XLo[i] || v > b.XHi[i] {
			e := &ImplausibleError{Index: i, Value: x[i], Lo: b.XLo[i], Hi: b.XHi[i]}
			if i < len(names) {
				e.Feature = names[i]
			}
			return e
		}
	}
	return nil
}

// known reports whether the bounds bound anything.
func (b *Bounds) known() bool {
	if !b.set {
		return false
	}
	if !math.IsInf(b.YLo, 0) || !math.IsInf(b.YHi, 0) {
		return true
	}
	for i := range b.XLo {
		if !math.IsInf(b.XLo[i], 0) || !math.IsInf(b.XHi[i], 0) {
			return true
		}
	}
	return false
}

// ranges collects the training statistics of the raw rows the trainer
// learns from (see Model's TargetMin ... Max fields).
type ranges struct {
	n          int64
	min, max   []float32
	ymin, ymax float32
}

func newRanges(d int) *ranges {
	return &ranges{min: make([]float32, d), max: make([]float32, d)}
}

func (r *ranges) add(x []float32, y float32) {
	if r.n == 0 {
		copy(r.min, x)
		copy(r.max, x)
		r.ymin, r.ymax = y, y
	}
	r.n++
	for i, v := range x {
		r.min[i] = min(r.min[i], v)
		r.max[i] = max(r.max[i], v)
	}
	r.ymin, r.ymax = min(r.ymin, y), max(r.ymax, y)
}

// fill sets m's training statistics from r and the running moments st.
func (r *ranges) fill(m *Model, st *Running) {
	if r.n == 0 {
		return
	}
	m.Min, m.Max = r.min, r.max
	m.TargetMin, m.TargetMax = r.ymin, r.ymax
	m.TargetMean, m.TargetStd = float32(st.YMean), float32(math.Sqrt(st.YM2/float64(st.N)))
}

// Watchdog watches a Learner for divergence. The caller saves checkpoints
// of the learner's state; before each, it asks Check. While the loss since
// the last good checkpoint stays within Ratio times the loss the learner
// had then, Check says the new checkpoint is good (Good), and the caller
// saves it and calls Good. Past the threshold Check reports Diverged: the
// caller restores the last good checkpoint (Learner.UnmarshalBinary),
// freezes the learner (Learner.Freeze) and reports it.
type Watchdog struct {
	// Ratio is the loss increase that counts as divergence: the mean loss
	// since the last good checkpoint over the mean loss up to it. Default 4.
	Ratio float64
	// MinUpdates is how many readings since the last good checkpoint Check
	// needs before it judges; default 100.
	MinUpdates int64
	// Floor is the smallest baseline loss the ratio is taken against, so a
	// learner whose loss was about 0 (a perfect fit) is not declared
	// diverged by rounding noise; default 1e-12.
	Floor float64
	// Initial is the baseline loss before the first good checkpoint with
	// updates behind it, e.g. the starting model's train_loss metric; 0
	// leaves that first window judged only for non-finite losses.
	Initial float64

	n       int64   // the learner's updates at the last good checkpoint
	sum     float64 // its summed loss then
	started bool
}

// Verdict is what Check found.
type Verdict struct {
	Diverged bool
	// Loss is the mean loss since the last good checkpoint, Baseline the
	// mean loss up to it; Updates the readings since it.
	Loss, Baseline float64
	Updates        int64
	Reason         string
}

func (w *Watchdog) defaults() (ratio float64, minUpdates int64, floor float64) {
	ratio, minUpdates, floor = w.Ratio, w.MinUpdates, w.Floor
	if !(ratio > 1) {
		ratio = 4
	}
	if minUpdates <= 0 {
		minUpdates = 100
	}
	if !(floor > 0) {
		floor = 1e-12
	}
	return ratio, minUpdates, floor
}

// Good records l's present state as the last good checkpoint.
func (w *Watchdog) Good(l *Learner) {
	w.n, w.sum, w.started = l.n, l.lossSum, true
}

// Check judges the loss of l since the last good checkpoint (since l was
// created or restored if Good was never called).
func (w *Watchdog) Check(l *Learner) Verdict {
	ratio, minUpdates, floor := w.defaults()
	if !w.started {
		// The first checkpoint's baseline is what the learner brought.
		w.Good(l)
		return Verdict{Baseline: l.Progressive()}
	}
	v := Verdict{Updates: l.n - w.n, Baseline: w.Initial}
	if w.n > 0 {
		v.Baseline = w.sum / float64(w.n)
	}
	if v.Updates <= 0 {
		return v
	}
	v.Loss = (l.lossSum - w.sum) / float64(v.Updates)
	switch {
	case math.IsNaN(v.Loss) || math.IsInf(v.Loss, 0) || !allFinite(l.w):
		v.Diverged, v.Reason = true, fmt.Sprintf("loss since the last good checkpoint is %v", v.Loss)
	case v.Updates >= minUpdates && v.Baseline > 0 && v.Loss > ratio*math.Max(v.Baseline, floor):
		v.Diverged = true
		v.Reason = fmt.Sprintf("mean loss %.6g over the last %d readings is more than %g times the %.6g before the last good checkpoint",
			v.Loss, v.Updates, ratio, v.Baseline)
	}
	return v
}
