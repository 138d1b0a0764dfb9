package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/daemon"
	"github.com/linnet-edge/linnet/model"
)

// linnet models list|history|export --server against a running daemon,
// which holds the store: the live API on its metrics listener answers.
func TestModelsServerDaemon(t *testing.T) {
	dir := t.TempDir()
	path, m := v1Model(t, dir)
	cfg := daemon.Default()
	cfg.Gateway, cfg.DataDir, cfg.Model = "gw-live", t.TempDir(), path
	cfg.MQTT.Embedded, cfg.Metrics.Listen = "127.0.0.1:0", "127.0.0.1:0"
	s := runDaemon(t, cfg)
	url := "http://" + s.MetricsAddr()
	name := m.Target

	out, err := linnet(t, "models", "list", "--server", url)
	if err != nil || !strings.Contains(out, name) || !strings.Contains(out, "learning") {
		t.Fatalf("list: %v %q", err, out)
	}
	out, err = linnet(t, "models", "history", "--server", url, "--json")
	if err != nil || !strings.Contains(out, `"action": "activate"`) || !strings.Contains(out, `"source": "run --model"`) {
		t.Errorf("history: %v %q", err, out)
	}
	file := filepath.Join(dir, "live.lnm")
	if _, err := linnet(t, "models", "export", "active", "--server", url, "--out", file); err != nil {
		t.Fatal(err)
	}
	got, _, err := model.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != m.Version || got.Target != m.Target || len(got.Weights) != len(m.Weights) {
		t.Errorf("exported version %d target %q, want %d %q", got.Version, got.Target, m.Version, m.Target)
	}
}
