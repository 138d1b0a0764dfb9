package main

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/model"
)

// liveSource is a daemon's live view with the models it is given.
type liveSource struct {
	models []*model.Model
	names  []string
}

func (l *liveSource) Models() []monitor.ModelStatus {
	var out []monitor.ModelStatus
	for i, m := range l.models {
		out = append(out, monitor.ModelStatus{Name: l.names[i], Version: m.Version, Learning: monitor.Learning, Throughput: 10, Loss: 0.5})
	}
	return out
}

func (l *liveSource) find(name string) (*model.Model, error) {
	for i, n := range l.names {
		if n == name {
			return l.models[i], nil
		}
	}
	return nil, fmt.Errorf("%w %q", monitor.ErrUnknownModel, name)
}

func (l *liveSource) History(name string) ([]monitor.Event, error) {
	m, err := l.find(name)
	if err != nil {
		return nil, err
	}
	return []monitor.Event{{Seq: 1, Time: time.Unix(0, 0).UTC(), Action: "activate", Version: m.Version, Source: "ota"}}, nil
}

func (l *liveSource) Export(name string) ([]byte, error) {
	m, err := l.find(name)
	if err != nil {
		return nil, err
	}
	return m.MarshalBinary()
}

func (l *liveSource) Alerts() []monitor.Alert    { return nil }
func (l *liveSource) OTA() []monitor.OTADecision { return nil }

func liveModel(version int64) *model.Model {
	return &model.Model{Version: version, Loss: model.Squared, Scheme: model.F32, Bias: 1,
		Features: []string{"a", "b"}, Mean: []float32{0, 1}, Std: []float32{1, 2}, Weights: []float32{0.5, -0.25}}
}

func TestModelsServer(t *testing.T) {
	src := &liveSource{models: []*model.Model{liveModel(42)}, names: []string{"houses"}}
	srv := httptest.NewServer(monitor.NewHandler(src))
	defer srv.Close()
	dir := t.TempDir()

	s, err := linnet(t, "models", "list", "--server", srv.URL)
	if err != nil || !strings.Contains(s, "houses") || !strings.Contains(s, "42") {
		t.Fatalf("list: %v %q", err, s)
	}
	s, err = linnet(t, "models", "list", "--server", srv.URL, "--json")
	if err != nil || !strings.Contains(s, `"name": "houses"`) {
		t.Errorf("list --json: %v %q", err, s)
	}
	s, err = linnet(t, "models", "history", "--server", srv.URL, "--json")
	if err != nil || !strings.Contains(s, `"action": "activate"`) {
		t.Errorf("history: %v %q", err, s)
	}
	out := filepath.Join(dir, "live.lnm")
	if _, err = linnet(t, "models", "export", "active", "--server", srv.URL, "--out", out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	want, _ := src.models[0].MarshalBinary()
	if !bytes.Equal(b, want) {
		t.Error("exported file differs from the served model")
	}
	if _, err = linnet(t, "models", "export", "7", "--server", srv.URL, "--out", out); err == nil || !strings.Contains(err.Error(), "active") {
		t.Errorf("export of another version: %v", err)
	}
	if _, err = linnet(t, "models", "activate", "7", "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "--db") {
		t.Errorf("activate --server: %v", err)
	}

	// Two models: history needs --name.
	src.models, src.names = append(src.models, liveModel(9)), append(src.names, "door")
	if _, err = linnet(t, "models", "history", "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Errorf("history of two models without --name: %v", err)
	}
	s, err = linnet(t, "models", "history", "--server", srv.URL, "--name", "door")
	if err != nil || !strings.Contains(s, "activate") || !strings.Contains(s, "9") {
		t.Errorf("history --name door: %v %q", err, s)
	}
	if _, err = linnet(t, "models", "history", "--server", srv.URL, "--name", "nope"); err == nil || !strings.Contains(err.Error(), "unknown model") {
		t.Errorf("unknown model: %v", err)
	}
	// Without --server or --db, the store commands still say what is missing.
	if _, err = linnet(t, "models", "list"); err == nil || !strings.Contains(err.Error(), "--db") {
		t.Errorf("list without --db: %v", err)
	}
}
