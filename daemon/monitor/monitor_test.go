package monitor

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linnet-edge/linnet/model"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// numericModel returns an n-feature model whose feature i has mean 10*i
// and standard deviation i+1.
func numericModel(n int) *model.Model {
	m := &model.Model{Loss: model.Squared, Scheme: model.F32, Bias: 0.5}
	for i := range n {
		m.Features = append(m.Features, fmt.Sprintf("f%d", i))
		m.Mean = append(m.Mean, float32(10*i))
		m.Std = append(m.Std, float32(i+1))
		m.Weights = append(m.Weights, float32(i%5)-2)
	}
	return m
}

// reading draws a reading of m's training distribution, feature shift
// moved by delta standard deviations.
func reading(r *rand.Rand, m *model.Model, x []float32, shift int, delta float64) {
	for i := range x {
		v := r.NormFloat64()
		if i == shift {
			v += delta
		}
		x[i] = m.Mean[i] + float32(v)*m.Std[i]
	}
}

func TestFeatureDriftStationaryIsQuiet(t *testing.T) {
	m := numericModel(8)
	d := NewFeatureDrift("m", m, DefaultConfig())
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 8)
	for i := range 200_000 {
		reading(r, m, x, -1, 0)
		if a := d.Observe(x, t0.Add(time.Duration(i)*time.Millisecond)); len(a) > 0 {
			t.Fatalf("reading %d: false alarm %+v", i, a)
		}
	}
	if w := d.Windows(); w != 200_000/uint64(DefaultConfig().Window) {
		t.Errorf("scored %d windows", w)
	}
}

func TestFeatureDriftFiresAndClears(t *testing.T) {
	cfg := DefaultConfig()
	m := numericModel(8)
	d := NewFeatureDrift("m", m, cfg)
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 8)
	var fired, cleared *Alert
	firedAt, clearedAt := -1, -1
	for i := range 6000 {
		shift := -1
		if i >= 2000 && i < 4000 {
			shift = 5
		}
		reading(r, m, x, shift, 1)
		now := t0.Add(time.Duration(i) * time.Second)
		for _, a := range d.Observe(x, now) {
			if a.Active && fired == nil {
				fired, firedAt = &a, i
			} else if !a.Active && cleared == nil {
				cleared, clearedAt = &a, i
			} else {
				t.Fatalf("reading %d: unexpected %+v", i, a)
			}
		}
		if i == 3000 {
			act := d.Active()
			if len(act) != 1 || act[0].Feature != "f5" {
				t.Fatalf("active mid-shift: %+v", act)
			}
		}
	}
	if fired == nil || cleared == nil {
		t.Fatalf("fired %+v cleared %+v", fired, cleared)
	}
	if fired.Feature != "f5" || fired.Kind != KindFeature || fired.Model != "m" || fired.Score <= cfg.MeanShift || fired.Threshold != cfg.MeanShift {
		t.Errorf("fired %+v", fired)
	}
	if delay := firedAt - 2000; delay < 0 || delay >= 2*cfg.Window {
		t.Errorf("1 sd shift found after %d readings", delay)
	}
	if !fired.Since.Equal(t0.Add(time.Duration(firedAt) * time.Second)) {
		t.Errorf("since %v, fired at reading %d", fired.Since, firedAt)
	}
	if delay := clearedAt - 4000; delay < 0 || delay >= (cfg.ClearAfter+1)*cfg.Window {
		t.Errorf("cleared %d readings after the stream returned", delay)
	}
	if len(d.Active()) != 0 {
		t.Errorf("still active: %+v", d.Active())
	}
}

// TestFeatureDriftLargeMeans checks the centred path, taken when a mean is
// many deviations from zero (a timestamp-like feature).
func TestFeatureDriftLargeMeans(t *testing.T) {
	m := numericModel(4)
	m.Mean[2], m.Std[2] = 1.7e9, 1000
	d := NewFeatureDrift("m", m, DefaultConfig())
	if d.center == nil {
		t.Fatal("expected the centred path")
	}
	r := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 4)
	var got []Alert
	for i := range 4000 {
		shift := -1
		if i >= 2000 {
			shift = 2
		}
		reading(r, m, x, shift, 2)
		got = append(got, d.Observe(x, t0)...)
	}
	if len(got) != 1 || got[0].Feature != "f2" || !got[0].Active {
		t.Fatalf("alerts %+v", got)
	}
}

// categoryModel has one numeric column and a one-hot column "color" with
// training frequencies red 0.5, green 0.3, blue 0.15 (and 0.05 unseen).
func categoryModel() *model.Model {
	m := &model.Model{Loss: model.Logistic, Scheme: model.F32,
		Features: []string{"t", "color=red", "color=green", "color=blue"},
		Mean:     []float32{20, 0.5, 0.3, 0.15},
		Std:      []float32{5, 0.5, 0.458, 0.357},
		Weights:  []float32{1, 0.5, -0.5, 0.25},
		Preprocessing: &model.Preprocessing{Columns: []model.Column{
			{Name: "t", Kind: model.Numeric, Fill: 20},
			{Name: "color", Kind: model.OneHot, Categories: []string{"red", "green", "blue"}, FillCategory: "red"},
		}},
	}
	return m
}

func drawColor(r *rand.Rand, x []float32, freq []float64) {
	u := r.Float64()
	x[1], x[2], x[3] = 0, 0, 0
	for k, f := range freq {
		if u < f {
			x[1+k] = 1
			return
		}
		u -= f
	}
}

func TestCategoryDrift(t *testing.T) {
	m := categoryModel()
	cfg := DefaultConfig()
	d := NewFeatureDrift("cat", m, cfg)
	if len(d.groups) != 1 || len(d.numeric) != 1 {
		t.Fatalf("groups %d numeric %d", len(d.groups), len(d.numeric))
	}
	r := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, 4)
	var got []Alert
	for i := range 20000 {
		x[0] = 20 + 5*float32(r.NormFloat64())
		if i < 10000 {
			drawColor(r, x, []float64{0.5, 0.3, 0.15})
		} else {
			drawColor(r, x, []float64{0.2, 0.3, 0.45})
		}
		for _, a := range d.Observe(x, t0) {
			if i < 10000 {
				t.Fatalf("reading %d: false alarm %+v", i, a)
			}
			got = append(got, a)
		}
	}
	if len(got) != 1 || got[0].Kind != KindCategory || got[0].Feature != "color" || got[0].Score <= cfg.PSI {
		t.Fatalf("alerts %+v", got)
	}
	sc := d.Scores()
	if len(sc) != 2 || sc[1].Feature != "color" || !sc[1].Alert || sc[0].Alert {
		t.Errorf("scores %+v", sc)
	}
}

func TestAlertJSON(t *testing.T) {
	a := Alert{Model: "m", Kind: KindFeature, Feature: "f1", Score: 1.5, Threshold: 0.5, Since: t0, Active: true}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","kind":"feature","feature":"f1","score":1.5,"threshold":0.5,"since":"2026-01-02T03:04:05Z","active":true}`
	if string(b) != want {
		t.Errorf("got %s", b)
	}
}

func TestAlarmStateMachine(t *testing.T) {
	var a alarm
	steps := []struct {
		fire, clear, changed, active bool
	}{
		{true, false, false, false}, // first of two
		{false, true, false, false}, // streak broken
		{true, false, false, false},
		{true, false, true, true}, // fires
		{true, false, false, true},
		{false, true, false, true},
		{false, true, true, false}, // clears
	}
	for i, s := range steps {
		now := t0.Add(time.Duration(i) * time.Minute)
		if got := a.step(s.fire, s.clear, 2, 2, now); got != s.changed || a.active != s.active {
			t.Fatalf("step %d: changed %v active %v", i, got, a.active)
		}
		if s.changed && !a.since.Equal(now) {
			t.Fatalf("step %d: since %v", i, a.since)
		}
	}
}

// lossStream feeds n squared losses of a unit-variance error scaled so
// the mean loss is level.
func lossStream(r *rand.Rand, l *LossDrift, from, n int, level float64, on func(int, Alert)) {
	for i := from; i < from+n; i++ {
		e := r.NormFloat64()
		if a, ok := l.Observe(e*e*level, t0.Add(time.Duration(i)*time.Second)); ok {
			on(i, a)
		}
	}
}

func TestLossDrift(t *testing.T) {
	cfg := DefaultConfig()
	l := NewLossDrift("m", "", cfg)
	r := rand.New(rand.NewPCG(9, 10))
	var got []Alert
	var at []int
	on := func(i int, a Alert) { got, at = append(got, a), append(at, i) }
	lossStream(r, l, 0, 100_000, 1, on)
	if len(got) != 0 {
		t.Fatalf("false alarms on a stationary loss: %+v", got)
	}
	lossStream(r, l, 100_000, 20_000, 1.5, on)
	lossStream(r, l, 120_000, 20_000, 1, on)
	if len(got) != 2 || !got[0].Active || got[1].Active || got[0].Kind != KindLoss {
		t.Fatalf("alerts %+v", got)
	}
	if at[0] < 100_000 || at[0] > 102_000 || at[1] < 120_000 || at[1] > 124_000 {
		t.Errorf("fired at %d, cleared at %d", at[0], at[1])
	}
	if got[0].Score <= cfg.LossLambda || got[0].Threshold != cfg.LossLambda {
		t.Errorf("fired %+v", got[0])
	}
	if _, ok := l.Observe(-1, t0); ok {
		t.Error("negative loss")
	}
}

func TestDeviceLoss(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxDevices = 2
	d := NewDeviceLoss("m", cfg)
	r := rand.New(rand.NewPCG(11, 12))
	var fired []Alert
	for i := range 40_000 {
		for _, dev := range []string{"a", "b", "c"} {
			level := 1.0
			if dev == "b" && i >= 20_000 {
				level = 2
			}
			e := r.NormFloat64()
			if a, ok := d.Observe(dev, e*e*level, t0); ok {
				fired = append(fired, a)
			}
		}
	}
	if len(fired) != 1 || fired[0].Device != "b" || !fired[0].Active {
		t.Fatalf("alerts %+v", fired)
	}
	if d.Dropped() != 40_000 {
		t.Errorf("dropped %d, want the third device's 40000", d.Dropped())
	}
	if act := d.Active(); len(act) != 1 || act[0].Device != "b" {
		t.Errorf("active %+v", act)
	}
	d.Forget("b")
	if len(d.Active()) != 0 {
		t.Error("forgotten device still alerting")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Window, c.ClearRatio, c.Response = 0, 2, "explode"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"window", "clear_ratio", "explode"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if r, err := ParseResponse("rollback"); err != nil || r != ResponseRollback {
		t.Errorf("ParseResponse: %v %v", r, err)
	}
}

func TestSeries(t *testing.T) {
	s := NewSeries(time.Hour, 10*time.Second, true)
	for i := range 1000 {
		s.Add(t0.Add(time.Duration(i)*5*time.Second), float64(i%3))
	}
	now := t0.Add(5000 * time.Second)
	p := s.Points(now)
	if len(p) != 361 && len(p) != 360 {
		t.Fatalf("%d points over an hour of 10 s buckets", len(p))
	}
	for _, q := range p {
		if now.Sub(q.T) > time.Hour || q.T.Truncate(10*time.Second) != q.T {
			t.Fatalf("point %+v", q)
		}
	}
	s.Add(t0, 9) // older than the newest bucket
	if got := s.Points(now); got[len(got)-1].V == 9 {
		t.Error("an old value overwrote the newest bucket")
	}
}

func TestLog(t *testing.T) {
	l := NewLog(2)
	fire := func(feature string, at int) Alert {
		return Alert{Model: "m", Kind: KindFeature, Feature: feature, Since: t0.Add(time.Duration(at) * time.Second), Active: true}
	}
	l.Record(fire("a", 1))
	l.Record(fire("b", 2))
	l.Record(Alert{Model: "n", Kind: KindLoss, Since: t0, Active: true})
	if got := l.Active("m"); len(got) != 2 {
		t.Fatalf("active of m: %+v", got)
	}
	for i := range 3 {
		c := fire("a", 10+i)
		c.Active = false
		l.Record(c)
	}
	all := l.Alerts()
	if len(all) != 4 || all[0].Feature != "b" || all[1].Model != "n" || all[2].Active || !all[2].Since.Equal(t0.Add(12*time.Second)) || !all[3].Since.Equal(t0.Add(11*time.Second)) {
		t.Fatalf("alerts %+v", all)
	}
	l.Forget("n")
	if len(l.Active("")) != 1 {
		t.Errorf("after Forget: %+v", l.Active(""))
	}
}

func TestGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, err := NewGauges(reg)
	if err != nil {
		t.Fatal(err)
	}
	g.Update("m", []Score{{Feature: "f1", Kind: KindFeature, Score: 0.75}}, []Alert{{Model: "m", Kind: KindLoss, Active: true}})
	if v := testutil.ToFloat64(g.Score.WithLabelValues("m", "f1")); v != 0.75 {
		t.Errorf("score gauge %v", v)
	}
	if v := testutil.ToFloat64(g.Alert.WithLabelValues("m", "loss")); v != 1 {
		t.Errorf("loss alert gauge %v", v)
	}
	if v := testutil.ToFloat64(g.Alert.WithLabelValues("m", "feature")); v != 0 {
		t.Errorf("feature alert gauge %v", v)
	}
	// Another model's monitor shares the registered gauges.
	if g2, err := NewGauges(reg); err != nil || g2.Score != g.Score || g2.Alert != g.Alert {
		t.Errorf("a second NewGauges: %v, shared %v", err, err == nil && g2.Score == g.Score && g2.Alert == g.Alert)
	}
	if _, err := NewGauges(prometheus.WrapRegistererWith(prometheus.Labels{"x": "1"}, reg)); err == nil {
		t.Error("gauges registered over others of another description")
	}
	g.Forget("m")
	if n := testutil.CollectAndCount(g.Score); n != 0 {
		t.Errorf("%d score series after Forget", n)
	}
}

// TestFeatureDriftNaN: a reading that should have been refused spoils one
// window's scores (no alert either way) and nothing after it.
func TestFeatureDriftNaN(t *testing.T) {
	m := numericModel(4)
	d := NewFeatureDrift("m", m, DefaultConfig())
	r := rand.New(rand.NewPCG(13, 14))
	x := make([]float32, 4)
	var got []Alert
	for i := range 3000 {
		reading(r, m, x, 1, 2)
		if i == 5 {
			x[1] = float32(math.NaN())
		}
		got = append(got, d.Observe(x, t0)...)
	}
	if len(got) != 1 || got[0].Feature != "f1" {
		t.Fatalf("alerts %+v", got)
	}
}
