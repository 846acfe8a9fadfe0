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

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into a fresh folder: ca.pem, server.pem, server-key.pem,
// client.pem, client-key.pem, and other-ca.pem with other-client.pem and
// other-client-key.pem, a CA and a client the daemon does not trust.
func tlsFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
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
	makeCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey) {
		key := newKey()
		tpl := template(name)
		tpl.IsCA, tpl.BasicConstraintsValid = true, true
		tpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		write(name+".pem", "CERTIFICATE", der)
		return cert, key
	}
	ca, caKey := makeCA("ca")
	otherCA, otherKey := makeCA("other-ca")
	leaf := func(name string, usage x509.ExtKeyUsage, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
		key := newKey()
		tpl := template(name)
		tpl.BasicConstraintsValid = true
		// libvirt checks these usages on both ends' certificates.
		tpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		tpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(name+"-key.pem", "PRIVATE KEY", kder)
	}
	leaf("server", x509.ExtKeyUsageServerAuth, ca, caKey)
	leaf("client", x509.ExtKeyUsageClientAuth, ca, caKey)
	leaf("other-client", x509.ExtKeyUsageClientAuth, otherCA, otherKey)
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestTLS pulls from a real libvirtd over qemu+tls-style transport on
// 127.0.0.1, with mutually verified certificates.
func TestTLS(t *testing.T) {
	pki := tlsFiles(t)
	// The daemon runs as nobody and reads its certificate and key here.
	for _, d := range []string{filepath.Dir(pki), pki} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	d := startLibvirtd(t, fmt.Sprintf(`listen_tls = 1
listen_tcp = 0
listen_addr = "127.0.0.1"
tls_port = "%d"
auth_tls = "none"
ca_file = "%s"
cert_file = "%s"
key_file = "%s"
`, port, filepath.Join(pki, "ca.pem"), filepath.Join(pki, "server.pem"), filepath.Join(pki, "server-key.pem")))
	waitTCP(t, d, fmt.Sprintf("127.0.0.1:%d", port))

	uri := fmt.Sprintf("test+tls://127.0.0.1:%d%s", port, filepath.Join(d.dir, "node.xml"))
	confAs := func(ca, client string) []byte {
		return []byte(fmt.Sprintf(`{"uri": %q, "ca_file": %q, "cert_file": %q, "key_file": %q}`, uri,
			filepath.Join(pki, ca), filepath.Join(pki, client+".pem"), filepath.Join(pki, client+"-key.pem")))
	}
	conf := func(ca string) []byte { return confAs(ca, "client") }
	t.Run("pulls the domains", func(t *testing.T) {
		obs, _, err := discover(testContext(t), conf("ca.pem"))
		if err != nil {
			t.Fatalf("Discover over TLS: %v\n%s", err, d.logText())
		}
		if got := keysOf(byName(obs)); strings.Join(got, ",") != "db-1,web-1,web-2" {
			t.Errorf("domains %v", got)
		}
	})
	t.Run("refuses a daemon its CA did not sign", func(t *testing.T) {
		_, _, err := discover(testContext(t), conf("other-ca.pem"))
		if err == nil || !strings.Contains(err.Error(), "tls handshake") || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error %v, want a failed certificate check", err)
		}
	})
	t.Run("is refused by a daemon that does not trust its certificate", func(t *testing.T) {
		_, _, err := discover(testContext(t), confAs("ca.pem", "other-client"))
		if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "connect to tls://127.0.0.1") {
			t.Fatalf("error %v, want a refused connection", err)
		}
	})
	t.Run("validates", func(t *testing.T) {
		if err := (&source{}).Validate(testContext(t), conf("ca.pem")); err != nil {
			t.Error(err)
		}
	})
}

func waitTCP(t *testing.T, d *daemon, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("libvirtd does not listen on %s:\n%s", addr, d.logText())
}
