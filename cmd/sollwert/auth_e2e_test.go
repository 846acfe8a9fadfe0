package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
)

// token creates a token with the CLI, as an admin would.
func (e *env) token(t *testing.T, name, scopes, tenant string) string {
	t.Helper()
	cmd := exec.Command(binary, "token", "create", "--config", e.cfgPath, "--name", name, "--scope", scopes, "--tenant", tenant)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("token create: %v\n%s", err, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

func (e *env) call(t *testing.T, method, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.api+path, strings.NewReader(`{"author":"a","comment":"c"}`))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokensGuardEveryRoute: with a tokens file, no route but /healthz
// answers without a token, each needs its scope, a token bound to
// another tenant gets 403, and tokens made or revoked with the CLI take
// effect in the running daemon.
func TestTokensGuardEveryRoute(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	e := newEnv(t)
	tokens := filepath.Join(e.dir, "tokens.json")
	body := loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed)
	e.writeConfig(body)
	// writeConfig's api block: add the tokens file to it.
	cfg, _ := os.ReadFile(e.cfgPath)
	cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("api { listen = %q }", e.api)), []byte(fmt.Sprintf("api {\n  listen = %q\n  tokens_file = %q\n}", e.api, tokens)), 1)
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	admin := e.token(t, "admin", "admin", "*")
	reader := e.token(t, "reader", "read", "default")
	other := e.token(t, "globex", "read,ack", "globex")
	e.start()
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.api+"/v1/jobs/lo/run", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, func() bool {
		return e.call(t, "GET", "/v1/deviations", admin) == 200 && len(e.deviationsAs(t, admin)) == 1
	})
	dev := e.deviationsAs(t, admin)[0].ID

	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/v1/assets", "", 401},
		{"GET", "/v1/assets", "swt_forged", 401},
		{"GET", "/v1/assets", reader, 200},
		{"GET", "/v1/check", "", 401},
		{"GET", "/v1/check", reader, 503},
		{"GET", "/v1/deviations/" + dev, reader, 200},
		{"GET", "/v1/deviations/" + dev, other, 404},
		{"GET", "/v1/assets?tenant=default", other, 403},
		{"GET", "/v1/assets/127.0.0.1/facts", "", 401},
		{"GET", "/v1/assets/127.0.0.1/facts", reader, 200},
		{"GET", "/v1/assets/127.0.0.1/facts", other, 404},
		{"POST", "/v1/deviations/" + dev + "/ack", reader, 403},
		{"POST", "/v1/jobs/lo/run", reader, 403},
		{"GET", "/metrics", reader, 403},
		{"GET", "/metrics", admin, 200},
		{"GET", "/ui/", "", 303},
		{"GET", "/ui/", reader, 200},
		{"POST", "/v1/deviations/" + dev + "/ack", admin, 200},
	} {
		if got := e.call(t, c.method, c.path, c.token); got != c.code {
			t.Errorf("%s %s with %.12q: HTTP %d, want %d", c.method, c.path, c.token, got, c.code)
		}
	}

	// The check command with and without a token.
	tokenFile := filepath.Join(e.dir, "reader.token")
	if err := os.WriteFile(tokenFile, []byte(reader+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := e.check("--token-file", tokenFile); code != 0 || !strings.HasPrefix(out, "SOLLWERT OK") {
		t.Fatalf("check with a token (the deviation is acknowledged): exit %d\n%s", code, out)
	}
	if code, out := e.check(); code != 3 || !strings.Contains(out, "HTTP 401") {
		t.Fatalf("check without a token: exit %d\n%s", code, out)
	}

	// Revoked with the CLI: refused within a moment, no restart.
	if out, err := exec.Command(binary, "token", "revoke", "--config", e.cfgPath, "reader").CombinedOutput(); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	waitFor(t, func() bool { return e.call(t, "GET", "/v1/assets", reader) == 401 })
	out, _ := exec.Command(binary, "token", "list", "--config", e.cfgPath).CombinedOutput()
	if strings.Contains(string(out), "reader") || !strings.Contains(string(out), "globex") || strings.Contains(string(out), admin) {
		t.Fatalf("token list:\n%s", out)
	}
	if strings.Contains(e.logs.String(), admin) || strings.Contains(e.logs.String(), reader) {
		t.Fatal("a token shows in the daemon's log")
	}

	// The audit log, for admins only: the acknowledgement with who and
	// from where, the refusals, and the token revoked with the CLI.
	if code := e.call(t, "GET", "/v1/audit", other); code != 403 {
		t.Fatalf("audit with a read token: HTTP %d", code)
	}
	var audit []model.AuditRecord
	waitFor(t, func() bool {
		audit = nil
		e.getAs(t, "/v1/audit", admin, &audit)
		for _, r := range audit {
			if r.Action == "tokens" {
				return true
			}
		}
		return false
	})
	var sawAck, sawDenied bool
	for _, r := range audit {
		switch {
		case r.Action == "ack" && r.Actor == "admin" && r.Target == dev && r.From == "127.0.0.1" && r.Status == 200:
			sawAck = true
		case r.Action == "denied" && r.Status == 401 && r.Actor == "anonymous":
			sawDenied = true
		}
		if strings.Contains(r.Detail, "swt_") {
			t.Fatalf("a token in the audit log: %+v", r)
		}
	}
	if !sawAck || !sawDenied {
		t.Fatalf("audit log lacks the ack or a refusal: %+v", audit)
	}
}

// deviationsAs lists active deviations with a token.
func (e *env) deviationsAs(t *testing.T, token string) []struct{ ID string } {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.api+"/v1/deviations", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []struct{ ID string }
	_ = jsonDecode(resp, &out)
	return out
}

// TestAPIServesTLS: with a certificate the API speaks HTTPS only, and
// the check command verifies it against the CA given.
func TestAPIServesTLS(t *testing.T) {
	e := newEnv(t)
	ca, cert, key := testCertificates(t, e.dir)
	e.writeConfig("")
	cfg, _ := os.ReadFile(e.cfgPath)
	cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("api { listen = %q }", e.api)),
		[]byte(fmt.Sprintf("api {\n  listen = %q\n  tls_cert_file = %q\n  tls_key_file = %q\n}", e.api, cert, key)), 1)
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "daemon", "--config", e.cfgPath)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitFor(t, func() bool {
		resp, err := client.Get("https://" + e.api + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if resp, err := http.Get("http://" + e.api + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on a TLS listener")
		}
	}
	out, err := exec.Command(binary, "check", "--url", "https://"+e.api, "--ca-file", ca).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SOLLWERT") || strings.Contains(string(out), "UNKNOWN - cannot reach") {
		t.Fatalf("check over TLS: %v\n%s", err, out)
	}
	out, _ = exec.Command(binary, "check", "--url", "https://"+e.api).CombinedOutput()
	if !strings.Contains(string(out), "UNKNOWN") || !strings.Contains(string(out), "certificate") {
		t.Fatalf("check without the CA must not trust the certificate:\n%s", out)
	}
}

// testCertificates writes a CA and a certificate for 127.0.0.1 it signed.
func testCertificates(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sollwert test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(k)
	ca, cert, key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	for path, block := range map[string]*pem.Block{ca: {Type: "CERTIFICATE", Bytes: caDER}, cert: {Type: "CERTIFICATE", Bytes: der}, key: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

func jsonDecode(resp *http.Response, into any) error {
	return json.NewDecoder(resp.Body).Decode(into)
}
