package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/simd"
)

// The self-test re-executes its own binary; under `go test` that is the
// test binary, which acts as linnet when this variable is set.
const asLinnetEnv = "LINNET_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asLinnetEnv) == "1" {
		if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("linnet: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func selfTest(t *testing.T, breakHook string) (selfTestReport, error) {
	t.Helper()
	t.Setenv(asLinnetEnv, "1")
	t.Setenv(simd.BreakEnv, breakHook)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"selftest", "--json"}, &out, &errb)
	var r selfTestReport
	if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
		t.Fatalf("selftest --json printed %q: %v", out.String(), jerr)
	}
	return r, err
}

func TestSelfTestPasses(t *testing.T) {
	r, err := selfTest(t, "")
	if err != nil || !r.OK || len(r.Failed) != 0 {
		t.Fatalf("selftest on this CPU: %v, report %+v", err, r)
	}
	if len(r.Kernels) != len(simd.Claimed()) {
		t.Errorf("report lists %d kernels, the CPU claims %d", len(r.Kernels), len(simd.Claimed()))
	}
}

// A kernel that returns wrong numbers, and one that dies of SIGILL, are
// both reported by name with a non-zero exit, and the parent survives.
func TestSelfTestForcedFailure(t *testing.T) {
	claimed := simd.Claimed()
	if len(claimed) == 0 {
		t.Skip("this CPU claims no kernel besides generic")
	}
	k := claimed[0]
	for hook, reason := range map[string]string{k: "generic", k + ":sigill": "SIGILL"} {
		r, err := selfTest(t, hook)
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s: error %v does not name %s", hook, err, k)
		}
		if r.OK || len(r.Failed) != 1 || r.Failed[0] != k {
			t.Errorf("%s: report failed %v, want [%s]", hook, r.Failed, k)
		}
		for _, x := range r.Kernels {
			if x.Op+"/"+x.Kernel == k && !strings.Contains(x.Reason, reason) {
				t.Errorf("%s: reason %q does not mention %q", hook, x.Reason, reason)
			}
		}
	}
}

func TestChildFailure(t *testing.T) {
	err := exec.Command("sh", "-c", "kill -ILL $$").Run()
	if got := childFailure(err, "").Error(); got != "killed by illegal instruction" {
		t.Errorf("signal: %q", got)
	}
	err = exec.Command("sh", "-c", "exit 2").Run()
	if got := childFailure(err, "SIGILL: illegal instruction\nPC=0x1 m=0\n").Error(); got != "crashed: SIGILL: illegal instruction" {
		t.Errorf("runtime crash: %q", got)
	}
	err = exec.Command("sh", "-c", "exit 1").Run()
	if got := childFailure(err, "linnet: n=3 offset 0: got 1, generic 0\n").Error(); got != "n=3 offset 0: got 1, generic 0" {
		t.Errorf("check failure: %q", got)
	}
	if got := childFailure(errors.New("exec: no such file"), ""); !strings.Contains(got.Error(), "no such file") {
		t.Errorf("start failure: %q", got)
	}
}

// What `linnet run` gets from kernelSelfTest: on a failure, every operation
// runs generic and the failure is returned for the status message.
func TestKernelSelfTestFallsBack(t *testing.T) {
	defer simd.Reset()
	t.Setenv(asLinnetEnv, "1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv(simd.BreakEnv, "")
	if f := kernelSelfTest(context.Background(), log); f != nil {
		t.Fatalf("failures with nothing broken: %v", f)
	}
	claimed := simd.Claimed()
	if len(claimed) == 0 {
		t.Skip("this CPU claims no kernel besides generic")
	}
	t.Setenv(simd.BreakEnv, claimed[len(claimed)-1])
	f := kernelSelfTest(context.Background(), log)
	if len(f) != 1 || f[0].Op+"/"+f[0].Kernel != claimed[len(claimed)-1] {
		t.Fatalf("failures %v, want only %s", f, claimed[len(claimed)-1])
	}
	for op, k := range simd.Kernels() {
		if k != "generic" {
			t.Errorf("after a failed self-test %s runs %s", op, k)
		}
	}
}
