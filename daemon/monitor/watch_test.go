package monitor

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	m := numericModel(4)
	w := NewWatch("m", m, DefaultConfig(), true)
	r := rand.New(rand.NewPCG(15, 16))
	x := make([]float32, 4)
	var alerts []Alert
	now := t0
	for i := range 40_000 {
		now = t0.Add(time.Duration(i) * time.Millisecond)
		shift := -1
		if i >= 20_000 {
			shift = 3
		}
		reading(r, m, x, shift, 1.5)
		alerts = append(alerts, w.Reading(x, now)...)
		e := r.NormFloat64()
		level := 1.0
		if i >= 20_000 {
			level = 2
		}
		dev := []string{"d1", "d2"}[i%2]
		alerts = append(alerts, w.Labelled(dev, e*e*level, now)...)
		if i%5000 == 0 {
			w.Tick(now, level)
		}
	}
	kinds := map[string]int{}
	for _, a := range alerts {
		if !a.Active {
			t.Errorf("cleared %+v", a)
		}
		kinds[string(a.Kind)+"/"+a.Feature+"/"+a.Device]++
	}
	want := map[string]int{"feature/f3/": 1, "loss//": 1, "loss//d1": 1, "loss//d2": 1}
	if len(kinds) != len(want) {
		t.Fatalf("alerts %v, want %v", kinds, want)
	}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("alerts %v, want %v", kinds, want)
		}
	}
	if got := w.Active(); len(got) != 4 {
		t.Errorf("active %+v", got)
	}
	s := w.Status(42, Learning, 2, now)
	if s.Name != "m" || s.Version != 42 || s.Readings != 40_000 || s.Throughput < 999 || s.Throughput > 1001 {
		t.Errorf("status %+v", s)
	}
	if len(s.Series.Throughput) == 0 || len(s.Series.Loss) == 0 || len(s.Series.Drift) == 0 || len(s.Drift) != 4 {
		t.Errorf("series %+v drift %+v", s.Series, s.Drift)
	}
}
