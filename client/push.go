package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linnet-edge/linnet/daemon/mqttc"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// PushOptions drive Push: `linnet push`.
type PushOptions struct {
	// MQTT is the broker, credentials and TLS; zero timeouts take 10 s.
	MQTT    mqttc.Conn
	Key     ed25519.PrivateKey
	Model   []byte // the .lnm file
	Gateway string // one gateway's topic; empty: the fleet topic
	// Name is the model's name on gateways serving several ([[models]]):
	// its own topics (wire.ModelTopic), and only gateways whose status
	// lists it are waited for. Empty: the topics as configured (the model
	// named "default").
	Name string
	// Rollback wraps the model in a signed rollback file (see
	// model.NewRollback), so gateways serving version From accept it
	// although it is older, once each, until Expires from now (0: 24 h),
	// and, with Gateway set, only that gateway.
	Rollback bool
	From     int64
	Expires  time.Duration
	// Timeout bounds the wait for results after the publish.
	Timeout time.Duration
	// Discover bounds the wait for the gateways' retained status messages
	// before publishing (0: 2 s); it ends earlier once they stop coming.
	Discover time.Duration
	// Expect, when above 0, waits for this many results from distinct
	// gateways instead of one from each gateway found online.
	Expect int
	// Topics, as the gateways are configured; zero values take the
	// defaults of the daemon's configuration.
	FleetTopic, GatewayTopic, ResultTopic, StatusTopic string
	// OnResult, if set, is called for each result as it arrives.
	OnResult func(wire.OTAResult)
}

// PushReport is what Push did and heard back.
type PushReport struct {
	Topic    string           `json:"topic"`
	Model    string           `json:"model,omitempty"` // --name
	Version  int64            `json:"version"`
	Bytes    int              `json:"bytes"`
	Signer   string           `json:"signer"`
	Rollback bool             `json:"rollback"`
	Online   []string         `json:"online"`  // gateways online by their retained status, before the publish
	Offline  []string         `json:"offline"` // gateways whose retained status says offline
	Waited   []string         `json:"waited"`  // gateways whose result was awaited (empty with Expect)
	Results  []wire.OTAResult `json:"results"`
}

// Errors returned by Push, with the report so far.
var (
	// ErrNoResult is returned when an awaited gateway sent no result
	// before the timeout, or fewer than Expect gateways answered.
	ErrNoResult = errors.New("no result before the timeout")
	// ErrUnknownGateway is returned, before anything is published, when
	// --gateway names a gateway no retained status message knows.
	ErrUnknownGateway = errors.New("unknown gateway")
	// ErrOffline is returned when the gateway pushed to is offline: the
	// model is retained and applies when it connects, but no result came.
	ErrOffline = errors.New("gateway offline")
)

// Push finds the gateways from their retained status messages, signs the
// model if it is not already signed by Key (after marking it as a rollback
// if asked), publishes it retained with QoS 1 (so a gateway that connects
// later still gets it), and collects the results for its version: from
// the gateway pushed to, from every gateway found online (a fleet push),
// or from Expect gateways, until the timeout. Results are returned even
// with an error.
func Push(ctx context.Context, o PushOptions) (*PushReport, error) {
	o.FleetTopic = orDefault(o.FleetTopic, wire.DefaultFleetTopic)
	o.GatewayTopic = orDefault(o.GatewayTopic, wire.DefaultGatewayTopic)
	o.ResultTopic = orDefault(o.ResultTopic, wire.DefaultResultTopic)
	o.StatusTopic = orDefault(o.StatusTopic, wire.DefaultStatusTopic)
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Discover <= 0 {
		o.Discover = 2 * time.Second
	}
	if o.MQTT.OpTimeout <= 0 {
		o.MQTT.OpTimeout = 10 * time.Second
	}
	if o.MQTT.ConnectTimeout <= 0 {
		o.MQTT.ConnectTimeout = o.MQTT.OpTimeout
	}
	if o.Gateway != "" && strings.ContainsAny(o.Gateway, "/+#") {
		return nil, fmt.Errorf("gateway %q: no / + or #", o.Gateway)
	}
	file := o.Model
	m, err := model.Decode(file)
	if err != nil {
		return nil, err
	}
	if model.IsRollback(file) {
		return nil, model.ErrLegacyRollback
	}
	pub := o.Key.Public().(ed25519.PublicKey)
	if model.Verify(file, []ed25519.PublicKey{pub}) != nil {
		if file, err = model.Sign(file, o.Key); err != nil {
			return nil, err
		}
	}
	if o.Rollback {
		if o.From <= m.Version {
			return nil, fmt.Errorf("rollback to version %d: --from %d must name the newer version the gateways serve", m.Version, o.From)
		}
		if o.Expires <= 0 {
			o.Expires = 24 * time.Hour
		}
		if file, err = model.NewModelRollback(file, o.From, o.Gateway, o.Name, time.Now().Add(o.Expires), o.Key); err != nil {
			return nil, err
		}
	} else if o.From != 0 || o.Expires != 0 {
		return nil, errors.New("--from and --expires go with --rollback")
	}
	if o.Name != "" {
		if err := store.CheckName(o.Name); err != nil {
			return nil, err
		}
		o.FleetTopic, o.GatewayTopic = wire.ModelTopic(o.FleetTopic, o.Name), wire.ModelTopic(o.GatewayTopic, o.Name)
	}
	rep := &PushReport{Topic: o.FleetTopic, Version: m.Version, Model: o.Name,
		Bytes: len(file), Signer: model.KeyID(pub), Rollback: o.Rollback}
	resTopic := strings.ReplaceAll(o.ResultTopic, "{gateway}", "+")
	if o.Gateway != "" {
		rep.Topic = strings.ReplaceAll(o.GatewayTopic, "{gateway}", o.Gateway)
		resTopic = strings.ReplaceAll(o.ResultTopic, "{gateway}", o.Gateway)
	}

	if o.MQTT.ClientID == "" {
		o.MQTT.ClientID = mqttc.UniqueID("linnet-push")
	}
	opts, err := mqttc.Options(o.MQTT)
	if err != nil {
		return nil, err
	}
	opts.SetCleanSession(true).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	if err := mqttc.Wait(ctx, c.Connect(), o.MQTT.ConnectTimeout); err != nil {
		return nil, fmt.Errorf("connect %s: %w", o.MQTT.Broker, err)
	}
	defer mqttc.Disconnect(c, time.Second)

	// The gateways, from their retained status messages.
	var mu sync.Mutex
	states := map[string]string{}
	others := map[string]bool{} // gateways that do not serve the model --name names
	statusSeen := make(chan struct{}, 1)
	statusFilter := strings.ReplaceAll(o.StatusTopic, "{gateway}", "+")
	c.AddRoute(statusFilter, func(_ paho.Client, msg paho.Message) {
		var st wire.Status
		if json.Unmarshal(msg.Payload(), &st) != nil || st.Gateway == "" {
			return
		}
		mu.Lock()
		states[st.Gateway] = st.State
		if !serves(&st, o.Name) {
			others[st.Gateway] = true // not asked
		} else {
			delete(others, st.Gateway)
		}
		mu.Unlock()
		select {
		case statusSeen <- struct{}{}:
		default:
		}
	})
	if err := mqttc.Subscribe(ctx, c, map[string]byte{statusFilter: 1}, o.MQTT.OpTimeout); err != nil {
		return nil, err
	}
	settle(ctx, statusSeen, o.Discover)
	mu.Lock()
	for g, s := range states {
		if others[g] {
			continue
		}
		if s == "online" {
			rep.Online = append(rep.Online, g)
		} else {
			rep.Offline = append(rep.Offline, g)
		}
	}
	mu.Unlock()
	slices.Sort(rep.Online)
	slices.Sort(rep.Offline)
	known := fmt.Sprintf("online: [%s], offline: [%s]", strings.Join(rep.Online, " "), strings.Join(rep.Offline, " "))
	waitFor := map[string]bool{}
	switch {
	case o.Gateway != "" && slices.Contains(rep.Online, o.Gateway):
		waitFor[o.Gateway] = true
	case o.Gateway != "" && others[o.Gateway]:
		return rep, fmt.Errorf("%w %q: it does not serve a model named %q", ErrUnknownGateway, o.Gateway, o.Name)
	case o.Gateway != "" && !slices.Contains(rep.Offline, o.Gateway):
		return rep, fmt.Errorf("%w %q: no status on %s (%s)", ErrUnknownGateway, o.Gateway, statusFilter, known)
	case o.Gateway == "" && o.Expect == 0:
		for _, g := range rep.Online {
			waitFor[g] = true
		}
	}
	for g := range waitFor {
		rep.Waited = append(rep.Waited, g)
	}
	slices.Sort(rep.Waited)

	got := make(chan struct{}, 1)
	answered := map[string]bool{}
	c.AddRoute(resTopic, func(_ paho.Client, msg paho.Message) {
		var r wire.OTAResult
		if json.Unmarshal(msg.Payload(), &r) != nil || r.Version == nil || *r.Version != m.Version {
			return
		}
		if o.Name != "" && r.Model != o.Name && (r.Model != "" || o.Name != store.DefaultModel) {
			return // another model's decision about a file of the same version
		}
		mu.Lock()
		rep.Results = append(rep.Results, r)
		answered[r.Gateway] = true
		mu.Unlock()
		if o.OnResult != nil {
			o.OnResult(r)
		}
		select {
		case got <- struct{}{}:
		default:
		}
	})
	// Subscribe to the results before publishing, so none is missed.
	if err := mqttc.Subscribe(ctx, c, map[string]byte{resTopic: 1}, o.MQTT.OpTimeout); err != nil {
		return rep, err
	}
	if err := mqttc.Wait(ctx, c.Publish(rep.Topic, 1, true, file), o.MQTT.OpTimeout); err != nil {
		return rep, fmt.Errorf("publish to %s: %w", rep.Topic, err)
	}
	if o.Gateway != "" && len(waitFor) == 0 {
		return rep, fmt.Errorf("%w: %s: the model is retained on %s and applies when it connects", ErrOffline, o.Gateway, rep.Topic)
	}
	complete := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if o.Expect > 0 && o.Gateway == "" {
			return len(answered) >= o.Expect
		}
		for g := range waitFor {
			if !answered[g] {
				return false
			}
		}
		return true
	}
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	for !complete() {
		select {
		case <-got:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	rep.Results = slices.Clone(rep.Results)
	var silent []string
	for _, g := range rep.Waited {
		if !answered[g] {
			silent = append(silent, g)
		}
	}
	switch {
	case len(silent) > 0:
		return rep, fmt.Errorf("%w (%v): %s", ErrNoResult, o.Timeout, strings.Join(silent, " "))
	case o.Expect > 0 && o.Gateway == "" && len(answered) < o.Expect:
		return rep, fmt.Errorf("%w (%v): %d of %d expected gateways answered", ErrNoResult, o.Timeout, len(answered), o.Expect)
	}
	return rep, ctx.Err()
}

// serves reports whether a gateway's status lists the model named name
// ("": the default one, which every gateway serves; a gateway from before
// models had names serves only "default").
func serves(st *wire.Status, name string) bool {
	if name == "" || len(st.Models) == 0 && name == store.DefaultModel {
		return true
	}
	for _, m := range st.Models {
		if m.Name == name {
			return true
		}
	}
	return false
}

// settle waits until no message was seen for a short quiet spell (the
// retained messages come right after the SUBACK), at most max.
func settle(ctx context.Context, seen <-chan struct{}, max time.Duration) {
	const quiet = 250 * time.Millisecond
	end := time.NewTimer(max)
	defer end.Stop()
	q := time.NewTimer(quiet)
	defer q.Stop()
	for {
		select {
		case <-seen:
			q.Reset(quiet)
		case <-q.C:
			return
		case <-end.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
