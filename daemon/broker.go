package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// embeddedBroker is the default broker when none is configured: mochi on a
// loopback address, allowing every client (it listens where only this
// machine can reach it; configure a real broker for anything wider).
type embeddedBroker struct {
	srv  *mqtt.Server
	log  *slog.Logger
	flow *flowHook
	auth mqtt.Hook // brokerauth.go
	// counted at the last report
	lastInflight, lastWrites int64
}

// brokerLimits sizes the broker's per-client limits from linnet's own:
// mochi drops a QoS 1 message (after acknowledging it to its sender) when
// a client has MaximumInflight unacknowledged messages or
// MaximumClientWritesPending writes queued. linnet holds at most its queue,
// its workers' messages and its in-flight publishes unacknowledged, so
// with limits above that sum nothing is dropped on linnet's account.
type brokerLimits struct {
	maxPacket int // bytes; 0: no limit
	inflight  int // messages per client
	// self is the daemon's client id; held reports the payload bytes the
	// daemon holds unacknowledged, and heldMax the most it may (an eighth
	// below the intake's budget, for what is in the socket and the client
	// between the two, uncounted: refused as queue_full otherwise): past it,
	// other clients' publishes wait (their connection is not read, which
	// slows them down through TCP) for at most flowWait, then are refused
	// without an acknowledgement.
	self     string
	reading  func(topic string) bool // the topic is one the daemon takes readings on
	held     func() int64
	heldMax  int64
	flowWait time.Duration
	auth     mqtt.Hook // authentication and ACLs (brokerauth.go)
}

func (s *Service) brokerLimits() brokerLimits {
	n := s.cfg.Payload.MaxBytes
	if s.cfg.OTA.Enabled {
		n = max(n, s.cfg.OTA.MaxBytes)
	}
	p := &s.cfg.Pipeline
	return brokerLimits{maxPacket: n + 64<<10, inflight: min(65535, p.Queue+p.Workers+s.cfg.MQTT.MaxInflight),
		self: s.cfg.MQTT.ClientID, held: s.acks.held.Load, reading: s.readingTopic, heldMax: s.intakeBytes / 8 * 7, flowWait: 5 * time.Second}
}

// startBroker serves on ln, which it owns from then on. The packet limit
// stops oversize readings and model files at the broker, before anyone
// buffers them: an MQTT 3.1.1 client cannot announce a limit.
func startBroker(ln net.Listener, lim brokerLimits, log *slog.Logger) (*embeddedBroker, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(lim.maxPacket)
	caps.MaximumInflight = uint16(lim.inflight)
	caps.MaximumClientWritesPending = int32(lim.inflight)
	b := &embeddedBroker{log: log.With("component", "broker"), auth: lim.auth}
	b.srv = mqtt.New(&mqtt.Options{InlineClient: false, Logger: b.log, Capabilities: caps})
	if b.auth == nil {
		b.auth = new(auth.AllowHook)
	}
	if err := b.srv.AddHook(b.auth, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if lim.held != nil {
		b.flow = &flowHook{lim: lim}
		if err := b.srv.AddHook(b.flow, nil); err != nil {
			ln.Close()
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
	}
	if err := b.srv.AddListener(listeners.NewNet("linnet", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := b.srv.Serve(); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return b, nil
}

// dropped is what the broker dropped after acknowledging it to the sender:
// over a client's in-flight quota, and over its write queue.
func (b *embeddedBroker) dropped() (inflight, writes int64) {
	return atomic.LoadInt64(&b.srv.Info.InflightDropped), atomic.LoadInt64(&b.srv.Info.MessagesDropped)
}

// refused counts publishes refused (not acknowledged to their sender)
// after waiting flowWait for the daemon to catch up.
func (b *embeddedBroker) refused() int64 {
	if b.flow == nil {
		return 0
	}
	return b.flow.refused.Load()
}

// held is the reading bytes flow control counts against the daemon's
// share of pipeline.queue_bytes: held by the daemon or on their way to it.
func (b *embeddedBroker) held() int64 {
	if b.flow == nil {
		return 0
	}
	return b.flow.lim.held() + b.flow.transit.Load()
}

// flowHook is the embedded broker's flow control: the readings a slow
// daemon has not acknowledged stay in memory, the broker's and the
// daemon's, in the same process. Past the daemon's byte budget (the bytes
// it holds plus those on their way to it), a sender's next reading waits
// (its connection is not read meanwhile: TCP slows the sender down) and,
// after flowWait, is refused without an acknowledgement. The daemon's own
// publishes always pass: they are what frees the budget.
type flowHook struct {
	mqtt.HookBase
	lim     brokerLimits
	transit atomic.Int64 // reading bytes admitted and not yet written to the daemon
	refused atomic.Int64
	closing atomic.Bool // the broker is stopping: nobody waits any more
}

func (h *flowHook) ID() string { return "linnet-flow" }

func (h *flowHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnPacketSent || b == mqtt.OnSessionEstablished
}

func (h *flowHook) over() bool { return h.lim.held()+h.transit.Load() > h.lim.heldMax }

func (h *flowHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.ID == h.lim.self || !h.lim.reading(pk.TopicName) {
		return pk, nil
	}
	if h.over() {
		deadline := time.Now().Add(h.lim.flowWait)
		for h.over() {
			if time.Now().After(deadline) || h.closing.Load() {
				h.refused.Add(1)
				return pk, packets.ErrRejectPacket
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	h.transit.Add(int64(len(pk.Payload)))
	return pk, nil
}

func (h *flowHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if cl.ID != h.lim.self || pk.FixedHeader.Type != packets.Publish || !h.lim.reading(pk.TopicName) {
		return
	}
	if h.transit.Add(-int64(len(pk.Payload))) < 0 {
		h.transit.Store(0) // sent again after a reconnection
	}
}

// OnSessionEstablished forgets what was in transit to a previous
// connection of the daemon: a clean session lost it.
func (h *flowHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if cl.ID == h.lim.self {
		h.transit.Store(0)
	}
}

// reportDrops logs what the broker dropped since the last call (mochi says
// so only at debug level, or not at all).
func (b *embeddedBroker) reportDrops() {
	in, wr := b.dropped()
	if in != b.lastInflight || wr != b.lastWrites {
		b.log.Error("embedded broker dropped QoS 1 messages it had acknowledged to their senders",
			"inflight_quota", in-b.lastInflight, "write_queue", wr-b.lastWrites, "total", in+wr)
		b.lastInflight, b.lastWrites = in, wr
	}
}

// Run keeps the broker until ctx ends, then closes it.
func (b *embeddedBroker) Run(ctx context.Context) error {
	<-ctx.Done()
	if b.flow != nil {
		b.flow.closing.Store(true)
	}
	return b.srv.Close()
}
