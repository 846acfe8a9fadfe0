package nmapxml_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json and the captured real nmap files")

// requireNmap skips a test that needs the real nmap, except in CI
// (CI=true), where a missing nmap fails it.
func requireNmap(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nmap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nmap is not installed but CI=true: install it (Debian/Ubuntu: apt-get install nmap)")
		}
		t.Skip("nmap is not installed (Debian/Ubuntu: apt-get install nmap); set CI=true to fail instead")
	}
	return p
}

// serve accepts connections on addr until the test ends; each gets
// banner (if any) and is held open until the client closes it or a few
// seconds pass, as a real daemon would.
func serve(t *testing.T, addr, banner string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if banner != "" {
					_, _ = c.Write([]byte(banner))
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// freePort is a port nothing listens on at addr, for as long as nobody
// else takes it.
func freePort(t *testing.T, addr string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// runNmap runs nmap with XML to stdout. Every caller passes loopback
// targets only.
func runNmap(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, "-oX", "-")...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nmap %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// realFiles are nmap's own outputs: captured by TestRealNmap -update here,
// and the nmap source's fixtures.
func realFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"testdata/real-*.xml", "../testdata/*.xml"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) == 0 {
		t.Fatal("no real nmap files in testdata")
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func readAll(t testing.TB, data []byte) *nmapxml.Scan {
	t.Helper()
	s, err := nmapxml.ReadAll(bytes.NewReader(data), nmapxml.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
