package mqttc

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Conn is how to reach a broker: what every client of linnet's needs.
type Conn struct {
	Broker         string // tcp://, mqtt://, ssl://, tls:// or mqtts:// URL
	ClientID       string
	Username       string
	PasswordFile   string // the password is never in a config or a flag
	CAFile         string // PEM CA for ssl:// brokers; empty: the system roots
	CertFile       string // client certificate (PEM), with KeyFile
	KeyFile        string
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	OpTimeout      time.Duration // write and ping deadline
}

// Options builds paho's options for c: the broker, the client id, the
// credentials and TLS, the timeouts, and a buffered connection. Callers
// add their session and handler settings on top.
func Options(c Conn) (*paho.ClientOptions, error) {
	o := paho.NewClientOptions().
		AddBroker(BrokerURL(c.Broker)).
		SetClientID(c.ClientID).
		SetConnectTimeout(c.ConnectTimeout).
		SetWriteTimeout(c.OpTimeout).
		SetPingTimeout(c.OpTimeout).
		SetCustomOpenConnectionFn(openConn)
	if c.KeepAlive > 0 {
		o.SetKeepAlive(c.KeepAlive)
	}
	if c.Username != "" {
		o.SetUsername(c.Username)
		if c.PasswordFile != "" {
			pw, err := readPassword(c.PasswordFile)
			if err != nil {
				return nil, err
			}
			o.SetPassword(pw)
		}
	}
	tc, err := tlsConfig(c.CAFile, c.CertFile, c.KeyFile)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	return o, nil
}

// UniqueID is a client id for a one-shot client: a client reusing an id
// can lose its subscriptions to the cleanup of the previous session.
func UniqueID(prefix string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s-%d-%x", prefix, os.Getpid(), r)
}

// tlsConfig builds the client TLS settings from the CA, certificate and key
// files; nil when none is set (the system roots then apply for ssl://).
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt ca_file %q: no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("mqtt password_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// BrokerURL maps the accepted schemes onto paho's.
func BrokerURL(u string) string {
	switch {
	case strings.HasPrefix(u, "mqtt://"):
		return "tcp://" + strings.TrimPrefix(u, "mqtt://")
	case strings.HasPrefix(u, "mqtts://"):
		return "ssl://" + strings.TrimPrefix(u, "mqtts://")
	}
	return u
}

// Wait waits for t at most d or until ctx ends: paho's Wait can hang
// forever, so nothing waits without a deadline.
func Wait(ctx context.Context, t paho.Token, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-timer.C:
		return ErrTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrTimeout is returned by Wait when the broker did not answer in time.
var ErrTimeout = errors.New("no answer from the broker in time")

// Publisher bounds the outgoing publishes the broker has not acknowledged:
// while the broker is away paho keeps QoS 1 messages in memory, so without
// a bound memory grows with the outage (paho #532). Publish takes a slot;
// Run frees slots in order as tokens complete and calls each publish's
// done function then. When all slots are taken, Publish waits.
//
// A QoS>0 token that has not completed after retryAfter while the client
// is connected is published again: across a broker restart paho can lose
// track of a message that was in flight (its token never completes and the
// message is never resent). The copy is a duplicate at worst, which the
// consumer removes by id; a lost message it cannot recover.
type Publisher struct {
	c          paho.Client
	qos        byte
	retryAfter time.Duration
	slots      chan struct{}
	tokens     chan pending
	maxBytes   int64 // payload bytes not yet acknowledged, at most (0: no bound)
	bytes      atomic.Int64
	inflight   atomic.Int64
	retries    atomic.Int64
	onErr      func(error)
}

type pending struct {
	t        paho.Token
	topic    string
	retained bool
	payload  []byte
	done     func(error)
}

// NewPublisher bounds c's unacknowledged publishes to max; onErr sees
// every failed or abandoned publish.
func NewPublisher(c paho.Client, qos byte, max int, retryAfter time.Duration, onErr func(error)) *Publisher {
	return &Publisher{c: c, qos: qos, retryAfter: retryAfter, slots: make(chan struct{}, max), tokens: make(chan pending, max), onErr: onErr}
}

// SetMaxBytes also bounds the payload bytes not yet acknowledged (a
// message larger than n still goes out alone). Call it before Publish.
func (p *Publisher) SetMaxBytes(n int64) { p.maxBytes = n }

// Publish queues one message; it waits only for a free slot, and gives up
// when ctx ends (then done is not called). done, if not nil, is called
// from Run once the broker acknowledged the message (nil) or it failed.
// payload must not be changed afterwards.
func (p *Publisher) Publish(ctx context.Context, topic string, retained bool, payload []byte, done func(error)) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.maxBytes > 0 {
		// Rarely reached (big batch answers while the broker is slow):
		// polling keeps Run's hot path free of any signalling.
		for p.bytes.Load() > 0 && p.bytes.Load()+int64(len(payload)) > p.maxBytes {
			select {
			case <-time.After(time.Millisecond):
			case <-ctx.Done():
				<-p.slots
				return ctx.Err()
			}
		}
	}
	p.bytes.Add(int64(len(payload)))
	p.inflight.Add(1)
	p.tokens <- pending{t: p.c.Publish(topic, p.qos, retained, payload), topic: topic, retained: retained, payload: payload, done: done}
	return nil
}

// Inflight is the number of publishes not yet acknowledged.
func (p *Publisher) Inflight() int64 { return p.inflight.Load() }

// Retries counts publishes sent again after retryAfter.
func (p *Publisher) Retries() int64 { return p.retries.Load() }

// Close says no Publish will come any more: Run returns once the last
// one completed. Publish must not be called after Close.
func (p *Publisher) Close() { close(p.tokens) }

// Run frees slots as tokens complete, in order, until Close was called and
// every token completed, or stop ends (the shutdown deadline: remaining
// ones are reported as errors).
func (p *Publisher) Run(stop context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for pd := range p.tokens {
		t := pd.t
		var err error
	wait:
		for {
			timer.Reset(p.retryAfter)
			select {
			case <-t.Done():
				err = t.Error()
				break wait
			case <-timer.C:
				if p.qos > 0 && p.c.IsConnectionOpen() {
					p.retries.Add(1)
					t = p.c.Publish(pd.topic, p.qos, pd.retained, pd.payload)
				}
			case <-stop.Done():
				err = errAbandoned
				break wait
			}
		}
		if err != nil {
			p.onErr(err)
		}
		if pd.done != nil {
			pd.done(err)
		}
		p.bytes.Add(-int64(len(pd.payload)))
		p.inflight.Add(-1)
		<-p.slots
	}
}

var errAbandoned = errors.New("publish abandoned at shutdown")

// Disconnect calls c.Disconnect, which can hang (paho #501), bounded by d;
// it reports whether it finished in time.
func Disconnect(c paho.Client, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		c.Disconnect(uint(d.Milliseconds() / 2))
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Subscribe subscribes every filter and checks the SUBACK: paho reports a
// refused subscription (0x80) only in the token's Result.
func Subscribe(ctx context.Context, c paho.Client, filters map[string]byte, d time.Duration) error {
	t := c.SubscribeMultiple(filters, nil)
	if err := Wait(ctx, t, d); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	st, ok := t.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	var refused []string
	for f, code := range st.Result() {
		if code == 0x80 || code > 2 {
			refused = append(refused, f)
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("subscribe: broker refused %s", strings.Join(refused, ", "))
	}
	return nil
}

// Match reports whether topic matches the MQTT filter ("+" one level,
// "#" the rest, the parent level included).
func Match(filter, topic string) bool {
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		tl, trest, tmore := strings.Cut(topic, "/")
		switch {
		case fl == "#":
			return true
		case fl != "+" && fl != tl:
			return false
		}
		if !fmore || !tmore {
			// "a/#" matches "a" too: "#" includes the parent level.
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// Level returns topic's i-th level (from 0).
func Level(topic string, i int) (string, bool) {
	for ; i > 0; i-- {
		_, rest, ok := strings.Cut(topic, "/")
		if !ok {
			return "", false
		}
		topic = rest
	}
	l, _, _ := strings.Cut(topic, "/")
	return l, true
}

// bufferedConn reads through a buffer. paho reads each packet's fixed
// header a byte at a time, a read system call per byte; with the buffer a
// burst of packets costs one read. Writes are unchanged (one per packet).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// openConn is paho's connection opener for tcp and TLS brokers, with the
// read buffer.
func openConn(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "ssl", "tls", "mqtts", "tcps":
		tc := o.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		conn, err = tls.DialWithDialer(d, "tcp", uri.Host, tc)
	case "tcp", "mqtt":
		conn, err = d.Dial("tcp", uri.Host)
	default:
		return nil, fmt.Errorf("unsupported broker scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 32<<10)}, nil
}
