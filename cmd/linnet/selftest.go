package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// breakEnv is a test hook, read only by the self-test's child process: it
// names kernels, as op/kernel separated by commas (dot_q8/avx2,dot_f32/vek),
// whose results the child corrupts before comparing them; op/kernel:sigill
// makes the child kill itself with SIGILL when it reaches that kernel, as a
// CPU lacking an instruction would.
const breakEnv = "LINNET_SELFTEST_BREAK"

// wrapEnv is a test hook: a command prefix the self-test's child starts
// under, for emulators that run a foreign binary without binfmt_misc
// (LINNET_SELFTEST_WRAP="qemu-aarch64-static -cpu cortex-a72").
const wrapEnv = "LINNET_SELFTEST_WRAP"

// kernelTimeout bounds one kernel's check, so a kernel stuck in a loop
// fails instead of hanging the start of the service. Emulated NEON is slow.
const kernelTimeout = 2 * time.Minute

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
		Long: "selftest runs every kernel the CPU claims, up to the LINNET_KERNELS cap, against\n" +
			"the generic kernel on random data, in a child process, so a kernel that raises\n" +
			"SIGILL (a CPU or VM that reports a feature it cannot run) is reported as a\n" +
			"failure and the rest are checked in a new child. It exits non-zero and names\n" +
			"the failing kernels; the daemon then runs generic kernels.\n\n" +
			"Test hooks: " + breakEnv + "=op/kernel[,op/kernel...] corrupts that\n" +
			"kernel's result inside the child; op/kernel:sigill makes the child die of SIGILL.\n" +
			wrapEnv + "=\"qemu-aarch64-static -cpu cortex-a72\" starts the child under an emulator\n" +
			"(for qemu-user without binfmt_misc).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if child != "" {
				return selfTestChild(e.stdout, strings.Split(child, ","), seed)
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(rand.Uint32()) // short enough to copy from a log
			}
			kernels := simd.Selectable()
			fails := isolatedSelfTest(cmd.Context(), kernels, seed)
			r := selfTestReport{Arch: simd.Arch, Seed: seed, OK: len(fails) == 0, Failed: []string{}, Kernels: []selfTestKernel{}}
			bad := map[string]string{}
			for _, f := range fails {
				bad[f.Op+"/"+f.Kernel] = f.Reason
				r.Failed = append(r.Failed, f.Op+"/"+f.Kernel)
			}
			for _, k := range kernels {
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
	c.Flags().StringVar(&child, "child", "", "check these op/kernel,... in this process (how selftest runs its child)")
	_ = c.Flags().MarkHidden("child")
	return c
}

// The child's protocol, one line on stdout per event: "run op/kernel"
// before a check, then "ok op/kernel" or "fail op/kernel<TAB>reason". A
// "run" without its answer names the kernel that killed the child.

// selfTestChild checks kernels in this process, in order, and reports on w.
// It, not the parent, reads the break hook.
func selfTestChild(w io.Writer, kernels []string, seed uint64) error {
	broken := map[string]string{} // op/kernel -> "" (corrupt) or "sigill"
	for _, b := range strings.Split(os.Getenv(breakEnv), ",") {
		k, how, _ := strings.Cut(strings.TrimSpace(b), ":")
		broken[k] = how
	}
	for _, k := range kernels {
		op, kernel, ok := strings.Cut(k, "/")
		if !ok {
			return fmt.Errorf("--child %q: want op/kernel", k)
		}
		if _, err := fmt.Fprintf(w, "run %s\n", k); err != nil {
			return err
		}
		how, hooked := broken[k]
		if how == "sigill" {
			// What a kernel using an instruction the CPU lacks gets.
			_ = syscall.Kill(os.Getpid(), syscall.SIGILL)
			time.Sleep(time.Minute)
			return errors.New("SIGILL did not arrive")
		}
		check := simd.Check
		if hooked {
			check = simd.CheckCorrupted
		}
		var err error
		if err = check(op, kernel, seed); err != nil {
			_, err = fmt.Fprintf(w, "fail %s\t%s\n", k, strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			_, err = fmt.Fprintf(w, "ok %s\n", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// isolatedSelfTest checks kernels in a child process of this same binary,
// so an illegal instruction kills the child, not this process: the kernel
// the child was checking fails, and a new child checks the ones after it.
func isolatedSelfTest(ctx context.Context, kernels []string, seed uint64) []simd.Failure {
	var fails []simd.Failure
	for len(kernels) > 0 {
		done, failed, err := runChild(ctx, kernels, seed)
		fails = append(fails, failed...)
		kernels = kernels[done:]
		if err == nil {
			continue // a fresh child for the rest, if the last one left any
		}
		if errors.Is(err, errNoStart) {
			// Nothing ran: every remaining kernel fails for the same reason.
			for _, k := range kernels {
				fails = append(fails, failure(k, err.Error()))
			}
			return fails
		}
		fails = append(fails, failure(kernels[0], err.Error()))
		kernels = kernels[1:]
	}
	return fails
}

func failure(k, reason string) simd.Failure {
	op, kernel, _ := strings.Cut(k, "/")
	return simd.Failure{Op: op, Kernel: kernel, Reason: reason}
}

// errNoStart wraps the error of a child that never reached its first
// kernel.
var errNoStart = errors.New("self-test child did not start")

// runChild runs one child on kernels and returns how many of them it
// answered for, the failures among those, and why the child stopped before
// the end of the list (the kernel after the answered ones is to blame).
func runChild(ctx context.Context, kernels []string, seed uint64) (done int, fails []simd.Failure, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, fmt.Errorf("%w: find own binary: %v", errNoStart, err)
	}
	args := append(strings.Fields(os.Getenv(wrapEnv)), exe, "selftest",
		"--child", strings.Join(kernels, ","), "--seed", strconv.FormatUint(seed, 10))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{buf: &stderr, n: 64 << 10}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errNoStart, err)
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errNoStart, err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out) // past an overlong line: never block the child
	}()
	started, timedOut := false, false
	timer := time.NewTimer(kernelTimeout)
	defer timer.Stop()
read:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				break read
			}
			verb, rest, _ := strings.Cut(l, " ")
			k, reason, _ := strings.Cut(rest, "\t")
			if done >= len(kernels) || k != kernels[done] {
				continue // not the protocol: ignore rather than misattribute
			}
			switch verb {
			case "run":
				started = true
				timer.Reset(kernelTimeout)
			case "fail":
				fails = append(fails, failure(k, reason))
				done++
			case "ok":
				done++
			}
		case <-timer.C:
			timedOut = true
			cancel()
		}
	}
	werr := cmd.Wait()
	switch {
	case done == len(kernels):
		return done, fails, nil
	case timedOut:
		return done, fails, fmt.Errorf("no answer within %v", kernelTimeout)
	case ctx.Err() != nil:
		return done, fails, ctx.Err()
	case werr == nil:
		werr = errors.New("exited early")
	}
	err = childFailure(werr, stderr.String())
	if !started {
		err = fmt.Errorf("%w: %v", errNoStart, err)
	}
	return done, fails, err
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
// it runs the isolated self-test on the kernels the dispatch may choose
// and, when any fails, makes every operation use its generic kernel and
// logs which kernels failed. The caller then reports simd.Kernels() as
// usual (all "generic").
func kernelSelfTest(ctx context.Context, log *slog.Logger) []simd.Failure {
	t0 := time.Now()
	kernels := simd.Selectable()
	fails := isolatedSelfTest(ctx, kernels, uint64(rand.Uint32()))
	if len(fails) == 0 {
		log.Info("kernels passed their self-test", "component", "simd", "kernels", len(kernels),
			"took", time.Since(t0).Round(time.Millisecond))
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
