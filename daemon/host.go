package daemon

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"runtime/debug"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/hooks"
	"github.com/linnet-edge/linnet/daemon/mqttc"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/store"
)

// SoftwareVersion is the version hooks announce (Home Assistant's
// sw_version). Empty means the main module's version from the build
// information. The linker can set it:
// -X github.com/linnet-edge/linnet/daemon.SoftwareVersion=...
var SoftwareVersion string

func softwareVersion() string {
	if SoftwareVersion != "" {
		return SoftwareVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// host is the service as one model's hooks see it (hooks.Host).
type host struct {
	s   *Service
	mdl *served
}

func (h host) Gateway() string                  { return h.s.cfg.Gateway }
func (h host) Version() string                  { return softwareVersion() }
func (h host) Model() string                    { return h.mdl.name }
func (h host) Topic(tmpl, device string) string { return h.s.topic(tmpl, h.mdl.name, device) }
func (h host) Current() *serving.Model          { return h.mdl.own.Current() }
func (h host) Owner() *serving.Owner            { return h.mdl.own }
func (h host) Store() *store.Model              { return h.mdl.st }
func (h host) Trust() []ed25519.PublicKey       { return h.s.trust }
func (h host) Registry() prometheus.Registerer  { return h.s.m.reg }
func (h host) Log() *slog.Logger                { return h.s.base.With("model", h.mdl.name) }

func (h host) Topics() hooks.Topics {
	t := h.s.cfg.Topics
	return hooks.Topics{Prediction: t.Prediction, Errors: t.Errors, Status: t.Status}
}

func (h host) Publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	return h.s.pub.Publish(ctx, topic, retained, payload, nil)
}

// Route adds handle to filter's handlers. Every model's hooks route
// before the client connects (Init), so the list is complete by then.
func (h host) Route(filter string, handle func(topic string, payload []byte, retained bool)) {
	s := h.s
	if s.routes == nil {
		s.routes = map[string][]routeFunc{}
	}
	first := len(s.routes[filter]) == 0
	s.routes[filter] = append(s.routes[filter], handle)
	if first {
		s.client.AddRoute(filter, h.routed(filter))
	}
}

// routeFunc is a hook's handler of routed messages.
type routeFunc = func(topic string, payload []byte, retained bool)

// routed adapts filter's handlers to paho's: the message is acknowledged
// in its turn among the readings once they returned.
func (h host) routed(filter string) paho.MessageHandler {
	return func(_ paho.Client, msg paho.Message) {
		defer h.s.acks.ackNow(msg)
		for _, handle := range h.s.routes[filter] {
			handle(msg.Topic(), msg.Payload(), msg.Retained())
		}
	}
}

func (h host) Subscribe(ctx context.Context, filters map[string]byte) error {
	err := mqttc.Subscribe(ctx, h.s.client, filters, h.s.cfg.MQTT.OpTimeout)
	if err != nil {
		h.s.m.subackFail.Inc()
	}
	return err
}

func (h host) PublishStatus(ctx context.Context) error {
	s := h.s
	return mqttc.Wait(ctx, s.client.Publish(s.topic(s.cfg.Topics.Status, "", ""), 1, true, s.status("online")), s.cfg.MQTT.OpTimeout)
}
