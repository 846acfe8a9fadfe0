package model

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// TestAssetJSONMatchesEncodingJSON holds AppendJSON to encoding/json, byte
// for byte, for an asset with every field set, one with none, and strings
// that need escaping; and checks that every field of Asset is set in the
// full one, so a field added later cannot be forgotten here.
func TestAssetJSONMatchesEncodingJSON(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	full := Asset{ID: "3f2a", Tenant: "acme", Status: "up", OS: "Linux <6.1> & \"friends\"", Version: 7, Unknown: true,
		Addresses: []sdk.Address{{Addr: "198.18.0.1", Type: "ipv4"}, {Addr: "52:54:00:12:34:56", Type: "mac", Vendor: "QEMU"}},
		Hostnames: []string{"web1", "wëb1.example"},
		Services: []Service{{Protocol: sdk.TCP, Port: 22, State: "open", Name: "ssh", Product: "OpenSSH", Version: "9.2", Since: t0, Address: "198.18.0.1"},
			{Protocol: sdk.UDP, Port: 161, State: "open", Since: t0.In(time.FixedZone("CET", 3600))}},
		Facts:     map[string]string{"sys_descr": "line\nbreak\u2028", "b": "", "a": "x"},
		Labels:    map[string]string{"env": "prod"},
		Sources:   []string{"nmap", "snmp"},
		Scanned:   map[sdk.Protocol]sdk.PortRanges{sdk.UDP: {{First: 161, Last: 161}}, sdk.TCP: {{First: 1, Last: 1024}, {First: 8080, Last: 8080}}},
		FirstSeen: t0, LastSeen: t0.Add(time.Hour), LastScanned: t0.Add(2 * time.Hour), LastScannedBy: "core"}
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Fatalf("the full asset leaves %s unset", v.Type().Field(i).Name)
		}
	}
	for name, a := range map[string]Asset{"full": full, "empty": {}, "no addresses slice": {ID: "x", Addresses: []sdk.Address{}},
		"bad utf8": {ID: "a\xffb", Facts: map[string]string{"k\xfe": "v"}}} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(&a)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.AppendJSON(nil); string(got) != string(want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		})
	}
}
