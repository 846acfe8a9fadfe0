// Package testicinga2 runs the real Icinga 2 daemon (Debian package
// icinga2) for tests: its own configuration, state and certificates in a
// temporary folder, the API on a free loopback port, no systemd. Tests
// read back what Icinga made of sollwert's results through the same API,
// and can stop and start it again to play an outage.
package testicinga2

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NodeName is the Icinga node's name and the name its certificate is
// issued to; clients connecting by address verify it as the server name.
const NodeName = "icinga-test.sollwert"

// User and Password are the ApiUser the daemon accepts, with every
// permission.
const (
	User     = "sollwert"
	Password = "icinga-test-password"
)

// Icinga is a running (or stopped) Icinga 2.
type Icinga struct {
	// URL is the API's base, https://127.0.0.1:PORT.
	URL string
	// CAFile holds the CA that signed the node's certificate.
	CAFile string
	dir    string
	port   int
	bin    string
	client *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan struct{}
}

// Path finds icinga2: it fails the test under CI=true and skips it
// otherwise when icinga2 is missing or the test does not run as root
// (Icinga 2 runs as a user it switches to; here that is root).
func Path(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("icinga2")
	if err != nil {
		path = "/usr/sbin/icinga2"
	}
	if _, err := os.Stat(path); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("icinga2 (Debian package icinga2) and root are needed: run `make test` as root")
		}
		t.Skip("icinga2 not installed or not root")
	}
	return path
}

// Start runs Icinga 2 with objects (Icinga 2 DSL) added to its
// configuration and waits until its API answers. It is stopped at the end
// of the test.
func Start(t testing.TB, objects string) *Icinga {
	t.Helper()
	i := &Icinga{bin: Path(t), dir: t.TempDir(), port: freePort(t)}
	i.URL = fmt.Sprintf("https://127.0.0.1:%d", i.port)
	for _, d := range []string{"etc", "lib/certs", "log", "cache", "spool", "run"} {
		if err := os.MkdirAll(filepath.Join(i.dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := i.writeCertificates()
	if err != nil {
		t.Fatalf("icinga certificates: %v", err)
	}
	i.CAFile = filepath.Join(i.dir, "lib/certs/ca.crt")
	conf := fmt.Sprintf(`const NodeName = %q
const ZoneName = NodeName
include <itl>
object IcingaApplication "app" { }
object Endpoint NodeName { }
object Zone ZoneName { endpoints = [ NodeName ] }
object ApiListener "api" {
  bind_host = "127.0.0.1"
  bind_port = %d
  accept_commands = true
}
object ApiUser %q {
  password = %q
  permissions = [ "*" ]
}
object FileLogger "main-log" {
  severity = "information"
  path = LogDir + "/icinga2.log"
}
%s
`, NodeName, i.port, User, Password, objects)
	if err := os.WriteFile(filepath.Join(i.dir, "etc/icinga2.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	i.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: NodeName, MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(i.Stop)
	i.Resume(t)
	return i
}

// Resume starts the daemon again on the same configuration and state,
// after Stop, and waits for its API.
func (i *Icinga) Resume(t testing.TB) {
	t.Helper()
	p := func(s string) string { return filepath.Join(i.dir, s) }
	cmd := exec.Command(i.bin, "daemon", "-c", p("etc/icinga2.conf"),
		"-DConfiguration.DataDir="+p("lib"), "-DConfiguration.LogDir="+p("log"),
		"-DConfiguration.CacheDir="+p("cache"), "-DConfiguration.SpoolDir="+p("spool"),
		"-DConfiguration.InitRunDir="+p("run"), "-DConfiguration.PidPath="+p("run/icinga2.pid"),
		"-DConfiguration.RunAsUser=root", "-DConfiguration.RunAsGroup=root")
	// Icinga forks helpers (the check executor) that inherit stdout:
	// its own process group lets Stop end them all, and WaitDelay keeps
	// Wait from waiting on a pipe a straggler still holds.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &i.mu, w: logs}, &lockedWriter{mu: &i.mu, w: logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("icinga2: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	i.mu.Lock()
	i.cmd, i.logs, i.done = cmd, logs, done
	i.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var status map[string]any
		if code, err := i.Do(http.MethodGet, "/v1/status/IcingaApplication", nil, &status); err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-done:
			t.Fatalf("icinga2 exited during start-up:\n%s", i.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("icinga2 API did not answer within 60s:\n%s", i.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends the daemon (SIGKILL: an outage, not a maintenance) and waits
// for it. Its state on disk stays for Resume.
func (i *Icinga) Stop() {
	i.mu.Lock()
	cmd, done := i.cmd, i.done
	i.cmd = nil
	i.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", i.port), 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs returns what the daemon printed and its main log.
func (i *Icinga) Logs() string {
	i.mu.Lock()
	out := ""
	if i.logs != nil {
		out = i.logs.String()
	}
	i.mu.Unlock()
	if b, err := os.ReadFile(filepath.Join(i.dir, "log/icinga2.log")); err == nil {
		out += "\n--- icinga2.log ---\n" + string(b)
	}
	return out
}

// Do calls the API as the test user; into receives the decoded JSON body.
func (i *Icinga) Do(method, path string, body, into any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, i.URL+path, r)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(User, Password)
	req.Header.Set("Accept", "application/json")
	resp, err := i.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil && err != io.EOF {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// Service is what Icinga holds of one service.
type Service struct {
	State           int     `json:"state"`
	Acknowledgement float64 `json:"acknowledgement"`
	LastCheckResult *struct {
		Output          string   `json:"output"`
		ExitStatus      int      `json:"exit_status"`
		PerformanceData []string `json:"performance_data"`
		CheckSource     string   `json:"check_source"`
	} `json:"last_check_result"`
}

// Service looks a service up; ok is false when Icinga does not know it.
func (i *Icinga) Service(t testing.TB, host, service string) (Service, bool) {
	t.Helper()
	var out struct {
		Results []struct {
			Attrs Service `json:"attrs"`
		} `json:"results"`
	}
	code, err := i.Do(http.MethodGet, "/v1/objects/services/"+url.PathEscape(host+"!"+service), nil, &out)
	if err != nil {
		t.Fatalf("icinga service %s!%s: %v", host, service, err)
	}
	if code == http.StatusNotFound || len(out.Results) == 0 {
		return Service{}, false
	}
	if code != http.StatusOK {
		t.Fatalf("icinga service %s!%s: HTTP %d", host, service, code)
	}
	return out.Results[0].Attrs, true
}

// CheckResults subscribes to Icinga's event stream and counts the check
// results it processes per "host!service", so a test can tell "arrived
// once" from "arrived twice". The stream ends with the test or the daemon.
type CheckResults struct {
	mu     sync.Mutex
	counts map[string]int
}

// Count returns how many results arrived for host!service.
func (c *CheckResults) Count(host, service string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[host+"!"+service]
}

// WatchCheckResults opens an event stream of type CheckResult.
func (i *Icinga) WatchCheckResults(t testing.TB) *CheckResults {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, i.URL+"/v1/events?queue=sollwert-test&types=CheckResult", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(User, Password)
	req.Header.Set("Accept", "application/json")
	stream := &http.Client{Transport: i.client.Transport}
	resp, err := stream.Do(req)
	if err != nil {
		t.Fatalf("icinga event stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("icinga event stream: HTTP %d", resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	c := &CheckResults{counts: map[string]int{}}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var ev struct {
				Host    string `json:"host"`
				Service string `json:"service"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				c.mu.Lock()
				c.counts[ev.Host+"!"+ev.Service]++
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (i *Icinga) writeCertificates() (*x509.CertPool, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sollwert test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: NodeName}, DNSNames: []string{NodeName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	certs := filepath.Join(i.dir, "lib/certs")
	write := func(name, typ string, b []byte) error {
		return os.WriteFile(filepath.Join(certs, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600)
	}
	if err := write("ca.crt", "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	if err := write(NodeName+".crt", "CERTIFICATE", der); err != nil {
		return nil, err
	}
	if err := write(NodeName+".key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
