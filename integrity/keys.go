// Package integrity signs and checks the chains the store keeps of every
// history and audit record: checkpoints signed with an ed25519 key,
// exported to storage beyond the store's reach, and Verify, which walks
// the chains and holds them against the checkpoints. What this does and
// does not protect against is in docs/operations.md ("Tamper-evident
// history").
package integrity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadSigningKey reads an ed25519 private key in PEM (PKCS #8, "PRIVATE
// KEY"), as `openssl genpkey -algorithm ed25519` and `sollwert keygen`
// write it. A key others may read is refused, as ssh refuses one.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: mode %04o lets others read it; chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := parsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return key, nil
}

func parsePrivate(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New(`no PEM "PRIVATE KEY" block in it (make one with: sollwert keygen FILE)`)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an ed25519 key", k)
	}
	return ek, nil
}

// LoadPublicKey reads the key checkpoints are checked with: a PEM
// "PUBLIC KEY" (PKIX), or the private key itself.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	switch {
	case blk == nil:
		return nil, fmt.Errorf("public key %s: no PEM block in it", path)
	case blk.Type == "PRIVATE KEY":
		k, err := parsePrivate(b)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", path, err)
		}
		return k.Public().(ed25519.PublicKey), nil
	case blk.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("public key %s: a PEM %q block, not \"PUBLIC KEY\"", path, blk.Type)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key %s: a %T, not an ed25519 key", path, k)
	}
	return ek, nil
}

// GenerateKey writes a new signing key to path (0600, refusing to
// overwrite one) and its public key to path + ".pub".
func GenerateKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	return pub, nil
}
