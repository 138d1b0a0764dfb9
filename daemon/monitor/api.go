package monitor

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrUnknownModel is returned by a Source when no served model has the
// name asked for; the API answers 404.
var ErrUnknownModel = errors.New("monitor: unknown model")

// Source is what the live view reads from the daemon. Every method returns
// a snapshot the caller owns, quickly and without waiting on the serving
// path (copy under a short lock or read atomics; never hold the store's
// write transaction or a worker's lock while the HTTP client reads).
type Source interface {
	// Models returns every served model, sorted by name.
	Models() []ModelStatus
	// History returns the version events of model name (imports,
	// activations, rollbacks, OTA decisions), oldest first.
	History(name string) ([]Event, error)
	// Export returns the learned weights of model name as a .lnm file:
	// the serving model with the learner's current weights.
	Export(name string) ([]byte, error)
	// Alerts returns the firing alerts and the recently cleared ones,
	// newest first.
	Alerts() []Alert
	// OTA returns the recent over-the-air decisions, newest first.
	OTA() []OTADecision
}

// Learning states of a served model.
const (
	Learning = "learning" // labelled readings teach the model
	Frozen   = "frozen"   // learning stopped (by a drift response or the operator)
	Off      = "off"      // the model does not learn online
)

// ModelStatus is one served model as the live view shows it.
type ModelStatus struct {
	Name     string `json:"name"`
	Version  int64  `json:"version"`
	Learning string `json:"learning"` // Learning, Frozen or Off
	// Throughput is readings per second over the last minute; Readings
	// the total since start.
	Throughput float64 `json:"throughput"`
	Readings   uint64  `json:"readings"`
	// Loss is the running progressive loss (NaN-free: 0 before the first
	// label).
	Loss float64 `json:"loss"`
	// Drift is each feature's score at the end of the last window.
	Drift  []Score `json:"drift"`
	Series Trend   `json:"series"`
}

// Trend holds a model's series over the last hour: throughput, loss and
// drift (FeatureDrift.MaxScore: the largest score over its threshold, 1 is
// at the threshold).
type Trend struct {
	Throughput []Point `json:"throughput"`
	Loss       []Point `json:"loss"`
	Drift      []Point `json:"drift"`
}

// Event is one entry of a model's version history, as `linnet models
// history --json` prints it.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Action   string    `json:"action"`
	Version  int64     `json:"version"`
	Previous int64     `json:"previous,omitempty"`
	Source   string    `json:"source"`
	Reason   string    `json:"reason,omitempty"`
}

// OTADecision is one over-the-air model the daemon accepted or refused.
type OTADecision struct {
	Time     time.Time `json:"time"`
	Model    string    `json:"model"`
	Version  int64     `json:"version"`
	Accepted bool      `json:"accepted"`
	Reason   string    `json:"reason,omitempty"`
}

//go:embed web/index.html
var web embed.FS

// NewHandler returns the read-only live view over src:
//
//	GET /                              the web page (embedded, no external resources)
//	GET /v1/models                     {"models":[ModelStatus...]}
//	GET /v1/models/{name}              ModelStatus
//	GET /v1/models/{name}/history      {"events":[Event...]}
//	GET /v1/models/{name}/export       the .lnm file (application/octet-stream)
//	GET /v1/alerts                     {"alerts":[Alert...]}
//	GET /v1/ota                        {"ota":[OTADecision...]}
//
// Errors are JSON, {"error":"..."}, with 404 for an unknown model. Mount
// it on the metrics listener beside /metrics.
func NewHandler(src Source) http.Handler {
	mux := http.NewServeMux()
	page, err := web.ReadFile("web/index.html")
	if err != nil {
		panic("monitor: the embedded page is missing: " + err.Error())
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(page)
	})
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"models": nonNil(src.Models())})
	})
	mux.HandleFunc("GET /v1/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, m := range src.Models() {
			if m.Name == name {
				writeJSON(w, http.StatusOK, m)
				return
			}
		}
		writeError(w, fmt.Errorf("%w %q", ErrUnknownModel, name))
	})
	mux.HandleFunc("GET /v1/models/{name}/history", func(w http.ResponseWriter, r *http.Request) {
		h, err := src.History(r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(h)})
	})
	mux.HandleFunc("GET /v1/models/{name}/export", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		file, err := src.Export(name)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".lnm"))
		w.Write(file)
	})
	mux.HandleFunc("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"alerts": nonNil(src.Alerts())})
	})
	mux.HandleFunc("GET /v1/ota", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ota": nonNil(src.OTA())})
	})
	return mux
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, ErrUnknownModel) {
		code = http.StatusNotFound
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
