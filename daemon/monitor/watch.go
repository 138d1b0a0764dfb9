package monitor

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-edge/linnet/model"
)

// Trend resolution: the live view's last hour in buckets of TrendStep.
const (
	TrendSpan = time.Hour
	TrendStep = 10 * time.Second
)

// Watch bundles what the monitoring hook keeps for one served model: its
// feature-drift detector, its loss detector (and the per-device ones of a
// per-device model) and the series of the live view. Reading and
// Labelled are called on the serving path and never wait; Tick and Status
// from a ticker and the live API.
type Watch struct {
	name     string
	Features *FeatureDrift
	Devices  *DeviceLoss // nil unless the model learns per device

	lossMu sync.Mutex
	loss   *LossDrift

	readings atomic.Uint64
	lastN    uint64        // Tick's
	lastT    time.Time     // Tick's
	rate     atomic.Uint64 // math.Float64bits of readings per second

	Throughput, Loss, Drift *Series
}

// NewWatch returns the detectors and series of model m served as name.
// It panics if cfg is invalid.
func NewWatch(name string, m *model.Model, cfg Config, perDevice bool) *Watch {
	w := &Watch{
		name: name, Features: NewFeatureDrift(name, m, cfg), loss: NewLossDrift(name, "", cfg),
		Throughput: NewSeries(TrendSpan, TrendStep, false),
		Loss:       NewSeries(TrendSpan, TrendStep, false),
		Drift:      NewSeries(TrendSpan, TrendStep, true),
	}
	if perDevice {
		w.Devices = NewDeviceLoss(name, cfg)
	}
	return w
}

// Reading watches one reading the model predicted (raw features, checked
// finite) and returns the feature alerts that fired or cleared.
func (w *Watch) Reading(x []float32, now time.Time) []Alert {
	w.readings.Add(1)
	out := w.Features.Observe(x, now)
	if out != nil {
		w.Drift.Add(now, w.Features.MaxScore())
	}
	return out
}

// Labelled watches the progressive loss of a labelled reading from device
// and returns the loss alerts that fired or cleared: the model's, and the
// device's for a per-device model. When another goroutine holds the
// model's loss detector the loss is skipped for it, not waited for.
func (w *Watch) Labelled(device string, loss float64, now time.Time) []Alert {
	var out []Alert
	if w.lossMu.TryLock() {
		a, ok := w.loss.Observe(loss, now)
		w.lossMu.Unlock()
		if ok {
			out = append(out, a)
		}
	}
	if w.Devices != nil {
		if a, ok := w.Devices.Observe(device, loss, now); ok {
			out = append(out, a)
		}
	}
	return out
}

// Tick adds a point to the series: the throughput since the last Tick and
// the running loss the daemon reports. Call it every few seconds, from one
// goroutine.
func (w *Watch) Tick(now time.Time, loss float64) {
	n := w.readings.Load()
	if !w.lastT.IsZero() && now.After(w.lastT) {
		r := float64(n-w.lastN) / now.Sub(w.lastT).Seconds()
		w.rate.Store(math.Float64bits(r))
		w.Throughput.Add(now, r)
	}
	w.lastN, w.lastT = n, now
	w.Loss.Add(now, loss)
	if w.Features.Windows() > 0 {
		w.Drift.Add(now, w.Features.MaxScore())
	}
}

// Active returns the model's firing alerts, devices' included.
func (w *Watch) Active() []Alert {
	out := w.Features.Active()
	w.lossMu.Lock()
	if a, ok := w.loss.Active(); ok {
		out = append(out, a)
	}
	w.lossMu.Unlock()
	if w.Devices != nil {
		out = append(out, w.Devices.Active()...)
	}
	return out
}

// Status returns the model as the live view shows it; the daemon gives
// what only it knows: the version, the learning state and the running loss.
func (w *Watch) Status(version int64, learning string, loss float64, now time.Time) ModelStatus {
	return ModelStatus{
		Name: w.name, Version: version, Learning: learning,
		Throughput: math.Float64frombits(w.rate.Load()), Readings: w.readings.Load(), Loss: loss,
		Drift:  w.Features.Scores(),
		Series: Trend{Throughput: w.Throughput.Points(now), Loss: w.Loss.Points(now), Drift: w.Drift.Points(now)},
	}
}
