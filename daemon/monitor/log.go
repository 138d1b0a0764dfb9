package monitor

import (
	"slices"
	"sync"
)

// Log keeps the alerts the live view lists: every firing one, and the
// last cleared ones up to a bound. Record it with each transition the
// detectors return; it is safe for concurrent use.
type Log struct {
	keep int

	mu      sync.Mutex
	active  map[alertKey]Alert
	cleared []Alert // oldest first, at most keep
}

type alertKey struct {
	model, feature, device string
	kind                   Kind
}

// NewLog returns a log that keeps the last keep cleared alerts.
func NewLog(keep int) *Log {
	return &Log{keep: max(keep, 0), active: map[alertKey]Alert{}}
}

// Record adds a transition: a firing alert replaces any earlier one of the
// same model, kind, feature and device; a cleared one ends it.
func (l *Log) Record(a Alert) {
	k := alertKey{a.Model, a.Feature, a.Device, a.Kind}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.Active {
		l.active[k] = a
		return
	}
	delete(l.active, k)
	if l.keep == 0 {
		return
	}
	if len(l.cleared) == l.keep {
		l.cleared = append(l.cleared[:0], l.cleared[1:]...)
	}
	l.cleared = append(l.cleared, a)
}

// Forget drops model's firing alerts (a model removed, or replaced by one
// with other features); its cleared ones stay listed.
func (l *Log) Forget(model string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.active {
		if k.model == model {
			delete(l.active, k)
		}
	}
}

// Alerts returns the firing alerts, newest first, then the cleared ones,
// newest first.
func (l *Log) Alerts() []Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Alert, 0, len(l.active)+len(l.cleared))
	for _, a := range l.active {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Alert) int { return b.Since.Compare(a.Since) })
	for i := len(l.cleared) - 1; i >= 0; i-- {
		out = append(out, l.cleared[i])
	}
	return out
}

// Active returns model's firing alerts ("" for every model's).
func (l *Log) Active(model string) []Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Alert
	for k, a := range l.active {
		if model == "" || k.model == model {
			out = append(out, a)
		}
	}
	return out
}
