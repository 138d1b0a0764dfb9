package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
)

// patience bounds how long a test waits for something that should happen;
// it is a hang guard, not a timing assertion.
const patience = 60 * time.Second

// fakeScorer is the test double of the model: z = bias + w·x, and for a
// classifier the logistic of z.
type fakeScorer struct {
	version  int64
	names    []string
	w        []float32
	bias     float32
	logistic bool
}

func (f *fakeScorer) Version() int64     { return f.version }
func (f *fakeScorer) Features() []string { return f.names }
func (f *fakeScorer) Logistic() bool     { return f.logistic }
func (f *fakeScorer) Scheme() string     { return "f32" }
func (f *fakeScorer) Predict(x []float32) float32 {
	z := f.bias
	for i, v := range x {
		z += f.w[i] * v
	}
	if f.logistic {
		return float32(1 / (1 + math.Exp(-float64(z))))
	}
	return z
}

func newFake() *fakeScorer {
	return &fakeScorer{version: 7, names: []string{"a", "b", "c"}, w: []float32{0.5, -1, 2}, bias: 0.25}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// mosquittoPath finds the broker on PATH or in /usr/sbin, or skips.
func mosquittoPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	t.Skip("mosquitto not installed (apt-get install mosquitto mosquitto-clients; make test does it)")
	return ""
}

func clientTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install mosquitto-clients)", name)
	}
	return p
}

// mosq is a mosquitto the test starts on a free loopback port.
type mosq struct {
	t      *testing.T
	bin    string
	dir    string
	conf   string
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	log    *os.File
}

// startMosquitto writes a config (a loopback listener, persistence in the
// test's directory, then extra lines) and starts the broker.
func startMosquitto(t *testing.T, extra string) *mosq {
	t.Helper()
	m := &mosq{t: t, bin: mosquittoPath(t), dir: t.TempDir()}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	// mosquitto takes a port number, not a listener: a port found free
	// may be taken before mosquitto binds it, so try again with another.
	for attempt := 0; ; attempt++ {
		m.port = freePort(t)
		// user: as root, mosquitto would switch to its own user, which cannot
		// write the test directory; as another user the line has no effect.
		conf := fmt.Sprintf("user %s\nper_listener_settings false\npersistence true\npersistence_location %s/\nautosave_interval 1\nmax_queued_messages 100000\nmax_inflight_messages 100\n", currentUser(), m.dir)
		if !strings.Contains(extra, "listener ") {
			conf += fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", m.port)
		}
		conf += strings.ReplaceAll(extra, "PORT", fmt.Sprint(m.port))
		if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if m.tryStart() {
			break
		}
		if attempt == 4 {
			b, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
			t.Fatalf("mosquitto did not start in 5 attempts:\n%s", b)
		}
	}
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("mosquitto log:\n%s", b)
		}
	})
	return m
}

func (m *mosq) start() {
	m.t.Helper()
	if !m.tryStart() {
		m.t.Fatalf("mosquitto exited at start (port %d taken?)", m.port)
	}
}

// tryStart starts mosquitto and waits until it listens; false when it
// exited first (its port was taken).
func (m *mosq) tryStart() bool {
	m.t.Helper()
	f, err := os.OpenFile(filepath.Join(m.dir, "mosquitto.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.t.Fatal(err)
	}
	m.log = f
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = f, f
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	exited := make(chan struct{})
	m.exited = exited
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(exited) }(m.cmd)
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", m.addr()); err == nil {
			c.Close()
			return true
		}
		select {
		case <-exited:
			m.cmd = nil
			f.Close()
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	m.t.Fatalf("nothing listens on %s", m.addr())
	return false
}

func (m *mosq) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.exited
	m.cmd = nil
	m.log.Close()
}

func (m *mosq) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }
func (m *mosq) url() string  { return "tcp://" + m.addr() }

// testConfig is a daemon config for url with loopback metrics.
func testConfig(t *testing.T, url string) *Config {
	c := Default()
	c.Gateway = "gw-test"
	c.MQTT.Broker = url
	c.DataDir = t.TempDir()
	c.Metrics.Listen = "127.0.0.1:0"
	c.Pipeline.Workers = 2
	c.Learning.CheckpointInterval = time.Hour
	return c
}

type runningDaemon struct {
	s      *Service
	cancel context.CancelFunc
	done   chan error
}

// startDaemon runs a service in-process with sc and waits until it is
// subscribed.
func startDaemon(t *testing.T, cfg *Config, sc serving.Scorer, meta ...serving.Meta) *runningDaemon {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if sc != nil {
		var m serving.Meta
		if len(meta) > 0 {
			m = meta[0]
		}
		s.SetModel(sc, m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &runningDaemon{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-d.done:
		t.Fatalf("daemon stopped before ready: %v", err)
	case <-time.After(patience):
		t.Fatal("daemon not ready")
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *runningDaemon) stop(t *testing.T) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon Run: %v", err)
		}
	case <-time.After(patience):
		t.Error("daemon did not stop")
	}
}

// testClient connects a paho client (persistent session when id is set
// and clean is false).
func testClient(t *testing.T, url, id string, clean bool, opts ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(false)
	for _, f := range opts {
		f(o)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("test client connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// collector gathers JSON messages from a topic filter, keyed by "id".
type collector struct {
	mu    sync.Mutex
	byID  map[string][]map[string]any
	all   []map[string]any
	topic map[string]string // id -> topic
	cond  chan struct{}
}

func collect(t *testing.T, c paho.Client, filter string) *collector {
	t.Helper()
	col := &collector{byID: map[string][]map[string]any{}, topic: map[string]string{}, cond: make(chan struct{}, 1)}
	handle := func(_ paho.Client, m paho.Message) {
		var v map[string]any
		if err := json.Unmarshal(m.Payload(), &v); err != nil {
			t.Errorf("bad JSON on %s: %q", m.Topic(), m.Payload())
			return
		}
		col.mu.Lock()
		col.all = append(col.all, v)
		if id, ok := v["id"]; ok {
			k := fmt.Sprint(id)
			col.byID[k] = append(col.byID[k], v)
			col.topic[k] = m.Topic()
		}
		col.mu.Unlock()
		select {
		case col.cond <- struct{}{}:
		default:
		}
	}
	// paho reports a refused subscription (SUBACK 0x80) as success: the
	// embedded broker refuses a SUBSCRIBE whose packet id is one of its
	// QoS 1 messages in flight to the client. Ask again.
	for try := 0; ; try++ {
		tok := c.Subscribe(filter, 1, handle)
		if !tok.WaitTimeout(patience) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		if code := tok.(*paho.SubscribeToken).Result()[filter]; code <= 2 {
			break
		} else if try == 10 {
			t.Fatalf("subscribe %s: refused (%#x)", filter, code)
		}
	}
	return col
}

// waitIDs waits until n distinct ids arrived.
func (c *collector) waitIDs(t *testing.T, n int) {
	t.Helper()
	c.wait(t, n, "ids", func() int { return len(c.byID) })
}

// waitAll waits until n messages arrived.
func (c *collector) waitAll(t *testing.T, n int) {
	t.Helper()
	c.wait(t, n, "messages", func() int { return len(c.all) })
}

// wait waits until count, called under c.mu, reaches n.
func (c *collector) wait(t *testing.T, n int, what string, count func() int) {
	t.Helper()
	deadline := time.After(patience)
	for {
		c.mu.Lock()
		got := count()
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("got %d of %d %s", got, n, what)
		}
	}
}

func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// counts summarises a daemon's counters for failure messages.
func (d *runningDaemon) counts() string {
	m := d.s.m
	s := fmt.Sprintf("in=%v predictions=%v pub_errors=%v reconnects=%v inflight=%v retries=%v queue=%v",
		testutil.ToFloat64(m.in), testutil.ToFloat64(m.predictions), testutil.ToFloat64(m.pubErrors),
		testutil.ToFloat64(m.reconnects), d.s.pub.Inflight(), d.s.pub.Retries(), d.s.queueDepth())
	for _, r := range wire.Reasons {
		if v := testutil.ToFloat64(m.rejected.WithLabelValues(r)); v > 0 {
			s += fmt.Sprintf(" %s=%v", r, v)
		}
	}
	return s
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// setPersistence rewrites the config for the next start.
func (m *mosq) setPersistence(on bool) {
	b, err := os.ReadFile(m.conf)
	if err != nil {
		m.t.Fatal(err)
	}
	s := strings.Replace(string(b), fmt.Sprintf("persistence %v", !on), fmt.Sprintf("persistence %v", on), 1)
	if err := os.WriteFile(m.conf, []byte(s), 0o600); err != nil {
		m.t.Fatal(err)
	}
}

// waitID waits until a message with this id arrived.
func (c *collector) waitID(t *testing.T, id string) {
	t.Helper()
	deadline := time.After(patience)
	for {
		c.mu.Lock()
		got := len(c.byID[id])
		c.mu.Unlock()
		if got > 0 {
			return
		}
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("no message with id %q", id)
		}
	}
}

// waitReconnected waits until the daemon connected again after its first
// connection and subscribed.
func (d *runningDaemon) waitReconnected(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		if d.s.connects.Load() >= 2 && d.s.connected.Load() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("daemon did not reconnect: %s", d.counts())
}

// waitIDSet waits until every id in ids arrived.
func (c *collector) waitIDSet(t *testing.T, ids map[int]bool) {
	t.Helper()
	deadline := time.After(patience)
	for {
		c.mu.Lock()
		missing := 0
		for id := range ids {
			if len(c.byID[fmt.Sprint(id)]) == 0 {
				missing++
			}
		}
		c.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("%d readings got no prediction", missing)
		}
	}
}
