package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linnet-edge/linnet/model"
)

// PushOptions drive Push: `linnet push`.
type PushOptions struct {
	Broker  string // tcp://, mqtt://, ssl://, tls:// or mqtts:// URL
	Key     ed25519.PrivateKey
	Model   []byte // the .lnm file
	Gateway string // one gateway's topic; empty: the fleet topic
	// Rollback marks the file as a signed rollback, so gateways accept it
	// although its version is older than their active one.
	Rollback bool
	// Timeout bounds the wait for results after the publish.
	Timeout time.Duration
	// OpTimeout bounds each broker operation (connect, subscribe,
	// publish); 0 means 10s.
	OpTimeout time.Duration
	// Expect stops waiting after this many results from distinct gateways
	// (fleet pushes; a gateway push stops at its first result).
	Expect int
	// Topics, as the gateways are configured; zero values take the
	// defaults of the [ota] section.
	FleetTopic, GatewayTopic, ResultTopic string
	// OnResult, if set, is called for each result as it arrives.
	OnResult func(PushResult)
}

// PushResult is one gateway's answer, as published on its result topic.
type PushResult struct {
	Gateway  string `json:"gateway"`
	Version  *int64 `json:"version"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason"`
	Detail   string `json:"detail,omitempty"`
	Active   int64  `json:"active"`
	Rollback bool   `json:"rollback,omitempty"`
}

// PushReport is what Push did and heard back.
type PushReport struct {
	Topic    string       `json:"topic"`
	Version  int64        `json:"version"`
	Bytes    int          `json:"bytes"`
	Signer   string       `json:"signer"`
	Rollback bool         `json:"rollback"`
	Results  []PushResult `json:"results"`
}

// ErrNoResult is returned by Push when a gateway push got no result before
// the timeout.
var ErrNoResult = errors.New("no result before the timeout")

// Push signs the model if it is not already signed by Key (after marking it
// as a rollback if asked), publishes it retained with QoS 1 (so a gateway
// that connects later still gets it), and collects the results for its
// version until the timeout, the first result of a gateway push, or Expect
// results of a fleet push. Results are returned even with an error.
func Push(ctx context.Context, o PushOptions) (*PushReport, error) {
	d := defaultOTA()
	if o.FleetTopic == "" {
		o.FleetTopic = d.FleetTopic
	}
	if o.GatewayTopic == "" {
		o.GatewayTopic = d.GatewayTopic
	}
	if o.ResultTopic == "" {
		o.ResultTopic = d.ResultTopic
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 10 * time.Second
	}
	if o.Gateway != "" && strings.ContainsAny(o.Gateway, "/+#") {
		return nil, fmt.Errorf("gateway %q: no / + or #", o.Gateway)
	}
	file := o.Model
	m, err := model.Decode(file)
	if err != nil {
		return nil, err
	}
	if o.Rollback && !model.IsRollback(file) {
		if file, err = model.MarkRollback(file); err != nil {
			return nil, err
		}
	}
	pub := o.Key.Public().(ed25519.PublicKey)
	if model.Verify(file, []ed25519.PublicKey{pub}) != nil {
		if file, err = model.Sign(file, o.Key); err != nil {
			return nil, err
		}
	}
	rep := &PushReport{Topic: strings.ReplaceAll(o.FleetTopic, "{gateway}", o.Gateway), Version: m.Version,
		Bytes: len(file), Signer: model.KeyID(pub), Rollback: model.IsRollback(file)}
	resTopic := strings.ReplaceAll(o.ResultTopic, "{gateway}", "+")
	if o.Gateway != "" {
		rep.Topic = strings.ReplaceAll(o.GatewayTopic, "{gateway}", o.Gateway)
		resTopic = strings.ReplaceAll(o.ResultTopic, "{gateway}", o.Gateway)
	}

	var mu sync.Mutex
	got := make(chan struct{}, 1)
	gateways := map[string]bool{}
	var id [6]byte
	_, _ = rand.Read(id[:])
	opts := paho.NewClientOptions().AddBroker(brokerURL(o.Broker)).SetClientID("linnet-push-" + hex.EncodeToString(id[:])).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(o.OpTimeout).SetWriteTimeout(o.OpTimeout)
	c := paho.NewClient(opts)
	if err := waitToken(ctx, c.Connect(), o.OpTimeout); err != nil {
		return nil, fmt.Errorf("connect %s: %w", o.Broker, err)
	}
	defer func() {
		done := make(chan struct{})
		go func() { c.Disconnect(250); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}()
	c.AddRoute(resTopic, func(_ paho.Client, msg paho.Message) {
		var r PushResult
		if json.Unmarshal(msg.Payload(), &r) != nil || r.Version == nil || *r.Version != m.Version {
			return
		}
		mu.Lock()
		rep.Results = append(rep.Results, r)
		gateways[r.Gateway] = true
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
	if err := subscribe(ctx, c, map[string]byte{resTopic: 1}, o.OpTimeout); err != nil {
		return nil, err
	}
	if err := waitToken(ctx, c.Publish(rep.Topic, 1, true, file), o.OpTimeout); err != nil {
		return rep, fmt.Errorf("publish to %s: %w", rep.Topic, err)
	}
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	for {
		mu.Lock()
		n := len(gateways)
		mu.Unlock()
		if (o.Gateway != "" && n > 0) || (o.Expect > 0 && n >= o.Expect) {
			break
		}
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
	rep.Results = append([]PushResult(nil), rep.Results...)
	if o.Gateway != "" && len(rep.Results) == 0 {
		return rep, fmt.Errorf("gateway %s: %w (%v)", o.Gateway, ErrNoResult, o.Timeout)
	}
	return rep, nil
}
