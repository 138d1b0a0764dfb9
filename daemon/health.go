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
	ckptErr  string    // the last checkpoint failed: why; "" after a good one
	ckptFrom time.Time // when checkpoints started failing
	storeErr string    // the store file is missing, lost or re-created: why
}

func (h *healthState) setCheckpoint(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.ckptErr = ""
		return
	}
	if h.ckptErr == "" {
		h.ckptFrom = time.Now()
	}
	h.ckptErr = err.Error()
}

func (h *healthState) setStore(reason string) {
	h.mu.Lock()
	h.storeErr = reason
	h.mu.Unlock()
}

// learnMetrics are the online learner's defences, read from the owner.
func (s *Service) learnMetrics() {
	lh := func(f func(serving.LearnerHealth) float64) func() float64 {
		return func() float64 { return f(s.own.Health()) }
	}
	s.m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_learn_refused_total",
			Help: "Labelled readings not learned from because a label or feature was implausible (still predicted; reason bad_label)."},
			lh(func(h serving.LearnerHealth) float64 { return float64(h.Refused) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_learn_clipped_total",
			Help: "Online learning steps shortened to learning.max_step."},
			lh(func(h serving.LearnerHealth) float64 { return float64(h.Clipped) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_learning_frozen",
			Help: "1 while online learning is frozen (the learner diverged and its last good checkpoint was restored)."},
			lh(func(h serving.LearnerHealth) float64 {
				if h.Frozen {
					return 1
				}
				return 0
			})),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_checkpoint_failures_total",
			Help: "Learner checkpoints that could not be written."},
			func() float64 { return float64(s.ckptFails.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_learn_diverged_total",
			Help: "Times the divergence watchdog restored the last good checkpoint and froze learning."},
			func() float64 { return float64(s.diverged.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_devices_resident",
			Help: "Per-device learning states in memory (learning.mode = \"per_device\")."},
			func() float64 { st, _, _ := s.own.DeviceHealth(); return float64(st.Resident) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_devices_pending",
			Help: "Per-device learning states evicted from memory and not yet saved."},
			func() float64 { st, _, _ := s.own.DeviceHealth(); return float64(st.Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_devices_state_bytes",
			Help: "Memory holding the per-device learning states in memory; on Linux outside the Go heap, so not in go_memstats_*."},
			func() float64 { st, _, _ := s.own.DeviceHealth(); return float64(st.StateBytes) }))
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
func (s *Service) checkpointed(r serving.Checkpointed, err error) {
	if v := r.Diverged; v != nil {
		s.diverged.Add(1)
		s.log.Error("online learning diverged: restored the last good checkpoint and froze learning", "reason", v.Reason,
			"loss", v.Loss, "baseline", v.Baseline, "updates", v.Updates)
		s.notice(wire.Rejectf(reasonDiverged, "learning frozen, last good checkpoint restored: %s", v.Reason))
	}
	if err != nil {
		s.ckptFails.Add(1)
		s.log.Error("checkpoint", "err", err)
	}
	s.hs.setCheckpoint(err)
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
	if s.own.Current() == nil {
		p = append(p, "no model")
	}
	if lh := s.own.Health(); lh.Frozen {
		why := "learning frozen: restored from a checkpoint taken after the learner diverged"
		if lh.Diverged != "" {
			why = "learning frozen: the learner diverged (" + lh.Diverged + ")"
		}
		p = append(p, why)
	}
	if st := s.store; st != nil {
		if err := st.Health(); err != nil {
			s.hs.setStore(err.Error())
		}
	}
	s.hs.mu.Lock()
	if s.hs.ckptErr != "" {
		p = append(p, "checkpoints failing since "+s.hs.ckptFrom.UTC().Format(time.RFC3339)+": "+s.hs.ckptErr)
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
