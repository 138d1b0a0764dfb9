package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/model"
)

func TestCheckName(t *testing.T) {
	for _, n := range []string{"default", "hvac", "0", "pump-vibration_2", strings.Repeat("a", 63)} {
		if err := CheckName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	for _, n := range []string{"", "-x", "_x", "HVAC", "a/b", "a b", "é", strings.Repeat("a", 64)} {
		if err := CheckName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("%q: %v", n, err)
		}
		if _, err := s.Model(n); !errors.Is(err, ErrBadName) {
			t.Errorf("Model(%q): %v", n, err)
		}
	}
}

// copyGolden copies a store (and its record, if any) from testdata.
func copyGolden(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "linnet.db")
	for _, suffix := range []string{"", RecordSuffix} {
		b, err := os.ReadFile(filepath.Join("testdata", name+suffix))
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestSingleModelStores: stores written by the single-model builds (before
// and after the state record) open as the default model with everything
// they held: versions, active, rollback stack, withdrawn version, floor,
// checkpoint and history; the record stays in the single-model format.
// Both were written by: Put 1-3, Activate 1, Install 2, checkpoint
// "ckpt-2", Install 3, Withdraw 3, Install 4.
func TestSingleModelStores(t *testing.T) {
	for _, golden := range []string{"single-model-v1.db", "single-model-v2.db"} {
		t.Run(golden, func(t *testing.T) {
			path := copyGolden(t, golden)
			s := openTest(t, path, Options{})
			if s.Report().Err != nil {
				t.Errorf("report: %v", s.Report().Err)
			}
			if names, err := s.Models(); err != nil || !slices.Equal(names, []string{DefaultModel}) {
				t.Errorf("models %v %v", names, err)
			}
			d := s.Default()
			infos, err := d.List()
			if err != nil || len(infos) != 4 {
				t.Fatalf("list %+v %v", infos, err)
			}
			if a, _ := d.ActiveVersion(); a != 4 {
				t.Errorf("active %d", a)
			}
			if w, _ := s.Withdrawn(3); !w {
				t.Error("3 not withdrawn")
			}
			if _, err := d.Install(modelFile(t, 3), SourceOTA, "", false); !errors.Is(err, ErrWithdrawn) {
				t.Errorf("install withdrawn: %v", err)
			}
			if _, err := d.Install(modelFile(t, 1), SourceOTA, "", false); !errors.Is(err, ErrOlder) {
				t.Errorf("install older: %v", err)
			}
			h, _ := d.History()
			if len(h) < 8 {
				t.Errorf("history of %d events", len(h))
			}
			if err := d.Rollback(SourceCLI); err != nil {
				t.Fatal(err)
			}
			if st, err := d.LoadCheckpoint(); err != nil || string(st) != "ckpt-2" {
				t.Errorf("checkpoint of 2: %q %v", st, err)
			}
			s.Close()
			// A read-only open (the CLI) of the untouched file lists no
			// device states rather than failing.
			ro := copyGolden(t, golden)
			r, err := Open(ro, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			if list, err := r.Default().Devices(); err != nil || len(list) != 0 {
				t.Errorf("devices of a single-model store: %v %v", list, err)
			}
			r.Close()
			rec, err := os.ReadFile(path + RecordSuffix)
			if err != nil || binary.LittleEndian.Uint16(rec[4:]) != stateFormat {
				t.Errorf("record format %x %v, want the single-model format", rec[4:6], err)
			}
		})
	}
}

// twoModels returns a store with default at 2 (stack 1) and hvac at 12
// (stack 11), both from Install.
func twoModels(t *testing.T, path string, opts Options) (*Store, *Model, *Model) {
	t.Helper()
	s := openTest(t, path, opts)
	d := s.Default()
	hv, err := s.Model("hvac")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		m *Model
		v int64
	}{{d, 1}, {d, 2}, {hv, 11}, {hv, 12}} {
		if _, err := step.m.Install(modelFile(t, step.v), SourceOTA, "", false); err != nil {
			t.Fatal(err)
		}
	}
	return s, d, hv
}

// TestModelsIndependent: every OTA rule holds per model, and no decision
// about one model changes another.
func TestModelsIndependent(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	s, d, hv := twoModels(t, filepath.Join(t.TempDir(), "s.db"), Options{Now: func() time.Time { return now }})
	if names, _ := s.Models(); !slices.Equal(names, []string{DefaultModel, "hvac"}) {
		t.Errorf("models %v", names)
	}
	snapshot := func(m *Model) string {
		infos, _ := m.List()
		a, _ := m.ActiveVersion()
		f, _ := m.Floor()
		var vs []string
		for _, in := range infos {
			vs = append(vs, itoa(in.Version))
		}
		return strings.Join(vs, ",") + " active " + itoa(a) + " floor " + itoa(f)
	}
	before := snapshot(d)
	if got := snapshot(hv); got != "11,12 active 12 floor 12" {
		t.Errorf("hvac: %s", got)
	}
	// Withdraw, downgrade refusal, rollback, replay: all on hvac.
	if v, err := hv.Withdraw(12, SourceRollback, "guard"); err != nil || v != 11 {
		t.Fatalf("withdraw: %d %v", v, err)
	}
	if _, err := hv.Install(modelFile(t, 12), SourceOTA, "", false); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("hvac withdrawn: %v", err)
	}
	if _, err := hv.Install(modelFile(t, 2), SourceOTA, "", false); !errors.Is(err, ErrOlder) {
		t.Errorf("hvac older: %v", err)
	}
	if _, err := hv.Install(modelFile(t, 13), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	// A rollback file is bound to its model: one made for the model
	// named "default" (no name) is refused here, and hvac's there.
	unnamed, err := model.NewRollback(modelFile(t, 11), 13, "", now.Add(time.Hour), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hv.InstallRollback(unnamed, "gw", SourceOTA); !errors.Is(err, model.ErrRollbackModel) {
		t.Errorf("the default model's rollback file on hvac: %v", err)
	}
	rb, err := model.NewModelRollback(modelFile(t, 11), 13, "", "hvac", now.Add(time.Hour), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.InstallRollback(rb, "gw", SourceOTA); !errors.Is(err, model.ErrRollbackModel) {
		t.Errorf("hvac's rollback file on the default model: %v", err)
	}
	if _, err := hv.InstallRollback(rb, "gw", SourceOTA); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.InstallRollback(rb, "gw", SourceOTA); !errors.Is(err, ErrReplay) {
		t.Errorf("replay: %v", err)
	}
	if err := hv.SaveCheckpoint([]byte("hvac state")); err != nil {
		t.Fatal(err)
	}
	// The default model saw none of it.
	if got := snapshot(d); got != before {
		t.Errorf("default changed: %s, was %s", got, before)
	}
	for _, v := range []int64{12, 13} {
		if w, _ := d.Withdrawn(v); w {
			t.Errorf("default has %d withdrawn", v)
		}
	}
	if c, _ := d.Consumed(sha(t, rb)); c {
		t.Error("default consumed hvac's rollback")
	}
	if _, err := d.LoadCheckpoint(); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("default checkpoint: %v", err)
	}
	for _, e := range mustHistory(t, d) {
		if e.Version > 10 {
			t.Errorf("default history has %+v", e)
		}
	}
	// Rules hold for default on its own: 12 is not withdrawn there.
	if _, err := d.Install(modelFile(t, 12), SourceOTA, "", false); err != nil {
		t.Errorf("default install 12: %v", err)
	}
	if a, _ := hv.ActiveVersion(); a != 11 {
		t.Errorf("hvac active %d after default's install", a)
	}
	if st, _ := hv.LoadCheckpoint(); string(st) != "hvac state" {
		t.Errorf("hvac checkpoint %q", st)
	}
	// Reads of a model never stored.
	pump, _ := s.Model("pump")
	if _, err := pump.ActiveVersion(); !errors.Is(err, ErrUnknownModel) || !errors.Is(err, ErrNoActive) {
		t.Errorf("unknown model: %v", err)
	}
	if names, _ := s.Models(); len(names) != 2 {
		t.Errorf("a read created a model: %v", names)
	}
	if err := s.Verify(); err != nil {
		t.Error(err)
	}
}

func sha(t *testing.T, file []byte) [32]byte {
	t.Helper()
	rb, err := model.OpenRollback(file, []ed25519.PublicKey{testPub()})
	if err != nil {
		t.Fatal(err)
	}
	return rb.Digest
}

func mustHistory(t *testing.T, m *Model) []Event {
	t.Helper()
	h, err := m.History()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRecordCoversEveryModel: the state record keeps every model's active
// version, stack, withdrawn list and floor: a lost file comes back from it
// (Repair), and a file older than its record is corrected, model by model.
func TestRecordCoversEveryModel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s, _, hv := twoModels(t, path, Options{})
	if _, err := hv.Withdraw(12, SourceRollback, "guard"); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path) // hvac at 11, 12 withdrawn
	if _, err := hv.Install(modelFile(t, 13), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rec, _ := os.ReadFile(path + RecordSuffix)
	if binary.LittleEndian.Uint16(rec[4:]) != stateFormatNamed {
		t.Errorf("record format %d", binary.LittleEndian.Uint16(rec[4:]))
	}

	// The file goes back one transaction: the record restores hvac's 13.
	os.WriteFile(path, old, 0o600)
	s = openTest(t, path, Options{})
	hv, _ = s.Model("hvac")
	if s.Report().Err == nil {
		t.Error("an older file was not reported")
	}
	if a, _ := hv.ActiveVersion(); a != 0 {
		// 13 is not in the old file: the newest stored above the lost
		// active one would serve (there is none), and the floor keeps 11
		// out, as for the default model.
		t.Errorf("hvac active %d, want none", a)
	}
	if f, _ := hv.Floor(); f != 13 {
		t.Errorf("hvac floor %d, want 13 (active when the file lost it)", f)
	}
	if lost := s.Report().Named["hvac"]; lost == nil || lost.LostActive != 13 {
		t.Errorf("report %+v", s.Report().Named)
	}
	if a, _ := s.ActiveVersion(); a != 2 {
		t.Errorf("default active %d", a)
	}
	s.Close()

	// The file is lost: Repair starts from the record, every model's
	// withdrawn list and floor included.
	os.Remove(path)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrLost) {
		t.Fatalf("lost file: %v", err)
	}
	s = openTest(t, path, Options{Repair: true})
	hv, _ = s.Model("hvac")
	if w, _ := hv.Withdrawn(12); !w {
		t.Error("hvac forgot 12 was withdrawn")
	}
	if _, err := hv.Install(modelFile(t, 12), SourceOTA, "", false); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("hvac reinstall withdrawn: %v", err)
	}
	if f, _ := hv.Floor(); f != 13 {
		t.Errorf("hvac floor %d after loss", f)
	}
	if f, _ := s.Floor(); f != 2 {
		t.Errorf("default floor %d after loss", f)
	}
	if w, _ := s.Withdrawn(12); w {
		t.Error("default has 12 withdrawn")
	}
}

// TestRepairEveryModel: a damaged file is rebuilt model by model: a bad
// version of the default model costs that version, hvac keeps everything
// (versions, active, withdrawn, checkpoint, device states).
func TestRepairEveryModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, _, hv := twoModels(t, path, Options{})
	if _, err := hv.Install(modelFile(t, 13), SourceOTA, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.Withdraw(13, SourceRollback, "guard"); err != nil {
		t.Fatal(err)
	}
	if err := hv.SaveCheckpoint([]byte("hvac state")); err != nil {
		t.Fatal(err)
	}
	if err := hv.SaveDevices([]model.DeviceSnapshot{{Device: "d1", Version: 12, Updates: 3, State: []byte("w")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(path)
	damageCopies(t, b, modelFile(t, 1))
	os.WriteFile(path, b, 0o600)

	s = openTest(t, path, repairOpts(&bytes.Buffer{}))
	if !errors.Is(s.Report().Err, ErrDamaged) {
		t.Fatalf("report %v", s.Report().Err)
	}
	hv, _ = s.Model("hvac")
	infos, _ := hv.List()
	if len(infos) != 2 || infos[0].Version != 11 || infos[1].Version != 12 {
		t.Errorf("hvac kept %+v, want 11 and 12 (a withdrawn version is not restored)", infos)
	}
	if a, _ := hv.ActiveVersion(); a != 12 {
		t.Errorf("hvac active %d", a)
	}
	if w, _ := hv.Withdrawn(13); !w {
		t.Error("hvac forgot 13 was withdrawn")
	}
	if st, _ := hv.LoadCheckpoint(); string(st) != "hvac state" {
		t.Errorf("hvac checkpoint %q", st)
	}
	if d, err := hv.Device("d1"); err != nil || d.Updates != 3 || string(d.State) != "w" {
		t.Errorf("device %+v %v", d, err)
	}
	if a, _ := s.ActiveVersion(); a != 2 {
		t.Errorf("default active %d", a)
	}
	if vs := s.Report().LostVersions; !slices.Equal(vs, []int64{1}) {
		t.Errorf("default lost %v", vs)
	}
}
