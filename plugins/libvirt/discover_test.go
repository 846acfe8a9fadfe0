package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// discover runs the source in process against config and returns what it
// emitted.
func discover(ctx context.Context, config []byte) ([]sdk.Observation, sdk.Result, error) {
	var all []sdk.Observation
	res, err := (&source{}).Discover(ctx, sdk.DiscoverRequest{Config: config, Job: "test", RunID: "r1"},
		sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error {
			all = append(all, b...)
			return nil
		}))
	return all, res, err
}

func byName(obs []sdk.Observation) map[string]sdk.Observation {
	m := map[string]sdk.Observation{}
	for _, o := range obs {
		if o.Source == "" && len(o.Hostnames) > 0 {
			m[o.Hostnames[0]] = o
		}
	}
	return m
}

func addrs(o sdk.Observation, typ string) []string {
	var out []string
	for _, a := range o.Addresses {
		if a.Type == typ {
			out = append(out, a.Addr)
		}
	}
	return out
}

func inRange(t *testing.T, addr, first, last string) {
	t.Helper()
	a, f, l := netip.MustParseAddr(addr), netip.MustParseAddr(first), netip.MustParseAddr(last)
	if a.Less(f) || l.Less(a) {
		t.Errorf("address %s is outside the DHCP range %s-%s", addr, first, last)
	}
}

func TestDomainsBecomeObservations(t *testing.T) {
	d := startLibvirtd(t)
	obs, res, err := discover(testContext(t), d.config())
	if err != nil {
		t.Fatalf("Discover: %v\n%s", err, d.logText())
	}
	for _, o := range obs {
		if err := o.Validate(); err != nil {
			t.Errorf("observation %v: %v", o.Hostnames, err)
		}
	}
	doms := byName(obs)
	if len(doms) != 3 {
		t.Fatalf("got domains %v, want db-1, web-1, web-2", keysOf(doms))
	}

	web1 := doms["web-1"]
	if web1.Status != sdk.StatusUp || web1.Facts["instance_state"] != "running" {
		t.Errorf("web-1: status %q, state %q; want up, running", web1.Status, web1.Facts["instance_state"])
	}
	if web1.InstanceID != "4dea22b3-1d52-d8f3-2516-782e98ab3f01" {
		t.Errorf("web-1: instance id %q", web1.InstanceID)
	}
	if got := addrs(web1, "mac"); !slices.Equal(got, []string{"52:54:00:10:00:01", "52:54:00:20:00:01"}) {
		t.Errorf("web-1: MACs %v", got)
	}
	ips := addrs(web1, "ipv4")
	if len(ips) != 2 {
		t.Fatalf("web-1: IPv4 addresses %v, want one per network", ips)
	}
	inRange(t, ips[0], "198.18.10.100", "198.18.10.199")
	inRange(t, ips[1], "198.19.20.10", "198.19.20.20")
	for k, want := range map[string]string{
		"provider": "libvirt", "vcpus": "2", "memory_mib": "1024", "title": "Web front end", "domain_type": "test",
		"if.net0.mac": "52:54:00:10:00:01", "if.net0.network": "lab", "if.net0.bridge": "virbr10", "if.net0.model": "virtio",
		"if.net0.address_source": "lease", "if.net0.addresses": ips[0] + "/24",
		"if.net1.network": "storage", "if.net1.addresses": ips[1] + "/24",
	} {
		if web1.Facts[k] != want {
			t.Errorf("web-1: fact %s = %q, want %q", k, web1.Facts[k], want)
		}
	}
	if web1.Facts["hypervisor"] == "" {
		t.Error("web-1: no hypervisor fact")
	}
	if web1.Labels["team"] != "web" || web1.Labels["env"] != "prod" {
		t.Errorf("web-1: labels %v, want team=web env=prod from the domain's metadata", web1.Labels)
	}

	web2 := doms["web-2"]
	if web2.Status != sdk.StatusDown || web2.Facts["instance_state"] != "paused" {
		t.Errorf("web-2: status %q, state %q; want down, paused", web2.Status, web2.Facts["instance_state"])
	}
	if ips := addrs(web2, "ipv4"); len(ips) != 1 {
		t.Errorf("web-2: a paused domain keeps its lease; got %v", ips)
	} else {
		inRange(t, ips[0], "198.18.10.100", "198.18.10.199")
	}

	db1 := doms["db-1"]
	if db1.Status != sdk.StatusDown || db1.Facts["instance_state"] != "shutoff" {
		t.Errorf("db-1: status %q, state %q; want down, shutoff", db1.Status, db1.Facts["instance_state"])
	}
	// Off, so no source has a lease; the network's static reservation
	// for its MAC is its address.
	if got := addrs(db1, "ipv4"); !slices.Equal(got, []string{"198.18.10.50"}) || db1.Facts["if.net0.address_source"] != "dhcp-host" {
		t.Errorf("db-1: addresses %v from %q, want 198.18.10.50 from dhcp-host", got, db1.Facts["if.net0.address_source"])
	}
	if got := addrs(db1, "mac"); !slices.Equal(got, []string{"52:54:00:10:00:03"}) {
		t.Errorf("db-1: MACs %v", got)
	}

	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `"batch-1"`) {
		t.Errorf("warnings %q, want one naming batch-1, which has no NIC", res.Warnings)
	}
	if len(res.Scope.Prefixes) != 0 {
		t.Errorf("scope %v: a hypervisor is not authoritative for address ranges", res.Scope.Prefixes)
	}

	// The networks with an address: the hypervisor's side of the bridge.
	var nets []sdk.Observation
	for _, o := range obs {
		if o.Source == NetworkSource {
			nets = append(nets, o)
		}
	}
	if len(nets) != 2 {
		t.Fatalf("got %d network observations, want lab and storage (isolated has no address)", len(nets))
	}
	lab := nets[0]
	if got := addrs(lab, "ipv4"); !slices.Equal(got, []string{"198.18.10.1"}) {
		t.Errorf("lab: addresses %v", got)
	}
	for k, want := range map[string]string{
		"network.lab.bridge": "virbr10", "network.lab.forward": "nat", "network.lab.subnets": "198.18.10.0/24",
		"network.lab.dhcp_ranges": "198.18.10.100-198.18.10.199",
	} {
		if lab.Facts[k] != want {
			t.Errorf("lab: fact %s = %q, want %q", k, lab.Facts[k], want)
		}
	}
	if got := addrs(nets[1], "ipv4"); !slices.Equal(got, []string{"198.19.20.1"}) {
		t.Errorf("storage: addresses %v", got)
	}
}

func keysOf(m map[string]sdk.Observation) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func TestDomainFilter(t *testing.T) {
	d := startLibvirtd(t)
	obs, _, err := discover(testContext(t), d.config(`"domains": ["web-*"]`))
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(byName(obs)); !slices.Equal(got, []string{"web-1", "web-2"}) {
		t.Errorf("domains %v, want web-1 and web-2", got)
	}
}

// The sources are asked in the configured order; the first to answer for
// an interface is the one its facts name. (The test driver answers every
// source alike; a source that fails is skipped, as db-1's fallback to its
// static reservation shows.)
func TestAddressSourcesInOrder(t *testing.T) {
	d := startLibvirtd(t)
	obs, _, err := discover(testContext(t), d.config(`"address_sources": ["arp", "lease"]`))
	if err != nil {
		t.Fatal(err)
	}
	web1 := byName(obs)["web-1"]
	if web1.Facts["if.net0.address_source"] != "arp" || len(addrs(web1, "ipv4")) != 2 {
		t.Errorf("web-1: %v from %q, want two addresses from arp", addrs(web1, "ipv4"), web1.Facts["if.net0.address_source"])
	}
}

func TestEachRunSeesTheFixtureAgain(t *testing.T) {
	d := startLibvirtd(t)
	ctx := testContext(t)
	first, _, err := discover(ctx, d.config())
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := discover(ctx, d.config())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(second)
	if string(a) != string(b) {
		t.Errorf("two pulls of the same host differ:\n%s\n%s", a, b)
	}
}

func TestFailures(t *testing.T) {
	d := startLibvirtd(t)
	missing := filepath.Join(t.TempDir(), "no-such-sock")
	cases := []struct {
		name   string
		config string
		want   string // in the error
	}{
		{"an unreachable socket fails the run", `{"uri": "qemu+unix:///system?socket=` + missing + `"}`, "connect to unix:" + missing},
		{"a bad URI is a field error", `{"uri": "qemu+ssh://host/system"}`, `uri: "qemu+ssh://host/system": transport "ssh" is not supported`},
		{"a driver the daemon lacks fails the run", `{"uri": "nosuch+unix:///system?socket=` + d.socket + `"}`, "open nosuch:///system"},
		{"a missing fixture fails the run", `{"uri": "test+unix:///nonexistent/node.xml?socket=` + d.socket + `"}`, "open test:///nonexistent/node.xml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs, _, err := discover(testContext(t), []byte(c.config))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if len(obs) != 0 {
				t.Errorf("a failed run emitted %d observations", len(obs))
			}
		})
	}
}

func TestCancelledBeforeTheRun(t *testing.T) {
	d := startLibvirtd(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := discover(ctx, d.config())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// stalledSocket accepts connections and never answers: a hung daemon,
// which the real one cannot be made to be on demand.
func stalledSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stalled.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return path
}

func TestAHungDaemon(t *testing.T) {
	sock := stalledSocket(t)
	t.Run("is cut off by connect_timeout", func(t *testing.T) {
		start := time.Now()
		_, _, err := discover(testContext(t), []byte(`{"uri": "qemu+unix:///system?socket=`+sock+`", "connect_timeout": "300ms"}`))
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "open qemu:///system") {
			t.Fatalf("error %v, want a deadline opening qemu:///system", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("is cut off when the run is cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testContext(t))
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, _, err := discover(ctx, []byte(`{"uri": "qemu+unix:///system?socket=`+sock+`", "connect_timeout": "1m"}`))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v to notice the cancellation", d)
		}
	})
}
