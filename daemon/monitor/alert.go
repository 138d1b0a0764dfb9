package monitor

import "time"

// Kind names what an alert watches.
type Kind string

const (
	KindFeature  Kind = "feature"  // a numeric feature's mean moved
	KindCategory Kind = "category" // a category column's frequencies moved
	KindLoss     Kind = "loss"     // the prediction loss rose
)

// Alert is the record published when a detector fires and when it clears
// (retained, one per model on linnet/{gateway}/alerts), and listed by the
// live API. Active tells the two apart; Since is when the current state
// began. Score and Threshold are in the detector's units: training
// standard deviations (feature), PSI (category), Page-Hinkley statistic
// in reference-loss units (loss).
type Alert struct {
	Model     string    `json:"model"`
	Kind      Kind      `json:"kind"`
	Feature   string    `json:"feature"`
	Device    string    `json:"device,omitempty"`
	Score     float64   `json:"score"`
	Threshold float64   `json:"threshold"`
	Since     time.Time `json:"since"`
	Active    bool      `json:"active"`
}

// alarm is the state machine behind one alert: it fires after fireAfter
// evaluations in a row say fire, and clears after clearAfter in a row say
// clear; anything else resets the streak.
type alarm struct {
	active bool
	since  time.Time
	streak int
}

// step feeds one evaluation and reports whether the state changed.
func (a *alarm) step(fire, clear bool, fireAfter, clearAfter int, now time.Time) bool {
	want, need := fire, fireAfter
	if a.active {
		want, need = clear, clearAfter
	}
	if !want {
		a.streak = 0
		return false
	}
	a.streak++
	if a.streak < need {
		return false
	}
	a.active = !a.active
	a.since = now
	a.streak = 0
	return true
}
