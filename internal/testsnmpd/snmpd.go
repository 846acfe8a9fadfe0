// Package testsnmpd runs net-snmp's real snmpd for tests, inside a network
// namespace of the test's own (internal/testnet), so that its interfaces
// and neighbour table are the namespace's: a veth end and a permanent
// neighbour entry the helper adds. Nothing outside 198.18.0.0/15 is
// contacted.
package testsnmpd

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/sollwert/sollwert/internal/testnet"
)

// Credentials the agent accepts.
const (
	Community = "s3cret-community"
	User      = "sollwert"
	AuthKey   = "auth-passphrase-1"
	PrivKey   = "priv-passphrase-1"
	// AuthOnlyUser authenticates with SHA-256 and has no privacy key.
	AuthOnlyUser = "monitor"
	// NeighbourIP and NeighbourMAC are a permanent ARP entry in the
	// namespace: data only, nothing answers there.
	NeighbourIP  = "198.18.77.10"
	NeighbourMAC = "02:00:5e:00:53:0a"
	// Port is where the agent listens.
	Port = 16161
)

// Agent is a running snmpd.
type Agent struct {
	Net  *testnet.Net
	Addr netip.Addr
	Port int
	// Spare is a /30 next to the agent's, routed into its namespace and
	// unused there, for tests that need an address nothing answers at.
	Spare netip.Prefix
	bin   string
	dir   string
	cmd   *exec.Cmd
}

// Path finds snmpd; it fails the test under CI=true and skips it
// otherwise when snmpd is missing.
func Path(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"snmpd", "/usr/sbin/snmpd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("snmpd is not installed: run `make test` as root or apt-get install snmpd")
	}
	t.Skip("snmpd not installed")
	return ""
}

// Start runs snmpd in a fresh namespace with a v2c community and a v3
// authPriv user, answering sysDescr with sysDescr. The namespace's
// addresses are a random /29 of 198.19.0.0/16, so that test packages
// running at the same time do not share routes.
func Start(t testing.TB, sysDescr string) *Agent {
	t.Helper()
	bin := Path(t)
	var r [2]byte
	_, _ = rand.Read(r[:])
	k := (int(r[0])<<8 | int(r[1])) % 8192
	base := netip.AddrFrom4([4]byte{198, 19, byte(k * 8 >> 8), byte(k * 8)})
	n := testnet.New(t, base)
	n.Exec(t, "ip", "neigh", "add", NeighbourIP, "lladdr", NeighbourMAC, "dev", n.PeerLink, "nud", "permanent")
	spare := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(k * 8 >> 8), byte(k*8 + 4)}), 30)
	a := &Agent{Net: n, Addr: n.Peer, Port: Port, Spare: spare, bin: bin, dir: t.TempDir()}
	t.Cleanup(a.Stop)
	a.Restart(t, sysDescr)
	return a
}

// Restart (re)starts snmpd with sysDescr.
func (a *Agent) Restart(t testing.TB, sysDescr string) {
	t.Helper()
	a.Stop()
	conf := filepath.Join(a.dir, "snmpd.conf")
	body := fmt.Sprintf(`[snmp] persistentDir %s
rocommunity %s 198.18.0.0/15
createUser %s SHA "%s" AES "%s"
rouser %s priv
createUser %s SHA-256 "%s"
rouser %s auth
sysDescr %s
sysName switch-1
sysLocation rack 7
sysContact noc@example.test
`, filepath.Join(a.dir, "persist"), Community, User, AuthKey, PrivKey, User, AuthOnlyUser, AuthKey, AuthOnlyUser, sysDescr)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := a.Net.Command(a.bin, "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(a.dir, "pid"), fmt.Sprintf("udp:%s:%d", a.Addr, a.Port))
	cmd.Env = append(os.Environ(), "MIBS=")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := &gosnmp.GoSNMP{Target: a.Addr.String(), Port: uint16(a.Port), Community: Community, Version: gosnmp.Version2c,
			Timeout: 200 * time.Millisecond, Retries: 0}
		if g.Connect() == nil {
			r, err := g.Get([]string{".1.3.6.1.2.1.1.1.0"})
			g.Conn.Close()
			if err == nil && len(r.Variables) == 1 && string(asBytes(r.Variables[0].Value)) == sysDescr {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("snmpd did not answer:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// Stop ends snmpd.
func (a *Agent) Stop() {
	if a.cmd != nil && a.cmd.Process != nil {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
		a.cmd = nil
	}
}

// SecretFile writes a secret into a file of the test's and returns its path.
func SecretFile(t testing.TB, dir, value string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "secret-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(value + "\n"); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// Populate gives the agent's namespace about ifaces more interfaces (veth
// pairs: the dummy driver is not everywhere) and neighbours more permanent
// ARP entries (in 198.18.80.0/20, data only), so walks have tables of a
// real switch's size.
func (a *Agent) Populate(t testing.TB, ifaces, neighbours int) {
	t.Helper()
	// Without IPv6 the new links learn no neighbours of their own, so the
	// tables hold what was added and stay as they are.
	if out, err := a.Net.Command("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	var b strings.Builder
	for i := 0; i < ifaces/2; i++ {
		fmt.Fprintf(&b, "link add swa%d type veth peer name swb%d\nlink set swa%d up\nlink set swb%d up\n", i, i, i, i)
	}
	fmt.Fprintf(&b, "addr add 198.18.80.1/20 dev %s\n", a.Net.PeerLink)
	for i := 0; i < neighbours; i++ {
		ip := netip.AddrFrom4([4]byte{198, 18, 80 + byte((i+2)>>8), byte(i + 2)})
		fmt.Fprintf(&b, "neigh add %s lladdr 02:00:00:00:%02x:%02x dev %s nud permanent\n", ip, byte((i+2)>>8), byte(i+2), a.Net.PeerLink)
	}
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", a.Net.Name, "-batch", batch).CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v\n%s", err, out)
	}
	a.waitInterfaces(t, ifaces)
}

// waitInterfaces returns once the agent counts at least n interfaces
// (IF-MIB ifNumber): snmpd reads the interface table into a cache it
// refreshes every few seconds, so interfaces added after it started are
// not walked at once.
func (a *Agent) waitInterfaces(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	seen := -1
	for {
		g := &gosnmp.GoSNMP{Target: a.Addr.String(), Port: uint16(a.Port), Community: Community, Version: gosnmp.Version2c,
			Timeout: time.Second, Retries: 0}
		if g.Connect() == nil {
			r, err := g.Get([]string{".1.3.6.1.2.1.2.1.0"})
			g.Conn.Close()
			if err == nil && len(r.Variables) == 1 {
				if seen = int(gosnmp.ToBigInt(r.Variables[0].Value).Int64()); seen >= n {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("snmpd counts %d interfaces a minute after %d were added", seen, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
