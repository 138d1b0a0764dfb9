package model

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// Sign returns file signed with key: the file without any earlier signature,
// then the trailer "LSIG", the key id and an Ed25519 signature over every
// byte before it, format version and model version included. It checks the
// file (structure and CRC) first, so it never signs a damaged file. file is
// not modified.
func Sign(file []byte, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(key), ed25519.PrivateKeySize)
	}
	if _, err := Decode(file); err != nil {
		return nil, err
	}
	l, _ := parseLayout(file)
	end := l.crc + crcSize
	out := make([]byte, 0, end+sigSize)
	out = append(out, file[:end]...)
	out = append(out, sigTag[:]...)
	id := keyID(key.Public().(ed25519.PublicKey))
	out = append(out, id[:]...)
	return append(out, ed25519.Sign(key, out)...), nil
}

// IsSigned reports whether file is structurally a .lnm file with a
// signature trailer. It checks neither the CRC nor the signature.
func IsSigned(file []byte) bool {
	l, err := parseLayout(file)
	return err == nil && l.signed
}

// Verify checks file (structure and CRC, as Decode does) and its signature
// against the trusted keys. It returns nil only if a trusted key signed
// exactly these bytes; otherwise an error wrapping ErrUnsigned,
// ErrUntrustedKey or ErrBadSignature, or a Decode error.
func Verify(file []byte, trusted []ed25519.PublicKey) error {
	if _, err := Decode(file); err != nil {
		return err
	}
	l, _ := parseLayout(file)
	if !l.signed {
		return ErrUnsigned
	}
	end := l.crc + crcSize
	msg := file[:end+sigTagSize+keyIDSize]
	sig := file[end+sigTagSize+keyIDSize:]
	id := [keyIDSize]byte(file[end+sigTagSize:])
	for _, k := range trusted {
		if len(k) != ed25519.PublicKeySize || keyID(k) != id {
			continue
		}
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
		return fmt.Errorf("%w (key %x)", ErrBadSignature, id)
	}
	return fmt.Errorf("%w: key %x is not among the %d trusted", ErrUntrustedKey, id, len(trusted))
}

// SignerID returns the hex key id a signed file names (the first 8 bytes of
// the SHA-256 of the signer's public key), or "" if file is not signed.
func SignerID(file []byte) string {
	l, err := parseLayout(file)
	if err != nil || !l.signed {
		return ""
	}
	at := l.crc + crcSize + sigTagSize
	return hex.EncodeToString(file[at : at+keyIDSize])
}

// KeyID returns the hex id of a public key, as SignerID and `linnet
// inspect` print it.
func KeyID(pub ed25519.PublicKey) string {
	id := keyID(pub)
	return hex.EncodeToString(id[:])
}

func keyID(pub ed25519.PublicKey) [keyIDSize]byte {
	h := sha256.Sum256(pub)
	return [keyIDSize]byte(h[:keyIDSize])
}

// Key files.
//
// GenerateKeyFiles writes an Ed25519 key pair as PEM: path holds the
// private key (PKCS #8, "PRIVATE KEY", mode 0600) and path+".pub" the
// public key (PKIX, "PUBLIC KEY", mode 0644), the forms openssl reads and
// writes (openssl genpkey -algorithm ed25519). ReadPrivateKey and
// ReadPublicKey also accept raw keys: a private key as its 32-byte seed or
// 64-byte private key, a public key as its 32 bytes.

// GenerateKeyFiles creates a key pair from rnd (crypto/rand if nil) and
// writes it to path and path+".pub". It refuses to overwrite either file.
func GenerateKeyFiles(path string, rnd io.Reader) (ed25519.PublicKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{path, path + ".pub"} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("key file %q exists; not overwriting it", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return nil, err
	}
	if err := writeAtomic(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

// ReadPrivateKey reads a private key file (PEM PKCS #8, or raw 32 or 64 bytes).
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("private key %q: %w", path, err)
	}
	return k, nil
}

// ReadPublicKey reads a public key file (PEM PKIX, or raw 32 bytes).
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key %q: %w", path, err)
	}
	return k, nil
}

// ParsePrivateKey parses the contents of a private key file.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("%w: PEM block %q, want \"PRIVATE KEY\"", ErrBadKey, blk.Type)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: PKCS #8 key is %T", ErrBadKey, k)
		}
		return ek, nil
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		k := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if !bytes.Equal(k, b) {
			return nil, fmt.Errorf("%w: raw private key's public half does not match its seed", ErrBadKey)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: neither PEM nor a raw key (%d bytes)", ErrBadKey, len(b))
}

// ParsePublicKey parses the contents of a public key file.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("%w: PEM block %q, want \"PUBLIC KEY\"", ErrBadKey, blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: PKIX key is %T", ErrBadKey, k)
		}
		return ek, nil
	}
	if len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(bytes.Clone(b)), nil
	}
	return nil, fmt.Errorf("%w: neither PEM nor a raw key (%d bytes)", ErrBadKey, len(b))
}
