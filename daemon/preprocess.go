package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
)

// DefaultExplain is how many contributions a reading that sends
// "explain":true gets when its subscription does not say.
const DefaultExplain = 5

func preprocessCounters(register func(prometheus.Collector)) (imputed, unseen prometheus.Counter) {
	imputed = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_imputed_total",
		Help: "Missing input values the model's preprocessing filled in (each is named in its prediction's \"imputed\")."})
	unseen = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_unseen_categories_total",
		Help: "Categories in readings that the model's training never saw (they set no feature)."})
	register(imputed)
	register(unseen)
	return imputed, unseen
}

// preprocessed counts what decoding imputed and did not recognise, and
// explains the readings that ask for it (the subscription's explain, or
// the reading's own "explain").
func (s *Service) preprocessed(sv *serving.Model, sb *sub, rs []wire.Reading) {
	ex, _ := sv.Scorer.(serving.Explainer)
	for i := range rs {
		r := &rs[i]
		if x := r.Extra; x != nil {
			if len(x.Imputed) > 0 {
				s.m.imputed.Add(float64(len(x.Imputed)))
			}
			if x.Unseen > 0 {
				s.m.unseen.Add(float64(x.Unseen))
			}
		}
		k := sb.explain
		switch r.Explain {
		case 1:
			if k == 0 {
				k = DefaultExplain
			}
		case -1:
			k = 0
		}
		if k == 0 || ex == nil {
			continue
		}
		if e, err := ex.Explain(r.X, k); err == nil {
			if r.Extra == nil {
				r.Extra = &wire.Extra{}
			}
			r.Extra.Explanation = &e
		}
	}
}
