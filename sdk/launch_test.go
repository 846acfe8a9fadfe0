package sdk

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

// envTestPlugin makes this test binary a plugin: the tests below start
// copies of it through Launch, as the daemon starts plugin binaries.
const envTestPlugin = "SDK_TEST_PLUGIN"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(envTestPlugin); mode {
	case "":
		os.Exit(m.Run())
	case "current":
		Serve(Plugin{Source: describeOnly{}})
	case "legacy":
		// go-plugin's own AutoMTLS (P-521, its certificate in the
		// handshake line), as plugins built with an older sdk serve.
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  handshake(),
			VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(Plugin{Source: describeOnly{}}, nil, false)},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "impostor":
		// Serves TLS with one certificate and names another in the
		// handshake line: what a process that is not the plugin the host
		// started would have to do.
		cfg := &plugin.ServeConfig{
			HandshakeConfig:  handshake(),
			VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(Plugin{Source: describeOnly{}}, nil, false)},
			GRPCServer:       plugin.DefaultGRPCServer,
		}
		tlsCfg, _, err := pluginTLS(os.Getenv(envClientCert))
		if err != nil {
			panic(err)
		}
		other, err := newCertificate(time.Hour)
		if err != nil {
			panic(err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		go completeHandshakeLine(r, os.Stdout, other.tls.Certificate[0])
		os.Stdout = w
		cfg.TLSProvider = func() (*tls.Config, error) { return tlsCfg, nil }
		plugin.Serve(cfg)
	default:
		panic("unknown " + envTestPlugin + " " + mode)
	}
	os.Exit(0)
}

type describeOnly struct{}

func (describeOnly) Describe(context.Context) (Description, error) {
	return Description{Name: "sdktest", Version: "0.0.1"}, nil
}
func (describeOnly) Validate(context.Context, json.RawMessage) error { return nil }
func (describeOnly) Discover(context.Context, DiscoverRequest, Emitter) (Result, error) {
	return Result{}, nil
}

// testPlugin copies this test binary into a directory of its own as a
// plugin serving in the given mode, and returns its path and sha256.
func testPlugin(t *testing.T, mode string) (string, string) {
	t.Helper()
	t.Setenv(envTestPlugin, mode) // the plugin inherits the environment
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), PluginPrefix+"sdktest")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return path, hex.EncodeToString(sum[:])
}

func describe(t *testing.T, l *Launcher, cfg LaunchConfig) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := l.Launch(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	src, err := c.Source()
	if err != nil {
		return err
	}
	d, err := src.Describe(ctx)
	if err == nil && d.Name != "sdktest" {
		t.Errorf("described as %+v", d)
	}
	return err
}

func TestLaunchTalksMutualTLS(t *testing.T) {
	for _, mode := range []string{"current", "legacy"} {
		t.Run("a plugin serving the "+mode+" sdk's exchange", func(t *testing.T) {
			path, _ := testPlugin(t, mode)
			l := &Launcher{}
			for range 2 { // the second start presents the same host certificate
				if err := describe(t, l, LaunchConfig{Path: path}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestHostRefusesAPluginWhoseCertificateIsNotTheOneItNamed(t *testing.T) {
	path, _ := testPlugin(t, "impostor")
	err := describe(t, &Launcher{}, LaunchConfig{Path: path})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("the impostor was talked to: %v", err)
	}
	t.Logf("refused: %v", err)
}

func TestPluginRefusesClientsWithoutTheHostsCertificate(t *testing.T) {
	path, _ := testPlugin(t, "current")
	ctx := context.Background()
	c, err := Launch(ctx, LaunchConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.client.ReattachConfig().Addr
	stranger, err := newCertificate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, certs := range map[string][]tls.Certificate{
		"no certificate":      nil,
		"another certificate": {stranger.tls},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := net.Dial(addr.Network(), addr.String())
			if err != nil {
				t.Fatal(err)
			}
			conn := tls.Client(raw, &tls.Config{Certificates: certs, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			// In TLS 1.3 the server judges the client's certificate after
			// the client's handshake is done: its verdict comes with the
			// first read.
			err = conn.Handshake()
			if err == nil {
				_, err = conn.Read(make([]byte, 1))
			}
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the plugin accepted the connection: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	// The host itself still gets through.
	src, err := c.Source()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Describe(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPluginCertificateIsP256(t *testing.T) {
	path, _ := testPlugin(t, "current")
	host, err := newCertificate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hs := handshake()
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), hs.MagicCookieKey+"="+hs.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1",
		envClientCert+"="+string(host.pem))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSpace(line), "|")
	if len(parts) < 6 {
		t.Fatalf("handshake line %q", line)
	}
	der, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		t.Fatalf("certificate field of %q: %v", line, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("the plugin's key is %T %v", cert.PublicKey, cert.PublicKeyAlgorithm)
	}
	go io.Copy(io.Discard, out)
}

func TestWithCert(t *testing.T) {
	der := []byte{1, 2, 3}
	for in, want := range map[string]string{
		"1|1|unix|/tmp/p|grpc|\n":      "1|1|unix|/tmp/p|grpc|AQID\n",
		"1|1|unix|/tmp/p|grpc||true\n": "1|1|unix|/tmp/p|grpc|AQID|true\n",
		"1|1|unix|/tmp/p|grpc|CERT\n":  "1|1|unix|/tmp/p|grpc|CERT\n",
		"1|1|unix|/tmp/p|netrpc\n":     "1|1|unix|/tmp/p|netrpc\n",
		"This binary is a plugin...\n": "This binary is a plugin...\n",
	} {
		if got := withCert(in, der); got != want {
			t.Errorf("withCert(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostCertificateIsReusedForAnHour(t *testing.T) {
	l := &Launcher{}
	a, err := l.hostCertificate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := l.hostCertificate()
	if a != b {
		t.Fatal("a second start made a new host certificate")
	}
	a.made = a.made.Add(-hostCertLifetime - time.Minute)
	c, _ := l.hostCertificate()
	if c == a {
		t.Fatal("an hour-old host certificate is still presented")
	}
	if k, ok := c.tls.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("host key %T", c.tls.PrivateKey)
	}
}

// settled returns a Launcher that remembers checksums of files older than
// 50 ms, and waits until path is that old.
func settled(t *testing.T, path string) *Launcher {
	t.Helper()
	const settle = 50 * time.Millisecond
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(fi.ModTime().Add(2 * settle)))
	return &Launcher{settle: settle}
}

func TestPinnedChecksumIsRememberedOnceTheFileHasSettled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("file identities are known on Linux only")
	}
	path, sum := testPlugin(t, "current")
	l := &Launcher{} // default: 3 s
	for range 2 {
		if err := describe(t, l, LaunchConfig{Path: path, SHA256: sum}); err != nil {
			t.Fatal(err)
		}
	}
	if l.hashed != 2 {
		t.Fatalf("a file written just now was read %d times in 2 starts; want every time", l.hashed)
	}
	l = settled(t, path)
	for range 3 {
		if err := describe(t, l, LaunchConfig{Path: path, SHA256: sum}); err != nil {
			t.Fatal(err)
		}
	}
	if l.hashed != 1 {
		t.Fatalf("an unchanged settled file was read %d times in 3 starts; want once", l.hashed)
	}
	// A pin that changes is compared with the remembered checksum.
	err := describe(t, l, LaunchConfig{Path: path, SHA256: strings.Repeat("ab", 32)})
	if err == nil || !strings.Contains(err.Error(), "has sha256 "+sum+", but the config pins "+strings.Repeat("ab", 32)+"; not started") {
		t.Fatalf("changed pin: %v", err)
	}
}

func TestBinaryChangedAfterItsChecksumWasRememberedIsRefused(t *testing.T) {
	// Each change keeps the size and flips the last byte.
	flip := func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }
	cases := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"a new file renamed over it", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tmp := path + ".new"
			if err := os.WriteFile(tmp, flip(b), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted and written anew", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, flip(b), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewritten in place", func(t *testing.T, path string) {
			rewrite(t, path, flip)
		}},
		{"rewritten in place with its times set back", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			rewrite(t, path, flip)
			if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, sum := testPlugin(t, "current")
			l := settled(t, path)
			if err := describe(t, l, LaunchConfig{Path: path, SHA256: sum}); err != nil {
				t.Fatal(err)
			}
			c.change(t, path)
			err := describe(t, l, LaunchConfig{Path: path, SHA256: sum})
			if err == nil || !strings.Contains(err.Error(), "but the config pins "+sum+"; not started") {
				t.Fatalf("the changed binary was not refused: %v", err)
			}
			if l.hashed != 2 {
				t.Errorf("read %d times; the change went unnoticed by its identity", l.hashed)
			}
		})
	}
}

// rewrite changes the file at path in place: same inode, same size.
func rewrite(t *testing.T, path string, change func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(change(b), 0); err != nil {
		t.Fatal(err)
	}
}
