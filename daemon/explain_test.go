package daemon

import (
	"fmt"
	"math"
	"testing"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/model"
)

// explained is one prediction message's explanation as a client reads it.
type explained struct {
	pred, bias, score float64
	top               []string // features, largest contribution first
	sum               float64  // bias plus the contributions sent
	has               bool
}

func readExplained(t *testing.T, p map[string]any) explained {
	t.Helper()
	e := explained{pred: p["prediction"].(float64)}
	list, ok := p["explain"].([]any)
	if !ok {
		return e
	}
	e.has = true
	e.bias, e.score = p["bias"].(float64), p["score"].(float64)
	e.sum = e.bias
	for _, c := range list {
		c := c.(map[string]any)
		e.top = append(e.top, c["feature"].(string))
		e.sum += c["contribution"].(float64)
		if _, ok := c["value"].(float64); !ok {
			t.Errorf("contribution without a value: %v", c)
		}
	}
	return e
}

// Issue 16's explanations through mosquitto: a reading that sends
// "explain":true gets its contributions (all of them here: the default top
// 5 covers the 3 features), which sum with the bias to the prediction (the
// logit for a classifier) and name the feature that moved it most; a
// subscription's explain option gives every reading its top K.
func TestExplanations(t *testing.T) {
	mq := startMosquitto(t, "")
	pre := &model.Preprocessing{Columns: []model.Column{
		{Name: "temp", Fill: 20},
		{Name: "room", Kind: model.OneHot, Categories: []string{"bath", "kitchen"}, FillCategory: "kitchen"},
	}}
	reg := &model.Model{Version: 3, Features: pre.FeatureNames(), Preprocessing: pre, Loss: model.Squared, Scheme: model.F32,
		Mean: []float32{20, 0.5, 0.5}, Std: []float32{5, 0.5, 0.5}, Weights: []float32{2, 5, -1}, Bias: 10}
	cls := &model.Model{Version: 4, Features: []string{"a", "b", "c"}, Loss: model.Logistic, Scheme: model.F32,
		Mean: []float32{0, 1, 0}, Std: []float32{1, 2, 1}, Weights: []float32{0.3, -1.5, 0.05}, Bias: 0.2}
	for _, c := range []struct {
		m        *model.Model
		readings []string
		top      []string // the right top feature of each reading
	}{
		{reg, []string{`{"temp":20,"room":"bath"}`, `{"temp":45,"room":"kitchen"}`, `{"temp":0,"room":"bath"}`, `{"room":"kitchen","temp":21}`},
			[]string{"room=bath", "temp", "temp", "room=bath"}},
		{cls, []string{`[1,3,0]`, `[-4,1,2]`, `{"a":0.5,"b":1.5,"c":30}`}, []string{"b", "a", "c"}},
	} {
		t.Run(fmt.Sprint(c.m.Loss), func(t *testing.T) {
			cfg := testConfig(t, mq.url())
			cfg.Subscriptions = []Subscription{{Topic: "linnet/+/features", Format: "json"}, {Topic: "top/+/features", Format: "json", Explain: 1}}
			d := startDaemon(t, cfg, serving.NewScorer(c.m))
			defer d.stop(t)
			cl := testClient(t, mq.url(), "explain", true)
			col := collect(t, cl, "linnet/+/prediction")
			errs := collect(t, cl, "linnet/+/errors")
			defer func() { cl.Unsubscribe("linnet/+/prediction", "linnet/+/errors").Wait() }()
			for i, r := range c.readings {
				publish(t, cl, "linnet/d/features", []byte(fmt.Sprintf(`{"id":%d,"explain":true,"features":%s}`, i, r)))
				publish(t, cl, "linnet/d/features", []byte(fmt.Sprintf(`{"id":"plain%d","features":%s}`, i, r)))
				publish(t, cl, "top/d/features", []byte(fmt.Sprintf(`{"id":"top%d","features":%s}`, i, r)))
				publish(t, cl, "top/d/features", []byte(fmt.Sprintf(`{"id":"off%d","explain":false,"features":%s}`, i, r)))
			}
			col.waitIDs(t, 4*len(c.readings))
			errs.mu.Lock()
			if len(errs.all) > 0 {
				t.Errorf("rejected: %v", errs.all[0])
			}
			errs.mu.Unlock()
			col.mu.Lock()
			defer col.mu.Unlock()
			for i := range c.readings {
				e := readExplained(t, col.byID[fmt.Sprint(i)][0])
				if !e.has || len(e.top) != 3 || e.top[0] != c.top[i] {
					t.Errorf("reading %d: explanation %+v, want %s first", i, e, c.top[i])
					continue
				}
				want := e.pred
				if c.m.Loss == model.Logistic {
					want = math.Log(e.pred / (1 - e.pred))
				}
				if math.Abs(e.sum-want) > 1e-5*math.Max(1, math.Abs(want)) || math.Abs(e.sum-e.score) > 1e-9*math.Max(1, math.Abs(e.sum)) {
					t.Errorf("reading %d: bias + contributions %v, score %v, want %v", i, e.sum, e.score, want)
				}
				if e := readExplained(t, col.byID[fmt.Sprint("top", i)][0]); len(e.top) != 1 || e.top[0] != c.top[i] {
					t.Errorf("reading %d with explain = 1: %+v", i, e)
				}
				for _, id := range []string{"plain", "off"} {
					if e := readExplained(t, col.byID[fmt.Sprint(id, i)][0]); e.has {
						t.Errorf("reading %s%d explained: %+v", id, i, e)
					}
				}
			}
		})
	}
}
