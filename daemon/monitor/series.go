package monitor

import (
	"sync"
	"time"
)

// Point is one value of a Series at a time.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// Series keeps a quantity over a sliding span (the live view's last hour)
// in fixed buckets: values added within one bucket keep the last, or the
// largest with Max. It is safe for concurrent use and its memory is
// bounded by the bucket count.
type Series struct {
	span, step time.Duration
	max        bool

	mu  sync.Mutex
	pts []Point // oldest first, at most span/step+1
}

// NewSeries returns a series over span in buckets of step; with max, a
// bucket keeps its largest value (for drift scores), else its last.
func NewSeries(span, step time.Duration, max bool) *Series {
	if span <= 0 || step <= 0 || step > span {
		panic("monitor: NewSeries: want 0 < step <= span")
	}
	return &Series{span: span, step: step, max: max}
}

// Add records v at t. A t older than the newest bucket is ignored.
func (s *Series) Add(t time.Time, v float64) {
	b := t.Truncate(s.step)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.pts); n > 0 {
		last := &s.pts[n-1]
		switch {
		case b.Before(last.T):
			return
		case b.Equal(last.T):
			if !s.max || v > last.V {
				last.V = v
			}
			return
		}
	}
	s.pts = append(s.pts, Point{T: b, V: v})
	s.trim(t)
}

func (s *Series) trim(now time.Time) {
	cut := 0
	for cut < len(s.pts) && now.Sub(s.pts[cut].T) > s.span {
		cut++
	}
	if cut > 0 {
		s.pts = append(s.pts[:0], s.pts[cut:]...)
	}
}

// Points returns a copy of the points within the span before now.
func (s *Series) Points(now time.Time) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trim(now)
	return append([]Point(nil), s.pts...)
}
