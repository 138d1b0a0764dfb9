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
	t.Setenv(breakEnv, breakHook)
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
	if len(r.Kernels) != len(simd.Selectable()) {
		t.Errorf("report lists %d kernels, the CPU claims %d", len(r.Kernels), len(simd.Selectable()))
	}
}

// A kernel that kills the child in the middle of the list fails alone: a
// new child checks the kernels after it.
func TestSelfTestRespawnsPastAKiller(t *testing.T) {
	sel := simd.Selectable()
	if len(sel) < 3 {
		t.Skip("this CPU claims fewer than three kernels besides generic")
	}
	k := sel[len(sel)/2]
	r, err := selfTest(t, k+":sigill")
	if err == nil || r.OK || len(r.Failed) != 1 || r.Failed[0] != k {
		t.Fatalf("error %v, failed %v, want only %s", err, r.Failed, k)
	}
	if len(r.Kernels) != len(sel) {
		t.Fatalf("report lists %d kernels, want %d", len(r.Kernels), len(sel))
	}
	for i, x := range r.Kernels {
		if name := x.Op + "/" + x.Kernel; name != sel[i] || x.OK != (name != k) {
			t.Errorf("kernel %d: %+v", i, x)
		}
	}
}

// With the dispatch capped at generic (LINNET_KERNELS=generic), there is
// nothing to check and no child to start.
func TestSelfTestHonoursCap(t *testing.T) {
	defer simd.Reset()
	if err := simd.Limit("generic"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(wrapEnv, "/nonexistent/emulator") // a child would fail to start
	r, err := selfTest(t, "")
	if err != nil || !r.OK || len(r.Kernels) != 0 {
		t.Fatalf("capped at generic: %v, report %+v", err, r)
	}
}

// The child reports each kernel as it goes; the break hook, read there,
// corrupts only the kernels it names.
func TestSelfTestChildProtocol(t *testing.T) {
	t.Setenv(breakEnv, "dot_f32/generic, other/kernel:sigill")
	var out bytes.Buffer
	if err := selfTestChild(&out, []string{"dot_f32/generic", "dot_q8/generic"}, 5); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || lines[0] != "run dot_f32/generic" || !strings.HasPrefix(lines[1], "fail dot_f32/generic\t") ||
		lines[2] != "run dot_q8/generic" || lines[3] != "ok dot_q8/generic" {
		t.Errorf("child wrote %q", lines)
	}
	if err := selfTestChild(&out, []string{"dot_f32"}, 5); err == nil {
		t.Error("child accepted a kernel without its operation")
	}
}

// A kernel that returns wrong numbers, and one that dies of SIGILL, are
// both reported by name with a non-zero exit, and the parent survives.
func TestSelfTestForcedFailure(t *testing.T) {
	claimed := simd.Selectable()
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
	t.Setenv(breakEnv, "")
	if f := kernelSelfTest(context.Background(), log); f != nil {
		t.Fatalf("failures with nothing broken: %v", f)
	}
	claimed := simd.Selectable()
	if len(claimed) == 0 {
		t.Skip("this CPU claims no kernel besides generic")
	}
	t.Setenv(breakEnv, claimed[len(claimed)-1])
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
