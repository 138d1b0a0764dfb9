package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linnet-edge/linnet/client"
	"github.com/linnet-edge/linnet/daemon/wire"
)

// testRows makes n readings of the fake model's three features.
func testRows(n int, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = []float32{float32(r.NormFloat64()), float32(r.NormFloat64() * 10), float32(r.Float64())}
	}
	return rows
}

func readingJSON(id int, x []float32, named bool) []byte {
	if named {
		return fmt.Appendf(nil, `{"id":%d,"features":{"a":%v,"b":%v,"c":%v}}`, id, x[0], x[1], x[2])
	}
	return fmt.Appendf(nil, `{"id":%d,"features":[%v,%v,%v]}`, id, x[0], x[1], x[2])
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-5*math.Max(1, math.Abs(b))
}

// Acceptance 1: every reading sent with mosquitto_pub gets exactly one
// prediction on mosquitto_sub, equal to the model's on the same row.
func TestMosquittoPubSub(t *testing.T) {
	pub, sub := clientTool(t, "mosquitto_pub"), clientTool(t, "mosquitto_sub")
	m := startMosquitto(t, "")
	fake := newFake()
	startDaemon(t, testConfig(t, m.url()), fake)

	const n = 500
	rows := testRows(n, 1)
	var lines bytes.Buffer
	for i, x := range rows {
		lines.Write(readingJSON(i, x, i%2 == 0))
		lines.WriteByte('\n')
	}
	host, port := "127.0.0.1", fmt.Sprint(m.port)
	// A persistent subscriber session first, so nothing published before
	// the collecting mosquitto_sub is up is lost.
	if out, err := exec.Command(sub, "-h", host, "-p", port, "-i", "collector", "-c", "-q", "1", "-t", "linnet/+/prediction", "-E").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_sub -E: %v %s", err, out)
	}
	pc := exec.Command(pub, "-h", host, "-p", port, "-q", "1", "-t", "linnet/dev-1/features", "-l")
	pc.Stdin = &lines
	if out, err := pc.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}
	// -W is the hang guard; -C stops at n messages.
	out, err := exec.Command(sub, "-h", host, "-p", port, "-i", "collector", "-c", "-q", "1", "-t", "linnet/+/prediction", "-v",
		"-C", fmt.Sprint(n), "-W", fmt.Sprint(int(patience.Seconds()))).Output()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v (got %d bytes)", err, len(out))
	}
	seen := map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		topic, payload, _ := strings.Cut(line, " ")
		if topic != "linnet/dev-1/prediction" {
			t.Fatalf("prediction on %q", topic)
		}
		var p struct {
			ID         int     `json:"id"`
			Device     string  `json:"device"`
			Prediction float64 `json:"prediction"`
			Version    int64   `json:"model_version"`
			TS         int64   `json:"ts"`
		}
		if err := json.Unmarshal([]byte(payload), &p); err != nil {
			t.Fatalf("%q: %v", payload, err)
		}
		seen[p.ID]++
		want := float64(fake.Predict(rows[p.ID]))
		if !near(p.Prediction, want) || p.Device != "dev-1" || p.Version != 7 || p.TS == 0 {
			t.Errorf("id %d: got %+v, want prediction %v", p.ID, p, want)
		}
	}
	for i := 0; i < n; i++ {
		if seen[i] != 1 {
			t.Errorf("id %d: %d predictions", i, seen[i])
		}
	}
}

// Every payload form of README.md's topic table over the embedded broker, with the
// device from the topic and the answers to a batch in one message.
func TestEmbeddedBrokerPayloads(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0" // the daemon binds it: no port probing
	cfg.Subscriptions = []Subscription{
		{Topic: "linnet/+/features", Format: "json"},
		{Topic: "linnet/+/csv", Format: "csv"},
		{Topic: "raw/+/f32", Format: "raw"},
	}
	fake := newFake()
	d := startDaemon(t, cfg, fake)
	if u := d.s.BrokerURL(); !strings.HasPrefix(u, "tcp://127.0.0.1:") || strings.HasSuffix(u, ":0") {
		t.Fatalf("broker %s", d.s.BrokerURL())
	}
	c := testClient(t, d.s.BrokerURL(), "tester", true)
	col := collect(t, c, "linnet/+/prediction")
	x := []float32{1.5, -2, 0.25}
	want := float64(fake.Predict(x))

	publish(t, c, "linnet/kitchen/features", []byte(`{"id":"named","ts":123,"features":{"c":0.25,"a":1.5,"b":-2}}`))
	publish(t, c, "linnet/kitchen/features", []byte(`{"id":"pos","features":[1.5,-2,0.25],"label":3}`))
	publish(t, c, "linnet/hall/csv", []byte("1.5,-2,0.25\n"))
	raw := make([]byte, 12)
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	publish(t, c, "raw/cellar/f32", raw)
	publish(t, c, "linnet/yard/features", []byte(`{"batch":[{"id":"b1","features":[1.5,-2,0.25]},{"id":"b2","features":{"a":0,"b":0,"c":0}}]}`))
	col.waitAll(t, 5)

	col.mu.Lock()
	defer col.mu.Unlock()
	for _, id := range []string{"named", "pos"} {
		p := col.byID[id]
		if len(p) != 1 || !near(p[0]["prediction"].(float64), want) || p[0]["device"] != "kitchen" {
			t.Errorf("%s: %v", id, p)
		}
	}
	if ts := col.byID["named"][0]["ts"]; ts != 123.0 {
		t.Errorf("ts not echoed: %v", ts)
	}
	var sawCSV, sawRaw, sawBatch bool
	for _, p := range col.all {
		switch {
		case p["device"] == "hall":
			sawCSV = near(p["prediction"].(float64), want)
		case p["device"] == "cellar":
			sawRaw = near(p["prediction"].(float64), want)
		case p["device"] == "yard":
			b := p["batch"].([]any)
			b0, b1 := b[0].(map[string]any), b[1].(map[string]any)
			sawBatch = len(b) == 2 && b0["id"] == "b1" && near(b0["prediction"].(float64), want) &&
				b1["id"] == "b2" && near(b1["prediction"].(float64), 0.25) && p["model_version"] == 7.0
		}
	}
	if !sawCSV || !sawRaw || !sawBatch {
		t.Errorf("csv %v raw %v batch %v: %v", sawCSV, sawRaw, sawBatch, col.all)
	}

	// /healthz and /metrics answer on the loopback address.
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get("http://" + d.s.MetricsAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !bytes.Contains(body, []byte(`linnet_predictions_total{model="default"} 6`)) {
			t.Errorf("metrics lack 6 predictions:\n%s", grepLines(body, "linnet_"))
		}
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Acceptance 3: a flood of malformed and hostile payloads; every one is
// rejected with the right reason on the errors topic and in the counter,
// and the daemon keeps serving.
func TestHostileFlood(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := testConfig(t, m.url())
	cfg.Payload.MaxBytes = 4096
	cfg.Payload.MaxBatch = 8
	d := startDaemon(t, cfg, newFake())
	c := testClient(t, m.url(), "flooder", true)
	errs := collect(t, c, "linnet/gw-test/errors")
	preds := collect(t, c, "linnet/+/prediction")

	cases := []struct {
		reason  string
		payload []byte
	}{
		{wire.ReasonMalformed, []byte(`{"features":[1,2,3`)},
		{wire.ReasonMalformed, []byte("\x00\xff\xfe garbage")},
		{wire.ReasonMalformed, []byte(`[]`)},
		{wire.ReasonMalformed, []byte(`{"features":"1,2,3"}`)},
		{wire.ReasonMalformed, []byte(`{}`)},
		{wire.ReasonFeatureCount, []byte(`{"id":1,"features":[1,2]}`)},
		{wire.ReasonFeatureCount, []byte(`{"features":[1,2,3,4]}`)},
		{wire.ReasonFeatureNames, []byte(`{"features":{"a":1,"b":2,"zz":3}}`)},
		{wire.ReasonMissing, []byte(`{"features":{"a":1,"b":2}}`)}, // a named feature absent (issue 11: missing, not feature_names)
		{wire.ReasonNonFinite, []byte(`{"features":[1e39,0,0]}`)},
		{wire.ReasonNonFinite, []byte(`{"features":[1e400,0,0]}`)},
		{wire.ReasonNonFinite, []byte(`{"features":[3e38,-3e38,3e38]}`)}, // finite in, infinite out
		{wire.ReasonBadID, []byte(`{"id":{"x":1},"features":[1,2,3]}`)},
		{wire.ReasonBadID, []byte(`{"id":"` + strings.Repeat("x", 200) + `","features":[1,2,3]}`)},
		{wire.ReasonBadLabel, []byte(`{"features":[1,2,3],"label":"yes"}`)},
		{wire.ReasonBatchSize, []byte(`{"batch":[]}`)},
		{wire.ReasonBatchSize, []byte(`{"batch":[` + strings.Repeat(`{"features":[1,2,3]},`, 8) + `{"features":[1,2,3]}]}`)},
		{wire.ReasonMalformed, []byte(`{"batch":[{"batch":[]}]}`)},
		{wire.ReasonOversize, bytes.Repeat([]byte(" "), 5000)},
	}
	// Random bytes and mutated valid readings: counted, whatever reason.
	r := rand.New(rand.NewPCG(3, 4))
	var fuzzed [][]byte
	valid := []byte(`{"id":"x","features":{"a":1,"b":2,"c":3},"label":1}`)
	for i := 0; i < 300; i++ {
		b := append([]byte(nil), valid...)
		for k := 0; k < 1+r.IntN(4); k++ {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		if i%3 == 0 {
			b = make([]byte, r.IntN(64))
			for k := range b {
				b[k] = byte(r.IntN(256))
			}
		}
		fuzzed = append(fuzzed, b)
	}
	const rounds = 20
	for k := 0; k < rounds; k++ {
		for _, cs := range cases {
			c.Publish("linnet/evil/features", 1, false, cs.payload)
		}
	}
	for _, b := range fuzzed {
		c.Publish("linnet/evil/features", 1, false, b)
	}
	// A valid reading after the flood still gets its answer, in order
	// behind the flood (same device, same worker).
	publish(t, c, "linnet/evil/features", []byte(`{"id":"alive","features":[1,2,3]}`))
	preds.waitID(t, "alive")

	want := map[string]float64{}
	for _, cs := range cases {
		want[cs.reason] += rounds
	}
	var total float64
	for _, reason := range wire.Reasons {
		got := testutil.ToFloat64(d.s.m.rejected.WithLabelValues(reason))
		total += got
		if got < want[reason] {
			t.Errorf("%s: %v rejections, want at least %v", reason, got, want[reason])
		}
	}
	in := testutil.ToFloat64(d.s.m.in)
	okPreds := testutil.ToFloat64(d.s.m.predictions)
	if int(in) != len(cases)*rounds+len(fuzzed)+1 || total+okPreds != in {
		t.Errorf("in %v, rejected %v, predicted %v", in, total, okPreds)
	}
	if total != float64(len(cases)*rounds)+float64(len(fuzzed))-(okPreds-1) {
		t.Errorf("rejected %v of %d hostile messages (%v mutations still valid)", total, len(cases)*rounds+len(fuzzed), okPreds-1)
	}
	errs.waitAll(t, int(total))
	errs.mu.Lock()
	for _, e := range errs.all {
		if e["topic"] != "linnet/evil/features" || e["reason"] == "" || e["detail"] == "" {
			t.Errorf("error message %v", e)
			break
		}
	}
	errs.mu.Unlock()
	if testutil.ToFloat64(d.s.m.errDropped) != 0 {
		t.Errorf("error reports dropped")
	}
}

// Acceptance 2: the broker restarts mid-stream. With QoS 1 and persistent
// sessions every reading the broker accepted gets its prediction (the
// consumer may see one twice and deduplicates by id). When the broker
// comes back without its state, the daemon resubscribes by itself.
func TestBrokerRestart(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persistence=%v", persist), func(t *testing.T) { testBrokerRestart(t, persist) })
	}
}

func testBrokerRestart(t *testing.T, persist bool) {
	m := startMosquitto(t, "")
	if !persist {
		m.setPersistence(false)
	}
	cfg := testConfig(t, m.url())
	cfg.MQTT.MaxReconnect = 500 * time.Millisecond
	d := startDaemon(t, cfg, newFake())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(d.counts())
		}
	})
	// The consumer resubscribes on every connection too, so it keeps
	// listening when the broker forgot its session.
	subscribed := make(chan struct{}, 8)
	var collecting atomic.Bool
	sub := testClient(t, m.url(), "restart-sub", false, func(o *paho.ClientOptions) {
		o.SetOnConnectHandler(func(c paho.Client) {
			if collecting.Load() {
				c.Subscribe("linnet/+/prediction", 1, nil).WaitTimeout(patience)
			}
			subscribed <- struct{}{}
		})
	})
	col := collect(t, sub, "linnet/+/prediction")
	collecting.Store(true)
	pub := testClient(t, m.url(), "restart-pub", false, func(o *paho.ClientOptions) { o.SetWriteTimeout(2 * time.Second) })
	<-subscribed

	const n = 600
	rows := testRows(n, 9)
	toks := make([]paho.Token, n)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			toks[i] = pub.Publish(fmt.Sprintf("linnet/d%d/features", i%7), 1, false, readingJSON(i, rows[i], false))
		}
	}
	send(0, n/3)
	col.waitIDs(t, n/6) // mid-stream: part answered, part in flight
	m.stop()
	send(n/3, 2*n/3) // waits in the publisher's store while the broker is away
	m.start()
	// Without a session the broker forgot every subscription: what
	// follows is answered only if the daemon resubscribed by itself.
	d.waitReconnected(t)
	if !persist {
		<-subscribed
	}
	send(2*n/3, n)
	accepted := map[int]bool{}
	for i, tok := range toks {
		if tok.WaitTimeout(patience) && tok.Error() == nil {
			accepted[i] = true
		}
	}
	if got := testutil.ToFloat64(d.s.m.reconnects); got < 1 {
		t.Errorf("reconnects %v", got)
	}
	if !persist {
		// Readings the broker dropped with its state are not accepted ones;
		// check those sent after the restart.
		col.waitIDs(t, 1)
		for i := 2 * n / 3; i < n; i++ {
			if !accepted[i] {
				t.Fatalf("reading %d not accepted after restart", i)
			}
		}
		deadline := time.After(patience)
		for {
			col.mu.Lock()
			missing := 0
			for i := 2 * n / 3; i < n; i++ {
				if len(col.byID[fmt.Sprint(i)]) == 0 {
					missing++
				}
			}
			col.mu.Unlock()
			if missing == 0 {
				return
			}
			select {
			case <-col.cond:
			case <-deadline:
				t.Fatalf("%d readings sent after the restart got no prediction", missing)
			}
		}
	}
	// paho fails a publish token after its write timeout when the broker
	// vanished under it; the reading may still arrive later. The claim is
	// about the accepted ones.
	if len(accepted) < n/2 {
		t.Errorf("only %d of %d readings accepted by the broker", len(accepted), n)
	}
	col.waitIDSet(t, accepted)
	col.mu.Lock()
	defer col.mu.Unlock()
	dups := 0
	for i := range accepted {
		if len(col.byID[fmt.Sprint(i)]) == 0 {
			t.Errorf("reading %d: no prediction", i)
		}
		dups += len(col.byID[fmt.Sprint(i)]) - 1
	}
	t.Logf("%d accepted, all answered, %d duplicates (deduplicated by id)", len(accepted), dups)
}

// Acceptance 5: two daemons in one share group split the stream, answer
// every reading together, and when one stops the other takes its share.
func TestSharedSubscription(t *testing.T) {
	m := startMosquitto(t, "")
	mk := func(gw string) *runningDaemon {
		cfg := testConfig(t, m.url())
		cfg.Gateway = gw
		cfg.MQTT.ShareGroup = "linnet"
		return startDaemon(t, cfg, newFake())
	}
	a, b := mk("gw-a"), mk("gw-b")
	c := testClient(t, m.url(), "share-test", true)
	col := collect(t, c, "linnet/+/prediction")
	const n = 400
	rows := testRows(2*n, 5)
	for i := 0; i < n; i++ {
		publish(t, c, fmt.Sprintf("linnet/s%d/features", i%13), readingJSON(i, rows[i], false))
	}
	col.waitIDs(t, n)
	pa, pb := testutil.ToFloat64(a.s.m.predictions), testutil.ToFloat64(b.s.m.predictions)
	if pa == 0 || pb == 0 || pa+pb != n {
		t.Errorf("split %v + %v, want both > 0 and sum %d", pa, pb, n)
	}
	a.stop(t)
	for i := n; i < 2*n; i++ {
		publish(t, c, fmt.Sprintf("linnet/s%d/features", i%13), readingJSON(i, rows[i], false))
	}
	col.waitIDs(t, 2*n)
	if got := testutil.ToFloat64(b.s.m.predictions); got != 2*n-pa {
		t.Errorf("after a stopped, b answered %v, want %v", got, 2*n-pa)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for i := 0; i < 2*n; i++ {
		if k := len(col.byID[fmt.Sprint(i)]); k != 1 {
			t.Errorf("reading %d: %d predictions", i, k)
		}
	}
}

// The retained status says online while serving and offline after a
// clean stop; the will covers the unclean one (tested with the binary).
func TestStatusOnlineOffline(t *testing.T) {
	m := startMosquitto(t, "")
	d := startDaemon(t, testConfig(t, m.url()), newFake())
	c := testClient(t, m.url(), "status", true)
	st := collect(t, c, "linnet/gw-test/status")
	st.waitAll(t, 1)
	st.mu.Lock()
	first := st.all[0]
	st.mu.Unlock()
	if first["state"] != "online" || first["model_version"] != 7.0 || first["kernels"] == nil {
		t.Errorf("status %v", first)
	}
	d.stop(t)
	st.waitAll(t, 2)
	st.mu.Lock()
	last := st.all[len(st.all)-1]
	st.mu.Unlock()
	if last["state"] != "offline" {
		t.Errorf("after stop: %v", last)
	}
	_ = context.Background
}

// Hot swap: a new model replaces the serving one atomically while readings
// flow; every reading is answered once, by one version or the other, and
// each answer is that version's prediction.
func TestHotSwap(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0" // the daemon binds it: no port probing
	v7 := newFake()
	v8 := &fakeScorer{version: 8, names: v7.names, w: []float32{-1, 0.5, 3}, bias: -2}
	d := startDaemon(t, cfg, v7)
	c := testClient(t, d.s.BrokerURL(), "swapper", true)
	col := collect(t, c, "linnet/+/prediction")
	const n = 1000
	rows := testRows(n, 21)
	for i := 0; i < n; i++ {
		if i == n/2 {
			col.waitIDs(t, n/4)
			d.s.SetScorer(v8)
		}
		c.Publish(fmt.Sprintf("linnet/h%d/features", i%5), 1, false, readingJSON(i, rows[i], false))
	}
	col.waitIDs(t, n)
	col.mu.Lock()
	defer col.mu.Unlock()
	versions := map[float64]int{}
	for i := 0; i < n; i++ {
		ps := col.byID[fmt.Sprint(i)]
		if len(ps) != 1 {
			t.Fatalf("reading %d: %d predictions", i, len(ps))
		}
		v := ps[0]["model_version"].(float64)
		versions[v]++
		sc := v7
		if v == 8 {
			sc = v8
		}
		if got, want := ps[0]["prediction"].(float64), float64(sc.Predict(rows[i])); !near(got, want) {
			t.Errorf("reading %d: %v from version %v, want %v", i, got, v, want)
		}
	}
	if versions[7] < n/4 || versions[8] < n/2 {
		t.Errorf("answers by version: %v", versions)
	}
}

// blockingScorer holds every Predict until release is closed.
type blockingScorer struct {
	*fakeScorer
	release chan struct{}
}

func (b *blockingScorer) Predict(x []float32) float32 {
	<-b.release
	return b.fakeScorer.Predict(x)
}

// The queue-full policy: the handler never blocks; a message that finds
// its worker's queue full is dropped, counted and reported, and the
// queued ones are answered once the worker moves again.
func TestQueueFullPolicy(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := testConfig(t, m.url())
	cfg.Pipeline.Workers, cfg.Pipeline.Queue = 1, 4
	bs := &blockingScorer{fakeScorer: newFake(), release: make(chan struct{})}
	d := startDaemon(t, cfg, bs)
	c := testClient(t, m.url(), "filler", true)
	errs := collect(t, c, "linnet/gw-test/errors")
	preds := collect(t, c, "linnet/+/prediction")
	const n = 20
	for i := 0; i < n; i++ {
		publish(t, c, "linnet/busy/features", readingJSON(i, []float32{1, 2, 3}, false))
	}
	// One reading is with the (blocked) worker, 4 wait in its queue, the
	// rest were dropped: the handler kept going (the publishes above were
	// all acknowledged) and the status still flows.
	const dropped = n - 4 - 1
	errs.waitAll(t, dropped)
	if got := testutil.ToFloat64(d.s.m.rejected.WithLabelValues(wire.ReasonQueueFull)); got != dropped {
		t.Errorf("queue_full %v, want %d", got, dropped)
	}
	if got := d.s.queueDepth(); got != 4 {
		t.Errorf("queue depth %v, want 4", got)
	}
	close(bs.release)
	preds.waitAll(t, n-dropped)
	errs.mu.Lock()
	for _, e := range errs.all {
		if e["reason"] != wire.ReasonQueueFull {
			t.Errorf("error %v", e)
		}
	}
	errs.mu.Unlock()
}

// The embedded default: no broker configured and an empty store serve the
// demo model on the embedded broker.
func TestEmbeddedDemoModel(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0" // the daemon binds it: no port probing
	d := startDaemon(t, cfg, nil)
	c := testClient(t, d.s.BrokerURL(), "demo", true)
	col := collect(t, c, "linnet/+/prediction")
	publish(t, c, "linnet/house-1/features", []byte(`{"id":1,"features":{"area_m2":118.3,"rooms":4,"age_years":70,"distance_m":3302,"lot_m2":2734,"income_eur":26939}}`))
	col.waitID(t, "1")
	col.mu.Lock()
	p := col.byID["1"][0]
	col.mu.Unlock()
	if p["model_version"] != 1.0 {
		t.Errorf("demo prediction %v", p)
	}
	if price := p["prediction"].(float64); price < 100 || price > 400 {
		t.Errorf("demo price %v k for a 118 m2 house", price)
	}
}

// linnet send against a daemon: every row answered, the report adds up.
func TestSend(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0" // the daemon binds it: no port probing
	d := startDaemon(t, cfg, newFake())
	dir := t.TempDir()
	var csv bytes.Buffer
	csv.WriteString("a,b,c,y\n")
	for _, x := range testRows(300, 4) {
		fmt.Fprintf(&csv, "%v,%v,%v,1\n", x[0], x[1], x[2])
	}
	csv.WriteString("3e38,3e38,3e38,1\n") // finite, but the prediction is not: rejected
	path := dir + "/rows.csv"
	if err := os.WriteFile(path, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 50} {
		sc := client.DefaultSendConfig()
		sc.MQTT.Broker = d.s.BrokerURL()
		sc.Data, sc.Target, sc.Batch, sc.Rate = path, "y", batch, 0
		if batch > 1 {
			sc.Rate = 2000
		}
		r, err := client.Send(context.Background(), sc)
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		wantPred, wantRej := 300, 1
		if r.Sent != 301 || r.Predictions != wantPred || r.Rejected != wantRej || r.Duplicates != 0 || r.Latency.P99 <= 0 {
			t.Errorf("batch %d: %+v", batch, r)
		}
	}
}

// The in-flight bound: while the broker is away, at most mqtt.max_inflight
// predictions wait unacknowledged (the gauge shows it), the workers wait
// instead of piling up memory, and everything is delivered once the broker
// is back.
func TestInflightBound(t *testing.T) {
	m := startMosquitto(t, "")
	cfg := testConfig(t, m.url())
	cfg.MQTT.MaxInflight = 5
	cfg.MQTT.MaxReconnect = 200 * time.Millisecond
	cfg.Pipeline.Workers, cfg.Pipeline.Queue = 1, 64
	bs := &blockingScorer{fakeScorer: newFake(), release: make(chan struct{})}
	d := startDaemon(t, cfg, bs)
	sub := testClient(t, m.url(), "inflight-sub", false)
	col := collect(t, sub, "linnet/+/prediction")
	c := testClient(t, m.url(), "inflight-pub", true)
	const n = 30
	for i := 0; i < n; i++ {
		publish(t, c, "linnet/away/features", readingJSON(i, []float32{1, 2, 3}, false))
	}
	for d.s.queueDepth() < n-1 { // one is with the blocked worker
		time.Sleep(5 * time.Millisecond)
	}
	m.stop()
	for d.s.connected.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	close(bs.release)
	// The worker publishes until the bound, then waits for a slot.
	for d.s.pub.Inflight() < 5 {
		time.Sleep(5 * time.Millisecond)
	}
	if got, q := d.s.pub.Inflight(), d.s.queueDepth(); got != 5 || q < n-7 {
		t.Errorf("in flight %d (bound 5), queued %v", got, q)
	}
	m.start()
	col.waitIDs(t, n)
	if got := testutil.ToFloat64(d.s.m.pubErrors); got != 0 {
		t.Errorf("publish errors %v", got)
	}
}
