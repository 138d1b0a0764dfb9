package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
)

// failingCheckpoints stands for a store that cannot write (full, or
// read-only).
type failingCheckpoints struct{}

func (failingCheckpoints) SaveCheckpoint([]byte) error {
	return errors.New("write linnet.db: no space left on device")
}

// healthz returns /healthz's status code and body.
func healthz(t *testing.T, d *runningDaemon) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.s.MetricsAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthReasons: /healthz and the status message report failing
// checkpoints and a disconnected broker, each with its reason, and
// recover when the fault does. (A frozen learner: TestWatchdogFreezesDiverged;
// a deleted store: TestStoreDeletedWhileRunning.)
func TestHealthReasons(t *testing.T) {
	m, path := trainedModel(t)
	mq := startMosquitto(t, "")
	cfg := testConfig(t, mq.url())
	cfg.Model = path
	cfg.Learning.CheckpointInterval = 100 * time.Millisecond
	d := startDaemon(t, cfg, nil)
	if code, body := healthz(t, d); code != 200 {
		t.Fatalf("healthy daemon: %d %s", code, body)
	}
	statuses := collect(t, testClient(t, mq.url(), "watcher", true), "linnet/gw-test/status")

	d.s.own.SetLearner(serving.NewLearner(m, serving.Robust{}), failingCheckpoints{})
	if d.s.checkpointAll() {
		t.Fatal("a failing checkpoint reported written")
	}
	// Housekeeping publishes the status again when the problems change,
	// although no checkpoint is written.
	statuses.wait(t, 1, "a status with the problem", func() int {
		for _, m := range statuses.all {
			if strings.Contains(fmt.Sprint(m["problems"]), "no space left") {
				return 1
			}
		}
		return 0
	})
	code, body := healthz(t, d)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "checkpoints failing") || !strings.Contains(body, "no space left") {
		t.Errorf("checkpoints failing: %d %s", code, body)
	}
	var st wire.Status
	if err := json.Unmarshal(d.s.status("online"), &st); err != nil || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "no space left") {
		t.Errorf("status %+v %v", st, err)
	}
	if !regexp.MustCompile(`linnet_checkpoint_failures_total [1-9]`).MatchString(scrape(t, d.s.MetricsAddr())) {
		t.Error("linnet_checkpoint_failures_total not counted")
	}
	d.s.own.SetLearner(serving.NewLearner(m, serving.Robust{}), nil)
	d.s.checkpointed(d.s.models[0], serving.Checkpointed{Written: true}, nil)
	if code, body := healthz(t, d); code != 200 {
		t.Errorf("after a good checkpoint: %d %s", code, body)
	}

	mq.stop()
	deadline := time.Now().Add(patience)
	for {
		code, body := healthz(t, d)
		if code == http.StatusServiceUnavailable && strings.Contains(body, "not connected to the broker") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker down: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mq.start()
	d.waitReconnected(t)
	if code, body := healthz(t, d); code != 200 {
		t.Errorf("after the broker came back: %d %s", code, body)
	}
}
