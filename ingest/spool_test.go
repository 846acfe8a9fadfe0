package ingest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

func spoolObs(i int) sdk.Observation {
	return sdk.Observation{
		Addresses: []sdk.Address{{Addr: fmt.Sprintf("198.18.%d.%d", i>>8, i&0xff), Type: "ipv4"}, {Addr: "52:54:00:00:00:01", Type: "mac", Vendor: "QEMU"}},
		Hostnames: []string{fmt.Sprintf("h%d.test", i)}, Status: sdk.StatusUp, OS: "Linux",
		Services: []sdk.Service{{Protocol: sdk.TCP, Port: 22, State: "open", Name: "ssh", Product: "OpenSSH", Version: "9.2"}},
		Facts:    map[string]string{"serial": fmt.Sprint(i)}, Labels: map[string]string{"team": "net", "env": "test"},
		InstanceID: fmt.Sprintf("i-%d", i), Source: "snmp-neighbour",
	}
}

func TestSpoolReturnsWhatWasAddedOncePerHost(t *testing.T) {
	s, err := NewSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want []sdk.Observation
	for i := 0; i < 1000; i++ {
		want = append(want, spoolObs(i))
	}
	if err := s.Add(want[:600]); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(want[600:]); err != nil {
		t.Fatal(err)
	}
	// A later report of host 5 replaces the first; one without an IP is skipped.
	again := spoolObs(5)
	again.OS = "FreeBSD"
	want[5] = again
	if err := s.Add([]sdk.Observation{again, {Addresses: []sdk.Address{{Addr: "52:54:00:00:00:02", Type: "mac"}}}}); err != nil {
		t.Fatal(err)
	}
	if s.Hosts() != 1000 || s.Skipped() != 1 || s.Observations() != 1002 {
		t.Fatalf("hosts %d skipped %d observations %d", s.Hosts(), s.Skipped(), s.Observations())
	}
	for round := 0; round < 2; round++ { // a spool can be read again
		got := map[string]sdk.Observation{}
		batches := 0
		err := s.Each(256, func(b []*sdk.Observation) error {
			batches++
			if len(b) > 256 {
				t.Fatalf("batch of %d", len(b))
			}
			for _, o := range b {
				if _, dup := got[o.Addresses[0].Addr]; dup {
					t.Fatalf("%s handed out twice", o.Addresses[0].Addr)
				}
				got[o.Addresses[0].Addr] = *o
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1000 || batches != 4 {
			t.Fatalf("got %d hosts in %d batches", len(got), batches)
		}
		for _, w := range want {
			if g := got[w.Addresses[0].Addr]; !reflect.DeepEqual(g, w) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", g, w)
			}
		}
	}
}

// The last report of an address wins however the reports are ordered,
// also when more arrive after the spool was first counted or read.
func TestSpoolKeepsTheLastReportOfUnorderedAddresses(t *testing.T) {
	s, err := NewSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	report := func(i int, os string) sdk.Observation {
		o := spoolObs(i)
		o.OS = os
		return o
	}
	var first []sdk.Observation
	for _, i := range []int{7, 3, 900, 3, 12, 7, 0} {
		first = append(first, report(i, fmt.Sprintf("first %d", len(first))))
	}
	zoned := sdk.Observation{Addresses: []sdk.Address{{Addr: "fe80::1%eth0", Type: "ipv6"}}, OS: "zoned 1"}
	if err := s.Add(append(first, zoned)); err != nil {
		t.Fatal(err)
	}
	if s.Hosts() != 6 {
		t.Fatalf("hosts %d after the first reports, want 6", s.Hosts())
	}
	zoned.OS = "zoned 2"
	if err := s.Add([]sdk.Observation{report(12, "second"), report(5, "second"), zoned}); err != nil {
		t.Fatal(err)
	}
	if s.Hosts() != 7 || s.Observations() != 11 {
		t.Fatalf("hosts %d, observations %d", s.Hosts(), s.Observations())
	}
	want := map[string]string{"198.18.0.7": "first 5", "198.18.0.3": "first 3", "198.18.3.132": "first 2",
		"198.18.0.12": "second", "198.18.0.0": "first 6", "198.18.0.5": "second", "fe80::1%eth0": "zoned 2"}
	got := map[string]string{}
	if err := s.Each(3, func(b []*sdk.Observation) error {
		for _, o := range b {
			if _, dup := got[o.Addresses[0].Addr]; dup {
				t.Fatalf("%s handed out twice", o.Addresses[0].Addr)
			}
			got[o.Addresses[0].Addr] = o.OS
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestDecodeObservationRejectsDamage(t *testing.T) {
	o := spoolObs(1)
	good := appendObservation(nil, &o)
	for cut := 0; cut < len(good); cut++ {
		var got sdk.Observation
		if err := decodeObservation(good[:cut], &got); err == nil {
			t.Fatalf("a record cut at %d of %d bytes decoded", cut, len(good))
		}
	}
	var got sdk.Observation
	if err := decodeObservation(append(good, 0), &got); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("trailing byte: %v", err)
	}
}

func FuzzDecodeObservation(f *testing.F) {
	o := spoolObs(3)
	f.Add(appendObservation(nil, &o))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o sdk.Observation
		if decodeObservation(b, &o) == nil {
			again := appendObservation(nil, &o)
			var o2 sdk.Observation
			if err := decodeObservation(again, &o2); err != nil || !reflect.DeepEqual(o, o2) {
				t.Fatalf("re-encoding a decoded record: %v", err)
			}
		}
	})
}

// The observations Each hands out share arrays and strings: each must
// stay intact while fn's transaction keeps it, after later batches were
// read, and appending to one's lists must leave its neighbours alone.
func TestSpoolObservationsOutliveTheirBatch(t *testing.T) {
	s, err := NewSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want []sdk.Observation
	for i := 0; i < 3000; i++ {
		o := spoolObs(i)
		o.Services = append(o.Services, make([]sdk.Service, i%7)...) // lists of every length
		o.Hostnames = nil
		for j := 0; j < i%3; j++ {
			o.Hostnames = append(o.Hostnames, fmt.Sprintf("h%d-%d.test", i, j))
		}
		want = append(want, o)
	}
	if err := s.Add(want); err != nil {
		t.Fatal(err)
	}
	var kept []*sdk.Observation
	if err := s.Each(256, func(b []*sdk.Observation) error {
		for _, o := range b {
			o.Addresses = append(o.Addresses, sdk.Address{Addr: "scribble"})
			o.Hostnames = append(o.Hostnames, "scribble")
			o.Services = append(o.Services, sdk.Service{Name: "scribble"})
		}
		kept = append(kept, b...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(kept) != len(want) {
		t.Fatalf("got %d observations, want %d", len(kept), len(want))
	}
	for i, o := range kept {
		w := want[i]
		if n := len(o.Addresses) - 1; n != len(w.Addresses) || !reflect.DeepEqual(o.Addresses[:n], w.Addresses) {
			t.Fatalf("observation %d: addresses %+v, want %+v and one appended", i, o.Addresses, w.Addresses)
		}
		if n := len(o.Hostnames) - 1; n != len(w.Hostnames) || (n > 0 && !reflect.DeepEqual(o.Hostnames[:n], w.Hostnames)) {
			t.Fatalf("observation %d: hostnames %q, want %q and one appended", i, o.Hostnames, w.Hostnames)
		}
		if n := len(o.Services) - 1; n != len(w.Services) || !reflect.DeepEqual(o.Services[:n], w.Services) {
			t.Fatalf("observation %d: services %+v, want %+v and one appended", i, o.Services, w.Services)
		}
		o.Addresses, o.Hostnames, o.Services = w.Addresses, w.Hostnames, w.Services
		if !reflect.DeepEqual(*o, w) {
			t.Fatalf("observation %d:\n got %+v\nwant %+v", i, *o, w)
		}
	}
}

// The last report of each address, found from sorted chunks, is the one
// a map of address to last report finds: addresses in order, shuffled,
// repeated within and across chunks, and sealed midway (hosts asked for
// while the run still streams).
func TestDedupOverManyChunksIsTheLastReport(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(r *rand.Rand, i int) netip.Addr
	}{
		{"in order", func(_ *rand.Rand, i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }},
		{"in order with repeats", func(_ *rand.Rand, i int) netip.Addr {
			return netip.AddrFrom4([4]byte{198, 18, byte(i >> 9), byte(i >> 1)})
		}},
		{"shuffled", func(r *rand.Rand, _ int) netip.Addr {
			return netip.AddrFrom4([4]byte{198, 18, byte(r.IntN(200)), byte(r.IntN(256))})
		}},
		{"ipv6 and ipv4", func(r *rand.Rand, i int) netip.Addr {
			if i%3 == 0 {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 14: byte(r.IntN(100)), 15: byte(r.IntN(256))})
			}
			return netip.AddrFrom4([4]byte{198, 19, byte(r.IntN(100)), byte(r.IntN(256))})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			var d dedup
			last := map[netip.Addr]uint32{}
			n := 3*dedupChunk + 1234
			for i := 0; i < n; i++ {
				ip := tc.addr(r, i)
				d.add(&sdk.Observation{Addresses: []sdk.Address{{Addr: ip.String()}}})
				last[ip] = uint32(i)
				if i == dedupChunk/2 || i == 2*dedupChunk+17 {
					if d.hosts() != len(last) {
						t.Fatalf("after %d reports: %d hosts, want %d", i+1, d.hosts(), len(last))
					}
				}
			}
			if d.hosts() != len(last) {
				t.Fatalf("%d hosts, want %d", d.hosts(), len(last))
			}
			current := map[uint32]bool{}
			for _, i := range last {
				current[i] = true
			}
			for i := 0; i < n; i++ {
				if d.current(uint32(i)) != current[uint32(i)] {
					t.Fatalf("report %d: current %t, want %t", i, d.current(uint32(i)), current[uint32(i)])
				}
			}
		})
	}
}

// Hosts that carry the labels of the host before them share its map;
// each still reads what it was reported with.
func TestSpoolSharesTheMapsOfConsecutiveHosts(t *testing.T) {
	s, err := NewSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	labels := []map[string]string{{"team": "a"}, {"team": "a"}, {"team": "b"}, {"team": "a"}, nil, {"team": "a"}}
	var obs []sdk.Observation
	for i, l := range labels {
		obs = append(obs, sdk.Observation{Addresses: []sdk.Address{{Addr: fmt.Sprintf("198.18.0.%d", i), Type: "ipv4"}}, Labels: l,
			Facts: map[string]string{"serial": fmt.Sprint(i)}})
	}
	if err := s.Add(obs); err != nil {
		t.Fatal(err)
	}
	var got []sdk.Observation
	if err := s.Each(2, func(b []*sdk.Observation) error {
		for _, o := range b {
			got = append(got, *o)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	same := func(a, b map[string]string) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	for i := range labels {
		if !reflect.DeepEqual(got[i].Labels, labels[i]) || got[i].Facts["serial"] != fmt.Sprint(i) {
			t.Fatalf("host %d: labels %v facts %v", i, got[i].Labels, got[i].Facts)
		}
	}
	if !same(got[0].Labels, got[1].Labels) || same(got[1].Labels, got[2].Labels) || same(got[0].Facts, got[1].Facts) {
		t.Fatalf("maps shared wrongly: %p %p %p, facts %p %p", got[0].Labels, got[1].Labels, got[2].Labels, got[0].Facts, got[1].Facts)
	}
}
