package daemon

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linnet-edge/linnet/daemon/wire"
)

// soak is set (LINNET_SOAK=1, or scripts/soak-daemon.sh) for the
// acceptance-size runs: 20,000 readings, five kills or a full burst.
// go test runs a smaller version of the same tests.
var soak = os.Getenv("LINNET_SOAK") != ""

// fakeMsg is a received message for unit tests of the acknowledgement
// order.
type ackMsg struct {
	id    int
	qos   byte
	acked *[]int
	mu    *sync.Mutex
}

func (m *ackMsg) Duplicate() bool   { return false }
func (m *ackMsg) Qos() byte         { return m.qos }
func (m *ackMsg) Retained() bool    { return false }
func (m *ackMsg) Topic() string     { return "t" }
func (m *ackMsg) MessageID() uint16 { return uint16(m.id) }
func (m *ackMsg) Payload() []byte   { return nil }
func (m *ackMsg) Ack() {
	m.mu.Lock()
	*m.acked = append(*m.acked, m.id)
	m.mu.Unlock()
}

// Messages finished in any order are acknowledged in arrival order, each
// once all its steps are done; a failed one is released without an
// acknowledgement (the broker delivers it again); bytes are released with
// their message.
func TestAcksInArrivalOrder(t *testing.T) {
	var mu sync.Mutex
	var acked []int
	var a acks
	var released int
	a.onRelease = func(n int) { released += n }
	const n = 200
	ts := make([]*ticket, n)
	for i := range ts {
		ts[i] = a.add(&ackMsg{id: i, qos: 1, acked: &acked, mu: &mu}, 10)
		ts[i].hold() // two steps: publish acknowledged, learned
	}
	r := rand.New(rand.NewPCG(1, 2))
	steps := make([]int, 0, 2*n)
	for i := 0; i < n; i++ {
		steps = append(steps, i, i)
	}
	r.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
	var wg sync.WaitGroup
	for _, i := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i == 17 {
				err = fmt.Errorf("publish failed")
			}
			ts[i].done(err)
		}()
	}
	wg.Wait()
	if len(acked) != n-1 {
		t.Fatalf("%d acknowledged, want %d", len(acked), n-1)
	}
	prev := -1
	for _, id := range acked {
		if id <= prev || id == 17 {
			t.Fatalf("acknowledgements out of order or failed one acknowledged: %v", acked)
		}
		prev = id
	}
	if released != 10*n || a.unacked.Load() != 0 {
		t.Errorf("released %d bytes, %d unacknowledged", released, a.unacked.Load())
	}
	// A message not done holds back every later one.
	head := a.add(&ackMsg{id: 1000, qos: 1, acked: &acked, mu: &mu}, 0)
	a.add(&ackMsg{id: 1001, qos: 1, acked: &acked, mu: &mu}, 0).done(nil)
	if len(acked) != n-1 {
		t.Fatalf("acknowledged past an unfinished message: %v", acked[n-1:])
	}
	head.done(nil)
	if got := acked[len(acked)-2:]; got[0] != 1000 || got[1] != 1001 {
		t.Errorf("tail %v", got)
	}
}

// Every copy of what the daemon holds fits pipeline.queue_bytes: with the
// embedded broker, two of each reading and three of each answer.
func TestBudgetShares(t *testing.T) {
	const total = 64 << 20
	in, ans := budgetShares(total, false)
	if in+ans > total || in < total/2 {
		t.Errorf("external broker: intake %d + answers %d of %d", in, ans, total)
	}
	in, ans = budgetShares(total, true)
	if 2*in+3*ans > total || in < total/8 || ans < total/32 {
		t.Errorf("embedded broker: 2 x intake %d + 3 x answers %d of %d", in, ans, total)
	}
}

// The byte budget: with queue_bytes full (a worker blocked), new readings
// are refused as queue_full however few slots are taken. (With the
// embedded broker, senders are held back first: TestEmbeddedBrokerPause.)
func TestQueueByteBudget(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := testConfig(t, m.url())
	cfg.Pipeline.Workers, cfg.Pipeline.Queue = 1, 1000
	cfg.Payload.MaxBytes = 2048
	cfg.Pipeline.QueueBytes = 5464 // readings get three quarters (budgetShares): 4,098 bytes, two 1,900-byte readings
	bs := &blockingScorer{fakeScorer: newFake(), release: make(chan struct{})}
	d := startDaemon(t, cfg, bs)
	c := testClient(t, m.url(), "budget", true)
	errs := collect(t, c, "linnet/+/errors")
	preds := collect(t, c, "linnet/+/prediction")
	pad := func(i int) []byte {
		b := fmt.Appendf(nil, `{"id":%d,"features":[1,2,3]}`, i)
		for len(b) < 1900 {
			b = append(b, ' ')
		}
		return b
	}
	for i := 0; i < 10; i++ {
		publish(t, c, "linnet/big/features", pad(i))
	}
	errs.waitAll(t, 8)
	if got := testutil.ToFloat64(d.s.m.rejected.WithLabelValues(wire.ReasonQueueFull)); got != 8 {
		t.Errorf("queue_full %v, want 8 (budget for two readings)", got)
	}
	close(bs.release)
	preds.waitIDs(t, 2)
	publish(t, c, "linnet/big/features", pad(99))
	preds.waitID(t, "99")
}

// The config bounds: sizes that cannot fit in memory are refused at
// validation, not by an out-of-memory kill.
func TestConfigUpperBounds(t *testing.T) {
	cfg := Default()
	cfg.Gateway = "gw"
	cfg.Pipeline.Queue = 2e9
	cfg.MQTT.MaxInflight = 1e9
	cfg.Pipeline.QueueBytes = 1 << 50
	cfg.Payload.MaxBytes = 1 << 30
	cfg.Learning.MaxDeviceBytes = 1 << 50
	err := cfg.Validate()
	ce, ok := err.(*ConfigError)
	if !ok || len(ce.Problems) != 5 || !strings.Contains(err.Error(), "learning.max_device_bytes") {
		t.Fatalf("want 5 problems, got %v", err)
	}
}

// At-least-once through mosquitto with a persistent session: readings
// with ids at a steady rate, the daemon SIGKILLed at random moments and
// restarted each time; every id gets a prediction. Duplicates (readings
// answered before a kill but not yet acknowledged) are counted and
// reported, none is missing.
func TestAtLeastOnceSIGKILL(t *testing.T) {
	n, rate, kills := 2000, 1000, 2
	if soak {
		n, rate, kills = 20000, 2000, 5
	}
	m := startMosquitto(t, "max_inflight_messages 1000\n")
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`gateway = "gw-alo"
data_dir = %q
model = %q
[mqtt]
broker = %q
[learning]
enabled = false
`, filepath.Join(dir, "data"), writeModel(t, dir, 42), m.url()))
	p := startProc(t, cfgPath)

	sub := testClient(t, m.url(), "alo-sub", false)
	preds := collect(t, sub, "linnet/+/prediction")
	pub := testClient(t, m.url(), "alo-pub", true)
	r := rand.New(rand.NewPCG(11, 12))
	killAt := map[int]bool{}
	for len(killAt) < kills {
		killAt[n/10+r.IntN(n*8/10)] = true
	}
	start := time.Now()
	var restarts sync.WaitGroup
	var restartErr error
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		pub.Publish("linnet/alo/features", 1, false, fmt.Appendf(nil, `{"id":%d,"features":[%d,1,2]}`, i, i%7))
		if killAt[i] {
			restarts.Wait()
			if restartErr != nil {
				t.Fatal(restartErr)
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = p.cmd.Wait()
			// Restart while readings go on arriving at the broker.
			restarts.Add(1)
			go func() { defer restarts.Done(); p, restartErr = startProcErr(t, cfgPath) }()
		}
	}
	restarts.Wait()
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	preds.waitIDs(t, n)
	preds.mu.Lock()
	defer preds.mu.Unlock()
	dups := 0
	for _, v := range preds.byID {
		dups += len(v) - 1
	}
	t.Logf("%d readings at %d/s, %d SIGKILLs: every id answered, %d duplicates", n, rate, kills, dups)
}

// The embedded broker, with the daemon paused (SIGSTOP, 5 s in the soak
// run) mid-burst: every reading the broker acknowledged to its sender is
// answered (a prediction, or an error report such as queue_full), or
// counted in linnet_broker_dropped_total. The broker lives in the daemon's
// process, so it is paused too; the senders' readings wait in the sockets
// and arrive together when it resumes.
func TestEmbeddedBrokerPause(t *testing.T) {
	n, pause := 4000, 2*time.Second
	if soak {
		n, pause = 20000, 5*time.Second
	}
	dir := t.TempDir()
	// A process cannot be handed a listener: the embedded broker's port is
	// probed here (and a collision would fail the start clearly).
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`gateway = "gw-pause"
data_dir = %q
model = %q
[mqtt]
embedded_listen = %q
[learning]
enabled = false
`, filepath.Join(dir, "data"), writeModel(t, dir, 42), addr))
	p := startProc(t, cfgPath)
	url := "tcp://" + addr
	sub := testClient(t, url, "pause-sub", false)
	preds := collect(t, sub, "linnet/+/prediction")
	errs := collect(t, sub, "linnet/+/errors")
	pub := testClient(t, url, "pause-pub", true, func(o *paho.ClientOptions) { o.SetWriteTimeout(patience) })

	var toks []paho.Token
	var resumed sync.WaitGroup
	for i := 0; i < n; i++ {
		if i == n/4 {
			if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			resumed.Add(1)
			time.AfterFunc(pause, func() { defer resumed.Done(); _ = p.cmd.Process.Signal(syscall.SIGCONT) })
		}
		toks = append(toks, pub.Publish("linnet/burst/features", 1, false, fmt.Appendf(nil, `{"id":%d,"features":[%d,1,2]}`, i, i%7)))
		if i%200 == 199 {
			time.Sleep(50 * time.Millisecond) // about 4,000/s
		}
	}
	resumed.Wait()
	acked := map[int]bool{}
	for i, tk := range toks {
		if tk.WaitTimeout(patience) && tk.Error() == nil {
			acked[i] = true
		}
	}
	answered := func() int {
		k := 0
		preds.mu.Lock()
		errs.mu.Lock()
		for i := range acked {
			id := fmt.Sprint(i)
			if len(preds.byID[id]) > 0 || len(errs.byID[id]) > 0 {
				k++
			}
		}
		errs.mu.Unlock()
		preds.mu.Unlock()
		return k
	}
	// Dropped with a count: by the broker, or rejected by the daemon (say
	// queue_full) with the errors-topic report itself dropped.
	dropped := func() int {
		return int(p.metric(t, "linnet_broker_dropped_total") + p.metric(t, "linnet_error_reports_dropped_total"))
	}
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) && answered()+dropped() < len(acked) {
		time.Sleep(100 * time.Millisecond)
	}
	got, drop := answered(), dropped()
	if got+drop < len(acked) {
		var missing []int
		preds.mu.Lock()
		errs.mu.Lock()
		for i := range acked {
			id := fmt.Sprint(i)
			if len(preds.byID[id]) == 0 && len(errs.byID[id]) == 0 {
				missing = append(missing, i)
			}
		}
		errs.mu.Unlock()
		preds.mu.Unlock()
		slices.Sort(missing)
		t.Logf("missing ids %v; daemon: in %v, predictions %v, queue_full %v, publish errors %v, retries %v", missing[:min(len(missing), 40)],
			p.metric(t, "linnet_messages_in_total"), p.metric(t, `linnet_predictions_total{model="default"}`),
			p.metric(t, `linnet_rejected_total{reason="queue_full"}`),
			p.metric(t, "linnet_publish_errors_total"), p.metric(t, "linnet_publish_retries_total"))
		if os.Getenv("LINNET_DUMP") != "" {
			if resp, err := http.Get("http://" + p.metrics + "/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				os.WriteFile(os.Getenv("LINNET_DUMP")+".metrics", b, 0o600)
			}
			_ = p.cmd.Process.Signal(syscall.SIGQUIT)
			time.Sleep(time.Second)
			os.WriteFile(os.Getenv("LINNET_DUMP"), p.log.Bytes(), 0o600)
		}
		t.Fatalf("%d readings acknowledged to the sender, %d answered, %d counted as dropped: %d lost without a count",
			len(acked), got, drop, len(acked)-got-drop)
	}
	// A reading refused before decoding (queue_full) is named in its
	// report, or its sender could not tell which one to send again.
	errs.mu.Lock()
	for _, e := range errs.all {
		if _, ok := e["id"]; !ok {
			t.Errorf("error report without the reading's id: %v", e)
		}
	}
	errs.mu.Unlock()
	t.Logf("paused %v mid-burst: %d of %d readings acknowledged to the sender, %d answered, %d dropped with a count (broker %v, error reports %v); queue_full %v",
		pause, len(acked), n, got, drop, p.metric(t, "linnet_broker_dropped_total"), p.metric(t, "linnet_error_reports_dropped_total"),
		p.metric(t, `linnet_rejected_total{reason="queue_full"}`))
}
