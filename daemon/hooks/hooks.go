// Package hooks is how extensions plug into the daemon, in the manner of
// mochi-mqtt's Hook and Hooks: a hook says which events it provides, the
// daemon calls every hook that provides an event at fixed points, and a
// hook sees the service only through Host — the serving model, a publish
// function, routes and subscriptions, metrics and a logger — never the
// service itself. Home Assistant discovery (daemon/homeassistant) is one;
// monitoring (daemon/drift) another.
//
// A daemon serving several models ([[models]]) gives each model its own
// hooks, each with a Host bound to that model: its name, its serving
// state, its part of the store. Metrics a hook registers are shared by
// the instances of every model (Register).
package hooks

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/store"
)

// Events a hook may provide.
const (
	// OnConnect: after every (re)connection, once the readings'
	// subscriptions are in place. Subscribe the hook's own topics here.
	OnConnect byte = iota
	// OnServed: a worker published a device's prediction. Called on the
	// worker's goroutine: it must not block or publish.
	OnServed
	// OnPredicted: a worker published a device's prediction of a
	// message's readings (finite, so their features are too), before the
	// learner sees their labels. Called on the worker's goroutine: it
	// must not block, publish or wait for a contended lock.
	OnPredicted
)

// Hook is one extension.
type Hook interface {
	ID() string
	Provides(event byte) bool
	// Init is called once, before the client connects (a persistent
	// session may deliver at once): register routes and metrics.
	Init(h Host) error
	// Run runs the hook's own work until ctx ends (the daemon's shutdown
	// starts); the daemon waits for it before it closes its intake.
	Run(ctx context.Context) error
	// Filters are subscriptions the daemon makes for the hook on every
	// connection, with its own, retried until the broker accepts them.
	Filters() map[string]byte
	OnConnect(ctx context.Context)
	OnServed(device string, m *serving.Model)
	OnPredicted(device string, m *serving.Model, rs []wire.Reading, preds []float32)
}

// Host is what a hook sees of the daemon and of the model it serves.
type Host interface {
	Gateway() string
	Version() string // the software's
	// Model is the name of the hook's model ("default" without [[models]]).
	Model() string
	// Topic fills a topic template of the configuration: {gateway},
	// {model}, and {device} when device is not empty.
	Topic(tmpl, device string) string
	Topics() Topics
	// Current is the serving model, nil before the first.
	Current() *serving.Model
	// Owner is the serving state itself, for a hook that installs models
	// (OTA): through its methods only.
	Owner() *serving.Owner
	// Store is the model's part of the store; Trust the keys models must
	// be signed by.
	Store() *store.Model
	Trust() []ed25519.PublicKey
	// PublishStatus publishes the gateway's retained status message now.
	PublishStatus(ctx context.Context) error
	// Publish queues a QoS 1 publish through the daemon's bounded
	// publisher; it waits only for room, and fails when ctx ends.
	Publish(ctx context.Context, topic string, retained bool, payload []byte) error
	// Route sends the messages of filter to handle, on paho's goroutine:
	// handle must not block. They are acknowledged in their turn after it
	// returns. Every handler routed for a filter gets its messages.
	Route(filter string, handle func(topic string, payload []byte, retained bool))
	// Subscribe subscribes the filters and checks the broker's answer,
	// with the daemon's deadline.
	Subscribe(ctx context.Context, filters map[string]byte) error
	Registry() prometheus.Registerer
	Log() *slog.Logger
}

// Topics are the daemon's output topic templates.
type Topics struct {
	Prediction, Errors, Status string
}

// Register registers c with reg, or returns the collector another
// instance of the hook (another model's) registered under the same
// description, to use instead.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
		if ec, ok := are.ExistingCollector.(C); ok {
			return ec, nil
		}
	}
	return c, err
}

// Base provides nothing: embed it and override what a hook needs.
type Base struct{}

func (Base) Provides(byte) bool              { return false }
func (Base) Init(Host) error                 { return nil }
func (Base) Run(ctx context.Context) error   { <-ctx.Done(); return nil }
func (Base) OnConnect(context.Context)       {}
func (Base) OnServed(string, *serving.Model) {}
func (Base) Filters() map[string]byte        { return nil }

func (Base) OnPredicted(string, *serving.Model, []wire.Reading, []float32) {}

// Hooks fans the events out to the hooks that provide them.
type Hooks struct {
	all       []Hook
	served    []Hook // the hot paths' lists, fixed after Add
	predicted []Hook
	connect   []Hook
}

// Add registers h; Init initializes every hook, later.
func (hs *Hooks) Add(h Hook) {
	hs.all = append(hs.all, h)
	if h.Provides(OnServed) {
		hs.served = append(hs.served, h)
	}
	if h.Provides(OnPredicted) {
		hs.predicted = append(hs.predicted, h)
	}
	if h.Provides(OnConnect) {
		hs.connect = append(hs.connect, h)
	}
}

// Init initializes every hook with host, in order.
func (hs *Hooks) Init(host Host) error {
	for _, h := range hs.all {
		if err := h.Init(host); err != nil {
			return fmt.Errorf("%s: %w", h.ID(), err)
		}
	}
	return nil
}

// Filters merges the hooks' subscriptions.
func (hs *Hooks) Filters() map[string]byte {
	f := map[string]byte{}
	for _, h := range hs.all {
		for k, v := range h.Filters() {
			f[k] = v
		}
	}
	return f
}

// OnPredicted calls every hook providing OnPredicted.
func (hs *Hooks) OnPredicted(device string, m *serving.Model, rs []wire.Reading, preds []float32) {
	for _, h := range hs.predicted {
		h.OnPredicted(device, m, rs, preds)
	}
}

// All lists the hooks, in the order they were added.
func (hs *Hooks) All() []Hook { return hs.all }

// OnConnect calls every hook providing OnConnect.
func (hs *Hooks) OnConnect(ctx context.Context) {
	for _, h := range hs.connect {
		h.OnConnect(ctx)
	}
}

// OnServed calls every hook providing OnServed.
func (hs *Hooks) OnServed(device string, m *serving.Model) {
	for _, h := range hs.served {
		h.OnServed(device, m)
	}
}
