package model

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"testing"
	"time"
)

func TestRollbackFlag(t *testing.T) {
	for _, name := range []string{"v1-f32.lnm", "v1-q8.lnm", "v1-signed.lnm"} {
		file, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if IsRollback(file) {
			t.Errorf("%s: golden file reads as a rollback", name)
		}
		rb, err := MarkRollback(file)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !IsRollback(rb) || IsSigned(rb) {
			t.Errorf("%s: marked file: rollback %v signed %v", name, IsRollback(rb), IsSigned(rb))
		}
		a, _ := Decode(file)
		b, err := Decode(rb)
		if err != nil {
			t.Fatalf("%s: marked file does not decode: %v", name, err)
		}
		if a.Version != b.Version || len(a.Features) != len(b.Features) {
			t.Errorf("%s: marking changed the model", name)
		}
		pub, priv, _ := ed25519.GenerateKey(nil)
		s, err := Sign(rb, priv)
		if err != nil {
			t.Fatal(err)
		}
		if !IsRollback(s) || Verify(s, []ed25519.PublicKey{pub}) != nil {
			t.Errorf("%s: signed rollback does not verify", name)
		}
		// The flag is covered by the signature: clearing it breaks the
		// CRC, and a re-computed CRC breaks the signature.
		c := append([]byte(nil), s...)
		c[6] &^= 1
		if err := Verify(c, []ed25519.PublicKey{pub}); !errors.Is(err, ErrChecksum) {
			t.Errorf("%s: cleared flag: %v", name, err)
		}
	}
	// Unknown flag bits are still refused.
	file, _ := os.ReadFile("testdata/v1-f32.lnm")
	file[6] |= 2
	var fe *FormatError
	if _, err := Decode(file); !errors.As(err, &fe) || fe.Offset != 6 {
		t.Errorf("unknown flag bit: %v", err)
	}
}

func TestRollbackFile(t *testing.T) {
	file, err := os.ReadFile("testdata/v1-f32.lnm")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := Decode(file)
	pub, priv, _ := ed25519.GenerateKey(nil)
	trusted := []ed25519.PublicKey{pub}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rb, err := NewRollback(file, m.Version+5, "gw-1", exp, priv)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenRollback(rb, trusted)
	if err != nil {
		t.Fatal(err)
	}
	if r.From != m.Version+5 || r.To != m.Version || r.Gateway != "gw-1" || !r.Expires.Equal(exp) ||
		string(r.Model) != string(file) || r.Signer != KeyID(pub) {
		t.Errorf("opened %+v", r)
	}
	now := exp.Add(-time.Hour)
	if err := r.Check(r.From, "gw-1", "default", now); err != nil {
		t.Errorf("check: %v", err)
	}
	for _, c := range []struct {
		serving int64
		gw      string
		now     time.Time
		want    error
	}{
		{r.From, "gw-1", exp, ErrRollbackExpired},
		{r.From, "gw-2", now, ErrRollbackGateway},
		{r.From + 1, "gw-1", now, ErrRollbackSource},
		{r.To, "gw-1", now, ErrRollbackSource},
	} {
		if err := r.Check(c.serving, c.gw, "default", c.now); !errors.Is(err, c.want) {
			t.Errorf("check %+v: %v", c, err)
		}
	}
	// Any gateway when none is named.
	any, _ := NewRollback(file, m.Version+5, "", exp, priv)
	if r, err := OpenRollback(any, trusted); err != nil || r.Check(r.From, "gw-9", "default", now) != nil {
		t.Errorf("fleet rollback: %v", err)
	}
	// A file is for one model: unnamed, the model named "default"; named,
	// that model only; the name is signed like the rest.
	if err := r.Check(r.From, "gw-1", "hvac", now); !errors.Is(err, ErrRollbackModel) {
		t.Errorf("an unnamed file checked for hvac: %v", err)
	}
	named, err := NewModelRollback(file, m.Version+5, "", "hvac", exp, priv)
	if err != nil {
		t.Fatal(err)
	}
	rn, err := OpenRollback(named, trusted)
	if err != nil || rn.Name != "hvac" || rn.To != m.Version {
		t.Fatalf("named rollback: %v %+v", err, rn)
	}
	if err := rn.Check(rn.From, "gw-1", "hvac", now); err != nil {
		t.Errorf("hvac's file for hvac: %v", err)
	}
	for _, other := range []string{"default", "pump"} {
		if err := rn.Check(rn.From, "gw-1", other, now); !errors.Is(err, ErrRollbackModel) {
			t.Errorf("hvac's file for %s: %v", other, err)
		}
	}
	for i := range named {
		b := append([]byte(nil), named...)
		b[i] ^= 0x01
		if _, err := OpenRollback(b, trusted); err == nil {
			t.Fatalf("named file: flipped byte %d accepted", i)
		}
	}
	if d, _ := NewModelRollback(file, m.Version+5, "", "default", exp, priv); !bytes.Equal(d, any) {
		t.Error(`a file for "default" differs from an unnamed one`)
	}
	// Every byte is covered by the signature, and nothing panics.
	for i := range rb {
		b := append([]byte(nil), rb...)
		b[i] ^= 0x01
		if _, err := OpenRollback(b, trusted); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for n := range len(rb) {
		if _, err := OpenRollback(rb[:n], trusted); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := OpenRollback(rb, []ed25519.PublicKey{other}); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("untrusted key: %v", err)
	}
	// Not older, no expiry, and format-1 flagged files are refused.
	if _, err := NewRollback(file, m.Version, "", exp, priv); err == nil {
		t.Error("rollback to the same version accepted")
	}
	if _, err := NewRollback(file, m.Version+1, "", time.Time{}, priv); err == nil {
		t.Error("rollback without expiry accepted")
	}
	flagged, _ := MarkRollback(file)
	signed, _ := Sign(flagged, priv)
	if _, err := OpenRollback(signed, trusted); !errors.Is(err, ErrLegacyRollback) {
		t.Errorf("format-1 rollback: %v", err)
	}
	if _, err := NewRollback(flagged, m.Version+1, "", exp, priv); !errors.Is(err, ErrLegacyRollback) {
		t.Errorf("wrapping a flagged file: %v", err)
	}
	if _, err := OpenRollback(file, trusted); !errors.Is(err, ErrNotRollback) {
		t.Errorf("model file: %v", err)
	}
}

func FuzzOpenRollback(f *testing.F) {
	file, _ := os.ReadFile("testdata/v1-q8.lnm")
	m, _ := Decode(file)
	pub, priv, _ := ed25519.GenerateKey(nil)
	rb, _ := NewRollback(file, m.Version+1, "gw", time.Unix(2e9, 0), priv)
	f.Add(rb)
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := OpenRollback(b, []ed25519.PublicKey{pub}); err == nil {
			_ = r.Check(r.From, "gw", "default", time.Unix(0, 0))
		}
	})
}
