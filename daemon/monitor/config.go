package monitor

import (
	"errors"
	"fmt"
)

// Response is what the daemon does to a model when one of its drift alerts
// fires. The detectors only report; the daemon acts.
type Response string

const (
	// ResponseNone publishes the alert and changes nothing (the default).
	ResponseNone Response = "none"
	// ResponseFreeze stops online learning for the model until the alert
	// clears, so a drifting stream does not teach it.
	ResponseFreeze Response = "freeze"
	// ResponseRollback serves the previous version through the guard.
	ResponseRollback Response = "rollback"
)

// ParseResponse parses "none", "freeze" or "rollback"; "" is none.
func ParseResponse(s string) (Response, error) {
	switch r := Response(s); r {
	case "":
		return ResponseNone, nil
	case ResponseNone, ResponseFreeze, ResponseRollback:
		return r, nil
	}
	return "", fmt.Errorf("drift response %q: want none, freeze or rollback", s)
}

// Config holds the detectors' thresholds. The defaults come from
// scripts/bench-drift.sh (see the README's drift table): fewer than one
// false alarm per million readings of a stationary 32-feature stream, a
// 1 sd mean shift in one feature found within 200 readings (95th
// percentile) and a 20% rise of the loss within about 2600.
type Config struct {
	// Window is the number of readings per feature-drift window. Scores are
	// computed at the end of each window, over that window only.
	Window int
	// MeanShift is the threshold on a numeric feature's window mean
	// distance from its training mean, in training standard deviations.
	MeanShift float64
	// PSI is the threshold on a one-hot or hashed column's population
	// stability index between the window and training frequencies.
	PSI float64
	// ClearRatio sets when a feature alert clears: score below
	// ClearRatio x threshold for ClearAfter windows in a row.
	ClearRatio float64
	// FireAfter and ClearAfter are the consecutive evaluations a feature
	// alert needs to fire and to clear.
	FireAfter, ClearAfter int

	// LossBlock is the number of losses averaged into one Page-Hinkley
	// step; LossWarmup the blocks that set the reference loss before the
	// detector tests anything.
	LossBlock, LossWarmup int
	// LossDelta is the rise of the mean loss, relative to the reference,
	// the detector tolerates (0.05: 5%); LossLambda its threshold on the
	// accumulated excess, in units of the reference loss per block.
	LossDelta, LossLambda float64
	// LossHorizon is how many blocks the reference loss averages over
	// once warm, so it follows the learner's slow improvement.
	LossHorizon int
	// MaxDevices bounds the per-device loss detectors of one model.
	MaxDevices int

	// Response is what the daemon does when an alert of this model fires.
	Response Response
}

// DefaultConfig returns the measured defaults.
func DefaultConfig() Config {
	return Config{
		Window: 128, MeanShift: 0.5, PSI: 0.25, ClearRatio: 0.75, FireAfter: 1, ClearAfter: 2,
		LossBlock: 32, LossWarmup: 16, LossDelta: 0.05, LossLambda: 6, LossHorizon: 256,
		MaxDevices: 10000, Response: ResponseNone,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v float64) {
		if !(v > 0) {
			errs = append(errs, fmt.Errorf("drift %s must be positive, got %v", name, v))
		}
	}
	pos("window", float64(c.Window))
	pos("mean_shift", c.MeanShift)
	pos("psi", c.PSI)
	pos("fire_after", float64(c.FireAfter))
	pos("clear_after", float64(c.ClearAfter))
	pos("loss_block", float64(c.LossBlock))
	pos("loss_warmup", float64(c.LossWarmup))
	pos("loss_lambda", c.LossLambda)
	pos("loss_horizon", float64(c.LossHorizon))
	pos("max_devices", float64(c.MaxDevices))
	if !(c.ClearRatio > 0 && c.ClearRatio <= 1) {
		errs = append(errs, fmt.Errorf("drift clear_ratio must be in (0, 1], got %v", c.ClearRatio))
	}
	if !(c.LossDelta >= 0) {
		errs = append(errs, fmt.Errorf("drift loss_delta must not be negative, got %v", c.LossDelta))
	}
	if _, err := ParseResponse(string(c.Response)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
