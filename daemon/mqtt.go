package daemon

import (
	"bufio"
	"context"
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

// tlsConfig builds the client TLS settings from the CA, certificate and key
// files; nil when none is set (the system roots then apply for ssl://).
func tlsConfig(m *MQTTConfig) (*tls.Config, error) {
	if m.CAFile == "" && m.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt ca_file %q: no PEM certificate", m.CAFile)
		}
		tc.RootCAs = pool
	}
	if m.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
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

// brokerURL maps the accepted schemes onto paho's.
func brokerURL(u string) string {
	switch {
	case strings.HasPrefix(u, "mqtt://"):
		return "tcp://" + strings.TrimPrefix(u, "mqtt://")
	case strings.HasPrefix(u, "mqtts://"):
		return "ssl://" + strings.TrimPrefix(u, "mqtts://")
	}
	return u
}

// waitToken waits for t at most d or until ctx ends: paho's Wait can hang
// forever when the connection drops mid-flight, so nothing here waits
// without a deadline.
func waitToken(ctx context.Context, t paho.Token, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-timer.C:
		return errTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errTimeout = errors.New("no answer from the broker in time")

// publisher bounds the outgoing publishes the broker has not acknowledged:
// while the broker is away paho keeps QoS 1 messages in memory, so without
// a bound memory grows with the outage (eclipse/paho.mqtt.golang#532). A publisher
// takes a slot before Publish; one acker goroutine frees slots in order as
// tokens complete. When all slots are taken, workers wait, the intake
// queue fills, and the queue-full policy applies.
//
// A QoS>0 token that has not completed after retryAfter while the client
// is connected is published again: across a broker restart paho can lose
// track of a message that was in flight (its token never completes and the
// message is never resent). The copy is a duplicate at worst, which the
// consumer removes by id; a lost prediction it cannot recover.
type publisher struct {
	c          paho.Client
	qos        byte
	retryAfter time.Duration
	slots      chan struct{}
	tokens     chan pending
	inflight   atomic.Int64
	retries    atomic.Int64
	onErr      func(error)
}

type pending struct {
	t        paho.Token
	topic    string
	retained bool
	payload  []byte
}

func newPublisher(c paho.Client, qos byte, max int, retryAfter time.Duration, onErr func(error)) *publisher {
	return &publisher{c: c, qos: qos, retryAfter: retryAfter, slots: make(chan struct{}, max), tokens: make(chan pending, max), onErr: onErr}
}

// publish queues one message; it waits only for a free slot, and gives up
// when ctx ends.
func (p *publisher) publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.inflight.Add(1)
	p.tokens <- pending{t: p.c.Publish(topic, p.qos, retained, payload), topic: topic, retained: retained, payload: payload}
	return nil
}

// ack frees slots as tokens complete, until tokens is closed and empty or
// stop ends (the shutdown deadline: remaining ones are counted as errors).
func (p *publisher) ack(stop context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for pd := range p.tokens {
		t := pd.t
	wait:
		for {
			timer.Reset(p.retryAfter)
			select {
			case <-t.Done():
				if err := t.Error(); err != nil {
					p.onErr(err)
				}
				break wait
			case <-timer.C:
				if p.qos > 0 && p.c.IsConnectionOpen() {
					p.retries.Add(1)
					t = p.c.Publish(pd.topic, p.qos, pd.retained, pd.payload)
				}
			case <-stop.Done():
				p.onErr(fmt.Errorf("publish abandoned at shutdown"))
				break wait
			}
		}
		p.inflight.Add(-1)
		<-p.slots
	}
}

// subscribe subscribes every filter and checks the SUBACK: paho reports a
// refused subscription (0x80) only in the token's Result.
func subscribe(ctx context.Context, c paho.Client, filters map[string]byte, d time.Duration) error {
	t := c.SubscribeMultiple(filters, nil)
	if err := waitToken(ctx, t, d); err != nil {
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

// matchTopic reports whether topic matches the MQTT filter.
func matchTopic(filter, topic string) bool {
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
			return fmore == tmore
		}
		filter, topic = frest, trest
	}
}

// levelAt returns topic's i-th level.
func levelAt(topic string, i int) (string, bool) {
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
