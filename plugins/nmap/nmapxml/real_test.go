package nmapxml_test

// These tests run the real nmap against listeners the test starts on
// 127.0.0.0/8 and ::1, and nothing else: every target below is loopback.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
)

// capture keeps a real output as testdata/real-NAME.xml with -update, for
// the golden, truncation and fuzz tests.
func capture(t *testing.T, name string, data []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "real-"+name+".xml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func portsByID(h *nmapxml.Host) map[uint16]nmapxml.Port {
	m := map[uint16]nmapxml.Port{}
	for _, p := range h.Ports {
		m[p.ID] = p
	}
	return m
}

func checkRun(t *testing.T, s *nmapxml.Scan, hosts int) {
	t.Helper()
	if s.Run.Scanner != "nmap" || !strings.HasPrefix(s.Run.Version, "7.") || s.Run.Finished == nil || s.Run.Finished.Exit != "success" ||
		s.Run.HostStats == nil || s.Run.HostStats.Up != hosts || len(s.Hosts) != hosts || len(s.Run.ScanInfo) == 0 {
		t.Fatalf("run %+v with %d hosts, want %d", s.Run, len(s.Hosts), hosts)
	}
}

func TestRealNmap(t *testing.T) {
	bin := requireNmap(t)
	t.Parallel()

	t.Run("connect scan with extraports", func(t *testing.T) {
		t.Parallel()
		a, b := serve(t, "127.0.0.1", ""), serve(t, "127.0.0.1", "")
		c := serve(t, "127.0.0.3", "")
		closed := freePort(t, "127.0.0.1")
		data := runNmap(t, bin, "-n", "-Pn", "-sT", "-T4", "-p", fmt.Sprintf("1-40,%d,%d,%d,%d", a, b, c, closed), "127.0.0.1", "127.0.0.3")
		capture(t, "connect", data)
		agree(t, "connect", data)
		s := readAll(t, data)
		checkRun(t, s, 2)
		want := map[string][]uint16{"127.0.0.1": {a, b}, "127.0.0.3": {c}}
		for i := range s.Hosts {
			h := &s.Hosts[i]
			if h.Status.State != "up" || len(h.Addresses) != 1 || h.Addresses[0].AddrType != "ipv4" {
				t.Fatalf("host %+v", h)
			}
			ports := portsByID(h)
			for _, p := range want[h.Addresses[0].Addr] {
				if ports[p].State.State != "open" || ports[p].Protocol != "tcp" || ports[p].State.Reason != "syn-ack" {
					t.Fatalf("%s port %d: %+v", h.Addresses[0].Addr, p, ports[p])
				}
			}
			if p, listed := ports[closed]; listed && p.State.State != "closed" {
				t.Fatalf("closed port %d: %+v", closed, p)
			}
			if len(h.ExtraPorts) != 1 || h.ExtraPorts[0].State != "closed" || h.ExtraPorts[0].Count < 30 ||
				len(h.ExtraPorts[0].Reasons) != 1 || h.ExtraPorts[0].Reasons[0].Reason != "conn-refused" {
				t.Fatalf("extraports %+v", h.ExtraPorts)
			}
		}
	})

	t.Run("service version and script output", func(t *testing.T) {
		t.Parallel()
		// nmap's NULL probe matches an SSH banner at once, and the
		// banner script reports it.
		p := serve(t, "127.0.0.1", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u1\r\n")
		data := runNmap(t, bin, "-n", "-Pn", "-sT", "-sV", "--script", "banner", "-p", fmt.Sprint(p), "127.0.0.1")
		capture(t, "version-script", data)
		agree(t, "version-script", data)
		s := readAll(t, data)
		checkRun(t, s, 1)
		port := portsByID(&s.Hosts[0])[p]
		svc := port.Service
		if port.State.State != "open" || svc.Name != "ssh" || svc.Product != "OpenSSH" || svc.Version != "9.2p1 Debian 2+deb12u1" ||
			svc.Method != "probed" || svc.Conf != 10 || len(svc.CPEs) == 0 || svc.CPEs[0] != "cpe:/a:openbsd:openssh:9.2p1" {
			t.Fatalf("port %+v", port)
		}
		if len(port.Scripts) != 1 || port.Scripts[0].ID != "banner" || !strings.Contains(port.Scripts[0].Output, "SSH-2.0-OpenSSH_9.2p1") {
			t.Fatalf("scripts %+v", port.Scripts)
		}
	})

	t.Run("IPv6 loopback", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skip("no IPv6 loopback here:", err)
		}
		ln.Close()
		p := serve(t, "::1", "")
		data := runNmap(t, bin, "-6", "-n", "-Pn", "-sT", "-p", fmt.Sprint(p), "::1")
		capture(t, "ipv6", data)
		agree(t, "ipv6", data)
		s := readAll(t, data)
		checkRun(t, s, 1)
		h := s.Hosts[0]
		if len(h.Addresses) != 1 || h.Addresses[0] != (nmapxml.Address{Addr: "::1", AddrType: "ipv6"}) || portsByID(&h)[p].State.State != "open" {
			t.Fatalf("host %+v", h)
		}
	})

	t.Run("host name given as target", func(t *testing.T) {
		t.Parallel()
		// "localhost" resolves from /etc/hosts; -4 keeps it to 127.0.0.1.
		addrs, err := net.LookupHost("localhost")
		if err != nil || !contains(addrs, "127.0.0.1") {
			t.Skipf("localhost does not resolve to 127.0.0.1 here (%v, %v)", addrs, err)
		}
		p := serve(t, "127.0.0.1", "")
		data := runNmap(t, bin, "-4", "-n", "-Pn", "-sT", "-p", fmt.Sprint(p), "localhost")
		capture(t, "hostname", data)
		agree(t, "hostname", data)
		s := readAll(t, data)
		checkRun(t, s, 1)
		h := s.Hosts[0]
		if h.Addresses[0].Addr != "127.0.0.1" || len(h.Hostnames) == 0 || h.Hostnames[0] != (nmapxml.Hostname{Name: "localhost", Type: "user"}) {
			t.Fatalf("host %+v", h)
		}
	})

	t.Run("OS detection", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("OS detection needs raw sockets (root)")
		}
		open, closed := serve(t, "127.0.0.1", ""), freePort(t, "127.0.0.1")
		data := runNmap(t, bin, "-n", "-Pn", "-O", "--max-os-tries", "1", "-p", fmt.Sprintf("%d,%d", open, closed), "127.0.0.1")
		capture(t, "os", data)
		agree(t, "os", data)
		s := readAll(t, data)
		checkRun(t, s, 1)
		o := s.Hosts[0].OS
		if len(o.PortsUsed) == 0 || o.PortsUsed[0].ID != open {
			t.Fatalf("os %+v", o)
		}
		for _, m := range o.Matches {
			if m.Name == "" || m.Accuracy <= 0 || m.Accuracy > 100 {
				t.Fatalf("os match %+v", m)
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
