package model

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func scopeOf(tcp string) sdk.Scope {
	r, err := sdk.ParsePortRanges(tcp)
	if err != nil {
		panic(err)
	}
	return sdk.Scope{Prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Ports: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: r}}
}

func obs(open ...uint16) sdk.Observation {
	o := sdk.Observation{Addresses: []sdk.Address{{Addr: "127.0.0.1", Type: "ipv4"}}, Status: sdk.StatusUp}
	for _, p := range open {
		o.Services = append(o.Services, sdk.Service{Protocol: sdk.TCP, Port: p, State: "open", Name: "svc"})
	}
	return o
}

func openPorts(a Asset) []uint16 {
	var out []uint16
	for _, s := range a.Services {
		out = append(out, s.Port)
	}
	return out
}

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ref := RunRef{Source: "nmap", Job: "j"}
	first, changes := Merge(nil, DefaultTenant, "id", obs(22, 80), scopeOf("1-1024"), RunRef{Source: "nmap", Job: "j", Baseline: true}, t0)
	if len(changes) != 1 || changes[0].Field != "asset" || len(first.Services) != 2 || first.Unknown {
		t.Fatalf("new asset: changes %+v unknown %v", changes, first.Unknown)
	}
	cases := []struct {
		name        string
		obs         sdk.Observation
		scope       string
		wantPorts   []uint16
		wantChanges int
	}{
		{"same result changes nothing", obs(22, 80), "1-1024", []uint16{22, 80}, 0},
		{"a port missing inside scope is closed", obs(22), "1-1024", []uint16{22}, 1},
		{"a port outside scope keeps its state", obs(22), "1-79", []uint16{22, 80}, 0},
		{"a new port opens", obs(22, 80, 443), "1-1024", []uint16{22, 80, 443}, 1},
		{"closed and filtered are not open", func() sdk.Observation {
			o := obs(22, 80)
			o.Services = append(o.Services, sdk.Service{Protocol: sdk.TCP, Port: 81, State: "closed"}, sdk.Service{Protocol: sdk.TCP, Port: 82, State: "filtered"})
			return o
		}(), "1-1024", []uint16{22, 80}, 0},
		{"a version change is a change", func() sdk.Observation { o := obs(22, 80); o.Services[0].Version = "9.2"; return o }(), "1-1024", []uint16{22, 80}, 1},
		{"a port reported twice counts once", obs(22, 22, 80, 80), "1-1024", []uint16{22, 80}, 0},
		{"an unsorted report is sorted", obs(443, 80, 22), "1-1024", []uint16{22, 80, 443}, 1},
		{"one port closes while another opens", obs(80, 443), "1-1024", []uint16{80, 443}, 2},
		{"a new port before the known ones", obs(21, 22, 80), "1-1024", []uint16{21, 22, 80}, 1},
	}
	firstServices := slices.Clone(first.Services)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, changes := Merge(&first, DefaultTenant, "id", c.obs, scopeOf(c.scope), ref, t0.Add(time.Hour))
			if got := openPorts(next); !slices.Equal(got, c.wantPorts) {
				t.Fatalf("ports %v, want %v", got, c.wantPorts)
			}
			if len(changes) != c.wantChanges {
				t.Fatalf("changes %+v, want %d", changes, c.wantChanges)
			}
			if !next.FirstSeen.Equal(t0) || !next.LastScanned.Equal(t0.Add(time.Hour)) {
				t.Fatalf("times: first %v scanned %v", next.FirstSeen, next.LastScanned)
			}
			if !slices.Equal(first.Services, firstServices) {
				t.Fatalf("Merge modified the previous asset: %+v", first.Services)
			}
		})
	}
	down, changes := MarkAbsent(first, scopeOf("1-1024"), ref, t0.Add(time.Hour))
	if down.Status != sdk.StatusDown || len(down.Services) != 0 || len(changes) != 3 {
		t.Fatalf("absent: status %s services %v changes %+v", down.Status, down.Services, changes)
	}
	if !down.LastSeen.Equal(first.LastSeen) {
		t.Fatal("an absent host must keep its last-seen time")
	}
}

func TestReconcile(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Asset{ID: "a", Addresses: []sdk.Address{{Addr: "127.0.0.1", Type: "ipv4"}}}
	f := Finding{Rule: "r", Kind: KindUnexpectedPort, Severity: SeverityCritical, Protocol: sdk.TCP, Port: 80}
	opened := Reconcile(DefaultTenant, a, nil, []Finding{f}, t0, true)
	if len(opened) != 1 || opened[0].State != StateOpen || opened[0].Host != "127.0.0.1" {
		t.Fatalf("open: %+v", opened)
	}
	kept := Reconcile(DefaultTenant, a, opened, []Finding{f}, t0.Add(time.Hour), true)
	if len(kept) != 1 || !kept[0].OpenedAt.Equal(t0) || !kept[0].LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("keep: %+v", kept)
	}
	resolved := Reconcile(DefaultTenant, a, kept, nil, t0.Add(2*time.Hour), true)
	if len(resolved) != 1 || resolved[0].State != StateResolved || resolved[0].ResolvedAt == nil {
		t.Fatalf("resolve: %+v", resolved)
	}
	if again := Reconcile(DefaultTenant, a, resolved, nil, t0.Add(3*time.Hour), true); len(again) != 0 {
		t.Fatalf("a resolved deviation was rewritten: %+v", again)
	}
	reopened := Reconcile(DefaultTenant, a, resolved, []Finding{f}, t0.Add(4*time.Hour), true)
	if len(reopened) != 1 || reopened[0].ID != opened[0].ID || reopened[0].Occurrences != 2 || !reopened[0].FirstSeen.Equal(t0) {
		t.Fatalf("reopen: %+v", reopened)
	}
	until := t0.Add(5 * time.Hour)
	acked := reopened[0]
	acked.State, acked.Ack = StateAcknowledged, &Ack{By: "x", Until: &until}
	if d := Reconcile(DefaultTenant, a, []Deviation{acked}, []Finding{f}, t0.Add(4*time.Hour+time.Minute), true); d[0].State != StateAcknowledged {
		t.Fatalf("ack lost before expiry: %+v", d[0])
	}
	if d := Reconcile(DefaultTenant, a, []Deviation{acked}, []Finding{f}, t0.Add(6*time.Hour), true); d[0].State != StateOpen || d[0].Ack != nil {
		t.Fatalf("expired ack kept: %+v", d[0])
	}
}

// TestPortsPerAddress: a machine with two addresses keeps each one's
// ports; a scan of one neither closes nor claims the other's, a host
// found absent loses only the ports of the addresses the run covered,
// and ports kept from before ports had addresses take the address of
// the first scan that sees them.
func TestPortsPerAddress(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ref := RunRef{Source: "nmap", Job: "j"}
	at := func(addr string, open ...uint16) sdk.Observation {
		o := obs(open...)
		o.Addresses = []sdk.Address{{Addr: addr, Type: "ipv4"}, {Addr: "02:00:00:00:00:01", Type: "mac"}}
		return o
	}
	scope := func(prefix string) sdk.Scope {
		s := scopeOf("1-1024")
		s.Prefixes = []netip.Prefix{netip.MustParsePrefix(prefix)}
		return s
	}
	type port struct {
		addr string
		port uint16
	}
	ports := func(a Asset) []port {
		var out []port
		for _, s := range a.Services {
			out = append(out, port{s.Address, s.Port})
		}
		return out
	}
	a, _ := Merge(nil, DefaultTenant, "id", at("127.0.0.1", 22), scope("127.0.0.1/32"), ref, t0)
	a, _ = Merge(&a, DefaultTenant, "id", at("127.0.0.2", 80, 443), scope("127.0.0.2/32"), ref, t0)
	if want := []port{{"127.0.0.1", 22}, {"127.0.0.2", 80}, {"127.0.0.2", 443}}; !slices.Equal(ports(a), want) {
		t.Fatalf("both addresses: %v, want %v", ports(a), want)
	}
	// The first address again, now with 80 open too: 443 of the other
	// stays, and 80 is open on both.
	b, changes := Merge(&a, DefaultTenant, "id", at("127.0.0.1", 22, 80), scope("127.0.0.1/32"), ref, t0)
	if want := []port{{"127.0.0.1", 22}, {"127.0.0.1", 80}, {"127.0.0.2", 80}, {"127.0.0.2", 443}}; !slices.Equal(ports(b), want) || len(changes) != 1 {
		t.Fatalf("rescan of one address: %v (changes %+v), want %v", ports(b), changes, want)
	}
	c, changes := Merge(&b, DefaultTenant, "id", at("127.0.0.1"), scope("127.0.0.1/32"), ref, t0)
	if want := []port{{"127.0.0.2", 80}, {"127.0.0.2", 443}}; !slices.Equal(ports(c), want) || len(changes) != 2 {
		t.Fatalf("the first address closed: %v (changes %+v), want %v", ports(c), changes, want)
	}
	d, _ := MarkAbsent(b, scope("127.0.0.2/32"), ref, t0)
	if want := []port{{"127.0.0.1", 22}, {"127.0.0.1", 80}}; !slices.Equal(ports(d), want) {
		t.Fatalf("absent on the second address: %v, want %v", ports(d), want)
	}

	old := a
	old.Services = []Service{{Protocol: sdk.TCP, Port: 22, State: "open", Name: "svc"}, {Protocol: sdk.TCP, Port: 80, State: "open", Name: "svc"}}
	e, changes := Merge(&old, DefaultTenant, "id", at("127.0.0.1", 22), scope("127.0.0.1/32"), ref, t0)
	if want := []port{{"127.0.0.1", 22}}; !slices.Equal(ports(e), want) || len(changes) != 1 || changes[0].To != "closed" {
		t.Fatalf("ports from before addresses: %v (changes %+v), want %v", ports(e), changes, want)
	}
	// An observation with several addresses (a provider's) speaks for the
	// machine: its ports have no address of their own.
	many := at("127.0.0.1", 22)
	many.Addresses = append(many.Addresses, sdk.Address{Addr: "127.0.0.2", Type: "ipv4"})
	f, _ := Merge(nil, DefaultTenant, "id", many, scope("127.0.0.0/8"), ref, t0)
	if want := []port{{"", 22}}; !slices.Equal(ports(f), want) {
		t.Fatalf("a provider's ports: %v, want %v", ports(f), want)
	}
}
