package model

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// feed sends n labelled readings from device: labels around 270 (std 70),
// the old model off by noise of std 25, the new one by noise of std 25
// plus bias; copyOld makes the labels equal to the old model's predictions.
func feed(g *Guard, r *rand.Rand, device string, n int, bias float64, copyOld bool) {
	for range n {
		y := 270 + 70*r.NormFloat64()
		old := y + 25*r.NormFloat64()
		nw := y + 25*r.NormFloat64() + bias
		if copyOld {
			y = old
		}
		sq := func(p float64) float64 { return (p - y) * (p - y) }
		g.Observe(device, sq(nw), sq(old), float32(y))
	}
}

// TestGuardVeto: one device sending 500 labels equal to the old model's
// predictions cannot roll back a legitimate update.
func TestGuardVeto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// The attacker alone: the old model is perfect on the whole window.
	g := NewGuard(GuardConfig{})
	feed(g, r, "evil", 500, 0, true)
	v := g.Verdict()
	t.Logf("attacker alone: %s: %s", v.Decision, v.Reason)
	if v.Decision != GuardInconclusive {
		t.Errorf("attacker alone: %+v", v)
	}
	// The attacker among honest devices: set aside, the others decide.
	g = NewGuard(GuardConfig{})
	for i := range 3 {
		feed(g, r, fmt.Sprintf("honest-%d", i), 40, 0, false)
	}
	feed(g, r, "evil", 500, 0, true)
	v = g.Verdict()
	t.Logf("attacker and 3 honest devices: %s: %s (suspect %v)", v.Decision, v.Reason, v.Suspect)
	if v.Decision != GuardKeep || len(v.Suspect) != 1 || v.Suspect[0] != "evil" {
		t.Errorf("attacker among honest devices: %+v", v)
	}
	// An attacker that is not quite perfect (labels near the old model's
	// predictions) is one device out of four: no rollback either.
	g = NewGuard(GuardConfig{})
	for i := range 3 {
		feed(g, r, fmt.Sprintf("honest-%d", i), 40, 0, false)
	}
	for range 500 {
		y := 270 + 70*r.NormFloat64()
		old, nw := y+0.5, y+25*r.NormFloat64()
		g.Observe("sly", (nw-old)*(nw-old), 0.25, float32(old))
	}
	if v := g.Verdict(); v.Decision == GuardRollback {
		t.Errorf("near-perfect attacker rolled back: %+v", v)
	}
}

// TestGuardRollback: a new model worse on most devices is rolled back;
// one worse on a single device, or by a negligible amount, or seen by too
// few devices, is not.
func TestGuardRollback(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	g := NewGuard(GuardConfig{})
	for i := range 5 {
		feed(g, r, fmt.Sprintf("d%d", i), 100, 60, false)
	}
	v := g.Verdict()
	t.Logf("worse model: %s: %s", v.Decision, v.Reason)
	if v.Decision != GuardRollback || v.Devices != 5 || v.Worse != 5 {
		t.Errorf("worse model: %+v", v)
	}

	g = NewGuard(GuardConfig{})
	for i := range 4 {
		feed(g, r, fmt.Sprintf("d%d", i), 100, 0, false)
	}
	feed(g, r, "odd", 100, 400, false)
	if v := g.Verdict(); v.Decision == GuardRollback {
		t.Errorf("worse on one device of five: %+v", v)
	}

	g = NewGuard(GuardConfig{})
	for i := range 2 {
		feed(g, r, fmt.Sprintf("d%d", i), 250, 60, false)
	}
	if v := g.Verdict(); v.Decision != GuardInconclusive {
		t.Errorf("two devices: %+v", v)
	}

	// Relatively worse, absolutely negligible.
	g = NewGuard(GuardConfig{})
	for i := range 5 {
		for range 100 {
			g.Observe(fmt.Sprintf("d%d", i), 2e-3, 1e-3, float32(r.NormFloat64()))
		}
	}
	if v := g.Verdict(); v.Decision != GuardKeep {
		t.Errorf("negligible difference: %+v", v)
	}

	g = NewGuard(GuardConfig{Window: 100})
	feed(g, r, "d0", 99, 60, false)
	if v := g.Verdict(); v.Decision != GuardPending {
		t.Errorf("short window: %+v", v)
	}
}

func TestGuardDevicePatterns(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cfg := GuardConfig{Devices: []string{"meter-*"}}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	g := NewGuard(cfg)
	feed(g, r, "evil", 500, 0, true)
	for i := range 5 {
		feed(g, r, fmt.Sprintf("meter-%d", i), 100, 0, false)
	}
	if v := g.Verdict(); v.Decision != GuardKeep || g.Ignored() != 500 || v.Readings != 500 {
		t.Errorf("patterns: %+v, ignored %d", v, g.Ignored())
	}
	for _, bad := range []GuardConfig{{Margin: -1}, {Devices: []string{"["}}, {Window: -1}} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
