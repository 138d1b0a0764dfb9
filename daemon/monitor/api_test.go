package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/model"
)

// fakeSource serves two models, "houses" and "door", and alerts a test
// may add while the page runs.
type fakeSource struct {
	mu     sync.Mutex
	alerts []Alert
	file   []byte
}

func newFakeSource(t *testing.T) *fakeSource {
	m := numericModel(3)
	m.Version = 42
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSource{file: b}
}

func (f *fakeSource) Models() []ModelStatus {
	now := time.Now()
	var loss, drift, thr []Point
	for i := range 60 {
		at := now.Add(-time.Duration(60-i) * time.Minute)
		loss = append(loss, Point{T: at, V: 1 + 0.1*float64(i%7)})
		drift = append(drift, Point{T: at, V: 0.3 + 0.01*float64(i)})
		thr = append(thr, Point{T: at, V: 900 + float64(i)})
	}
	return []ModelStatus{
		{Name: "door", Version: 7, Learning: Frozen, Throughput: 12.5, Readings: 1000, Loss: 0.31,
			Drift: []Score{{Feature: "state", Kind: KindCategory, Score: 0.02, Threshold: 0.25}}},
		{Name: "houses", Version: 42, Learning: Learning, Throughput: 950, Readings: 123456, Loss: 12.25,
			Drift:  []Score{{Feature: "area_m2", Kind: KindFeature, Score: 0.1, Threshold: 0.5}},
			Series: Trend{Throughput: thr, Loss: loss, Drift: drift}},
	}
}

func (f *fakeSource) History(name string) ([]Event, error) {
	if name != "houses" && name != "door" {
		return nil, fmt.Errorf("%w %q", ErrUnknownModel, name)
	}
	return []Event{{Seq: 1, Time: t0, Action: "import", Version: 42, Source: "cli"},
		{Seq: 2, Time: t0, Action: "activate", Version: 42, Source: "cli"}}, nil
}

func (f *fakeSource) Export(name string) ([]byte, error) {
	if name != "houses" {
		return nil, fmt.Errorf("%w %q", ErrUnknownModel, name)
	}
	return f.file, nil
}

func (f *fakeSource) Alerts() []Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Alert(nil), f.alerts...)
}

func (f *fakeSource) add(a Alert) {
	f.mu.Lock()
	f.alerts = append(f.alerts, a)
	f.mu.Unlock()
}

func (f *fakeSource) OTA() []OTADecision {
	return []OTADecision{{Time: t0, Model: "houses", Version: 42, Accepted: true},
		{Time: t0, Model: "houses", Version: 41, Accepted: false, Reason: "not newer"}}
}

func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, r.Header.Get("Content-Type"), b
}

func TestAPI(t *testing.T) {
	src := newFakeSource(t)
	srv := httptest.NewServer(NewHandler(src))
	defer srv.Close()

	code, ct, b := get(t, srv.URL+"/v1/models")
	var ms struct{ Models []ModelStatus }
	if code != 200 || ct != "application/json" || json.Unmarshal(b, &ms) != nil || len(ms.Models) != 2 || ms.Models[1].Name != "houses" || len(ms.Models[1].Series.Loss) != 60 {
		t.Fatalf("/v1/models: %d %s %.200s", code, ct, b)
	}
	code, _, b = get(t, srv.URL+"/v1/models/door")
	var one ModelStatus
	if code != 200 || json.Unmarshal(b, &one) != nil || one.Version != 7 || one.Learning != Frozen {
		t.Errorf("/v1/models/door: %d %s", code, b)
	}
	if code, _, b = get(t, srv.URL+"/v1/models/nope"); code != 404 || !strings.Contains(string(b), `"error"`) {
		t.Errorf("unknown model: %d %s", code, b)
	}
	code, _, b = get(t, srv.URL+"/v1/models/houses/history")
	var h struct{ Events []Event }
	if code != 200 || json.Unmarshal(b, &h) != nil || len(h.Events) != 2 || h.Events[1].Action != "activate" {
		t.Errorf("history: %d %s", code, b)
	}
	if code, _, _ = get(t, srv.URL+"/v1/models/nope/history"); code != 404 {
		t.Errorf("history of an unknown model: %d", code)
	}
	code, ct, b = get(t, srv.URL+"/v1/models/houses/export")
	if code != 200 || ct != "application/octet-stream" || !bytes.Equal(b, src.file) {
		t.Errorf("export: %d %s %d bytes", code, ct, len(b))
	}
	if m, err := model.Decode(b); err != nil || m.Version != 42 {
		t.Errorf("exported file: %v", err)
	}
	src.add(Alert{Model: "houses", Kind: KindFeature, Feature: "area_m2", Score: 0.9, Threshold: 0.5, Since: t0, Active: true})
	code, _, b = get(t, srv.URL+"/v1/alerts")
	var as struct{ Alerts []Alert }
	if code != 200 || json.Unmarshal(b, &as) != nil || len(as.Alerts) != 1 || as.Alerts[0].Feature != "area_m2" {
		t.Errorf("alerts: %d %s", code, b)
	}
	code, _, b = get(t, srv.URL+"/v1/ota")
	if code != 200 || !strings.Contains(string(b), `"reason":"not newer"`) {
		t.Errorf("ota: %d %s", code, b)
	}
	code, ct, b = get(t, srv.URL+"/")
	if code != 200 || !strings.HasPrefix(ct, "text/html") || !bytes.Contains(b, []byte("<svg")) && !bytes.Contains(b, []byte("createElementNS")) {
		t.Errorf("page: %d %s", code, ct)
	}
	if bytes.Contains(b, []byte("http://")) && !bytes.Contains(b, []byte("http://www.w3.org/2000/svg")) || bytes.Contains(b, []byte("https://")) {
		t.Error("the page refers to an external resource")
	}
	if code, _, _ = get(t, srv.URL+"/nothing"); code != 404 {
		t.Errorf("/nothing: %d", code)
	}
	r, err := http.Post(srv.URL+"/v1/models", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.StatusCode)
	}
}
