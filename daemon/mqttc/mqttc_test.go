package mqttc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"linnet/+/features", "linnet/dev1/features", true},
		{"linnet/+/features", "linnet/dev1/prediction", false},
		{"linnet/+/features", "linnet/dev1/features/x", false},
		{"linnet/+/features", "linnet/features", false},
		{"linnet/#", "linnet", true}, // "#" matches the parent level too
		{"linnet/#", "linnet/a/b/c", true},
		{"linnet/#", "other/a", false},
		{"#", "a/b", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/+", "/x", true}, // an empty level is a level
		{"a/b", "a/b", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
		{"a/+/c", "a//c", true},
	} {
		if got := Match(c.filter, c.topic); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

func TestLevel(t *testing.T) {
	for _, c := range []struct {
		topic string
		i     int
		want  string
		ok    bool
	}{
		{"linnet/dev1/features", 0, "linnet", true},
		{"linnet/dev1/features", 1, "dev1", true},
		{"linnet/dev1/features", 2, "features", true},
		{"linnet/dev1/features", 3, "", false},
		{"a//b", 1, "", true},
	} {
		got, ok := Level(c.topic, c.i)
		if got != c.want || ok != c.ok {
			t.Errorf("Level(%q, %d) = %q, %v; want %q, %v", c.topic, c.i, got, ok, c.want, c.ok)
		}
	}
}

func TestBrokerURL(t *testing.T) {
	for in, want := range map[string]string{
		"mqtt://h:1883":  "tcp://h:1883",
		"mqtts://h:8883": "ssl://h:8883",
		"tcp://h:1":      "tcp://h:1",
		"ssl://h:2":      "ssl://h:2",
	} {
		if got := BrokerURL(in); got != want {
			t.Errorf("BrokerURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// token is a paho.Token completed by hand.
type token struct {
	done chan struct{}
	err  error
}

func newToken() *token { return &token{done: make(chan struct{})} }

func (t *token) complete(err error) { t.err = err; close(t.done) }

func (t *token) Wait() bool                       { <-t.done; return true }
func (t *token) Done() <-chan struct{}            { return t.done }
func (t *token) Error() error                     { return t.err }
func (t *token) WaitTimeout(d time.Duration) bool { return Wait(context.Background(), t, d) == nil }

func TestWaitDeadline(t *testing.T) {
	tk := newToken()
	if err := Wait(context.Background(), tk, 20*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("token never completing: %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, tk, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("context ended: %v, want context.Canceled", err)
	}
	refused := errors.New("refused")
	tk.complete(refused)
	if err := Wait(context.Background(), tk, time.Hour); err != refused {
		t.Fatalf("completed token: %v, want its error", err)
	}
}

// client is a paho.Client whose publishes return tokens the test
// completes; Disconnect blocks until release is closed.
type client struct {
	paho.Client
	mu        sync.Mutex
	published []*token
	payloads  [][]byte
	connected bool
	release   chan struct{}
}

func (c *client) Publish(_ string, _ byte, _ bool, payload any) paho.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	tk := newToken()
	c.published = append(c.published, tk)
	c.payloads = append(c.payloads, payload.([]byte))
	return tk
}

func (c *client) IsConnectionOpen() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.connected }

func (c *client) Disconnect(uint) { <-c.release }

// tokens waits until n publishes were made and returns them.
func (c *client) tokens(t *testing.T, n int) []*token {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]*token(nil), c.published...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes, want %d", len(got), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDisconnectDeadline(t *testing.T) {
	c := &client{release: make(chan struct{})}
	if Disconnect(c, 20*time.Millisecond) {
		t.Fatal("a Disconnect that hangs reported as finished")
	}
	close(c.release)
	if !Disconnect(c, 10*time.Second) {
		t.Fatal("a Disconnect that returns reported as hanging")
	}
}

// The publisher holds at most max publishes unacknowledged, frees them in
// order, reports each one's outcome to its done function, and gives up
// waiting for a slot when the context ends.
func TestPublisherBound(t *testing.T) {
	c := &client{}
	var errs []error
	p := NewPublisher(c, 1, 2, time.Hour, func(err error) { errs = append(errs, err) })
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { p.Run(stop); close(ran) }()

	var mu sync.Mutex
	var done []string
	mark := func(name string) func(error) {
		return func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				name += " failed"
			}
			done = append(done, name)
		}
	}
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if err := p.Publish(ctx, "t", false, []byte(n), mark(n)); err != nil {
			t.Fatal(err)
		}
	}
	if p.Inflight() != 2 {
		t.Fatalf("inflight %d, want 2", p.Inflight())
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := p.Publish(short, "t", false, []byte("c"), mark("c")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third publish with two slots taken: %v, want the context's deadline", err)
	}
	third := make(chan error, 1)
	go func() { third <- p.Publish(ctx, "t", false, []byte("c"), mark("c")) }()
	tks := c.tokens(t, 2)
	tks[1].complete(errors.New("refused")) // b first: freed only after a
	select {
	case err := <-third:
		t.Fatalf("publish got a slot before the first one was acknowledged (%v)", err)
	case <-time.After(20 * time.Millisecond):
	}
	tks[0].complete(nil)
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	c.tokens(t, 3)[2].complete(nil)
	p.Close()
	<-ran
	if want := []string{"a", "b failed", "c"}; !slices.Equal(done, want) {
		t.Fatalf("done calls %v, want %v", done, want)
	}
	if len(errs) != 1 || p.Inflight() != 0 {
		t.Fatalf("errors %v, inflight %d: want one error, none in flight", errs, p.Inflight())
	}
}

// A publish not acknowledged after retryAfter while connected goes out
// again; one still pending at the stop deadline is reported abandoned.
func TestPublisherRetryAndAbandon(t *testing.T) {
	c := &client{connected: true}
	p := NewPublisher(c, 1, 4, 10*time.Millisecond, func(error) {})
	stop, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(stop); close(ran) }()
	got := make(chan error, 1)
	if err := p.Publish(context.Background(), "t", false, []byte("x"), func(err error) { got <- err }); err != nil {
		t.Fatal(err)
	}
	c.tokens(t, 3) // the first and at least two retries
	if p.Retries() < 2 {
		t.Fatalf("retries %d, want at least 2", p.Retries())
	}
	c.mu.Lock()
	c.connected = false
	c.mu.Unlock()
	cancel()
	if err := <-got; !errors.Is(err, errAbandoned) {
		t.Fatalf("done(%v), want errAbandoned", err)
	}
	p.Close()
	<-ran
}

// SetMaxBytes: a publish waits while the bytes in flight would pass the
// bound, except when nothing is in flight.
func TestPublisherMaxBytes(t *testing.T) {
	c := &client{}
	p := NewPublisher(c, 1, 10, time.Hour, func(error) {})
	p.SetMaxBytes(10)
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(stop)
	ctx := context.Background()
	if err := p.Publish(ctx, "t", false, make([]byte, 25), nil); err != nil {
		t.Fatal("a message larger than the bound must go out alone:", err)
	}
	next := make(chan error, 1)
	go func() { next <- p.Publish(ctx, "t", false, make([]byte, 5), nil) }()
	select {
	case err := <-next:
		t.Fatalf("publish passed the byte bound (%v)", err)
	case <-time.After(30 * time.Millisecond):
	}
	c.tokens(t, 1)[0].complete(nil)
	if err := <-next; err != nil {
		t.Fatal(err)
	}
}
