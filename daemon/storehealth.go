package daemon

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/store"
)

// checkLost refuses to start on a store file that is missing or empty
// while its state record says one existed (store.ErrLost): the store would
// start anew, without its models and history. start_anew = true accepts
// that: the store starts afresh from the record (withdrawn versions,
// applied rollback files and the lowest version it may serve are kept).
func (s *Service) checkLost(path string) error {
	if s.cfg.StartAnew {
		return nil
	}
	if _, err := os.Stat(path + store.RecordSuffix); err != nil {
		return nil // no record: a first start (or the record is gone too)
	}
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || err == nil && fi.Size() == 0 {
		return fmt.Errorf("%w: %q is missing or empty but %q says a store existed; restore the file, or start with start_anew = true (LINNET_START_ANEW=true) to begin a new store from the record",
			store.ErrLost, path, path+store.RecordSuffix)
	}
	return nil
}

// storeOpened logs and exposes what the store found when it opened: a
// damaged or lost file repaired, and what was lost.
func (s *Service) storeOpened(st *store.Store) {
	r := st.Report()
	if r.RecordErr != nil {
		s.log.Error("store state record unreadable; rewritten from the store file", "err", r.RecordErr)
	}
	s.m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_store_repaired",
		Help: "1 when the store was damaged or lost at start and repaired (the log and the status message say what was lost)."},
		func() float64 {
			if r.Err != nil {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_store_recreated_total",
			Help: "Times the store file was found deleted or replaced while running and written back from memory."},
			func() float64 { return float64(s.recreated.Load()) }))
	if r.Err == nil {
		return
	}
	s.repair = fmt.Sprintf("%v; moved to %q; lost versions %v, lost active %d, lost history events %d, lost checkpoints %v",
		r.Err, r.MovedTo, r.LostVersions, r.LostActive, r.LostHistory, r.LostCheckpoints)
	s.log.Error("store repaired at start", "err", r.Err, "moved_to", r.MovedTo, "lost_versions", r.LostVersions,
		"lost_active", r.LostActive, "lost_history", r.LostHistory, "lost_checkpoints", r.LostCheckpoints)
}

// checkStore runs every checkpoint interval: a store file deleted or
// replaced while running is written back from the open copy (an error in
// the log, on the errors topic and in /healthz until the next check).
func (s *Service) checkStore() {
	st := s.store
	if st == nil {
		return
	}
	err := st.Health()
	if errors.Is(err, store.ErrDetached) {
		s.log.Error("store file deleted or replaced while running; re-creating it from memory", "path", st.Path(), "err", err)
		if rerr := st.Recreate(); rerr != nil {
			err = fmt.Errorf("%w; re-creating it failed: %w", err, rerr)
		} else {
			s.recreated.Add(1)
			err = fmt.Errorf("%w; re-created from memory at %s", err, time.Now().UTC().Format(time.RFC3339))
		}
		s.notice(wire.Rejectf(reasonStore, "%v", err))
	}
	if err != nil {
		s.hs.setStore(err.Error())
	} else {
		s.hs.setStore("")
	}
}

// reasonStore is the errors-topic reason of a store fault (a report of
// the daemon's own, not a rejected message).
const reasonStore = "store_fault"
