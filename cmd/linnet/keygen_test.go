package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// linnet runs the CLI in-process and returns stdout.
func linnet(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), err
}

// TestModelFileCommands walks keygen, quantize, sign and inspect on the
// golden f32 model.
func TestModelFileCommands(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "model", "testdata", "v1-f32.lnm")
	key := filepath.Join(dir, "KEY")
	q8 := filepath.Join(dir, "m-q8.lnm")

	if _, err := linnet(t, "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	if _, err := linnet(t, "keygen", "--out", key); err == nil {
		t.Error("keygen overwrote a key")
	}
	out, err := linnet(t, "quantize", "--model", src, "--scheme", "q8", "--out", q8, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var qr quantizeReport
	if err := json.Unmarshal([]byte(out), &qr); err != nil || qr.Scheme != model.Q8 || qr.Bytes >= qr.SourceBytes {
		t.Errorf("quantize report %s: %v", out, err)
	}
	if _, err := linnet(t, "quantize", "--model", src, "--scheme", "q3", "--out", q8); err == nil {
		t.Error("unknown scheme accepted")
	}
	if _, err := linnet(t, "sign", "--key", key, q8); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(q8)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := model.ReadPublicKey(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := model.Verify(b, []ed25519.PublicKey{pub}); err != nil {
		t.Errorf("signed file does not verify: %v", err)
	}

	out, err = linnet(t, "inspect", q8, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r inspectReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	srcM, _, _ := model.ReadFile(src)
	if !r.Signed || r.Signer != model.KeyID(pub) || r.Scheme != model.Q8 || r.Width != 40 ||
		r.Parent != srcM.Version || r.Version <= srcM.Version || r.Format != 1 || len(r.Features) != 40 {
		t.Errorf("inspect: %+v", r)
	}
	out, err = linnet(t, "inspect", src)
	if err != nil || !strings.Contains(out, "scheme    f32") || !strings.Contains(out, "more (--all)") {
		t.Errorf("inspect text: %v\n%s", err, out)
	}

	// A damaged file is refused with the reason.
	bad := filepath.Join(dir, "bad.lnm")
	b[len(b)/2] ^= 1
	os.WriteFile(bad, b, 0o644)
	if _, err := linnet(t, "inspect", bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("damaged file: %v", err)
	}
}

// inspect reports the signed-rollback flag that push --rollback sets.
func TestInspectRollback(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "model", "testdata", "v1-f32.lnm"))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := model.MarkRollback(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"plain.lnm": src, "rollback.lnm": rb} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := decode[inspectReport](t, must(linnet(t, "inspect", "--json", path)))
		if r.Rollback != (name == "rollback.lnm") {
			t.Errorf("%s: rollback %v", name, r.Rollback)
		}
	}
}
