package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

func read(t *testing.T, path string) ([]sdk.Observation, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".json") {
		return readJSON(f, path[len("testdata/"):])
	}
	return readCSV(f, path[len("testdata/"):])
}

func TestCSVAndJSONGiveTheSameHosts(t *testing.T) {
	want := []sdk.Observation{
		{Hostnames: []string{"web-1"}, Addresses: []sdk.Address{{Addr: "198.18.0.10", Type: "ipv4"}, {Addr: "52:54:00:ab:cd:01", Type: "mac"}},
			Labels: map[string]string{"team": "web", "env": "prod"}, Facts: map[string]string{"expected_tcp": "22,443"}},
		{Hostnames: []string{"db-1"}, Addresses: []sdk.Address{{Addr: "198.18.0.20", Type: "ipv4"}, {Addr: "2001:db8::20", Type: "ipv6"}},
			Labels: map[string]string{"team": "data"}, Facts: map[string]string{"expected_tcp": "22,5432"}},
		{Hostnames: []string{"ns-1"}, Addresses: []sdk.Address{{Addr: "198.18.0.53", Type: "ipv4"}},
			Facts: map[string]string{"expected_tcp": "22", "expected_udp": "53"}},
	}
	for _, path := range []string{"testdata/hosts.csv", "testdata/hosts.json"} {
		got, err := read(t, path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", path, got, want)
		}
		for _, o := range got {
			if err := o.Validate(); err != nil {
				t.Errorf("%s: the host would reject %+v: %v", path, o, err)
			}
		}
	}
}

func TestBadInventoriesNameTheirLine(t *testing.T) {
	cases := []struct{ path, want string }{
		{"testdata/bad-address.csv", `bad-address.csv:4: address "300.1.1.1" is not an IP or MAC address`},
		{"testdata/bad-port.csv", `bad-port.csv:2: tcp: port range "ssh": "ssh" is not a port number`},
		{"testdata/bad-header.csv", `bad-header.csv:1: unknown column "address" (known: name, addresses, labels, tcp, udp)`},
		{"testdata/bad-label.csv", `bad-label.csv:2: label "team" is not key=value`},
		{"testdata/no-address.json", `no-address.json: host 1: host "db" has no address`},
		{"testdata/unknown-key.json", `unknown-key.json: json: unknown field "addrs"`},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			hosts, err := read(t, c.path)
			if err == nil || err.Error() != c.want {
				t.Fatalf("got %v (%d hosts), want %q", err, len(hosts), c.want)
			}
		})
	}
}

func TestConfigErrorsNameTheirField(t *testing.T) {
	cases := []struct {
		config string
		field  string
		want   string
	}{
		{`{}`, "file", "is required"},
		{`{"file": "hosts.txt"}`, "format", "cannot tell the format"},
		{`{"file": "hosts.csv", "format": "yaml"}`, "format", `"yaml" is neither csv nor json`},
		{`{"file": "hosts.csv", "path": "x"}`, "path", "unknown attribute"},
	}
	for _, c := range cases {
		_, err := parseConfig([]byte(c.config))
		verr, ok := err.(*sdk.ValidationError)
		if !ok || len(verr.Fields) != 1 || verr.Fields[0].Field != c.field || !strings.Contains(verr.Fields[0].Message, c.want) {
			t.Errorf("%s: got %#v, want %s: %s", c.config, err, c.field, c.want)
		}
	}
	if c, err := parseConfig([]byte(`{"file": "/etc/hosts.json"}`)); err != nil || c.Format != "json" {
		t.Errorf("format from the extension: %+v, %v", c, err)
	}
}
