package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/simd"
)

func init() { commands = append(commands, newSelfTestCmd) }

// wrapEnv is a test hook: a command prefix each self-test child starts
// under, for emulators that run a foreign binary without binfmt_misc
// (LINNET_SELFTEST_WRAP="qemu-aarch64-static -cpu cortex-a72").
const wrapEnv = "LINNET_SELFTEST_WRAP"

// childTimeout bounds one kernel's check, so a kernel stuck in a loop
// fails instead of hanging the start of the service. Emulated NEON is slow.
const childTimeout = 2 * time.Minute

type selfTestKernel struct {
	Op     string `json:"op"`
	Kernel string `json:"kernel"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

type selfTestReport struct {
	Arch    string           `json:"arch"`
	Seed    uint64           `json:"seed"`
	OK      bool             `json:"ok"`
	Failed  []string         `json:"failed"`
	Kernels []selfTestKernel `json:"kernels"`
}

func newSelfTestCmd(e *env) *cobra.Command {
	var (
		asJSON bool
		seed   uint64
		child  string
	)
	c := &cobra.Command{
		Use:   "selftest",
		Short: "check every SIMD kernel this CPU claims against the generic one",
		Long: "selftest runs each kernel the CPU claims against the generic kernel on random\n" +
			"data, each in a child process, so a kernel that raises SIGILL (a CPU or VM\n" +
			"that reports a feature it cannot run) is reported as a failure. It exits\n" +
			"non-zero and names the failing kernels; the daemon then runs generic kernels.\n\n" +
			"Test hook: " + simd.BreakEnv + "=op/kernel[,op/kernel...] corrupts that\n" +
			"kernel's result inside the child; op/kernel:sigill makes the child die of SIGILL.\n" +
			wrapEnv + "=\"qemu-aarch64-static -cpu cortex-a72\" starts each child under an emulator\n" +
			"(for qemu-user without binfmt_misc).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if child != "" {
				return selfTestChild(child, seed)
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(rand.Uint32()) // short enough to copy from a log
			}
			fails := simd.SelfTest(isolatedCheck(cmd.Context()), seed)
			r := selfTestReport{Arch: simd.Arch, Seed: seed, OK: len(fails) == 0, Failed: []string{}, Kernels: []selfTestKernel{}}
			bad := map[string]string{}
			for _, f := range fails {
				bad[f.Op+"/"+f.Kernel] = f.Reason
				r.Failed = append(r.Failed, f.Op+"/"+f.Kernel)
			}
			for _, k := range simd.Claimed() {
				op, name, _ := strings.Cut(k, "/")
				reason, failed := bad[k]
				r.Kernels = append(r.Kernels, selfTestKernel{Op: op, Kernel: name, OK: !failed, Reason: reason})
			}
			if asJSON {
				if err := writeJSON(e.stdout, r); err != nil {
					return err
				}
			} else {
				plural := "s"
				if len(r.Kernels) == 1 {
					plural = ""
				}
				fmt.Fprintf(e.stdout, "selftest: %s, %d kernel%s against generic, seed %d\n", r.Arch, len(r.Kernels), plural, r.Seed)
				for _, k := range r.Kernels {
					if k.OK {
						fmt.Fprintf(e.stdout, "ok    %s/%s\n", k.Op, k.Kernel)
					} else {
						fmt.Fprintf(e.stdout, "FAIL  %s/%s: %s\n", k.Op, k.Kernel, k.Reason)
					}
				}
			}
			if len(fails) > 0 {
				return fmt.Errorf("kernel self-test failed: %s (the daemon runs generic kernels; reproduce with --seed %d)",
					strings.Join(r.Failed, ", "), seed)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().Uint64Var(&seed, "seed", 0, "seed of the random data (default: a new one each run)")
	c.Flags().StringVar(&child, "child", "", "check one op/kernel in this process (how selftest runs its children)")
	_ = c.Flags().MarkHidden("child")
	return c
}

// selfTestChild checks one kernel in this process. The parent reads a
// failure from the exit status and the first line of stderr.
func selfTestChild(k string, seed uint64) error {
	op, kernel, ok := strings.Cut(k, "/")
	if !ok {
		return fmt.Errorf("--child %q: want op/kernel", k)
	}
	for _, b := range strings.Split(os.Getenv(simd.BreakEnv), ",") {
		if strings.TrimSpace(b) == k+":sigill" {
			// What a kernel using an instruction the CPU lacks gets.
			_ = syscall.Kill(os.Getpid(), syscall.SIGILL)
			time.Sleep(time.Minute)
			return errors.New("SIGILL did not arrive")
		}
	}
	return simd.Check(op, kernel, seed)
}

// isolatedCheck returns a simd.Checker that runs each check in a child
// process of this same binary, so an illegal instruction kills the child
// and becomes a failure here.
func isolatedCheck(ctx context.Context) simd.Checker {
	return func(op, kernel string, seed uint64) error {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own binary: %w", err)
		}
		args := append(strings.Fields(os.Getenv(wrapEnv)), exe, "selftest",
			"--child", op+"/"+kernel, "--seed", strconv.FormatUint(seed, 10))
		ctx, cancel := context.WithTimeout(ctx, childTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		var stderr bytes.Buffer
		cmd.Stderr = &limitedWriter{buf: &stderr, n: 64 << 10}
		err = cmd.Run()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %v: %w", childTimeout, ctx.Err())
		}
		return childFailure(err, stderr.String())
	}
}

// childFailure turns a child's exit into one line: the runtime's crash
// line for a signal (SIGILL: illegal instruction), the error otherwise.
func childFailure(err error, stderr string) error {
	line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	line = strings.TrimPrefix(line, "linnet: ")
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("killed by %v", ws.Signal())
		}
		if strings.HasPrefix(line, "SIG") {
			return fmt.Errorf("crashed: %s", line)
		}
	}
	if line == "" {
		return fmt.Errorf("child: %w", err)
	}
	return errors.New(line)
}

// limitedWriter keeps the first n bytes: a crash dump can be long.
type limitedWriter struct {
	buf *bytes.Buffer
	n   int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.n - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// kernelSelfTest is what `linnet run` calls before the daemon starts:
// it runs the isolated self-test and, when any kernel fails, makes every
// operation use its generic kernel and logs which kernels failed. The
// caller then reports simd.Kernels() as usual (all "generic").
func kernelSelfTest(ctx context.Context, log *slog.Logger) []simd.Failure {
	fails := simd.SelfTest(isolatedCheck(ctx), uint64(rand.Uint32()))
	if len(fails) == 0 {
		return nil
	}
	if err := simd.Limit("generic"); err != nil {
		panic(err) // "generic" is always a tier
	}
	for _, f := range fails {
		log.Warn("kernel failed its self-test", "component", "simd", "op", f.Op, "kernel", f.Kernel, "reason", f.Reason)
	}
	log.Warn("running generic kernels for every operation", "component", "simd", "failed", len(fails))
	return fails
}
