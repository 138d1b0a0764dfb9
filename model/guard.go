package model

import (
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
)

// A guarded rollout serves a new model and scores it against the one it
// replaced on the labelled readings that arrive, rolling back if the new
// one is worse. A guard that pools every label can be steered by one
// device: 500 labels equal to the old model's predictions make the old
// model look perfect and veto any update. So Guard weighs devices, not
// readings: each device's mean losses count once, a rollback needs enough
// distinct devices, most of them seeing the new model worse, and an
// absolute as well as a relative difference; a device on which the old
// model is implausibly perfect is set aside, and if the old model is
// implausibly perfect on the window as a whole, the window proves nothing.

// Guard decisions.
type Decision string

const (
	GuardPending      Decision = "pending"      // not enough labelled readings yet
	GuardKeep         Decision = "keep"         // the new model is not worse
	GuardRollback     Decision = "rollback"     // the new model is worse: roll back
	GuardInconclusive Decision = "inconclusive" // the window proves nothing: keep, do not roll back
)

// GuardConfig configures a Guard. The zero value uses the defaults.
type GuardConfig struct {
	// Window is how many labelled readings (from allowed devices) a
	// verdict needs; default 500.
	Window int
	// Margin is how much worse, relatively, the new model's loss must be:
	// a rollback needs new > old * (1 + Margin); 0 means 0.1.
	Margin float64
	// Sigmas is how many standard errors the mean loss difference must
	// exceed, on the window and on a device, for the new model to count as
	// worse there (a paired comparison on the same readings); 0 means 3.
	Sigmas float64
	// MinDelta is the smallest absolute difference of mean losses that
	// can roll back, in loss units; 0 means 1% of the labels' variance
	// over the window (squared-loss units), at least 1e-9.
	MinDelta float64
	// MinDevices is how many distinct devices with MinPerDevice labelled
	// readings each a verdict needs; default 3.
	MinDevices int
	// MinPerDevice is how many labelled readings make a device count;
	// default 10.
	MinPerDevice int
	// Perfect is how small the old model's mean loss may be, as a fraction
	// of the labels' variance, before it is implausibly perfect (honest
	// sensors are noisy); default 1e-6.
	Perfect float64
	// Devices, if not empty, are path.Match patterns: labels from other
	// devices are ignored.
	Devices []string
}

func (c GuardConfig) withDefaults() GuardConfig {
	if c.Window <= 0 {
		c.Window = 500
	}
	if !(c.Margin > 0) || math.IsInf(c.Margin, 0) {
		c.Margin = 0.1
	}
	if !(c.Sigmas > 0) || math.IsInf(c.Sigmas, 0) {
		c.Sigmas = 3
	}
	if c.MinDevices <= 0 {
		c.MinDevices = 3
	}
	if c.MinPerDevice <= 0 {
		c.MinPerDevice = 10
	}
	if !(c.Perfect > 0) {
		c.Perfect = 1e-6
	}
	return c
}

// Check reports what is wrong with c: negative or non-finite values, bad
// patterns.
func (c GuardConfig) Check() error {
	for _, v := range []float64{c.Margin, c.Sigmas, c.MinDelta, c.Perfect} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("guard: margin %v, sigmas %v, min delta %v and perfect %v must be finite and not negative",
				c.Margin, c.Sigmas, c.MinDelta, c.Perfect)
		}
	}
	if c.Window < 0 || c.MinDevices < 0 || c.MinPerDevice < 0 {
		return fmt.Errorf("guard: window %d, min devices %d and min per device %d must not be negative", c.Window, c.MinDevices, c.MinPerDevice)
	}
	for _, p := range c.Devices {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("guard: device pattern %q: %w", p, err)
		}
	}
	return nil
}

// Guard accumulates the losses of a new and an old model on labelled
// readings, per device, and decides. It is not safe for concurrent use.
type Guard struct {
	cfg     GuardConfig
	devices map[string]*guardDevice
	n       int
	ignored int
}

type guardDevice struct {
	n              int
	sumNew, sumOld float64
	sumD2          float64 // squared differences new - old, for the standard error
	sumY, sumY2    float64
}

// NewGuard returns a Guard; cfg's zero fields take their defaults.
func NewGuard(cfg GuardConfig) *Guard {
	return &Guard{cfg: cfg.withDefaults(), devices: map[string]*guardDevice{}}
}

// Observe records one labelled reading from device: the new and the old
// model's losses on it and its label. Non-finite values and devices the
// patterns do not allow are ignored (Ignored counts them).
func (g *Guard) Observe(device string, lossNew, lossOld float64, label float32) {
	if !g.allowed(device) || !isFinite(lossNew) || !isFinite(lossOld) || !finite32(label) {
		g.ignored++
		return
	}
	d := g.devices[device]
	if d == nil {
		d = &guardDevice{}
		g.devices[device] = d
	}
	y := float64(label)
	d.n++
	d.sumNew += lossNew
	d.sumOld += lossOld
	d.sumD2 += (lossNew - lossOld) * (lossNew - lossOld)
	d.sumY += y
	d.sumY2 += y * y
	g.n++
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (g *Guard) allowed(device string) bool {
	if len(g.cfg.Devices) == 0 {
		return true
	}
	for _, p := range g.cfg.Devices {
		if ok, _ := path.Match(p, device); ok {
			return true
		}
	}
	return false
}

// Ignored returns how many readings Observe ignored.
func (g *Guard) Ignored() int { return g.ignored }

// GuardVerdict is a Guard's decision and the figures behind it.
type GuardVerdict struct {
	Decision Decision
	Reason   string
	Readings int // labelled readings observed
	Devices  int // devices that count (MinPerDevice readings, not set aside)
	// LossNew and LossOld are the mean over counting devices of each
	// device's mean loss.
	LossNew, LossOld float64
	Worse            int      // counting devices on which the new model is worse
	Suspect          []string // devices set aside: the old model is implausibly perfect on them
}

// Verdict decides on what was observed so far: GuardPending until Window
// readings, then keep, rollback or inconclusive.
func (g *Guard) Verdict() GuardVerdict {
	c := g.cfg
	v := GuardVerdict{Decision: GuardPending, Readings: g.n}
	if g.n < c.Window {
		v.Reason = fmt.Sprintf("%d of %d labelled readings", g.n, c.Window)
		return v
	}
	var all guardDevice
	names := make([]string, 0, len(g.devices))
	for name, d := range g.devices {
		names = append(names, name)
		all.n += d.n
		all.sumNew += d.sumNew
		all.sumOld += d.sumOld
		all.sumD2 += d.sumD2
		all.sumY += d.sumY
		all.sumY2 += d.sumY2
	}
	sort.Strings(names)
	if all.meanOld() <= c.Perfect*all.labelVar() {
		v.Decision = GuardInconclusive
		v.Reason = fmt.Sprintf("the old model's mean loss %.6g is implausibly perfect on the window (label variance %.6g): labels may copy its predictions",
			all.meanOld(), all.labelVar())
		return v
	}
	var diffs []float64
	var se2 float64 // summed squared standard errors of the device means
	for _, name := range names {
		d := g.devices[name]
		if d.n < c.MinPerDevice {
			continue
		}
		if d.meanOld() <= c.Perfect*d.labelVar() {
			v.Suspect = append(v.Suspect, name)
			continue
		}
		v.Devices++
		v.LossNew += d.meanNew()
		v.LossOld += d.meanOld()
		diff, se := d.meanNew()-d.meanOld(), d.stderr()
		diffs = append(diffs, diff)
		se2 += se * se
		if diff > c.Sigmas*se && d.meanNew() > d.meanOld()*(1+c.Margin) {
			v.Worse++
		}
	}
	if v.Devices > 0 {
		v.LossNew /= float64(v.Devices)
		v.LossOld /= float64(v.Devices)
	}
	// Each device counts once: the window's difference is the mean of the
	// devices' differences, its standard error theirs combined.
	stderr := math.Sqrt(se2) / float64(max(v.Devices, 1))
	minDelta := c.MinDelta
	if minDelta == 0 {
		minDelta = math.Max(0.01*all.labelVar(), 1e-9)
	}
	worse := v.LossNew > v.LossOld*(1+c.Margin) && v.LossNew-v.LossOld > max(minDelta, c.Sigmas*stderr)
	switch {
	case !worse:
		v.Decision = GuardKeep
		v.Reason = fmt.Sprintf("mean loss %.6g vs %.6g over %d devices (margin %g, min difference %.3g, %g standard errors %.3g)",
			v.LossNew, v.LossOld, v.Devices, c.Margin, minDelta, c.Sigmas, c.Sigmas*stderr)
	case v.Devices < c.MinDevices:
		v.Decision = GuardInconclusive
		v.Reason = fmt.Sprintf("only %d devices with %d labelled readings each (need %d); %d set aside as implausible",
			v.Devices, c.MinPerDevice, c.MinDevices, len(v.Suspect))
	case 2*v.Worse <= v.Devices || median(diffs) <= 0:
		v.Decision = GuardInconclusive
		v.Reason = fmt.Sprintf("mean loss %.6g vs %.6g, but the new model is worse on only %d of %d devices", v.LossNew, v.LossOld, v.Worse, v.Devices)
	default:
		v.Decision = GuardRollback
		v.Reason = fmt.Sprintf("mean loss %.6g is worse than %.6g on %d of %d devices (margin %g, min difference %.3g)",
			v.LossNew, v.LossOld, v.Worse, v.Devices, c.Margin, minDelta)
	}
	return v
}

func (d *guardDevice) meanNew() float64 { return d.sumNew / float64(d.n) }
func (d *guardDevice) meanOld() float64 { return d.sumOld / float64(d.n) }

// stderr is the standard error of the device's mean loss difference.
func (d *guardDevice) stderr() float64 {
	if d.n < 2 {
		return math.Inf(1)
	}
	m := (d.sumNew - d.sumOld) / float64(d.n)
	return math.Sqrt(math.Max(d.sumD2/float64(d.n)-m*m, 0) / float64(d.n-1))
}

// labelVar is the population variance of the device's labels.
func (d *guardDevice) labelVar() float64 {
	if d.n == 0 {
		return 0
	}
	m := d.sumY / float64(d.n)
	return math.Max(d.sumY2/float64(d.n)-m*m, 0)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
