package daemon

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/drift"
	"github.com/linnet-edge/linnet/daemon/mqttc"
	"github.com/linnet-edge/linnet/daemon/ota"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/simd"
	"github.com/linnet-edge/linnet/store"
)

// Service is one running linnet daemon. Build it with New, give it a model
// (SetScorer, or the store on Run), then Run it once.
type Service struct {
	cfg  *Config
	base *slog.Logger // for other components (broker, store)
	log  *slog.Logger
	m    *metrics

	// models are the served models, in the configuration's order; the
	// readings of each subscription go to its model.
	models []*served
	// own, ota and drift are the first model's (the "default" model
	// without [[models]]): SetScorer and SetLearner serve through own.
	own   *serving.Owner
	ota   *ota.OTA            // nil when ota.enabled is off
	drift *drift.Hook         // the monitoring hook and live view
	trust []ed25519.PublicKey // --trust keys, read once at Run

	subs   []sub
	queues []chan job
	acks   acks         // acknowledgements, released in arrival order (acks.go)
	queued atomic.Int64 // bytes of readings taken in and not yet released, against intakeBytes
	// intakeBytes and answerBytes share pipeline.queue_bytes between the
	// readings held until done and the answers waiting for the broker's
	// acknowledgement (budgetShares).
	intakeBytes, answerBytes int64
	intakeMu                 sync.RWMutex
	closed                   bool // intake closed, under intakeMu
	errQ                     chan errReport

	runCtx    context.Context
	client    paho.Client
	pub       *mqttc.Publisher
	connects  atomic.Int64
	connected atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once
	notify    *notifier
	routes    map[string][]routeFunc // the hooks' routes by filter, set before Connect

	metricsAddr string
	brokerURL   string

	processed   atomic.Int64 // messages the workers finished, for the watchdog
	connectedAt atomic.Int64 // unix ns of the last connection
	lastBeat    int64        // processed at the last watchdog tick, housekeeping only

	hs        healthState  // checkpoint and store problems (health.go)
	ckptFails atomic.Int64 // checkpoints that failed
	diverged  atomic.Int64 // times the watchdog froze the learner
	recreated atomic.Int64 // times the store file was written back (storehealth.go)
	repair    string       // what the store repaired at start, "" if nothing
	// lastProblems were in the last status published by housekeeping.
	lastProblems string

	store  *store.Store    // open while Run runs
	broker *embeddedBroker // nil with an external broker
}

type sub struct {
	mdl     *served // the model the readings go to
	filter  string  // as subscribed, $share prefix included
	match   string  // the plain filter, matched against incoming topics
	format  string
	level   int // the device's topic level
	explain int // top contributions for every reading (0: when asked)
}

type job struct {
	sub     *sub
	topic   string
	device  string
	payload []byte
	t       *ticket // done once answered and learned from
}

type errReport struct {
	topic string
	rj    *wire.Reject
	t     *ticket // done once the report is published
}

// New checks cfg (see Config.Validate) and builds a service.
func New(cfg *Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, base: log, log: log.With("component", "daemon"), ready: make(chan struct{}), notify: newNotifier()}
	n := cfg.Pipeline.Workers
	per := cfg.Pipeline.Queue / n
	s.queues = make([]chan job, n)
	for i := range s.queues {
		s.queues[i] = make(chan job, per)
	}
	// As many error reports as readings may wait: a flood of rejections
	// (queue_full after a pause) is reported, not only counted.
	s.errQ = make(chan errReport, max(1024, cfg.Pipeline.Queue))
	s.acks.onRelease = func(n int) { s.queued.Add(-int64(n)) }
	s.m = newMetrics(s.queueDepth, func() float64 { return float64(per * n) }, func() float64 {
		if s.pub == nil {
			return 0
		}
		return float64(s.pub.Inflight())
	}, func() float64 {
		if s.pub == nil {
			return 0
		}
		return float64(s.pub.Retries())
	})
	s.m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_queue_bytes", Help: "Payload bytes taken in and not yet done (bounded by pipeline.queue_bytes)."},
			func() float64 { return float64(s.queued.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_unacked_messages", Help: "Messages received and not yet acknowledged to the broker (acknowledged in arrival order once done)."},
			func() float64 { return float64(s.acks.unacked.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_unacked_bytes", Help: "Payload bytes of the messages not yet acknowledged to the broker, refused ones included (held until their turn)."},
			func() float64 { return float64(s.acks.held.Load()) }))
	for op, k := range simd.Kernels() {
		s.m.kernels.WithLabelValues(op, k).Set(1)
	}
	shared := sharedPrediction(cfg)
	for _, mc := range cfg.served {
		mdl := s.newServed(mc, shared)
		s.models = append(s.models, mdl)
		for _, sc := range mc.Subscriptions {
			lvl, _ := deviceLevel(sc.Topic)
			f := sc.Topic
			if cfg.MQTT.ShareGroup != "" {
				f = "$share/" + cfg.MQTT.ShareGroup + "/" + f
			}
			s.subs = append(s.subs, sub{mdl: mdl, filter: f, match: sc.Topic, format: sc.Format, level: lvl, explain: sc.Explain})
		}
	}
	s.own, s.ota, s.drift = s.models[0].own, s.models[0].ota, s.models[0].drift
	s.learnMetrics()
	return s, nil
}

// SetScorer swaps the serving model atomically: a worker that already
// holds the old one finishes its message with it, nothing is dropped.
func (s *Service) SetScorer(sc serving.Scorer) { s.own.Serve(sc, serving.Meta{}) }

// SetModel is SetScorer with what the model says about itself (its
// target, its loss) for the guard and the hooks.
func (s *Service) SetModel(sc serving.Scorer, meta serving.Meta) { s.own.Serve(sc, meta) }

// SetLearner enables online learning with l (built on the serving model)
// and checkpoints through c (may be nil).
func (s *Service) SetLearner(l serving.Learner, c serving.Checkpointer) { s.own.SetLearner(l, c) }

// Ready is closed once the service is connected and subscribed the first
// time.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// MetricsAddr is the metrics listener's address, once Ready.
func (s *Service) MetricsAddr() string { return s.metricsAddr }

// BrokerURL is the broker the service connects to, once Ready.
func (s *Service) BrokerURL() string { return s.brokerURL }

func (s *Service) queueDepth() float64 {
	n := 0
	for _, q := range s.queues {
		n += len(q)
	}
	return float64(n)
}

// topic fills a topic template: {gateway}, {model} when model is not
// empty, {device} when device is not.
func (s *Service) topic(tmpl, model, device string) string {
	t := strings.ReplaceAll(tmpl, "{gateway}", s.cfg.Gateway)
	if model != "" {
		t = strings.ReplaceAll(t, "{model}", model)
	}
	if device != "" {
		t = strings.ReplaceAll(t, "{device}", device)
	}
	return t
}

// Run serves until ctx ends, then shuts down in order: stop intake, drain
// the queues under pipeline.drain_timeout, checkpoint, publish offline,
// disconnect under mqtt.disconnect_timeout, stop the embedded broker.
func (s *Service) Run(ctx context.Context) error {
	cfg := s.cfg
	// A background part (embedded broker, metrics server) that fails stops
	// the service the same orderly way as a signal.
	ctx, failed := context.WithCancel(ctx)
	defer failed()
	s.runCtx = ctx
	bgCtx, bgCancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	var bgErr error
	var bgErrOnce sync.Once
	goBG := func(name string, f func(context.Context) error) {
		bg.Add(1)
		go func() {
			defer bg.Done()
			if err := f(bgCtx); err != nil {
				bgErrOnce.Do(func() { bgErr = fmt.Errorf("%s: %w", name, err) })
				s.log.Error("stopping: part failed", "part", name, "err", err)
				failed()
			}
		}()
	}
	defer func() { bgCancel(); bg.Wait() }()

	st, err := s.openStore()
	if err != nil {
		return err
	}
	s.store = st
	defer func() {
		// The store closes last, after the final checkpoint.
		if err := st.Close(); err != nil {
			s.log.Error("close store", "err", err)
		}
	}()

	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the collector works harder as the heap nears the
		// byte budget plus room for the rest, instead of letting garbage
		// double the peak (GOGC). It is not a cap: live data decides.
		lim := cfg.Pipeline.QueueBytes + 48<<20
		debug.SetMemoryLimit(lim)
		s.log.Info("memory", "queue_bytes", cfg.Pipeline.QueueBytes, "soft_limit", lim)
	}
	s.brokerURL = mqttc.BrokerURL(cfg.MQTT.Broker)
	s.intakeBytes, s.answerBytes = budgetShares(cfg.Pipeline.QueueBytes, cfg.MQTT.Broker == "")
	if cfg.MQTT.Broker == "" {
		// The listener is bound here, so a port taken fails clearly and at
		// once, and a test can ask for port 0.
		ln, err := net.Listen("tcp", cfg.MQTT.Embedded)
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		lim := s.brokerLimits()
		if lim.auth, err = s.brokerAuthHook(); err != nil {
			ln.Close()
			return err
		}
		b, err := startBroker(ln, lim, s.base)
		if err != nil {
			return err
		}
		s.broker = b
		s.m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_broker_dropped_total",
			Help: "QoS 1 messages the embedded broker dropped after acknowledging them to their sender (in-flight quota or write queue full)."},
			func() float64 { in, wr := b.dropped(); return float64(in + wr) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_broker_refused_total",
				Help: "Publishes the embedded broker refused without acknowledging them, after waiting for the daemon to catch up (flow control)."},
				func() float64 { return float64(b.refused()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_broker_held_bytes",
				Help: "Reading bytes the embedded broker and the daemon hold for the daemon, against its share of pipeline.queue_bytes (flow control)."},
				func() float64 { return float64(b.held()) }))
		goBG("embedded broker", b.Run)
		s.brokerURL = "tcp://" + ln.Addr().String()
		s.log.Info("embedded broker listening", "addr", ln.Addr().String())
	}

	opts, err := s.clientOptions()
	if err != nil {
		return err
	}
	s.client = paho.NewClient(opts)
	s.pub = mqttc.NewPublisher(s.client, byte(cfg.MQTT.QoS), cfg.MQTT.MaxInflight, cfg.MQTT.OpTimeout, func(err error) {
		s.m.pubErrors.Inc()
	})
	// Answers to big batches are big too: what waits for the broker's
	// acknowledgement is bounded in bytes as well.
	s.pub.SetMaxBytes(s.answerBytes)
	if cfg.Metrics.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		s.metricsAddr = ln.Addr().String()
		goBG("metrics", func(ctx context.Context) error {
			return serveHTTP(ctx, ln, s.m.reg, s.health, s.liveView())
		})
	}
	// Hooks register their routes before Connect. Their goroutines stop
	// with ctx and are waited for before intake closes. After the last
	// error return, so that one leaves nothing running.
	for _, mdl := range s.models {
		if err := mdl.hooks.Init(host{s, mdl}); err != nil {
			return fmt.Errorf("model %s: %w", mdl.name, err)
		}
	}
	ackStop, ackCancel := context.WithCancel(context.Background())
	defer ackCancel()
	ackDone := make(chan struct{})
	go func() { s.pub.Run(ackStop); close(ackDone) }()

	workCtx, workCancel := context.WithCancel(context.Background())
	defer workCancel()
	var workers sync.WaitGroup
	for _, q := range s.queues {
		workers.Add(1)
		go func() { defer workers.Done(); s.worker(workCtx, q) }()
	}
	repDone := make(chan struct{})
	go func() { s.reporter(workCtx); close(repDone) }()
	var hookWG sync.WaitGroup
	for _, mdl := range s.models {
		for _, h := range mdl.hooks.All() {
			hookWG.Add(1)
			go func() {
				defer hookWG.Done()
				if err := h.Run(ctx); err != nil {
					s.log.Error("hook stopped", "hook", h.ID(), "model", mdl.name, "err", err)
				}
			}()
		}
	}

	// With ConnectRetry the token completes only once connected; OnConnect
	// subscribes and signals readiness, so nothing waits here.
	s.client.Connect()
	s.log.Info("connecting", "broker", s.brokerURL, "client_id", cfg.MQTT.ClientID, "gateway", cfg.Gateway,
		"qos", cfg.MQTT.QoS, "clean_session", cfg.MQTT.CleanSession, "share_group", cfg.MQTT.ShareGroup)

	s.housekeep(ctx)
	hookWG.Wait()

	// Shutdown, in order.
	s.notify.send("STOPPING=1")
	s.log.Info("stopping: closing intake")
	if cfg.MQTT.ShareGroup != "" && s.client.IsConnectionOpen() {
		// Leave the group so the broker gives our share to the others
		// instead of queueing it for this session.
		filters := make([]string, len(s.subs))
		for i, sb := range s.subs {
			filters[i] = sb.filter
		}
		if err := mqttc.Wait(context.Background(), s.client.Unsubscribe(filters...), cfg.MQTT.OpTimeout); err != nil {
			s.log.Warn("unsubscribe", "err", err)
		}
	}
	s.intakeMu.Lock()
	s.closed = true
	for _, q := range s.queues {
		close(q)
	}
	s.intakeMu.Unlock()

	drained := make(chan struct{})
	go func() { workers.Wait(); close(drained) }()
	dt := time.NewTimer(cfg.Pipeline.DrainTimeout)
	select {
	case <-drained:
		dt.Stop()
	case <-dt.C:
		s.log.Warn("drain deadline passed; abandoning queued messages", "left", s.queueDepth())
		workCancel()
		<-drained
	}
	close(s.errQ)
	// The reporter publishes what is left unless the drain deadline passed.
	<-repDone

	s.checkpointAll()

	// No publisher is left: let the acker finish under the deadline.
	s.pub.Close()
	at := time.NewTimer(cfg.MQTT.DisconnectTimeout)
	select {
	case <-ackDone:
		at.Stop()
	case <-at.C:
		s.log.Warn("unacknowledged publishes left at shutdown", "inflight", s.pub.Inflight())
		ackCancel()
		<-ackDone
	}

	if s.client.IsConnectionOpen() {
		t := s.client.Publish(s.topic(cfg.Topics.Status, "", ""), 1, true, s.status("offline"))
		if err := mqttc.Wait(context.Background(), t, cfg.MQTT.OpTimeout); err != nil {
			s.log.Warn("publish offline status", "err", err)
		}
	}
	s.disconnect()
	s.m.connected.Set(0)
	s.log.Info("stopped")
	bgCancel()
	bg.Wait()
	return bgErr
}

// disconnect calls paho's Disconnect, which can hang (eclipse/paho.mqtt.golang#501), in a
// goroutine bounded by mqtt.disconnect_timeout.
func (s *Service) disconnect() {
	if d := s.cfg.MQTT.DisconnectTimeout; !mqttc.Disconnect(s.client, d) {
		s.log.Warn("disconnect did not finish in time", "timeout", d)
	}
}

// housekeep runs until ctx ends: checkpoints, status refreshes, watchdog.
func (s *Service) housekeep(ctx context.Context) {
	ck := time.NewTicker(s.cfg.Learning.CheckpointInterval)
	defer ck.Stop()
	drops := time.NewTicker(5 * time.Second)
	defer drops.Stop()
	var wd <-chan time.Time
	if iv := watchdogInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		wd = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ck.C:
			s.checkStore()
			if s.checkpointAll() && s.connected.Load() || s.problemsChanged() {
				// The status message carries the progressive loss and
				// the problems.
				s.client.Publish(s.topic(s.cfg.Topics.Status, "", ""), 1, true, s.status("online"))
			}
		case <-drops.C:
			if s.broker != nil {
				s.broker.reportDrops()
			}
		case <-wd:
			if s.healthyWorkers() {
				s.notify.send("WATCHDOG=1")
			}
		}
	}
}

// healthyWorkers reports whether the pipeline moves: it is wedged when,
// while connected, messages wait in the queues and no worker finished one
// since the last watchdog tick. Then the watchdog ping is withheld and
// systemd restarts the service. (While the broker is away the workers may
// wait on the in-flight bound; that is not counted as wedged.)
func (s *Service) healthyWorkers() bool {
	done := s.processed.Load()
	moved := done != s.lastBeat
	s.lastBeat = done
	return moved || s.queueDepth() == 0 || !s.connected.Load()
}

func (s *Service) clientOptions() (*paho.ClientOptions, error) {
	m := &s.cfg.MQTT
	c := m.Conn()
	c.Broker = s.brokerURL
	o, err := mqttc.Options(c)
	if err != nil {
		return nil, err
	}
	if a, ok := s.brokerAuthed(); ok {
		o.SetUsername(internalUser).SetPassword(string(a.internal))
	}
	o.SetCleanSession(m.CleanSession).
		SetOrderMatters(true). // the handler never blocks, and order per device is kept
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(m.MaxReconnect).
		SetBinaryWill(s.topic(s.cfg.Topics.Status, "", ""), s.status("offline"), 1, true).
		SetDefaultPublishHandler(s.onMessage).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.connected.Store(false)
			s.m.connected.Set(0)
			if up := time.Since(time.Unix(0, s.connectedAt.Load())); up < 5*time.Second {
				// A broker drops the older of two clients with one id: two
				// processes sharing it kick each other off in a loop.
				s.log.Warn("connection lost soon after connecting: is another client using this client id?",
					"err", err, "client_id", m.ClientID, "connected_for", up.Round(time.Millisecond))
				return
			}
			s.log.Warn("connection lost", "err", err)
		})
	return o, nil
}

// onConnect runs in its own goroutine on every (re)connection: with a clean
// session, or a broker that lost its state, nothing is subscribed any more,
// so subscribe every time and check the SUBACK.
func (s *Service) onConnect(c paho.Client) {
	s.connectedAt.Store(time.Now().UnixNano())
	if n := s.connects.Add(1); n > 1 {
		s.m.reconnects.Inc()
	}
	s.intakeMu.RLock()
	closed := s.closed
	s.intakeMu.RUnlock()
	if closed {
		return
	}
	filters := make(map[string]byte, len(s.subs))
	for _, sb := range s.subs {
		filters[sb.filter] = byte(s.cfg.MQTT.QoS)
	}
	for _, mdl := range s.models {
		for f, q := range mdl.hooks.Filters() {
			filters[f] = q
		}
	}
	backoff := time.Second
	for {
		err := mqttc.Subscribe(s.runCtx, c, filters, s.cfg.MQTT.OpTimeout)
		if err == nil {
			break
		}
		s.m.subackFail.Inc()
		s.log.Error("subscribe", "err", err)
		if s.runCtx.Err() != nil || !c.IsConnectionOpen() {
			return // the next connection tries again
		}
		select {
		case <-time.After(backoff):
		case <-s.runCtx.Done():
			return
		}
		backoff = min(2*backoff, s.cfg.MQTT.MaxReconnect)
	}
	for _, mdl := range s.models {
		mdl.hooks.OnConnect(s.runCtx)
	}
	s.connected.Store(true)
	s.m.connected.Set(1)
	t := c.Publish(s.topic(s.cfg.Topics.Status, "", ""), 1, true, s.status("online"))
	if err := mqttc.Wait(s.runCtx, t, s.cfg.MQTT.OpTimeout); err != nil {
		s.log.Warn("publish status", "err", err)
	}
	s.log.Info("connected and subscribed", "broker", s.brokerURL, "connection", s.connects.Load())
	s.readyOnce.Do(func() {
		close(s.ready)
		s.notify.send("READY=1\nSTATUS=serving")
	})
}

// onMessage is paho's handler. It must never block (a blocked handler
// stalls the client: missed pings, reconnect loops, eclipse/paho.mqtt.golang#208): it
// only routes the message to its device's queue and returns.
//
// Queue-full policy: past the queue's count or its byte budget
// (pipeline.queue, pipeline.queue_bytes), drop the new message, count it
// as queue_full and report it on the errors topic. The broker is not
// slowed down by a stuck gateway, and what is dropped is visible.
//
// Acknowledgement (acks.go): a message is acknowledged once it is done —
// answered (a prediction or an error report, published and acknowledged)
// and learned from — in arrival order. Once intake is closed at shutdown,
// nothing more is taken in or acknowledged, so the broker delivers the
// rest again to the persistent session when the daemon comes back.
func (s *Service) onMessage(_ paho.Client, msg paho.Message) {
	s.intakeMu.RLock()
	defer s.intakeMu.RUnlock()
	if s.closed {
		return
	}
	s.m.in.Inc()
	topic := msg.Topic()
	reject := func(rj *wire.Reject) { s.report(topic, rj, s.acks.add(msg, 0)) }
	var sb *sub
	for i := range s.subs {
		if mqttc.Match(s.subs[i].match, topic) {
			sb = &s.subs[i]
			break
		}
	}
	if sb == nil {
		reject(wire.Rejectf(wire.ReasonBadTopic, "no subscription matches"))
		return
	}
	device, ok := mqttc.Level(topic, sb.level)
	if !ok || device == "" {
		reject(wire.Rejectf(wire.ReasonBadTopic, "no device level"))
		return
	}
	payload := msg.Payload()
	if len(payload) > s.cfg.Payload.MaxBytes {
		reject(wire.Rejectf(wire.ReasonOversize, "%d bytes, at most %d", len(payload), s.cfg.Payload.MaxBytes))
		return
	}
	// Only this handler adds to queued (paho calls it one message at a
	// time); releases only lower it, so the check holds.
	if s.queued.Load()+int64(len(payload)) > s.intakeBytes {
		rj := wire.Rejectf(wire.ReasonQueueFull, "intake byte budget (%d of pipeline.queue_bytes) full, message dropped", s.intakeBytes)
		reject(sb.named(rj, payload))
		return
	}
	s.queued.Add(int64(len(payload)))
	t := s.acks.add(msg, len(payload))
	if t == nil {
		s.queued.Add(-int64(len(payload))) // an empty QoS 0 payload: nothing to hold
	}
	q := s.queues[hashString(device)%uint32(len(s.queues))]
	select {
	case q <- job{sub: sb, topic: topic, device: device, payload: payload, t: t}:
	default:
		s.report(topic, sb.named(wire.Rejectf(wire.ReasonQueueFull, "intake queue full, message dropped"), payload), t)
	}
}

// named gives a rejection of an undecoded JSON reading the reading's id,
// so the sender can tell which one to send again.
func (sb *sub) named(rj *wire.Reject, payload []byte) *wire.Reject {
	if sb.format == "json" {
		rj.ID = wire.PeekID(payload)
	}
	return rj
}

// readingTopic reports whether topic is one of the reading subscriptions'.
func (s *Service) readingTopic(topic string) bool {
	for i := range s.subs {
		if mqttc.Match(s.subs[i].match, topic) {
			return true
		}
	}
	return false
}

// hashString is FNV-1a: a device always lands on the same worker, which
// keeps its readings (and so its learning updates) in order.
func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// report counts a rejection and queues its errors-topic message without
// blocking; when that queue is full the message is dropped (and counted).
func (s *Service) report(topic string, rj *wire.Reject, t *ticket) {
	s.m.rejected.WithLabelValues(rj.Reason).Inc()
	select {
	case s.errQ <- errReport{topic: topic, rj: rj, t: t}:
	default:
		s.m.errDropped.Inc()
		t.done(nil) // counted: the rejection stands without its message
	}
}

func (s *Service) reporter(ctx context.Context) {
	errTopic := s.topic(s.cfg.Topics.Errors, "", "")
	for r := range s.errQ {
		b := wire.AppendError(nil, r.topic, r.rj, time.Now().UnixMilli())
		if err := s.pub.Publish(ctx, errTopic, false, b, r.t.done); err != nil {
			s.m.errDropped.Inc() // shutting down: not acknowledged, delivered again
		}
	}
}

func (s *Service) worker(ctx context.Context, q <-chan job) {
	var buf []byte
	for j := range q {
		if ctx.Err() != nil {
			s.m.pubErrors.Inc()
			continue // drain deadline passed: drop what is left
		}
		buf = s.process(ctx, j, buf[:0])
		s.processed.Add(1)
	}
}

// process decodes, predicts, publishes and learns for one message.
func (s *Service) process(ctx context.Context, j job, buf []byte) []byte {
	start := time.Now()
	mdl := j.sub.mdl
	sv := mdl.own.Current()
	if sv == nil {
		s.report(j.topic, wire.Rejectf(wire.ReasonNoModel, "no active model"), j.t)
		return buf
	}
	rs, batch, rj := wire.Decode(j.sub.format, j.payload, sv.Schema, s.cfg.Payload.MaxBatch)
	if rj != nil {
		s.report(j.topic, rj, j.t)
		return buf
	}
	preds := make([]float32, len(rs))
	if sv.Batch != nil && len(rs) > 1 {
		n := len(sv.Schema.Features)
		rows := make([]float32, 0, len(rs)*n)
		for i := range rs {
			rows = append(rows, rs[i].X...)
		}
		sv.Batch.PredictBatch(preds, rows)
	} else {
		for i := range rs {
			preds[i] = sv.Scorer.Predict(rs[i].X)
		}
	}
	mdl.own.PredictDevice(j.device, sv, rs, preds)
	for i, p := range preds {
		if math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
			s.report(j.topic, &wire.Reject{Reason: wire.ReasonNonFinite, Detail: fmt.Sprintf("prediction %d is %v: features out of the model's range", i, p), ID: rs[i].ID}, j.t)
			return buf
		}
	}
	s.preprocessed(sv, j.sub, rs)
	version := sv.Scorer.Version()
	now := time.Now().UnixMilli()
	if batch {
		buf = wire.AppendBatch(buf, rs, preds, j.device, mdl.name, sv.Schema.Logistic, version, now)
	} else {
		buf = wire.AppendPrediction(buf, &rs[0], j.device, mdl.name, preds[0], sv.Schema.Logistic, version, now)
	}
	mdl.predictions.Add(float64(len(rs)))
	s.m.predictSec.Observe(time.Since(start).Seconds())
	// Done after two steps: the broker's acknowledgement of the
	// prediction, and the learning step below.
	j.t.hold()
	if err := s.pub.Publish(ctx, strings.ReplaceAll(mdl.predTopic, "{device}", j.device), false, append([]byte(nil), buf...), j.t.done); err != nil {
		s.m.pubErrors.Inc() // shutting down: not acknowledged, delivered again
		return buf
	}
	mdl.hooks.OnServed(j.device, sv)
	mdl.hooks.OnPredicted(j.device, sv, rs, preds) // OTA's shadow readings and guard, drift: before learning
	s.learn(mdl, rs, j)
	j.t.done(nil)
	return buf
}

// learn feeds labelled readings to the learner and counts; a checkpoint
// every learning.checkpoint_every updates.
func (s *Service) learn(mdl *served, rs []wire.Reading, j job) {
	r := mdl.own.LearnDevice(j.device, rs)
	s.learned(r, rs, j.topic, j.t)
	if r.N == 0 {
		return
	}
	mdl.learned.Add(float64(r.N))
	if !math.IsNaN(r.Progressive) {
		mdl.loss.Set(r.Progressive)
	}
	if every := int64(s.cfg.Learning.CheckpointEvery); every > 0 && r.Updates/every > (r.Updates-int64(r.N))/every {
		s.checkpoint(mdl)
	}
	if r.Err != nil {
		s.log.Error("re-quantize", "model", mdl.name, "err", r.Err)
	}
}

// checkpoint saves mdl's learner state through the store; it reports
// whether one was written.
func (s *Service) checkpoint(mdl *served) bool {
	r, err := mdl.own.Checkpoint()
	s.checkpointed(mdl, r, err)
	if r.Written {
		mdl.checkpoints.Inc()
	}
	return r.Written
}

// checkpointAll checkpoints every model; it reports whether any was
// written.
func (s *Service) checkpointAll() bool {
	any := false
	for _, mdl := range s.models {
		if s.checkpoint(mdl) {
			any = true
		}
	}
	return any
}

// status is the retained status message (and, with "offline", the will).
func (s *Service) status(state string) []byte {
	st := wire.Status{State: state, Gateway: s.cfg.Gateway, Kernels: simd.Kernels(), TS: time.Now().UnixMilli()}
	for _, mdl := range s.models {
		st.Models = append(st.Models, mdl.status())
	}
	// The first model, as before models had names.
	first := st.Models[0]
	st.ModelVersion, st.Scheme, st.Features = first.ModelVersion, first.Scheme, first.Features
	st.Updates, st.ProgressiveLoss, st.LearningFrozen = first.Updates, first.ProgressiveLoss, first.LearningFrozen
	if first.DevicesResident != nil {
		st.Learning = wire.LearnPerDevice
		st.DevicesResident, st.DevicesPending = first.DevicesResident, first.DevicesPending
	}
	st.StoreRepair = s.repair
	st.Problems = s.problems()
	return st.Encode()
}

// Run builds a service from cfg and runs it until ctx ends.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
