package model

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func TestIdentityKeys(t *testing.T) {
	o := sdk.Observation{InstanceID: "puppetdb:web1", Facts: map[string]string{"dmi_uuid": "4C4C4544-0042-3510-8057-B4C04F4A3432",
		"uuid": "4c4c4544-0042-3510-8057-b4c04f4a3432", "serial_number": "To be filled by O.E.M."},
		Addresses: []sdk.Address{{Addr: "198.18.0.1", Type: "ipv4"}, {Addr: "52:54:00:AB:CD:EF", Type: "mac"}, {Addr: "00:00:00:00:00:00", Type: "mac"}}}
	want := []IdentityKey{{KeyInstance, "puppetdb:web1"}, {KeyUUID, "4c4c4544-0042-3510-8057-b4c04f4a3432"}, {KeyMAC, "52:54:00:ab:cd:ef"}}
	if got := ObservationKeys(&o); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys\n got %v\nwant %v", got, want)
	}
	a, _ := Merge(nil, "default", "x", o, sdk.Scope{}, RunRef{Source: "puppetdb"}, time.Now())
	if got := AssetKeys(&a); !reflect.DeepEqual(got, want) {
		t.Fatalf("the merged asset's keys\n got %v\nwant %v", got, want)
	}
}

func TestContradicts(t *testing.T) {
	web1 := Asset{Facts: map[string]string{"instance_id:puppetdb": "puppetdb:web1", "dmi_uuid": "4c4c4544-0042-3510-8057-b4c04f4a3432"}}
	for _, c := range []struct {
		name string
		keys []IdentityKey
		want bool
	}{
		{"same instance", []IdentityKey{{KeyInstance, "puppetdb:web1"}}, false},
		{"another instance of the same provider", []IdentityKey{{KeyInstance, "puppetdb:web2"}}, true},
		{"an instance of another provider", []IdentityKey{{KeyInstance, "aws:i-1"}}, false},
		{"another UUID", []IdentityKey{{KeyUUID, "11111111-2222-3333-4444-555555555555"}}, true},
		{"another UUID, but the same instance", []IdentityKey{{KeyInstance, "puppetdb:web1"}, {KeyUUID, "11111111-2222-3333-4444-555555555555"}}, false},
		{"a MAC alone", []IdentityKey{{KeyMAC, "52:54:00:00:00:09"}}, false},
		{"nothing", nil, false},
	} {
		if got := Contradicts(&web1, c.keys); got != c.want {
			t.Errorf("%s: Contradicts = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestMergeKeepsOneSpellingOfAMAC: nmap writes MACs upper case, most
// providers lower case; the asset holds each MAC once.
func TestMergeKeepsOneSpellingOfAMAC(t *testing.T) {
	now := time.Now()
	first := sdk.Observation{Addresses: []sdk.Address{{Addr: "198.18.0.1", Type: "ipv4"}, {Addr: "36:AB:A1:9D:4B:5A", Type: "mac"}}}
	a, _ := Merge(nil, "default", "x", first, sdk.Scope{}, RunRef{Source: "nmap"}, now)
	second := sdk.Observation{Addresses: []sdk.Address{{Addr: "36:ab:a1:9d:4b:5a", Type: "mac"}}}
	b, changes := Merge(&a, "default", "x", second, sdk.Scope{}, RunRef{Source: "puppetdb"}, now)
	want := []sdk.Address{{Addr: "198.18.0.1", Type: "ipv4"}, {Addr: "36:ab:a1:9d:4b:5a", Type: "mac"}}
	if !reflect.DeepEqual(b.Addresses, want) {
		t.Fatalf("addresses %v, want %v", b.Addresses, want)
	}
	for _, c := range changes {
		if c.Field == "address" {
			t.Fatalf("a MAC in another spelling is a change: %+v", c)
		}
	}
}

func TestReleaseAddresses(t *testing.T) {
	web := func(facts map[string]string, ips ...string) Asset {
		a := Asset{ID: "w", Status: sdk.StatusUp, Facts: facts}
		for _, ip := range ips {
			a.Addresses = append(a.Addresses, sdk.Address{Addr: ip, Type: "ipv4"})
			a.Services = append(a.Services, Service{Protocol: sdk.TCP, Port: 22, State: "open", Address: ip})
		}
		return a
	}
	reports := func(instance string, ips ...string) sdk.Observation {
		o := sdk.Observation{InstanceID: instance}
		for _, ip := range ips {
			o.Addresses = append(o.Addresses, sdk.Address{Addr: ip, Type: "ipv4"})
		}
		return o
	}
	cases := []struct {
		name      string
		asset     Asset
		obs       sdk.Observation
		wantAddrs string // what remains, with its ports
		wantFact  string
		changes   int
	}{
		{"the first report only records", web(nil, "198.18.0.1", "198.18.0.2"), reports("aws:i-1", "198.18.0.2"),
			"198.18.0.1 198.18.0.2", "198.18.0.2", 1},
		{"the same report changes nothing", web(map[string]string{"addresses:aws": "198.18.0.1,198.18.0.2"}, "198.18.0.1", "198.18.0.2"),
			reports("aws:i-1", "198.18.0.2", "198.18.0.1", "198.18.0.2"), "198.18.0.1 198.18.0.2", "198.18.0.1,198.18.0.2", 0},
		{"an address no longer reported leaves with its ports", web(map[string]string{"addresses:aws": "198.18.0.1,198.18.0.2"}, "198.18.0.1", "198.18.0.2"),
			reports("aws:i-1", "198.18.0.2"), "198.18.0.2", "198.18.0.2", 3},
		{"another provider still reporting it keeps it", web(map[string]string{"addresses:aws": "198.18.0.1,198.18.0.2", "addresses:puppetdb": "198.18.0.1"}, "198.18.0.1", "198.18.0.2"),
			reports("aws:i-1", "198.18.0.2"), "198.18.0.1 198.18.0.2", "198.18.0.2", 1},
		{"no address at all says nothing", web(map[string]string{"addresses:aws": "198.18.0.1"}, "198.18.0.1"),
			reports("aws:i-1"), "198.18.0.1", "198.18.0.1", 0},
		{"no instance id, no authority", web(map[string]string{"addresses:aws": "198.18.0.1"}, "198.18.0.1"),
			reports("", "198.18.0.2"), "198.18.0.1", "198.18.0.1", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := c.asset.clone()
			changes := ReleaseAddresses(&next, &c.obs, "nmap")
			var got []string
			for i, a := range next.Addresses {
				if len(next.Services) <= i || next.Services[i].Address != a.Addr {
					t.Fatalf("the ports do not follow the addresses: %+v", next)
				}
				got = append(got, a.Addr)
			}
			if strings.Join(got, " ") != c.wantAddrs || next.Facts["addresses:aws"] != c.wantFact || len(changes) != c.changes {
				t.Fatalf("addresses %v, fact %q, changes %+v", got, next.Facts["addresses:aws"], changes)
			}
		})
	}
}
