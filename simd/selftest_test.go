package simd

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSelfTestPasses(t *testing.T) {
	t.Logf("claimed: %v", Claimed())
	if f := SelfTest(nil, 1); len(f) > 0 {
		t.Fatalf("self-test failures on this CPU: %v", f)
	}
}

// Every operation has a check, and generic passes its own check: a new
// operation without a self-test fails here rather than on a gateway.
func TestCheckCoversEveryOp(t *testing.T) {
	for _, op := range Ops() {
		if err := Check(op, "generic", 2); err != nil {
			t.Errorf("%s/generic: %v", op, err)
		}
	}
	if err := Check("no_such_op", "generic", 2); err == nil {
		t.Error("Check accepted an unknown operation")
	}
	if err := Check(OpDotF32, "no-such-kernel", 2); err == nil {
		t.Error("Check accepted an unknown kernel")
	}
}

// The break hook corrupts exactly the kernels it names, and the check of
// every operation notices a corrupted result.
func TestBreakHook(t *testing.T) {
	for _, op := range Ops() {
		t.Run(op, func(t *testing.T) {
			t.Setenv(BreakEnv, "other/kernel, "+op+"/generic:sigill")
			err := Check(op, "generic", 3)
			if err == nil {
				t.Fatalf("%s/generic passed with its result corrupted", op)
			}
			t.Log(err)
		})
	}
	t.Setenv(BreakEnv, OpDotQ8+"/generic")
	if err := Check(OpDotF32, "generic", 3); err != nil {
		t.Errorf("break hook for dot_q8 broke dot_f32: %v", err)
	}
}

func TestClaimed(t *testing.T) {
	c := Claimed()
	for _, k := range c {
		op, name, ok := strings.Cut(k, "/")
		if !ok || name == "generic" || !slices.Contains(Available(op), name) {
			t.Errorf("Claimed has %q", k)
		}
	}
	for _, op := range Ops() {
		if n := len(Available(op)) - 1; n != countPrefix(c, op+"/") {
			t.Errorf("%s: Claimed lists %d kernels, Available %d besides generic", op, countPrefix(c, op+"/"), n)
		}
	}
}

func countPrefix(s []string, p string) int {
	n := 0
	for _, v := range s {
		if strings.HasPrefix(v, p) {
			n++
		}
	}
	return n
}

// SelfTest asks its Checker about every claimed kernel and reports the
// ones that fail, in order.
func TestSelfTestReportsCheckerFailures(t *testing.T) {
	var asked []string
	f := SelfTest(func(op, kernel string, seed uint64) error {
		asked = append(asked, op+"/"+kernel)
		if seed != 9 {
			t.Errorf("seed %d, want 9", seed)
		}
		if len(asked)%2 == 1 {
			return errors.New("killed by SIGILL")
		}
		return nil
	}, 9)
	if !slices.Equal(asked, Claimed()) {
		t.Fatalf("asked about %v, want %v", asked, Claimed())
	}
	if want := (len(asked) + 1) / 2; len(f) != want {
		t.Fatalf("%d failures, want %d: %v", len(f), want, f)
	}
	for i, x := range f {
		if x.Op+"/"+x.Kernel != asked[2*i] || x.Reason != "killed by SIGILL" {
			t.Errorf("failure %d is %v", i, x)
		}
	}
}
