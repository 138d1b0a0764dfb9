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

// The check of every operation notices a corrupted result.
func TestCheckCorrupted(t *testing.T) {
	for _, op := range Ops() {
		err := CheckCorrupted(op, "generic", 3)
		if err == nil {
			t.Errorf("%s/generic passed with its result corrupted", op)
		}
		t.Log(err)
	}
	if err := CheckCorrupted("no_such_op", "generic", 3); err == nil {
		t.Error("CheckCorrupted accepted an unknown operation")
	}
}

// Selectable follows the cap: everything claimed by default, nothing at
// generic, and at tier 1 exactly the claimed kernels of tier 1.
func TestSelectable(t *testing.T) {
	defer Reset()
	if !slices.Equal(Selectable(), Claimed()) {
		t.Fatalf("uncapped: Selectable %v, Claimed %v", Selectable(), Claimed())
	}
	for name, tier := range tierNames {
		Reset()
		if err := Limit(name); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, o := range ops {
			for _, k := range o.kernels() {
				if k.name != "generic" && k.tier <= tier {
					want = append(want, o.opName()+"/"+k.name)
				}
			}
		}
		if got := Selectable(); !slices.Equal(got, want) {
			t.Errorf("capped at %s: Selectable %v, want %v", name, got, want)
		}
		if name == "generic" && len(Selectable()) != 0 {
			t.Errorf("capped at generic: Selectable %v", Selectable())
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
