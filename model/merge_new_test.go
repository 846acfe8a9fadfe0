package model

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// TestMergeNewIsMerge holds Merge's path for a new asset to the general
// one: over many generated observations (services, facts, labels, several
// addresses, MACs in both spellings, hostnames, instance ids), both give
// the same asset and the same changes in the same order.
func TestMergeNewIsMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := 0; i < 20000; i++ {
		o, scope, run := randomObservation(rng)
		id := fmt.Sprintf("%016x", i)
		want, wantChanges := merge(nil, DefaultTenant, id, o, scope, run, now)
		got, gotChanges := Merge(nil, DefaultTenant, id, o, scope, run, now)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotChanges, wantChanges) {
			t.Fatalf("observation %d %+v, scope %+v, run %+v:\nnew path     %+v\n  changes %+v\ngeneral path %+v\n  changes %+v",
				i, o, scope, run, got, gotChanges, want, wantChanges)
		}
	}
}

// A new asset shares the observation's maps; adding its instance fact
// must not write into the observation's facts, which a retried
// transaction merges again.
func TestMergeNewLeavesTheObservationAlone(t *testing.T) {
	o := sdk.Observation{Addresses: []sdk.Address{{Addr: "198.18.0.1", Type: "ipv4"}}, InstanceID: "i-1",
		Facts: map[string]string{"os.family": "linux"}, Labels: map[string]string{"team": "a"}}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	first, _ := Merge(nil, DefaultTenant, "x", o, sdk.Scope{}, RunRef{Source: "cloud"}, now)
	if len(o.Facts) != 1 || len(first.Facts) != 2 {
		t.Fatalf("observation's facts %v, asset's %v", o.Facts, first.Facts)
	}
	again, _ := Merge(nil, DefaultTenant, "x", o, sdk.Scope{}, RunRef{Source: "cloud"}, now)
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("merged again: %+v, first %+v", again, first)
	}
	next, _ := Merge(&first, DefaultTenant, "x", sdk.Observation{Labels: map[string]string{"team": "b"}}, sdk.Scope{}, RunRef{}, now)
	if o.Labels["team"] != "a" || first.Labels["team"] != "a" || next.Labels["team"] != "b" {
		t.Fatalf("labels: observation %v, first %v, next %v", o.Labels, first.Labels, next.Labels)
	}
}

func randomObservation(rng *rand.Rand) (sdk.Observation, sdk.Scope, RunRef) {
	pick := func(opts ...string) string { return opts[rng.IntN(len(opts))] }
	var o sdk.Observation
	o.Status = pick("", sdk.StatusUp, sdk.StatusUp, sdk.StatusDown)
	for n := rng.IntN(5); n > 0; n-- {
		switch rng.IntN(5) {
		case 0:
			o.Addresses = append(o.Addresses, sdk.Address{Addr: fmt.Sprintf("10.0.%d.%d", rng.IntN(2), rng.IntN(3)), Type: "ipv4"})
		case 1:
			o.Addresses = append(o.Addresses, sdk.Address{Addr: netip.AddrFrom16([16]byte{0x20, 0x01, 15: byte(rng.IntN(3))}).String(), Type: "ipv6"})
		case 2:
			o.Addresses = append(o.Addresses, sdk.Address{Addr: pick("52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef", "52-54-00-AB-CD-EF", "00:11:22:33:44:55", "not a mac"),
				Type: "mac", Vendor: pick("", "QEMU")})
		case 3:
			o.Addresses = append(o.Addresses, sdk.Address{Addr: pick("10.0.0.1", "52:54:00:ab:cd:ef"), Type: pick("ipv4", "mac", "")})
		default:
			if len(o.Addresses) > 0 {
				o.Addresses = append(o.Addresses, o.Addresses[rng.IntN(len(o.Addresses))]) // reported twice
			}
		}
	}
	for n := rng.IntN(4); n > 0; n-- {
		o.Hostnames = append(o.Hostnames, pick("a.example", "b.example", "c", ""))
	}
	if rng.IntN(2) == 0 {
		o.Hostnames = []string{} // empty, not nil
	}
	o.OS = pick("", "", "Linux 6.1", "FreeBSD")
	for n := rng.IntN(6); n > 0; n-- {
		o.Services = append(o.Services, sdk.Service{Protocol: sdk.Protocol(pick("tcp", "tcp", "udp", "sctp")), Port: uint16(rng.IntN(30)),
			State: pick("open", "open", "closed", "filtered", "open|filtered"), Name: pick("", "ssh", "http"),
			Product: pick("", "OpenSSH"), Version: pick("", "9.6")})
	}
	facts := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", FactInstancePrefix + "aws", FactInstancePrefix + "libvirt", FactInstancePrefix + "instance"}
	randomMap := func(keys []string) map[string]string {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return map[string]string{}
		}
		m := map[string]string{}
		for n := rng.IntN(len(keys) + 1); n > 0; n-- {
			m[keys[rng.IntN(len(keys))]] = pick("", "x", "i-1", "aws:i-1")
		}
		return m
	}
	o.Facts = randomMap(facts)
	o.Labels = randomMap(facts[:11])
	o.InstanceID = pick("", "", "aws:i-1", "i-1", "x", ":odd")
	o.Source = pick("", "", "libvirt", "aws")
	var scope sdk.Scope
	if rng.IntN(2) == 0 {
		scope.Prefixes = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}
	ranges := []sdk.PortRanges{nil, {}, {{First: 1, Last: 20}}, {{First: 5, Last: 9}, {First: 2, Last: 3}}, {{First: 2, Last: 3}, {First: 5, Last: 9}},
		{{First: 2, Last: 3}, {First: 4, Last: 9}}, {{First: 2, Last: 6}, {First: 4, Last: 9}}, {{First: 7, Last: 7}, {First: 7, Last: 9}},
		{{First: 9, Last: 3}, {First: 12, Last: 14}}, {{First: 9, Last: 3}, {First: 5, Last: 6}}, {{First: 1, Last: 65535}}}
	switch rng.IntN(5) {
	case 0:
		scope.Ports = map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 20}}, sdk.UDP: {{First: 5, Last: 9}, {First: 2, Last: 3}}}
	case 4:
		scope.Ports = map[sdk.Protocol]sdk.PortRanges{}
		for _, p := range []sdk.Protocol{sdk.TCP, sdk.UDP, sdk.SCTP}[:1+rng.IntN(3)] {
			scope.Ports[p] = ranges[rng.IntN(len(ranges))]
		}
	case 1:
		scope.Ports = map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {}}
	case 2:
		scope.Ports = map[sdk.Protocol]sdk.PortRanges{}
	}
	run := RunRef{Source: pick("", "nmap", "aws"), Job: pick("", "j"), RunID: "r", Baseline: rng.IntN(2) == 0}
	return o, scope, run
}
