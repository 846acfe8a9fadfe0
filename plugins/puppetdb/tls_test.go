package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsFiles writes a throwaway PKI into dir: ca.pem, server.pem and
// server-key.pem (for 127.0.0.1), client.pem and client-key.pem, and
// other-ca.pem with other-client.pem and other-client-key.pem, a CA and
// a client PuppetDB does not trust.
func tlsFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name, typ string, der []byte) error {
		return os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644)
	}
	serial := int64(1)
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn, Organization: []string{"sollwert test"}},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
		}
	}
	makeCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tpl := template(name)
		tpl.IsCA, tpl.BasicConstraintsValid = true, true
		tpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, err
		}
		return cert, key, write(name+".pem", "CERTIFICATE", der)
	}
	leaf := func(name, cn string, usage x509.ExtKeyUsage, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tpl := template(cn)
		tpl.BasicConstraintsValid = true
		tpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		if usage == x509.ExtKeyUsageServerAuth {
			tpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := write(name+".pem", "CERTIFICATE", der); err != nil {
			return err
		}
		// PKCS#8, which both Go and PuppetDB's Jetty read.
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		return write(name+"-key.pem", "PRIVATE KEY", kder)
	}
	ca, caKey, err := makeCA("ca")
	if err != nil {
		return err
	}
	otherCA, otherKey, err := makeCA("other-ca")
	if err != nil {
		return err
	}
	return errors.Join(
		leaf("server", "127.0.0.1", x509.ExtKeyUsageServerAuth, ca, caKey),
		leaf("client", "sollwert.example.test", x509.ExtKeyUsageClientAuth, ca, caKey),
		leaf("other-client", "intruder.example.test", x509.ExtKeyUsageClientAuth, otherCA, otherKey),
	)
}

// TestTLS pulls from the real PuppetDB's https port, where Jetty checks
// client certificates against the test's CA.
func TestTLS(t *testing.T) {
	p := requirePuppetDB(t)
	pki := func(name string) string { return filepath.Join(p.pki, name) }
	conf := func(extra ...string) []byte {
		return []byte("{" + strings.Join(append([]string{fmt.Sprintf(`"url": %q, "page_size": 2, "max_retries": 1`, p.httpsURL)}, extra...), ", ") + "}")
	}
	withCert := func(ca, client string) []byte {
		return conf(fmt.Sprintf(`"ca_file": %q, "cert_file": %q, "key_file": %q`, pki(ca), pki(client+".pem"), pki(client+"-key.pem")))
	}

	t.Run("pulls every node with the client certificate", func(t *testing.T) {
		obs, _, err := discover(testContext(t), withCert("ca.pem", "client"))
		if err != nil {
			t.Fatalf("Discover over https: %v", err)
		}
		if got := instanceIDs(obs); strings.Join(got, ",") != strings.Join(wantInstanceIDs(true), ",") {
			t.Errorf("instance ids %v, want %v", got, wantInstanceIDs(true))
		}
	})
	t.Run("takes the key from the environment", func(t *testing.T) {
		key, err := os.ReadFile(pki("client-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("PUPPETDB_TEST_KEY", string(key))
		obs, _, err := discover(testContext(t), conf(fmt.Sprintf(`"ca_file": %q, "cert_file": %q, "key_env": "PUPPETDB_TEST_KEY"`, pki("ca.pem"), pki("client.pem"))))
		if err != nil || len(obs) != len(wantInstanceIDs(true)) {
			t.Fatalf("Discover with key_env: %d observations, %v", len(obs), err)
		}
	})
	t.Run("refuses a PuppetDB its CA did not sign, without retrying", func(t *testing.T) {
		start := time.Now()
		_, _, err := discover(testContext(t), withCert("other-ca.pem", "client"))
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "nodes page 1") {
			t.Fatalf("error %v, want a failed certificate check naming the request", err)
		}
		if strings.Contains(err.Error(), "gave up") || time.Since(start) > 3*time.Second {
			t.Errorf("a certificate that does not verify was retried: %v (%s)", err, time.Since(start))
		}
	})
	t.Run("without ca_file does not trust PuppetDB's private CA", func(t *testing.T) {
		_, _, err := discover(testContext(t), conf(fmt.Sprintf(`"cert_file": %q, "key_file": %q`, pki("client.pem"), pki("client-key.pem"))))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error %v, want an unknown authority", err)
		}
	})
	t.Run("is refused with a client certificate of another CA", func(t *testing.T) {
		_, _, err := discover(testContext(t), withCert("ca.pem", "other-client"))
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "tls") {
			t.Fatalf("error %v, want PuppetDB's TLS refusal", err)
		}
		if strings.Contains(err.Error(), "gave up") {
			t.Errorf("a refused certificate was retried: %v", err)
		}
	})
	t.Run("is refused without a client certificate", func(t *testing.T) {
		_, _, err := discover(testContext(t), conf(fmt.Sprintf(`"ca_file": %q`, pki("ca.pem"))))
		t.Log(err)
		if err == nil {
			t.Fatal("PuppetDB answered a client without a certificate")
		}
	})
	t.Run("validates", func(t *testing.T) {
		if err := (&source{}).Validate(testContext(t), withCert("ca.pem", "client")); err != nil {
			t.Error(err)
		}
	})
	t.Run("a certificate with another client's key is a field error", func(t *testing.T) {
		err := (&source{}).Validate(testContext(t), conf(fmt.Sprintf(`"ca_file": %q, "cert_file": %q, "key_file": %q`, pki("ca.pem"), pki("client.pem"), pki("other-client-key.pem"))))
		if err == nil || !strings.Contains(err.Error(), "key_file") || !strings.Contains(err.Error(), "pair") {
			t.Fatalf("Validate: %v, want a key_file error", err)
		}
	})
}
