package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/scripts/gendata/synth"
)

// houses is a synthetic houses data set.
func houses(t *testing.T, rows int, seed uint64) *model.Dataset {
	t.Helper()
	var buf bytes.Buffer
	truth, err := synth.WriteCSV(&buf, "houses", rows, seed)
	if err != nil {
		t.Fatal(err)
	}
	r, err := model.NewCSVReader(&buf, model.CSVOptions{Target: truth.Target})
	if err != nil {
		t.Fatal(err)
	}
	d, err := model.ReadDataset(r)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// trainedModel trains an f32 model on houses and writes it to a file.
func trainedModel(t *testing.T) (*model.Model, string) {
	t.Helper()
	m, _, err := model.Train(context.Background(), houses(t, 20000, 61), model.TrainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m.Version = 7
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "houses.lnm")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return m, path
}

func labelledJSON(id string, x []float32, y float32) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%q,"features":[`, id)
	for i, v := range x {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, v)
	}
	fmt.Fprintf(&b, `],"label":%v}`, y)
	return b.String()
}

// TestPoisoningThroughDaemon: the attacks of one label of 1e30, one of
// 1e6 and 2,000 of 1e30, then honest labelled readings, sent over MQTT to
// a learning daemon: every poisoned reading is answered, refused for
// learning as bad_label on the errors topic and counted, and the served
// model predicts held-out readings within 2% of a control learner that
// saw only the honest readings.
func TestPoisoningThroughDaemon(t *testing.T) {
	m, path := trainedModel(t)
	honest := houses(t, 3000, 62)
	held := houses(t, 500, 63)
	for _, c := range []struct {
		name        string
		label       float32
		bad, honest int
	}{
		{"1x1e30", 1e30, 1, 1000},
		{"1x1e6", 1e6, 1, 1000},
		{"2000x1e30", 1e30, 2000, 3000},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.MQTT.Broker = ""
			cfg.MQTT.Embedded = "127.0.0.1:0"
			cfg.Model = path
			cfg.Pipeline.Workers = 1 // the control learns in the same order
			cfg.Learning.RequantizeEvery = 100
			d := startDaemon(t, cfg, nil)
			cl := testClient(t, d.s.BrokerURL(), "tester", true)
			preds := collect(t, cl, "linnet/+/prediction")
			errs := collect(t, cl, "linnet/gw-test/errors")
			control := model.NewLearner(m, model.LearnerConfig{})

			send := func(rows []string) {
				publish(t, cl, "linnet/attic/features", []byte(`{"batch":[`+strings.Join(rows, ",")+`]}`))
			}
			var rows []string
			msgs := 0
			flush := func() {
				if len(rows) > 0 {
					send(rows)
					rows, msgs = rows[:0], msgs+1
				}
			}
			for i := range c.bad {
				rows = append(rows, labelledJSON(fmt.Sprintf("bad%d", i), honest.Row(i%honest.Len()), c.label))
				if len(rows) == 100 {
					flush()
				}
			}
			flush()
			for i := range c.honest {
				rows = append(rows, labelledJSON(fmt.Sprintf("h%d", i), honest.Row(i), honest.Y[i]))
				control.Learn(honest.Row(i), honest.Y[i])
				if len(rows) == 100 {
					flush()
				}
			}
			flush()
			preds.waitAll(t, msgs)
			waitUpdates(t, d, int64(c.honest))
			errs.waitAll(t, c.bad)
			errs.mu.Lock()
			defer errs.mu.Unlock()
			for _, e := range errs.all[:c.bad] {
				if e["reason"] != wire.ReasonBadLabel || !strings.Contains(fmt.Sprint(e["detail"]), "plausible") {
					t.Fatalf("errors topic: %v", e)
				}
			}
			if lh := d.s.own.Health(); lh.Refused != int64(c.bad) || lh.Frozen {
				t.Errorf("learner: %+v, want %d refused", lh, c.bad)
			}
			if u, _, _ := d.s.own.Stats(); u != int64(c.honest) {
				t.Errorf("%d updates, want %d", u, c.honest)
			}
			sv := d.s.own.Current().Scorer
			var worst float64
			for i := range held.Len() {
				p, q := float64(sv.Predict(held.Row(i))), float64(control.Predict(held.Row(i)))
				worst = math.Max(worst, math.Abs(p-q)/math.Max(math.Abs(q), 1e-9))
			}
			t.Logf("%s then %d honest: served predictions within %.4f%% of the control run's", c.name, c.honest, 100*worst)
			if worst > 0.02 {
				t.Errorf("served predictions differ by %.2f%% from the control run's", 100*worst)
			}
		})
	}
}

// TestWatchdogFreezesDiverged: a learner without bounds or a step limit
// (learning.margin and max_step -1) is poisoned after a good checkpoint;
// the next checkpoint finds it diverged, restores and serves the good
// checkpoint, freezes learning, and says so in the status, /healthz, the
// metrics and the errors topic; a restart stays frozen.
func TestWatchdogFreezesDiverged(t *testing.T) {
	_, path := trainedModel(t)
	honest := houses(t, 2000, 64)
	held := houses(t, 50, 65)
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0"
	cfg.Model = path
	cfg.Pipeline.Workers = 1
	cfg.Learning.RequantizeEvery = 1
	cfg.Learning.Margin, cfg.Learning.MaxStep = -1, -1
	d := startDaemon(t, cfg, nil)
	cl := testClient(t, d.s.BrokerURL(), "tester", true)
	preds := collect(t, cl, "linnet/+/prediction")
	errs := collect(t, cl, "linnet/gw-test/errors")
	batch := func(from, to int, poison bool) {
		var rows []string
		for i := from; i < to; i++ {
			y := honest.Y[i]
			if poison && i == from {
				y = 1e30
			}
			rows = append(rows, labelledJSON(fmt.Sprint(i), honest.Row(i), y))
		}
		publish(t, cl, "linnet/attic/features", []byte(`{"batch":[`+strings.Join(rows, ",")+`]}`))
	}
	for k := range 5 {
		batch(100*k, 100*(k+1), false)
	}
	preds.waitAll(t, 5)
	waitUpdates(t, d, 500)
	if !d.s.checkpointAll() {
		t.Fatal("first checkpoint not written")
	}
	good := d.s.own.Current().Scorer.Predict(held.Row(0))
	for k := 5; k < 9; k++ {
		batch(100*k, 100*(k+1), k == 5)
	}
	preds.waitAll(t, 9)
	waitUpdates(t, d, 900)
	if p := d.s.own.Current().Scorer.Predict(held.Row(0)); !(math.Abs(float64(p)) > 1e6) {
		t.Fatalf("the unguarded learner was not poisoned (%v): the test proves nothing", p)
	}
	if !d.s.checkpointAll() {
		t.Fatal("checkpoint after divergence not written")
	}
	if p := d.s.own.Current().Scorer.Predict(held.Row(0)); p != good {
		t.Errorf("served %v after the restore, want the good checkpoint's %v", p, good)
	}
	if lh := d.s.own.Health(); !lh.Frozen || lh.Diverged == "" {
		t.Errorf("learner health %+v", lh)
	}
	errs.waitAll(t, 1)
	errs.mu.Lock()
	if r := errs.all[0]["reason"]; r != reasonDiverged {
		t.Errorf("errors topic: %v", errs.all[0])
	}
	errs.mu.Unlock()
	if err := d.s.health(); err == nil || !strings.Contains(err.Error(), "learning frozen") {
		t.Errorf("healthz: %v", err)
	}
	var st wire.Status
	if err := json.Unmarshal(d.s.status("online"), &st); err != nil || !st.LearningFrozen || len(st.Problems) == 0 {
		t.Errorf("status %+v %v", st, err)
	}
	if !strings.Contains(scrape(t, d.s.MetricsAddr()), `linnet_learning_frozen{model="default"} 1`) {
		t.Error("metric linnet_learning_frozen not 1")
	}
	// Frozen: labelled readings are still answered, not learned from.
	u0, _, _ := d.s.own.Stats()
	batch(900, 1000, false)
	preds.waitAll(t, 10)
	if u, _, _ := d.s.own.Stats(); u != u0 {
		t.Errorf("frozen learner learned: %d -> %d updates", u0, u)
	}
	d.stop(t)

	// A restart resumes the frozen checkpoint.
	cfg2 := *cfg
	d2 := startDaemon(t, &cfg2, nil)
	if lh := d2.s.own.Health(); !lh.Frozen {
		t.Errorf("restart: learner not frozen: %+v", lh)
	}
	if p := d2.s.own.Current().Scorer.Predict(held.Row(0)); p != good {
		t.Errorf("restart serves %v, want %v", p, good)
	}
}

// scrape returns the metrics page.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitUpdates waits until the learner made n updates (a prediction is
// published before its reading is learned from).
func waitUpdates(t *testing.T, d *runningDaemon, n int64) {
	t.Helper()
	for deadline := time.Now().Add(patience); ; time.Sleep(5 * time.Millisecond) {
		if u, _, _ := d.s.own.Stats(); u >= n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%d updates, want %d", u, n)
		}
	}
}
