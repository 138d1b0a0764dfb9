package monitor

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/simd"
)

// foldLimit bounds |Mean/Std| for summing raw readings in float32 (one
// vector kernel call per reading). Past it, a window sum of raw values
// would lose the digits that matter to cancellation, so such models sum
// centred values in a Go loop instead (as model's Predictor does).
const foldLimit = 64

// Score is one feature-drift statistic at the end of the last window.
type Score struct {
	Feature   string  `json:"feature"`
	Kind      Kind    `json:"kind"`
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	Alert     bool    `json:"alert"`
}

// FeatureDrift watches the features one model sees against the training
// statistics it carries. Numeric features (and missing-value indicators)
// are scored by the window's standardized mean shift, |mean_w - Mean| /
// Std; one-hot and hashed columns by the population stability index of
// the window's category frequencies against the training ones (the
// training means of their 0/1 features), with the readings that set none
// of the column's features (unseen or missing categories) as one more
// category.
//
// Observe is safe for concurrent use and never waits: a reading that
// arrives while another goroutine holds the detector is skipped (Skipped
// counts them), which samples the stream under contention and leaves the
// statistics valid.
type FeatureDrift struct {
	model string
	cfg   Config

	mean, inv []float64
	center    []float32 // the means, when readings are centred before summing
	numeric   []int     // features scored by mean shift
	groups    []catGroup

	mu     sync.Mutex
	sum    []float32 // the current window's sum of readings (centred if center != nil)
	n      int
	checks []check // numeric, then groups
	evals  uint64

	skipped atomic.Uint64
}

type catGroup struct {
	name       string
	start, end int       // the column's features
	expected   []float64 // training frequency per feature, then "none"
}

type check struct {
	name      string
	kind      Kind
	threshold float64
	score     float64
	alarm     alarm
}

// NewFeatureDrift returns a detector for m, reporting alerts under name.
// It panics if cfg is invalid (Config.Validate).
func NewFeatureDrift(name string, m *model.Model, cfg Config) *FeatureDrift {
	if err := cfg.Validate(); err != nil {
		panic("monitor: NewFeatureDrift: " + err.Error())
	}
	n := len(m.Features)
	d := &FeatureDrift{model: name, cfg: cfg, mean: make([]float64, n), inv: make([]float64, n), sum: make([]float32, n)}
	fold := true
	for i := range n {
		d.mean[i] = float64(m.Mean[i])
		d.inv[i] = 1 / float64(m.Std[i])
		if math.Abs(d.mean[i]*d.inv[i]) > foldLimit {
			fold = false
		}
	}
	if !fold {
		d.center = append([]float32(nil), m.Mean...)
	}
	categorical := make([]bool, n)
	if p := m.Preprocessing; p != nil {
		at := 0
		for _, c := range p.Columns {
			w := c.Width()
			own := w
			if c.Indicator {
				own--
			}
			if c.Kind != model.Numeric && own > 0 {
				g := catGroup{name: c.Name, start: at, end: at + own, expected: make([]float64, own+1)}
				rest := 1.0
				for k := range own {
					e := math.Min(math.Max(d.mean[at+k], 0), 1)
					g.expected[k] = e
					rest -= e
					categorical[at+k] = true
				}
				g.expected[own] = math.Max(rest, 0)
				d.groups = append(d.groups, g)
			}
			at += w
		}
	}
	for i := range n {
		if !categorical[i] {
			d.numeric = append(d.numeric, i)
			d.checks = append(d.checks, check{name: m.Features[i], kind: KindFeature, threshold: cfg.MeanShift})
		}
	}
	for _, g := range d.groups {
		d.checks = append(d.checks, check{name: g.name, kind: KindCategory, threshold: cfg.PSI})
	}
	return d
}

// Observe adds one reading of the model's features (raw, as Predict takes
// them; finite: a reading that passed Model.CheckVector) and returns the
// alerts that fired or cleared at the end of a window, usually none. It
// panics if len(x) differs from the model's width.
func (d *FeatureDrift) Observe(x []float32, now time.Time) []Alert {
	if len(x) != len(d.sum) {
		panic("monitor: FeatureDrift.Observe: reading width differs from the model's")
	}
	if !d.mu.TryLock() {
		d.skipped.Add(1)
		return nil
	}
	if d.center == nil {
		simd.Axpy(1, x, d.sum)
	} else {
		for i, v := range x {
			d.sum[i] += v - d.center[i]
		}
	}
	d.n++
	var out []Alert
	if d.n >= d.cfg.Window {
		out = d.evaluate(now)
	}
	d.mu.Unlock()
	return out
}

// evaluate scores the finished window, steps every alarm and starts the
// next window.
func (d *FeatureDrift) evaluate(now time.Time) []Alert {
	w := float64(d.n)
	var out []Alert
	for k, i := range d.numeric {
		m := float64(d.sum[i]) / w
		if d.center == nil {
			m -= d.mean[i]
		}
		out = d.step(k, math.Abs(m)*d.inv[i], now, out)
	}
	for j := range d.groups {
		out = d.step(len(d.numeric)+j, d.groups[j].psi(d.sum, d.center, w), now, out)
	}
	clear(d.sum)
	d.n = 0
	d.evals++
	return out
}

func (d *FeatureDrift) step(k int, score float64, now time.Time, out []Alert) []Alert {
	c := &d.checks[k]
	c.score = score
	if c.alarm.step(score > c.threshold, score < c.threshold*d.cfg.ClearRatio, d.cfg.FireAfter, d.cfg.ClearAfter, now) {
		out = append(out, c.alert(d.model))
	}
	return out
}

func (c *check) alert(model string) Alert {
	return Alert{Model: model, Kind: c.kind, Feature: c.name, Score: c.score,
		Threshold: c.threshold, Since: c.alarm.since, Active: c.alarm.active}
}

// psi is sum over categories of (o - e) ln(o / e), with half a reading
// added to every observed count and the same mass to every expected
// frequency so that empty categories stay finite.
func (g *catGroup) psi(sum, center []float32, w float64) float64 {
	eps := 0.5 / w
	rest := 1.0
	var s float64
	for k := range g.end - g.start {
		o := float64(sum[g.start+k])
		if center != nil {
			o += float64(center[g.start+k]) * w
		}
		o /= w
		rest -= o
		s += psiTerm(o, g.expected[k], eps)
	}
	return s + psiTerm(math.Max(rest, 0), g.expected[len(g.expected)-1], eps)
}

func psiTerm(o, e, eps float64) float64 {
	o += eps
	e += eps
	return (o - e) * math.Log(o/e)
}

// Scores returns the statistics of the last finished window (zero before
// the first), numeric features first, then category columns.
func (d *FeatureDrift) Scores() []Score {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Score, len(d.checks))
	for k, c := range d.checks {
		out[k] = Score{Feature: c.name, Kind: c.kind, Score: c.score, Threshold: c.threshold, Alert: c.alarm.active}
	}
	return out
}

// Active returns the alerts that are firing now.
func (d *FeatureDrift) Active() []Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Alert
	for _, c := range d.checks {
		if c.alarm.active {
			out = append(out, c.alert(d.model))
		}
	}
	return out
}

// MaxScore returns the largest score of the last window relative to its
// threshold (1 is at the threshold): one number per model for a chart.
func (d *FeatureDrift) MaxScore() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m float64
	for _, c := range d.checks {
		m = max(m, c.score/c.threshold)
	}
	return m
}

// Windows returns how many windows have been scored.
func (d *FeatureDrift) Windows() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.evals
}

// Skipped returns how many readings Observe skipped because another
// goroutine held the detector.
func (d *FeatureDrift) Skipped() uint64 { return d.skipped.Load() }
