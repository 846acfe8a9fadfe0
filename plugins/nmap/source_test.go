package nmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func requireNmap(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nmap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nmap is not installed: apt-get install nmap (make test does this as root)")
		}
		t.Skip("nmap not installed")
	}
}

type collector struct {
	mu  sync.Mutex
	obs []sdk.Observation
}

func (c *collector) Emit(_ context.Context, b []sdk.Observation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.obs = append(c.obs, b...)
	return nil
}

func listenOn(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
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
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

func discover(t *testing.T, ctx context.Context, cfg string) ([]sdk.Observation, sdk.Result, error) {
	t.Helper()
	c := &collector{}
	res, err := New(nil).Discover(ctx, sdk.DiscoverRequest{Config: json.RawMessage(cfg), Job: "t"}, c)
	return c.obs, res, err
}

func openPorts(o sdk.Observation) map[uint16]string {
	out := map[uint16]string{}
	for _, s := range o.Services {
		if s.Open() {
			out[s.Port] = s.Name
		}
	}
	return out
}

func TestRealScanOfLoopbackListeners(t *testing.T) {
	requireNmap(t)
	a := listenOn(t, "127.0.0.1")
	b := listenOn(t, "127.0.0.1")
	c := listenOn(t, "127.0.0.3")
	closed := closedPort(t)
	cfg := fmt.Sprintf(`{"targets":["127.0.0.1","127.0.0.3"],"ports":"%d,%d,%d,%d","skip_host_discovery":true}`, a, b, c, closed)
	obs, res, err := discover(t, context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	byIP := map[string]sdk.Observation{}
	for _, o := range obs {
		ip, _ := o.IP()
		byIP[ip.String()] = o
	}
	one, three := openPorts(byIP["127.0.0.1"]), openPorts(byIP["127.0.0.3"])
	if _, ok := one[uint16(a)]; !ok || len(one) != 2 {
		t.Fatalf("127.0.0.1 open ports %v, want %d and %d", one, a, b)
	}
	if _, ok := three[uint16(c)]; !ok || len(three) != 1 {
		t.Fatalf("127.0.0.3 open ports %v, want %d", three, c)
	}
	if _, ok := one[uint16(closed)]; ok {
		t.Fatal("a closed port was reported open")
	}
	if len(res.Scope.Prefixes) != 2 || res.Scope.Prefixes[0].String() != "127.0.0.1/32" || !res.Scope.Ports[sdk.TCP].Contains(uint16(closed)) {
		t.Fatalf("scope %+v", res.Scope)
	}
}

func TestServiceDetection(t *testing.T) {
	requireNmap(t)
	// An SSH banner is recognized from nmap's first (NULL) probe, which
	// keeps version detection quick.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	obs, _, err := discover(t, context.Background(), fmt.Sprintf(`{"targets":["127.0.0.1"],"ports":"%d","service_detection":true,"skip_host_discovery":true}`, port))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 1 || openPorts(obs[0])[uint16(port)] != "ssh" || obs[0].Services[0].Product != "OpenSSH" {
		t.Fatalf("observations %+v", obs)
	}
}

func TestIPv6TargetsGetTheirOwnRun(t *testing.T) {
	requireNmap(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback here")
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	obs, _, err := discover(t, context.Background(), fmt.Sprintf(`{"targets":["127.0.0.1","::1"],"ports":"%d","skip_host_discovery":true}`, port))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range obs {
		if ip, _ := o.IP(); ip.String() == "::1" {
			_, found = openPorts(o)[uint16(port)]
		}
	}
	if !found {
		t.Fatalf("::1 port %d not found in %+v", port, obs)
	}
}

// fake writes a script standing in for nmap, for faults the real one
// cannot be made to produce on demand.
func fake(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nmap")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const oneHost = `<?xml version="1.0"?><nmaprun scanner="nmap"><host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/><ports><port protocol="tcp" portid="22"><state state="open"/></port></ports></host>`

func TestFaultsAreErrors(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	cases := []struct {
		name, script string
		timeout      time.Duration
		want         string
		wantIs       error
	}{
		{"non-zero exit", `echo "boom: bad things" >&2; exit 1`, 0, "exited with status 1: boom: bad things", nil},
		{"truncated XML", `echo '` + oneHost + `'`, 0, "truncated XML", nil},
		{"killed by a signal", `echo '` + oneHost + `'; kill -9 $$`, 0, "killed by signal", nil},
		{"malformed XML", `echo '<nmaprun><host><status state="up"></nmaprun>'`, 0, "malformed", nil},
		{"nmap reports an error", `echo '` + oneHost + `<runstats><finished exit="error" errormsg="out of cheese"/></runstats></nmaprun>'`, 0, "out of cheese", nil},
		{"a target nmap skipped", `echo 'Failed to resolve "bogus".' >&2; echo '<nmaprun><runstats><finished exit="success"/></runstats></nmaprun>'`, 0, "Failed to resolve", nil},
		{"hangs past the deadline", `echo $$ > ` + pidFile + `; exec sleep 30`, 500 * time.Millisecond, "stopped before it finished", context.DeadlineExceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			start := time.Now()
			_, _, err := discover(t, ctx, fmt.Sprintf(`{"targets":["127.0.0.1"],"ports":"22","nmap_path":%q,"scan_type":"connect"}`, fake(t, c.script)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Fatalf("error %v does not wrap %v", err, c.wantIs)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %s", time.Since(start))
			}
		})
	}
	pid := 0
	if b, err := os.ReadFile(pidFile); err == nil {
		fmt.Sscan(string(b), &pid)
	}
	if pid == 0 {
		t.Fatal("the hanging fake never wrote its pid")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("process %d outlived the cancelled scan", pid)
	}
}

func TestMissingNmapSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, err := discover(t, context.Background(), `{"targets":["127.0.0.1"]}`)
	if err == nil || !strings.Contains(err.Error(), "apt-get install nmap") {
		t.Fatalf("error %v", err)
	}
}

func TestRealNmapRefusingATargetIsAnError(t *testing.T) {
	requireNmap(t)
	// Bypasses validation on purpose: nmap itself must be caught refusing
	// a target, since it still exits 0 with an empty result.
	bin, _ := exec.LookPath("nmap")
	_, err := run(context.Background(), bin, []string{"-n", "-sT", "-p", "1", "256.1.1.1", "-oX", "-"}, &collector{}, nil)
	if err == nil {
		t.Fatal("nmap refusing a target was taken as a finished scan")
	}
}
