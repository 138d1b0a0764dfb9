package daemon

import (
	"sync"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// At-least-once delivery: a QoS 1 reading is acknowledged to the broker
// only once it is done — its prediction (or its error report) published
// and acknowledged by the broker, and its learning step taken — so a
// reading queued when the daemon dies is delivered again to the persistent
// session. MQTT wants acknowledgements in the order the messages arrived,
// while the workers finish them in any order: acks keeps one slot per
// message in arrival order and sends the acknowledgements of the done
// prefix. A reading answered before a crash and delivered again is
// answered again, with the same id: consumers drop duplicates by id.

// acks releases acknowledgements in arrival order. add is called from
// paho's handler (one at a time, in arrival order: SetOrderMatters).
type acks struct {
	mu   sync.Mutex
	base uint64    // sequence number of q[0]
	q    []ackSlot // arrival order; the done prefix is released

	release sync.Mutex     // held while acknowledging, so acks go out in order
	ready   []paho.Message // under release: the prefix being acknowledged

	onRelease func(bytes int) // called with the budget bytes of each released message
	unacked   atomic.Int64
	held      atomic.Int64 // payload bytes of every message not yet released, accepted or not
}

type ackSlot struct {
	msg   paho.Message
	bytes int  // counted against the intake budget until released
	size  int  // the payload's size: held in memory until released
	done  bool // finished
	send  bool // finished well: acknowledge (false: leave it to redelivery)
}

// ticket tracks the steps left before one message is done. A nil ticket
// (QoS 0: nothing to acknowledge) ignores every call.
type ticket struct {
	a    *acks
	seq  uint64
	left atomic.Int32
	fail atomic.Bool
}

// add takes msg's slot, counting bytes against the budget until released.
// A QoS 0 message has nothing to acknowledge, but its bytes are released
// in the same order.
func (a *acks) add(msg paho.Message, bytes int) *ticket {
	size := len(msg.Payload())
	if msg.Qos() == 0 {
		if bytes == 0 {
			return nil
		}
		msg = nil
	}
	return &ticket{a: a, seq: a.push(msg, bytes, size)}
}

func (a *acks) push(msg paho.Message, bytes, size int) uint64 {
	a.mu.Lock()
	seq := a.base + uint64(len(a.q))
	a.q = append(a.q, ackSlot{msg: msg, bytes: bytes, size: size})
	a.mu.Unlock()
	a.unacked.Add(1)
	a.held.Add(int64(size))
	return seq
}

// hold adds a step that must finish before the message is done.
func (t *ticket) hold() {
	if t != nil {
		t.left.Add(1)
	}
}

// done finishes one step (the first step is taken by add); err marks the
// message as not handled, so it is not acknowledged and the broker
// delivers it again.
func (t *ticket) done(err error) {
	if t == nil {
		return
	}
	if err != nil {
		t.fail.Store(true)
	}
	if t.left.Add(-1) == -1 {
		t.a.finish(t.seq, !t.fail.Load())
	}
}

func (a *acks) finish(seq uint64, send bool) {
	a.release.Lock()
	defer a.release.Unlock()
	a.mu.Lock()
	s := &a.q[seq-a.base]
	s.done, s.send = true, send
	n := 0
	bytes, size := 0, 0
	for n < len(a.q) && a.q[n].done {
		if a.q[n].send && a.q[n].msg != nil {
			a.ready = append(a.ready, a.q[n].msg)
		}
		bytes += a.q[n].bytes
		size += a.q[n].size
		a.q[n] = ackSlot{}
		n++
	}
	a.q = a.q[n:]
	a.base += uint64(n)
	a.mu.Unlock()
	a.unacked.Add(-int64(n))
	a.held.Add(-int64(size))
	if a.onRelease != nil && bytes > 0 {
		a.onRelease(bytes)
	}
	// Outside mu, so paho's handler never waits for a network write; under
	// release, so the acknowledgements leave in order.
	for i, m := range a.ready {
		m.Ack()
		a.ready[i] = nil
	}
	a.ready = a.ready[:0]
}

// ackNow acknowledges a message handled at once (an OTA model kept in its
// mailbox, a Home Assistant birth message), in its turn.
func (a *acks) ackNow(msg paho.Message) { a.add(msg, 0).done(nil) }
