package daemon

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
)

// healthState is what /healthz and the status message report beyond the
// connection and the model: the last checkpoint's failure and the store's
// state. Each problem carries its reason.
type healthState struct {
	mu       sync.Mutex
	ckpt     map[string]ckptFailure // by model: its last checkpoint failed
	storeErr string                 // the store file is missing, lost or re-created: why
}

type ckptFailure struct {
	err  string    // why the last checkpoint failed
	from time.Time // when checkpoints started failing
}

func (h *healthState) setCheckpoint(model string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.ckpt, model)
		return
	}
	if h.ckpt == nil {
		h.ckpt = map[string]ckptFailure{}
	}
	f, ok := h.ckpt[model]
	if !ok {
		f.from = time.Now()
	}
	f.err = err.Error()
	h.ckpt[model] = f
}

func (h *healthState) setStore(reason string) {
	h.mu.Lock()
	h.storeErr = reason
	h.mu.Unlock()
}

// learnMetrics are the online learners' defences, read from the owners,
// and the checkpoints' and the watchdog's counters.
func (s *Service) learnMetrics() {
	s.m.reg.MustRegister(newLearnCollector(s),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_checkpoint_failures_total",
			Help: "Learner checkpoints that could not be written."},
			func() float64 { return float64(s.ckptFails.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_learn_diverged_total",
			Help: "Times the divergence watchdog restored the last good checkpoint and froze learning."},
			func() float64 { return float64(s.diverged.Load()) }))
}

// learned reports the readings the learner refused (bad_label, on the
// errors topic; their predictions were published).
func (s *Service) learned(r serving.Learned, rs []wire.Reading, topic string, t *ticket) {
	for _, f := range r.Refused {
		t.hold()
		s.report(topic, &wire.Reject{Reason: wire.ReasonBadLabel, Detail: "not learned from: " + f.Err.Error(), ID: rs[f.Index].ID}, t)
	}
}

// checkpointed logs and reports one checkpoint: a failure (until a good
// one), a diverged learner (log, errors topic, metric, status).
func (s *Service) checkpointed(mdl *served, r serving.Checkpointed, err error) {
	if v := r.Diverged; v != nil {
		s.diverged.Add(1)
		s.log.Error("online learning diverged: restored the last good checkpoint and froze learning", "model", mdl.name, "reason", v.Reason,
			"loss", v.Loss, "baseline", v.Baseline, "updates", v.Updates)
		s.notice(wire.Rejectf(reasonDiverged, "%slearning frozen, last good checkpoint restored: %s", s.modelPrefix(mdl), v.Reason))
	}
	if err != nil {
		s.ckptFails.Add(1)
		s.log.Error("checkpoint", "model", mdl.name, "err", err)
	}
	s.hs.setCheckpoint(mdl.name, err)
}

// modelPrefix names mdl at the start of a problem or a notice when the
// daemon serves several models ("model hvac: ").
func (s *Service) modelPrefix(mdl *served) string {
	if len(s.models) == 1 {
		return ""
	}
	return "model " + mdl.name + ": "
}

// reasonDiverged is the errors-topic reason of a frozen learner; it is a
// report of the daemon's own, not a rejected message, so it is not a
// label of linnet_rejected_total.
const reasonDiverged = "learning_diverged"

// notice sends a report of the daemon's own to the errors topic, without
// counting a rejection; dropped when the queue is full.
func (s *Service) notice(rj *wire.Reject) {
	select {
	case s.errQ <- errReport{topic: "", rj: rj}:
	default:
		s.m.errDropped.Inc()
	}
}

// problems lists what is wrong, each with its reason: /healthz fails
// with them, the status message carries them.
func (s *Service) problems() []string {
	var p []string
	if !s.connected.Load() {
		p = append(p, "not connected to the broker")
	}
	for _, mdl := range s.models {
		if mdl.own.Current() == nil {
			p = append(p, s.modelPrefix(mdl)+"no model")
		}
		if lh := mdl.own.Health(); lh.Frozen {
			why := "learning frozen: restored from a checkpoint taken after the learner diverged"
			if lh.Diverged != "" {
				why = "learning frozen: the learner diverged (" + lh.Diverged + ")"
			}
			p = append(p, s.modelPrefix(mdl)+why)
		}
	}
	if st := s.store; st != nil {
		if err := st.Health(); err != nil {
			s.hs.setStore(err.Error())
		}
	}
	s.hs.mu.Lock()
	for _, mdl := range s.models {
		if f, ok := s.hs.ckpt[mdl.name]; ok {
			p = append(p, s.modelPrefix(mdl)+"checkpoints failing since "+f.from.UTC().Format(time.RFC3339)+": "+f.err)
		}
	}
	if s.hs.storeErr != "" {
		p = append(p, "store: "+s.hs.storeErr)
	}
	s.hs.mu.Unlock()
	return p
}

// problemsChanged reports, while connected, whether the problems differ
// from the last call's: the status message is published again then, so a
// failing checkpoint shows there too. Housekeeping only.
func (s *Service) problemsChanged() bool {
	if !s.connected.Load() {
		return false
	}
	p := strings.Join(s.problems(), "; ")
	changed := p != s.lastProblems
	s.lastProblems = p
	return changed
}

func (s *Service) health() error {
	if p := s.problems(); len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}
