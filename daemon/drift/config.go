package drift

import (
	"math"
	"strings"
	"time"

	"github.com/linnet-edge/linnet/daemon/monitor"
)

// Config is the [drift] section. The thresholds are monitor.Config's,
// with its measured defaults (scripts/bench-drift.sh).
type Config struct {
	// Enabled watches every served reading; off, the live view still
	// answers, without drift scores or alerts.
	Enabled bool `toml:"enabled"`
	// Topic receives the retained alert messages; {gateway} is replaced.
	Topic string `toml:"topic"`
	// Response is what happens while an alert of the served model fires:
	// none, freeze (learning stops until every alert cleared) or rollback
	// (the previous version serves again, through the store's rollback
	// stack, once per drift episode).
	Response string `toml:"response"`
	// Interval is how often the hook updates the gauges, the trend
	// series and the published alert state.
	Interval time.Duration `toml:"interval"`
	// PerDevice adds a loss detector per labelling device.
	PerDevice bool `toml:"per_device"`

	Window      int     `toml:"window"`
	MeanShift   float64 `toml:"mean_shift"`
	PSI         float64 `toml:"psi"`
	ClearRatio  float64 `toml:"clear_ratio"`
	FireAfter   int     `toml:"fire_after"`
	ClearAfter  int     `toml:"clear_after"`
	LossBlock   int     `toml:"loss_block"`
	LossWarmup  int     `toml:"loss_warmup"`
	LossDelta   float64 `toml:"loss_delta"`
	LossLambda  float64 `toml:"loss_lambda"`
	LossHorizon int     `toml:"loss_horizon"`
	MaxDevices  int     `toml:"max_devices"`
}

// DefaultTopic is where alerts go unless drift.topic says otherwise.
const DefaultTopic = "linnet/{gateway}/alerts"

// Default is the section when nothing is set: monitoring on, no response.
func Default() Config {
	m := monitor.DefaultConfig()
	return Config{
		Enabled: true, Topic: DefaultTopic, Response: string(monitor.ResponseNone), Interval: 5 * time.Second,
		Window: m.Window, MeanShift: m.MeanShift, PSI: m.PSI, ClearRatio: m.ClearRatio,
		FireAfter: m.FireAfter, ClearAfter: m.ClearAfter, LossBlock: m.LossBlock, LossWarmup: m.LossWarmup,
		LossDelta: m.LossDelta, LossLambda: m.LossLambda, LossHorizon: m.LossHorizon, MaxDevices: m.MaxDevices,
	}
}

// Monitor returns the detectors' configuration.
func (c Config) Monitor() monitor.Config {
	r, _ := monitor.ParseResponse(c.Response)
	return monitor.Config{
		Window: c.Window, MeanShift: c.MeanShift, PSI: c.PSI, ClearRatio: c.ClearRatio,
		FireAfter: c.FireAfter, ClearAfter: c.ClearAfter, LossBlock: c.LossBlock, LossWarmup: c.LossWarmup,
		LossDelta: c.LossDelta, LossLambda: c.LossLambda, LossHorizon: c.LossHorizon, MaxDevices: c.MaxDevices,
		Response: r,
	}
}

// Validate reports every problem of the section through bad.
func (c *Config) Validate(bad func(string, ...any)) {
	if err := c.Monitor().Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			bad("%s", strings.Replace(line, "drift ", "drift.", 1))
		}
	}
	if _, err := monitor.ParseResponse(c.Response); err != nil {
		bad("drift.response %q: want none, freeze or rollback", c.Response)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"mean_shift", c.MeanShift}, {"psi", c.PSI}, {"loss_delta", c.LossDelta}, {"loss_lambda", c.LossLambda}} {
		if math.IsInf(f.v, 0) {
			bad("drift.%s %v: want a finite value", f.name, f.v)
		}
	}
	if c.Interval <= 0 {
		bad("drift.interval %v: want a positive duration", c.Interval)
	}
	if c.Topic == "" || strings.ContainsAny(c.Topic, "+#") {
		bad("drift.topic %q: want a topic name without wildcards", c.Topic)
	}
}
