package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// embeddedBroker is the default broker when none is configured: mochi on a
// loopback address, allowing every client (it listens where only this
// machine can reach it; configure a real broker for anything wider).
type embeddedBroker struct {
	srv *mqtt.Server
	log *slog.Logger
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
}

func (s *Service) brokerLimits() brokerLimits {
	n := s.cfg.Payload.MaxBytes
	if s.cfg.OTA.Enabled {
		n = max(n, s.cfg.OTA.MaxBytes)
	}
	p := &s.cfg.Pipeline
	return brokerLimits{maxPacket: n + 64<<10, inflight: min(65535, p.Queue+p.Workers+s.cfg.MQTT.MaxInflight)}
}

// startBroker serves on ln, which it owns from then on. The packet limit
// stops oversize readings and model files at the broker, before anyone
// buffers them: an MQTT 3.1.1 client cannot announce a limit.
func startBroker(ln net.Listener, lim brokerLimits, log *slog.Logger) (*embeddedBroker, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(lim.maxPacket)
	caps.MaximumInflight = uint16(lim.inflight)
	caps.MaximumClientWritesPending = int32(lim.inflight)
	b := &embeddedBroker{log: log.With("component", "broker")}
	b.srv = mqtt.New(&mqtt.Options{InlineClient: false, Logger: b.log, Capabilities: caps})
	if err := b.srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
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
	return b.srv.Close()
}
