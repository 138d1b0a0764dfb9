package monitor

import (
	"math"
	"sync"
	"time"
)

// LossDrift is a Page-Hinkley detector on one stream of prediction losses
// (a model's, or one device's for a per-device model). Losses are
// averaged over blocks of LossBlock; each block mean y, relative to a
// reference loss, feeds
//
//	g = max(0, g + y/ref - 1 - LossDelta)
//
// and the alert fires when g exceeds LossLambda: the mean loss has risen
// by more than LossDelta for long enough. The reference is the mean of
// the first LossWarmup blocks, then a moving average over LossHorizon
// blocks, so it follows a learner that improves; it stops moving while
// the alert is active. The alert clears by the mirror test,
//
//	g = max(0, g + 1 + 2 LossDelta - y/ref)
//
// exceeding LossLambda: the loss has come back below 1 + 2 LossDelta
// times the reference for long enough. (A margin of one LossDelta would
// let a loss that stays just above the firing level clear by chance.)
//
// Working on relative block means makes one threshold fit every model
// and loss. LossDrift is not safe for concurrent use; DeviceLoss is.
type LossDrift struct {
	model, device string
	cfg           Config

	sum    float64
	n      int
	blocks int
	ref    float64
	g      float64 // rise statistic; the fall statistic while active
	alarm  alarm
}

// NewLossDrift returns a detector reporting under model (and device, ""
// for the model as a whole). It panics if cfg is invalid.
func NewLossDrift(model, device string, cfg Config) *LossDrift {
	if err := cfg.Validate(); err != nil {
		panic("monitor: NewLossDrift: " + err.Error())
	}
	return &LossDrift{model: model, device: device, cfg: cfg}
}

// Observe adds one reading's loss (the progressive loss: computed before
// the learner saw the label) and reports a transition when the alert
// fires or clears. A negative or non-finite loss is ignored.
func (l *LossDrift) Observe(loss float64, now time.Time) (Alert, bool) {
	if !(loss >= 0) || math.IsInf(loss, 1) {
		return Alert{}, false
	}
	l.sum += loss
	l.n++
	if l.n < l.cfg.LossBlock {
		return Alert{}, false
	}
	y := l.sum / float64(l.n)
	l.sum, l.n = 0, 0
	l.blocks++
	if l.blocks <= l.cfg.LossWarmup {
		l.ref += (y - l.ref) / float64(l.blocks)
		return Alert{}, false
	}
	r := y / math.Max(l.ref, 1e-12)
	if !l.alarm.active {
		l.g = math.Max(0, l.g+r-1-l.cfg.LossDelta)
		l.ref += (y - l.ref) / float64(min(l.blocks, l.cfg.LossHorizon))
	} else {
		l.g = math.Max(0, l.g+1+2*l.cfg.LossDelta-r)
	}
	if !l.alarm.step(l.g > l.cfg.LossLambda, l.g > l.cfg.LossLambda, 1, 1, now) {
		return Alert{}, false
	}
	a := l.alert()
	l.g = 0
	return a, true
}

func (l *LossDrift) alert() Alert {
	return Alert{Model: l.model, Kind: KindLoss, Device: l.device, Score: l.g,
		Threshold: l.cfg.LossLambda, Since: l.alarm.since, Active: l.alarm.active}
}

// Active returns the alert if it is firing.
func (l *LossDrift) Active() (Alert, bool) {
	if !l.alarm.active {
		return Alert{}, false
	}
	return l.alert(), true
}

// Reference returns the reference loss (0 during the warm-up's first block).
func (l *LossDrift) Reference() float64 { return l.ref }

// DeviceLoss keeps one LossDrift per device of a per-device model, up to
// Config.MaxDevices; losses of further devices are counted in Dropped and
// otherwise ignored. It is safe for concurrent use.
type DeviceLoss struct {
	model string
	cfg   Config

	mu      sync.Mutex
	devices map[string]*LossDrift
	dropped uint64
}

// NewDeviceLoss returns per-device loss detectors for model. It panics if
// cfg is invalid.
func NewDeviceLoss(model string, cfg Config) *DeviceLoss {
	if err := cfg.Validate(); err != nil {
		panic("monitor: NewDeviceLoss: " + err.Error())
	}
	return &DeviceLoss{model: model, cfg: cfg, devices: map[string]*LossDrift{}}
}

// Observe adds one loss of device; see LossDrift.Observe.
func (d *DeviceLoss) Observe(device string, loss float64, now time.Time) (Alert, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.devices[device]
	if l == nil {
		if len(d.devices) >= d.cfg.MaxDevices {
			d.dropped++
			return Alert{}, false
		}
		l = &LossDrift{model: d.model, device: device, cfg: d.cfg}
		d.devices[device] = l
	}
	return l.Observe(loss, now)
}

// Forget drops device's detector (its alert, if any, with it).
func (d *DeviceLoss) Forget(device string) {
	d.mu.Lock()
	delete(d.devices, device)
	d.mu.Unlock()
}

// Active returns the devices' firing alerts.
func (d *DeviceLoss) Active() []Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Alert
	for _, l := range d.devices {
		if a, ok := l.Active(); ok {
			out = append(out, a)
		}
	}
	return out
}

// Dropped returns how many losses came from devices past MaxDevices.
func (d *DeviceLoss) Dropped() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}
