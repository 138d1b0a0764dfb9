package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// embeddedBroker is the default broker when none is configured: mochi on a
// loopback address, allowing every client (it listens where only this
// machine can reach it; configure a real broker for anything wider).
type embeddedBroker struct {
	srv *mqtt.Server
}

// startBroker serves on ln, which it owns from then on. maxPacket bounds
// every packet a client may send (0: no limit): an MQTT 3.1.1 client
// cannot announce a limit, so the broker is where oversize readings and
// model files are stopped before anyone buffers them.
func startBroker(ln net.Listener, maxPacket int, log *slog.Logger) (*embeddedBroker, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(maxPacket)
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: log.With("component", "broker"), Capabilities: caps})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("linnet", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &embeddedBroker{srv: srv}, nil
}

// Run keeps the broker until ctx ends, then closes it.
func (b *embeddedBroker) Run(ctx context.Context) error {
	<-ctx.Done()
	return b.srv.Close()
}
