// Package testnet gives tests a network of their own: a network
// namespace joined to the test's namespace by a veth pair, with addresses
// from 198.18.0.0/15, so that tests can run real agents and servers
// without touching any other network. It needs root and iproute2.
package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Net is a namespace joined to the test's own by a veth pair.
type Net struct {
	Name string
	// Host is the test side's address, Peer the namespace side's.
	Host, Peer netip.Addr
	// PeerLink is the namespace side's interface.
	PeerLink string
}

// Require fails (under CI=true) or skips a test that cannot make a
// namespace: it needs root and the ip command.
func Require(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("ip")
	switch {
	case err != nil:
		need(t, "the ip command (Debian package iproute2) is not installed; run `make test` as root")
	case os.Geteuid() != 0:
		need(t, "network namespaces need root")
	}
}

func need(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// New makes a namespace whose veth pair uses the /30 at subnet (inside
// 198.18.0.0/15): subnet+1 on the test side, subnet+2 inside. Everything
// is removed when the test ends. Tests that may run at the same time (go
// test runs packages in parallel) must use different subnets.
func New(t testing.TB, subnet netip.Addr) *Net {
	t.Helper()
	Require(t)
	if !netip.MustParsePrefix("198.18.0.0/15").Contains(subnet) {
		t.Fatalf("testnet: %s is outside 198.18.0.0/15", subnet)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	n := &Net{Name: "sollwert-" + id, Host: subnet.Next(), Peer: subnet.Next().Next(), PeerLink: "swp" + id}
	hostLink := "swh" + id
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", n.Name).Run()
		_ = exec.Command("ip", "link", "del", hostLink).Run()
	})
	run(t, "ip", "netns", "add", n.Name)
	run(t, "ip", "link", "add", hostLink, "type", "veth", "peer", "name", n.PeerLink)
	run(t, "ip", "link", "set", n.PeerLink, "netns", n.Name)
	run(t, "ip", "addr", "add", n.Host.String()+"/30", "dev", hostLink)
	run(t, "ip", "link", "set", hostLink, "up")
	n.Exec(t, "ip", "link", "set", "lo", "up")
	n.Exec(t, "ip", "addr", "add", n.Peer.String()+"/30", "dev", n.PeerLink)
	n.Exec(t, "ip", "link", "set", n.PeerLink, "up")
	return n
}

// Route sends traffic for p from the test's namespace into this one.
func (n *Net) Route(t testing.TB, p netip.Prefix) {
	t.Helper()
	run(t, "ip", "route", "add", p.String(), "via", n.Peer.String())
}

// Exec runs a command inside the namespace and fails the test if it fails.
func (n *Net) Exec(t testing.TB, name string, args ...string) {
	t.Helper()
	run(t, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Command returns a command that will run inside the namespace.
func (n *Net) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Sprint is for messages.
func (n *Net) String() string { return fmt.Sprintf("%s (%s <-> %s)", n.Name, n.Host, n.Peer) }
