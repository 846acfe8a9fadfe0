package model

import (
	"reflect"
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
