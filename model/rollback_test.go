package model

import (
	"crypto/ed25519"
	"errors"
	"os"
	"testing"
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
