package store

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/model"
)

// The crash test re-executes the test binary as a child that writes
// models, activations, rollbacks, prunes and checkpoints in a loop, and
// SIGKILLs it at random moments. The child announces each operation on
// stdout before it starts ("B op args") and after it returns ("E"), so the
// parent knows what was acknowledged and what was in flight when it died.
const (
	crashEnvPath = "LINNET_STORE_CRASH_DB"
	crashEnvBase = "LINNET_STORE_CRASH_BASE"
	// crashEnvExec, if set, is the command (with arguments) that runs the
	// child binary: the emulator under qemu-user without binfmt_misc.
	crashEnvExec = "LINNET_TEST_EXEC"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnvPath); path != "" {
		base, _ := strconv.ParseInt(os.Getenv(crashEnvBase), 10, 64)
		if err := crashChild(path, base); err != nil {
			fmt.Fprintln(os.Stdout, "F", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// deviceStates bounds the seq of a device's checkpointState: states of 40
// to 2,087 bytes, whole and split in two halves (splitState).
const deviceStates = 2048

// checkpointState is self-checking: seq, a payload whose length depends on
// seq, and the SHA-256 of both. A torn value fails the hash.
func checkpointState(seq int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(seq))
	b = append(b, bytes.Repeat([]byte{byte(seq)}, int(seq%4096))...)
	h := sha256.Sum256(b)
	return append(b, h[:]...)
}

func parseCheckpointState(b []byte) (int64, error) {
	if len(b) < 8+32 {
		return 0, fmt.Errorf("checkpoint of %d bytes", len(b))
	}
	h := sha256.Sum256(b[:len(b)-32])
	if !bytes.Equal(h[:], b[len(b)-32:]) {
		return 0, errors.New("torn checkpoint: hash mismatch")
	}
	seq := int64(binary.BigEndian.Uint64(b))
	if len(b) != 8+int(seq%4096)+32 {
		return 0, errors.New("torn checkpoint: length")
	}
	return seq, nil
}

// crashChild runs operations forever (until killed). Versions and
// checkpoint sequence numbers start at base, so every run's are new.
func crashChild(path string, base int64) error {
	s, err := Open(path, Options{Trusted: []ed25519.PublicKey{testPub()}, Keep: 4, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	say := func(f string, a ...any) { fmt.Fprintf(os.Stdout, f+"\n", a...) }
	say("R")
	r := rand.New(rand.NewPCG(uint64(base), 1))
	next := base
	for i := 0; ; i++ {
		next++
		switch op := r.IntN(12); {
		case op >= 10:
			// A batch of device states of model "hvac": one transaction.
			hv, _ := s.Model("hvac")
			var batch []model.DeviceSnapshot
			var ids []string
			for _, d := range r.Perm(crashDevices)[:crashBatch] {
				id := fmt.Sprintf("d%03d", d)
				ids = append(ids, id)
				batch = append(batch, model.DeviceSnapshot{Device: id, Version: 1, Updates: next, State: checkpointState(next % deviceStates)})
			}
			say("B dev %d %s", next, strings.Join(ids, ","))
			if err := hv.SaveDevices(batch); err != nil {
				return err
			}
		case op < 3:
			file, err := makeModelFile(next)
			if err != nil {
				return err
			}
			say("B put %d", next)
			if _, err := s.Put(file, SourceOTA); err != nil {
				return err
			}
		case op < 5:
			infos, err := s.List()
			if err != nil {
				return err
			}
			if len(infos) == 0 {
				continue
			}
			v := infos[r.IntN(len(infos))].Version
			say("B activate %d", v)
			if err := s.Activate(v, SourceOTA); err != nil {
				return err
			}
		case op < 6:
			say("B rollback")
			if err := s.Rollback(SourceCLI); err != nil && !errors.Is(err, ErrNoPrevious) {
				return err
			}
		case op < 7:
			say("B prune")
			if err := s.Prune(2); err != nil {
				return err
			}
		default:
			a, err := s.ActiveVersion()
			if err != nil {
				return err
			}
			if a == 0 {
				continue
			}
			say("B ckpt %d %d", a, next)
			if err := s.SaveCheckpoint(checkpointState(next)); err != nil {
				return err
			}
		}
		say("E")
	}
}

// crashModel is what the parent knows the store must hold.
type crashModel struct {
	active int64            // acknowledged active version (0: none yet)
	ckpt   map[int64]int64  // acknowledged checkpoint seq per version
	dev    map[string]int64 // acknowledged device state (Updates) per device of "hvac"
}

// How many devices the crash child writes states for, and per batch.
const crashDevices, crashBatch = 200, 40

func TestCrashKill(t *testing.T) {
	kills := 120
	if testing.Short() {
		kills = 25 // emulated runs: each child start costs much more
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "linnet.db")
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	known := crashModel{ckpt: map[int64]int64{}, dev: map[string]int64{}}
	midOp, acked := 0, 0
	maxDelay := 30 * time.Millisecond
	for k := range kills {
		cmd := exec.Command(exe, "-test.run=^$")
		if w := strings.Fields(os.Getenv(crashEnvExec)); len(w) > 0 {
			cmd = exec.Command(w[0], append(w[1:], exe, "-test.run=^$")...)
		}
		cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvBase+"="+strconv.Itoa((k+1)*1_000_000))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			if errors.Is(err, syscall.ENOEXEC) {
				t.Skipf("cannot re-execute the test binary (%v): under qemu-user without binfmt, set %s to the emulator, e.g. %s=qemu-arm-static", err, crashEnvExec, crashEnvExec)
			}
			t.Fatal(err)
		}
		// Read everything the child says; the reader ends when it dies.
		// "R" means the store is open and the loop starts.
		lines := make(chan []string, 1)
		ready, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			var ls []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "R" {
					close(ready)
					continue
				}
				ls = append(ls, sc.Text())
			}
			lines <- ls
		}()
		// One kill in eight lands anywhere, start-up and Open included; the
		// others wait for the loop so they hit operations even when the
		// child starts slowly (emulation).
		if k%8 != 0 {
			select {
			case <-ready:
			case <-done: // the child died on its own: replay reports why
			}
		}
		time.Sleep(time.Duration(r.Int64N(int64(maxDelay))) + 100*time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		ls := <-lines
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && !ws.Signaled() {
			t.Fatalf("kill %d: the child ended on its own (%v); its last lines: %q", k, cmd.ProcessState, ls[max(0, len(ls)-3):])
		}

		inflight := known.replay(t, ls)
		if inflight != nil {
			midOp++
		}
		n := strings.Count(strings.Join(ls, "\n"), "E")
		acked += n
		// Pace the kills to the child's speed (native or emulated): aim
		// for a few operations per run, so most kills land inside one.
		switch {
		case n < 2 && maxDelay < 2*time.Second:
			maxDelay = maxDelay * 3 / 2
		case n > 8 && maxDelay > 2*time.Millisecond:
			maxDelay = maxDelay * 2 / 3
		}
		known.check(t, k, path, inflight)
		if t.Failed() {
			t.Fatalf("after kill %d (in flight: %v)", k, inflight)
		}
	}
	stored := 0
	for _, u := range known.dev {
		if u != 0 {
			stored++
		}
	}
	if stored == 0 {
		t.Error("no device state was ever written")
	}
	t.Logf("%d kills, %d during an operation, %d operations acknowledged, %d devices with a state", kills, midOp, acked, stored)
}

// replay applies the acknowledged operations to the model and returns the
// operation in flight at the kill, if any.
func (c *crashModel) replay(t *testing.T, lines []string) []string {
	var cur []string
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case f[0] == "F":
			t.Fatalf("child failed: %s", l)
		case f[0] == "B":
			cur = f[1:]
		case f[0] == "E":
			switch cur[0] {
			case "activate":
				c.active = atoi(cur[1])
			case "rollback", "prune":
				c.active = -1 // resolved from the store by check
			case "ckpt":
				c.ckpt[atoi(cur[1])] = atoi(cur[2])
			case "dev":
				for _, d := range strings.Split(cur[2], ",") {
					c.dev[d] = atoi(cur[1])
				}
			}
			cur = nil
		}
	}
	return cur
}

// check opens the store after a kill and checks it against the model.
func (c *crashModel) check(t *testing.T, k int, path string, inflight []string) {
	s, err := Open(path, Options{Trusted: []ed25519.PublicKey{testPub()}, Keep: 4})
	if err != nil {
		t.Errorf("kill %d: open: %v", k, err)
		return
	}
	defer s.Close()
	if err := s.Verify(); err != nil {
		t.Errorf("kill %d: verify: %v", k, err)
	}
	c.checkDevices(t, k, s, inflight)
	m, _, err := s.Active()
	var active int64
	switch {
	case err == nil:
		active = m.Version
	case errors.Is(err, ErrNoActive):
	default:
		t.Errorf("kill %d: active model: %v", k, err)
		return
	}
	// The active version must agree with the last activate/rollback event,
	// and with what was acknowledged unless an activation was in flight.
	h, err := s.History()
	if err != nil {
		t.Errorf("kill %d: history: %v", k, err)
	}
	var last int64
	for _, e := range h {
		if e.Action == ActionActivate || e.Action == ActionRollback || e.Action == ActionImport && e.Source == SourceRecovery {
			last = e.Version
		}
	}
	if last != 0 && last != active {
		t.Errorf("kill %d: active %d, history says %d", k, active, last)
	}
	if c.active >= 0 && active != c.active {
		ok := len(inflight) > 0 && (inflight[0] == "rollback" || inflight[0] == "activate" && atoi(inflight[1]) == active)
		if !ok {
			t.Errorf("kill %d: active %d, acknowledged %d, in flight %v", k, active, c.active, inflight)
		}
	}
	c.active = active

	// The checkpoint of the active version is the acknowledged one or the
	// one in flight, never torn.
	st, err := s.LoadCheckpoint()
	switch {
	case errors.Is(err, ErrNoCheckpoint), errors.Is(err, ErrNoActive):
		if seq, ok := c.ckpt[active]; ok && active != 0 {
			t.Errorf("kill %d: checkpoint %d of version %d lost", k, seq, active)
		}
		return
	case err != nil:
		t.Errorf("kill %d: checkpoint: %v", k, err)
		return
	}
	seq, err := parseCheckpointState(st)
	if err != nil {
		t.Errorf("kill %d: %v", k, err)
		return
	}
	want := c.ckpt[active]
	if seq != want && !(len(inflight) == 3 && inflight[0] == "ckpt" && atoi(inflight[1]) == active && atoi(inflight[2]) == seq) {
		t.Errorf("kill %d: checkpoint seq %d, acknowledged %d, in flight %v", k, seq, want, inflight)
	}
	c.ckpt[active] = seq
}

// checkDevices checks that every device holds its acknowledged state or,
// for a batch in flight, all of the batch holds the new one or none of it.
func (c *crashModel) checkDevices(t *testing.T, k int, s *Store, inflight []string) {
	hv, _ := s.Model("hvac")
	var batch map[string]bool
	var seq int64
	if len(inflight) == 3 && inflight[0] == "dev" {
		seq, batch = atoi(inflight[1]), map[string]bool{}
		for _, d := range strings.Split(inflight[2], ",") {
			batch[d] = true
		}
	}
	got := map[string]int64{}
	for i := range crashDevices {
		id := fmt.Sprintf("d%03d", i)
		d, err := hv.LoadDevice(id)
		if err != nil && !errors.Is(err, ErrUnknownModel) {
			t.Errorf("kill %d: device %s: %v", k, id, err)
			continue
		}
		if d == nil {
			continue
		}
		if n, err := parseCheckpointState(d.State); err != nil || n != d.Updates%deviceStates {
			t.Errorf("kill %d: device %s: state %d for update %d: %v", k, id, n, d.Updates, err)
		}
		got[id] = d.Updates
	}
	applied := 0
	for id := range batch {
		if got[id] == seq {
			applied++
		}
	}
	if applied != 0 && applied != len(batch) {
		t.Errorf("kill %d: %d of the %d devices of the batch in flight were written", k, applied, len(batch))
	}
	for i := range crashDevices {
		id := fmt.Sprintf("d%03d", i)
		want := c.dev[id]
		if batch[id] && applied > 0 {
			want = seq
		}
		if got[id] != want {
			t.Errorf("kill %d: device %s at update %d, acknowledged %d", k, id, got[id], want)
		}
		c.dev[id] = got[id]
	}
}

func atoi(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}
