package main

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

func observeJSON(t *testing.T, exclude []string, row nodeRow, facts string) (o observation, problems []string) {
	t.Helper()
	var inv *inventoryRow
	if facts != "" {
		inv = &inventoryRow{}
		if err := json.Unmarshal([]byte(facts), inv); err != nil {
			t.Fatal(err)
		}
	}
	ob := &observer{exclude: exclude}
	sdkObs, problems := ob.observation(&row, inv)
	return observation{sdkObs.Status, addrsOf(sdkObs.Addresses), sdkObs.Hostnames, sdkObs.OS, sdkObs.Facts}, problems
}

// observation is the part of sdk.Observation these tests compare.
type observation struct {
	status    string
	addrs     []string
	hostnames []string
	os        string
	facts     map[string]string
}

func addrsOf(l []sdk.Address) []string {
	var out []string
	for _, a := range l {
		out = append(out, a.Type+":"+a.Addr)
	}
	return out
}

func TestObservation(t *testing.T) {
	active := nodeRow{Certname: "a.example.test"}
	for _, tc := range []struct {
		name     string
		exclude  []string
		facts    string
		addrs    []string
		problems []string
		facts2   map[string]string
	}{
		{
			name:  "no facts at all: no address",
			addrs: nil,
		},
		{
			name:    "loopback, link-local, multicast and zoned addresses are left out",
			exclude: []string{},
			facts: `{"facts.networking": {"ip": "127.0.0.1", "ip6": "fe80::1%eth0", "interfaces": {
				"lo": {"bindings": [{"address": "127.0.0.1", "netmask": "255.0.0.0"}], "bindings6": [{"address": "::1"}]},
				"eth0": {"mac": "52:54:00:AA:BB:CC", "bindings": [{"address": "169.254.1.1", "netmask": "255.255.0.0"}, {"address": "198.18.0.7", "netmask": "255.255.255.128"}],
				         "bindings6": [{"address": "fe80::5054:ff:feaa:bbcc", "netmask": "ffff:ffff:ffff:ffff::"}, {"address": "ff02::1"}, {"address": "2001:db8::7%eth0", "netmask": "ffff:ffff:ffff:ffff::"}]}}}}`,
			addrs:  []string{"ipv4:198.18.0.7", "ipv6:2001:db8::7", "mac:52:54:00:aa:bb:cc"},
			facts2: map[string]string{"if.eth0.addresses": "198.18.0.7/25,2001:db8::7/64", "if.eth0.mac": "52:54:00:aa:bb:cc"},
		},
		{
			name:    "excluded interfaces give neither addresses nor facts",
			exclude: []string{"docker*"},
			facts: `{"facts.networking": {"ip": "198.18.0.8", "mac": "52:54:00:00:00:08", "primary": "eth0", "interfaces": {
				"docker0": {"mac": "02:42:ac:11:00:01", "bindings": [{"address": "172.17.0.1", "netmask": "255.255.0.0"}]},
				"eth0": {"mac": "52:54:00:00:00:08", "bindings": [{"address": "198.18.0.8", "netmask": "255.255.255.0"}]}}}}`,
			addrs:  []string{"ipv4:198.18.0.8", "mac:52:54:00:00:00:08"},
			facts2: map[string]string{"if.eth0.addresses": "198.18.0.8/24"},
		},
		{
			name:    "an excluded primary interface takes networking.ip with it",
			exclude: []string{"br-*"},
			facts: `{"facts.networking": {"ip": "172.18.0.1", "mac": "02:42:00:00:00:01", "primary": "br-1234", "interfaces": {
				"br-1234": {"mac": "02:42:00:00:00:01", "bindings": [{"address": "172.18.0.1"}]},
				"eth1": {"mac": "52:54:00:00:00:09", "ip": "198.19.0.9"}}}}`,
			addrs: []string{"ipv4:198.19.0.9", "mac:52:54:00:00:00:09"},
		},
		{
			name:    "the primary interface comes first, the others by name",
			exclude: []string{},
			facts: `{"facts.networking": {"primary": "eth9", "interfaces": {
				"eth1": {"bindings": [{"address": "198.18.1.1"}]}, "eth0": {"bindings": [{"address": "198.18.0.1"}]}, "eth9": {"bindings": [{"address": "198.18.9.1"}]}}}}`,
			addrs: []string{"ipv4:198.18.9.1", "ipv4:198.18.0.1", "ipv4:198.18.1.1"},
		},
		{
			name:     "addresses that do not parse are problems; all-zero MACs are left out",
			exclude:  []string{},
			facts:    `{"facts.networking": {"ip": "198.18.0.300", "mac": "00:00:00:00:00:00", "interfaces": {"eth0": {"mac": "zz:zz", "bindings": [{"address": "198.18.0.3", "netmask": "255.0.255.0"}]}}}}`,
			addrs:    []string{"ipv4:198.18.0.3"},
			problems: []string{`networking.ip: "198.18.0.300" is not an IP address`, `networking.interfaces.eth0: "zz:zz" is not a MAC address`},
			facts2:   map[string]string{"if.eth0.addresses": "198.18.0.3"},
		},
		{
			name:     "a networking fact of another shape is a problem",
			facts:    `{"facts.networking": "198.18.0.1", "facts.os": {"name": "Debian"}}`,
			problems: []string{"fact networking: a JSON string, not facter's shape"},
		},
		{
			name:   "OS, DMI and the legacy serial number",
			facts:  `{"facts.networking": {"ip": "198.18.0.4"}, "facts.os": {"name": "CentOS", "family": "RedHat", "release": {"full": "7.9.2009"}}, "facts.dmi": {"product": {"uuid": "ABCDEF01-2345-6789-ABCD-EF0123456789"}}, "facts.serialnumber": 12345, "facts.fqdn": "a.example.test"}`,
			addrs:  []string{"ipv4:198.18.0.4"},
			facts2: map[string]string{"dmi_uuid": "abcdef01-2345-6789-abcd-ef0123456789", "serial_number": "12345", "os_family": "RedHat", "fqdn": "a.example.test"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, problems := observeJSON(t, tc.exclude, active, tc.facts)
			if !slices.Equal(o.addrs, tc.addrs) {
				t.Errorf("addresses %v, want %v", o.addrs, tc.addrs)
			}
			if !slices.Equal(problems, tc.problems) {
				t.Errorf("problems %q, want %q", problems, tc.problems)
			}
			for k, v := range tc.facts2 {
				if o.facts[k] != v {
					t.Errorf("fact %s = %q, want %q", k, o.facts[k], v)
				}
			}
			if o.status != "up" || o.facts["instance_state"] != "active" {
				t.Errorf("status %q, state %q", o.status, o.facts["instance_state"])
			}
		})
	}
}

func TestOSWithoutRelease(t *testing.T) {
	o, _ := observeJSON(t, nil, nodeRow{Certname: "w.example.test"}, `{"facts.os": {"name": "windows", "family": "windows"}}`)
	if o.os != "windows" {
		t.Errorf("os %q", o.os)
	}
}

func TestNodeStates(t *testing.T) {
	for _, tc := range []struct {
		row    nodeRow
		status string
		state  string
	}{
		{nodeRow{Certname: "a"}, "up", "active"},
		{nodeRow{Certname: "a", Deactivated: "2026-12-01T10:00:00.000Z"}, "down", "deactivated"},
		{nodeRow{Certname: "a", Expired: "2026-12-01T10:00:00.000Z"}, "down", "expired"},
		// A deactivated node that had expired before is deactivated.
		{nodeRow{Certname: "a", Deactivated: "2026-12-02T10:00:00.000Z", Expired: "2026-12-01T10:00:00.000Z"}, "down", "deactivated"},
	} {
		o, _ := observeJSON(t, nil, tc.row, "")
		if o.status != tc.status || o.facts["instance_state"] != tc.state || o.facts["deactivated_time"] != tc.row.Deactivated || o.facts["expired_time"] != tc.row.Expired {
			t.Errorf("%+v: status %q, facts %v", tc.row, o.status, o.facts)
		}
	}
}

func TestWithMask(t *testing.T) {
	for _, tc := range []struct{ addr, mask, want string }{
		{"198.18.0.1", "255.255.255.0", "198.18.0.1/24"},
		{"198.18.0.1", "255.255.255.255", "198.18.0.1/32"},
		{"198.18.0.1", "255.0.255.0", "198.18.0.1"},
		{"198.18.0.1", "", "198.18.0.1"},
		{"198.18.0.1", "ffff::", "198.18.0.1"},
		{"2001:db8::1", "ffff:ffff:ffff:ffff::", "2001:db8::1/64"},
		{"2001:db8::1", "255.255.255.0", "2001:db8::1"},
	} {
		if got := withMask(netip.MustParseAddr(tc.addr), tc.mask); got != tc.want {
			t.Errorf("withMask(%s, %q) = %s, want %s", tc.addr, tc.mask, got, tc.want)
		}
	}
}

func TestEveryOwnedFactIsSet(t *testing.T) {
	// Facts merge into an asset: one left out keeps its old value.
	o, _ := observeJSON(t, nil, nodeRow{Certname: "a"}, "")
	for _, k := range []string{"provider", "certname", "instance_state", "deactivated_time", "expired_time", "last_report_status",
		"last_report_time", "report_environment", "facts_environment", "fqdn", "dmi_uuid", "serial_number", "os_family"} {
		if _, ok := o.facts[k]; !ok {
			t.Errorf("fact %s is not set", k)
		}
	}
	if strings.Join(o.hostnames, ",") != "a" {
		t.Errorf("hostnames %v", o.hostnames)
	}
}
