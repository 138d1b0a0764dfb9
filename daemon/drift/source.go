package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// alertJSON is the alert message: {"model","kind","feature","score",
// "threshold","since","active"} (and "device" for a device's loss).
func alertJSON(a monitor.Alert) ([]byte, error) {
	for _, f := range []*float64{&a.Score, &a.Threshold} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = math.MaxFloat64 // JSON has no infinity; scores are not NaN
		}
	}
	return json.Marshal(a)
}

// The hook is the live view's Source (monitor.NewHandler). It reads
// atomics, the detectors (whose workers skip rather than wait while it
// holds one), the owner's learner for an export only, and the store in
// short read transactions whose values are copied out.
var _ monitor.Source = (*Hook)(nil)

// maxOTA bounds the OTA decisions listed.
const maxOTA = 50

func (h *Hook) served() (*serving.Model, *watched) {
	if !h.ready.Load() {
		return nil, nil
	}
	sv := h.host.Current()
	if sv == nil {
		return nil, nil
	}
	ws := h.cur.Load()
	if ws != nil && ws.version != sv.Scorer.Version() {
		ws = nil
	}
	return sv, ws
}

// Models lists the served model (the daemon serves one).
func (h *Hook) Models() []monitor.ModelStatus {
	sv, ws := h.served()
	if sv == nil {
		return nil
	}
	lv := h.view.Load()
	if lv == nil {
		lv = &learnView{learning: monitor.Off}
	}
	if ws != nil && ws.w != nil {
		return []monitor.ModelStatus{ws.w.Status(ws.version, lv.learning, lv.loss, time.Now())}
	}
	return []monitor.ModelStatus{{Name: ModelName(sv), Version: sv.Scorer.Version(), Learning: lv.learning, Loss: lv.loss}}
}

func (h *Hook) known(name string) (*serving.Model, error) {
	sv, _ := h.served()
	if sv == nil || ModelName(sv) != name {
		return nil, fmt.Errorf("%w %q", monitor.ErrUnknownModel, name)
	}
	return sv, nil
}

// History is the store's version history.
func (h *Hook) History(name string) ([]monitor.Event, error) {
	if _, err := h.known(name); err != nil {
		return nil, err
	}
	hist, err := h.host.Store().History()
	if err != nil {
		return nil, err
	}
	out := make([]monitor.Event, len(hist))
	for i, e := range hist {
		out[i] = monitor.Event(e)
	}
	return out, nil
}

// Export is the served model with the learner's current weights, or its
// stored file when it does not learn.
func (h *Hook) Export(name string) ([]byte, error) {
	sv, err := h.known(name)
	if err != nil {
		return nil, err
	}
	b, err := h.host.Owner().Export()
	if errors.Is(err, serving.ErrNoLearner) {
		b, err = h.host.Store().Get(sv.Scorer.Version())
	}
	if err != nil {
		return nil, err
	}
	if _, err := model.Decode(b); err != nil {
		return nil, fmt.Errorf("export %q: %w", name, err)
	}
	return b, nil
}

// Alerts lists the firing and recently cleared alerts.
func (h *Hook) Alerts() []monitor.Alert { return h.alerts.Alerts() }

// OTA lists the over-the-air decisions the store recorded, newest first.
func (h *Hook) OTA() []monitor.OTADecision {
	sv, _ := h.served()
	if sv == nil {
		return nil
	}
	hist, err := h.host.Store().History()
	if err != nil {
		return nil
	}
	var out []monitor.OTADecision
	for _, e := range slices.Backward(hist) {
		if e.Source != store.SourceOTA || len(out) == maxOTA {
			continue
		}
		out = append(out, monitor.OTADecision{Time: e.Time, Model: ModelName(sv), Version: e.Version,
			Accepted: e.Action != store.ActionReject, Reason: e.Reason})
	}
	return out
}
