package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sollwert/sollwert/internal/testnet"
	"github.com/sollwert/sollwert/internal/testpuppetdb"
	"github.com/sollwert/sollwert/model"
)

// pdbSubnet is the /30 of TestPuppetDBAndNmapSeeOneMachine's namespace:
// 198.18.211.1 on the test's side, 198.18.211.2 the machine. No other
// test uses 198.18.211.0/24 (testsnmpd takes /29s of 198.19.0.0/16).
var pdbSubnet = netip.MustParseAddr("198.18.211.0")

// pdbElsewhere is an address the machine's facts may claim instead of
// its namespace address: data only, routed nowhere.
const pdbElsewhere = "198.18.212.7"

const pdbCertname = "db-7.example.test"

// TestPuppetDBAndNmapSeeOneMachine: a machine that the real nmap finds
// by its address (and, on a directly connected segment, its MAC) and that
// a real PuppetDB knows by its certname is one asset, whichever source
// runs first; and when the address PuppetDB reports is not the one nmap
// scans, the MAC alone still joins them.
//
// The machine is a network namespace of the test's with a TCP listener;
// PuppetDB is Debian's puppetdb on a throwaway PostgreSQL, fed the
// machine's facts as an agent would; the puppetdb source is the plugin
// binary built from plugins/puppetdb.
func TestPuppetDBAndNmapSeeOneMachine(t *testing.T) {
	requireNmap(t)
	testnet.Require(t)
	plugins := t.TempDir()
	built := make(chan error, 1)
	go func() { built <- buildProviderPlugin(plugins, "puppetdb") }() // while PuppetDB starts
	pdb := testpuppetdb.Start(t)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	n := testnet.New(t, pdbSubnet)
	peer := n.Peer.String()
	mac := linkMAC(t, n)
	port := listenInNamespace(t, n, peer)

	cases := []struct {
		name string
		// factsIP is the address the machine's networking fact gives.
		factsIP   string
		nmapFirst bool
		// addresses are the IPs the one asset must hold.
		addresses []string
	}{
		// The same address and MAC: whichever runs second finds the first
		// one's asset by the MAC (identity keys come before addresses).
		{"nmap then PuppetDB", peer, true, []string{peer}},
		{"PuppetDB then nmap", peer, false, []string{peer}},
		// The facts name an address nmap never scans, so no address links
		// the two observations; nmap's carries the MAC it read from ARP,
		// PuppetDB's the same MAC from the facts, and the MAC is an
		// identity key of both. So the second run lands on the first one's
		// asset, which then holds both addresses: still one asset in the
		// tenant, not one per address.
		{"PuppetDB by MAC, then nmap", pdbElsewhere, false, []string{peer, pdbElsewhere}},
		{"nmap, then PuppetDB by MAC", pdbElsewhere, true, []string{peer, pdbElsewhere}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pdb.ReplaceFacts(t, pdbCertname, machineFacts(c.factsIP, mac))
			pdb.WaitForNode(t, pdbCertname)
			e := newEnv(t)
			e.writeConfig(fmt.Sprintf(`plugin_dir = %q
job "pdb" {
  source   = "puppetdb"
  schedule = "@every 1h"
  timeout  = "60s"
  url      = %q
}
job "scan" {
  source    = "nmap"
  schedule  = "@every 1h"
  timeout   = "60s"
  targets   = [%q]
  ports     = "%d"
  scan_type = "syn"
}
`, plugins, pdb.URL(), peer, port))
			e.start()
			jobs := []string{"pdb", "scan"}
			if c.nmapFirst {
				jobs = []string{"scan", "pdb"}
			}
			for _, job := range jobs {
				if run := e.runJob(job); run.Status != model.RunSucceeded || run.Hosts != 1 {
					t.Fatalf("job %s: %+v", job, run)
				}
			}

			var assets []model.Asset
			if code := e.get("/v1/assets", &assets); code != 200 {
				t.Fatalf("GET /v1/assets: HTTP %d", code)
			}
			if len(assets) != 1 {
				t.Fatalf("want one asset, got %d:\n%s", len(assets), dump(assets))
			}
			a := assets[0]
			var ips, macs []string
			for _, ad := range a.Addresses {
				if ad.Type == "mac" {
					macs = append(macs, ad.Addr)
				} else {
					ips = append(ips, ad.Addr)
				}
			}
			slices.Sort(ips)
			want := slices.Sorted(slices.Values(c.addresses))
			open := slices.ContainsFunc(a.Services, func(s model.Service) bool {
				return s.Protocol == "tcp" && s.Port == uint16(port) && s.State == "open"
			})
			switch {
			case a.Status != "up":
				t.Errorf("status %q, want up", a.Status)
			case !slices.Equal(ips, want):
				t.Errorf("IP addresses %v, want %v", ips, want)
			// nmap writes the MAC upper case, the plugin lower case: the
			// asset holds it once, in the one spelling merges write.
			case len(macs) != 1 || macs[0] != strings.ToLower(mac):
				t.Errorf("MAC addresses %v, want just %s", macs, strings.ToLower(mac))
			case a.Facts[model.FactInstancePrefix+"puppetdb"] != "puppetdb:"+pdbCertname:
				t.Errorf("fact instance_id:puppetdb = %q, want puppetdb:%s", a.Facts[model.FactInstancePrefix+"puppetdb"], pdbCertname)
			case a.Facts["dmi_uuid"] != pdbUUID:
				t.Errorf("fact dmi_uuid = %q, want %s", a.Facts["dmi_uuid"], pdbUUID)
			case a.Facts[model.FactIdentityConflict] != "":
				t.Errorf("identity conflict: %s", a.Facts[model.FactIdentityConflict])
			case !open:
				t.Errorf("no open tcp/%d from nmap", port)
			case !slices.Equal(a.Sources, []string{"nmap", "puppetdb"}):
				t.Errorf("sources %v, want [nmap puppetdb]", a.Sources)
			}
			if t.Failed() {
				t.Logf("asset:\n%s", dump(assets))
			}
		})
	}
}

// pdbUUID is the machine's SMBIOS UUID in its dmi fact, upper case as
// facter reports it; the plugin lowers it.
const pdbUUID = "8f3d2c1a-0000-4000-8000-000000000d07"

// machineFacts are facter 4's facts for a Linux machine whose one
// interface, eth0, has ip and mac, as far as the plugin reads them.
func machineFacts(ip, mac string) map[string]any {
	eth0 := map[string]any{
		"mac": mac, "mtu": 1500, "ip": ip, "netmask": "255.255.255.252", "network": "198.18.0.0",
		"bindings": []map[string]any{{"address": ip, "netmask": "255.255.255.252", "network": "198.18.0.0"}},
	}
	lo := map[string]any{
		"mtu": 65536, "ip": "127.0.0.1",
		"bindings": []map[string]any{{"address": "127.0.0.1", "netmask": "255.0.0.0", "network": "127.0.0.0"}},
	}
	return map[string]any{
		"fqdn": pdbCertname, "hostname": "db-7", "kernel": "Linux",
		"networking": map[string]any{
			"fqdn": pdbCertname, "hostname": "db-7", "domain": "example.test",
			"ip": ip, "mac": mac, "mtu": 1500, "netmask": "255.255.255.252", "network": "198.18.0.0",
			"primary":    "eth0",
			"interfaces": map[string]any{"lo": lo, "eth0": eth0},
		},
		"os": map[string]any{"name": "Debian", "family": "Debian", "release": map[string]any{"full": "12.5", "major": "12", "minor": "5"}},
		"dmi": map[string]any{
			"product": map[string]any{"name": "KVM", "uuid": strings.ToUpper(pdbUUID), "serial_number": "SN-0D07"},
			"bios":    map[string]any{"vendor": "SeaBIOS"},
		},
	}
}

// buildProviderPlugin builds plugins/NAME, a module of its own, into dir
// as the daemon's plugin_dir expects it.
func buildProviderPlugin(dir, name string) error {
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "sollwert-plugin-"+name), ".")
	cmd.Dir = "../../plugins/" + name
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the %s plugin: %v\n%s", name, err, b)
	}
	return nil
}

// linkMAC is the MAC address of the namespace's end of the veth pair, as
// the kernel reports it.
func linkMAC(t *testing.T, n *testnet.Net) string {
	t.Helper()
	out, err := exec.Command("ip", "-j", "-n", n.Name, "link", "show", n.PeerLink).Output()
	if err != nil {
		t.Fatalf("ip link show %s: %v", n.PeerLink, err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show %s: %v: %s", n.PeerLink, err, out)
	}
	if _, err := net.ParseMAC(links[0].Address); err != nil {
		t.Fatalf("%s's MAC: %v", n.PeerLink, err)
	}
	return links[0].Address
}

// listenInNamespace opens a TCP listener on addr inside n's namespace
// that accepts and drops connections until the test ends, and returns its
// port. The socket is made on a thread switched into the namespace and
// back (a socket stays in the namespace it was made in), so the machine
// needs no listener program: ncat is not among the test tools.
func listenInNamespace(t *testing.T, n *testnet.Net, addr string) int {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Left locked if switching back fails: the thread then ends with
		// this goroutine instead of serving others in the wrong namespace.
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer home.Close()
		ns, err := os.Open("/var/run/netns/" + n.Name)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns %s: %w", n.Name, err)}
			return
		}
		ln, lerr := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			if ln != nil {
				ln.Close()
			}
			done <- result{err: fmt.Errorf("setns back: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ln, lerr}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("listen in %s: %v", n, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	go func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return r.ln.Addr().(*net.TCPAddr).Port
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
