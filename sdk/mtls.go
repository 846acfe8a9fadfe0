package sdk

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// This file is go-plugin's AutoMTLS, both ends, with two changes that
// matter for a process per call: P-256 keys instead of go-plugin's P-521,
// and a host certificate that a Launcher reuses across starts.
//
// The exchange is go-plugin's own, unchanged on the wire: the host puts its
// certificate (PEM) into the plugin's environment as PLUGIN_CLIENT_CERT;
// the plugin makes a key pair and a certificate of its own, trusts only the
// host's certificate for client authentication, and sends its certificate
// (base64 DER) back as the sixth field of the handshake line on stdout,
// which the host then trusts as the only root. Both ends require and verify
// the other's certificate, so nothing but the process the host started can
// talk to the host, and nothing but the host can talk to the plugin's
// socket. A plugin built with an older sdk (go-plugin's P-521 exchange)
// works with this host, and a plugin of this sdk with a host that uses
// go-plugin's AutoMTLS.
//
// Why not go-plugin's code: it creates every certificate with P-521, and
// Go's P-521 builds its generator table at first use: about 8 ms in every
// fresh plugin process, plus 3.5 ms per signature on each end and 4 ms per
// start for the host's certificate (docs/benchmarks.md). P-256 is constant
// time assembly with precomputed tables in Go and well within what TLS
// needs here: the keys live for one connection (plugin) or one hour (host).

// envClientCert is where go-plugin's AutoMTLS passes the host's
// certificate to the plugin.
const envClientCert = "PLUGIN_CLIENT_CERT"

// hostCertLifetime bounds how long a Launcher presents the same host
// certificate; a fresh key after that limits what a key read out of the
// daemon's memory is good for.
const hostCertLifetime = time.Hour

// certificate is a self-signed certificate for "localhost" that serves as
// its own root, as go-plugin's AutoMTLS certificates do.
type certificate struct {
	tls  tls.Certificate
	pem  []byte // the certificate alone, for the plugin's environment
	made time.Time
}

func newCertificate(validFor time.Duration) (*certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate a TLS key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate a certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"sollwert"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SerialNumber:          sn,
		NotBefore:             now.Add(-30 * time.Second),
		NotAfter:              now.Add(validFor),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create a TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the new TLS certificate: %w", err)
	}
	return &certificate{
		tls:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		made: now,
	}, nil
}

// hostTLS is the host's TLS configuration for one start. go-plugin adds
// the plugin's certificate as the only root once the plugin sends it, so
// each start needs its own copy; without that certificate no server
// certificate verifies and the connection fails.
func hostTLS(c *certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.tls},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
	}
}

// pluginTLS is the plugin's end: a fresh certificate, and the host's
// certificate from the environment as the only client CA. It returns nil
// when the host asked for no TLS, as go-plugin does.
func pluginTLS(hostPEM string) (*tls.Config, []byte, error) {
	if hostPEM == "" {
		return nil, nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(hostPEM)) {
		return nil, nil, errors.New("the host's certificate in " + envClientCert + " does not parse")
	}
	// Valid far longer than a plugin process lives; the key dies with it.
	c, err := newCertificate(24 * time.Hour)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{c.tls},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
	}
	return cfg, c.tls.Certificate[0], nil
}

// completeHandshakeLine copies the plugin's stdout from r to w, filling
// the plugin's certificate into the first line. go-plugin prints that line
// (CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT, documented in its guide for
// plugins written in other languages) with an empty CERT when the server
// brings its own TLS configuration, as Serve does to use P-256.
func completeHandshakeLine(r io.Reader, w io.Writer, der []byte) {
	br := bufio.NewReader(r)
	line, err := br.ReadString('\n')
	if line != "" {
		io.WriteString(w, withCert(line, der))
	}
	if err != nil {
		return
	}
	io.Copy(w, br) // whatever else reaches this stdout, unchanged
}

// withCert puts der into the CERT field of a handshake line. A line that
// is not one, or already carries a certificate, passes unchanged: the host
// then finds no certificate it trusts and refuses the connection.
func withCert(line string, der []byte) string {
	body := strings.TrimRight(line, "\r\n")
	parts := strings.Split(body, "|")
	if len(parts) < 6 || parts[5] != "" {
		return line
	}
	parts[5] = base64.RawStdEncoding.EncodeToString(der)
	return strings.Join(parts, "|") + line[len(body):]
}
