package monitor

import "github.com/prometheus/client_golang/prometheus"

// Gauges are the drift metrics: linnet_drift_score{model,feature} (the
// last window's score per numeric feature or category column) and
// linnet_drift_alert{model,kind} (1 while any alert of that kind fires).
type Gauges struct {
	Score *prometheus.GaugeVec
	Alert *prometheus.GaugeVec
}

// NewGauges creates the drift gauges and registers them with reg; when
// another model's monitor registered them already, it shares those.
func NewGauges(reg prometheus.Registerer) (*Gauges, error) {
	g := &Gauges{
		Score: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "linnet_drift_score",
			Help: "Feature drift score of the last window: standardized mean shift (numeric) or PSI (categories).",
		}, []string{"model", "feature"}),
		Alert: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "linnet_drift_alert",
			Help: "1 while a drift alert of this kind fires for the model, else 0.",
		}, []string{"model", "kind"}),
	}
	for _, v := range []**prometheus.GaugeVec{&g.Score, &g.Alert} {
		err := reg.Register(*v)
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if ev, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				*v, err = ev, nil
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Update sets model's gauges from its detectors' state: scores from
// FeatureDrift.Scores, firing alerts from the Active methods.
func (g *Gauges) Update(model string, scores []Score, active []Alert) {
	for _, s := range scores {
		g.Score.WithLabelValues(model, s.Feature).Set(s.Score)
	}
	on := map[Kind]bool{}
	for _, a := range active {
		on[a.Kind] = true
	}
	for _, k := range []Kind{KindFeature, KindCategory, KindLoss} {
		v := 0.0
		if on[k] {
			v = 1
		}
		g.Alert.WithLabelValues(model, string(k)).Set(v)
	}
}

// Forget drops model's series (when a model is removed or replaced by one
// with other features).
func (g *Gauges) Forget(model string) {
	g.Score.DeletePartialMatch(prometheus.Labels{"model": model})
	g.Alert.DeletePartialMatch(prometheus.Labels{"model": model})
}
