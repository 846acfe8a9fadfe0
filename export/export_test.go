package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

func assets() []model.Asset {
	seen := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	return []model.Asset{
		{ID: "a1", Tenant: "default", Status: "up", Sources: []string{"nmap", "hostsfile"}, Hostnames: []string{"web-1"},
			Addresses: []sdk.Address{{Addr: "198.18.0.10", Type: "ipv4"}, {Addr: "02:00:5e:00:53:0a", Type: "mac"}},
			Labels:    map[string]string{"team": "web-ops"}, Facts: map[string]string{"sys_descr": "Linux"}, LastSeen: seen,
			Services: []model.Service{{Protocol: "tcp", Port: 22, State: "open", Name: "ssh", Product: "OpenSSH"}, {Protocol: "tcp", Port: 9100, State: "open"}}},
		{ID: "a2", Tenant: "default", Status: "up", Sources: []string{"nmap"}, LastSeen: seen,
			Addresses: []sdk.Address{{Addr: "198.18.0.20", Type: "ipv4"}},
			Services:  []model.Service{{Protocol: "tcp", Port: 443, State: "open", Name: "https"}}},
		// A machine with a public and a private address, its exporter on
		// the private one.
		{ID: "a3", Tenant: "default", Status: "up", Sources: []string{"nmap", "aws"}, Hostnames: []string{"app-3"}, LastSeen: seen,
			Addresses: []sdk.Address{{Addr: "198.18.0.30", Type: "ipv4"}, {Addr: "198.19.0.30", Type: "ipv4"}, {Addr: "02:00:5e:00:53:1e", Type: "mac"}},
			Services: []model.Service{{Protocol: "tcp", Port: 443, State: "open", Name: "https", Address: "198.18.0.30"},
				{Protocol: "tcp", Port: 9100, State: "open", Address: "198.19.0.30"}}},
	}
}

// TestNmapHostsPerAddress: a machine with ports on two addresses is two
// hosts to scandiff, as two nmap scans of its addresses would be.
func TestNmapHostsPerAddress(t *testing.T) {
	var got []string
	for _, h := range NmapHosts(assets()) {
		line := ""
		for _, a := range h.Addresses {
			line += a.Addr + " "
		}
		for _, n := range h.Hostnames {
			line += n.Name + " "
		}
		for _, p := range h.Ports {
			line += fmt.Sprintf("%s/%d ", p.Protocol, p.ID)
		}
		got = append(got, strings.TrimSpace(line))
	}
	want := []string{
		"198.18.0.10 02:00:5e:00:53:0a web-1 tcp/22 tcp/9100",
		"198.18.0.20 tcp/443",
		"198.18.0.30 02:00:5e:00:53:1e app-3 tcp/443",
		"198.19.0.30 tcp/9100",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// golden compares v, as indented JSON, with testdata/NAME; -update
// rewrites it.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if string(want) != string(got)+"\n" {
		t.Fatalf("%s differs:\n%s", path, got)
	}
}

func TestAnsibleInventory(t *testing.T) { golden(t, "ansible.json", Ansible(assets())) }

func TestPrometheusTargets(t *testing.T) {
	for _, tc := range []struct {
		name string
		sel  Selector
	}{
		{"prometheus-ssh.json", Selector{Service: "ssh"}},
		{"prometheus-port-9100.json", Selector{Port: 9100}},
		{"prometheus-hosts.json", Selector{}},
		{"prometheus-none.json", Selector{Service: "telnet"}},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, Prometheus(assets(), tc.sel)) })
	}
	if _, err := ParseSelector("", "70000", ""); err == nil {
		t.Fatal("port 70000 accepted")
	}
	if _, err := ParseSelector("", "", "sctp"); err == nil {
		t.Fatal("sctp accepted")
	}
}

func TestGroupNames(t *testing.T) {
	for in, want := range map[string]string{"label_team_web-ops": "label_team_web_ops", "tcp_22": "tcp_22", "9x": "g_9x", "Ä": "g_"} {
		if got := groupName(in); got != want {
			t.Errorf("groupName(%q) = %q, want %q", in, got, want)
		}
	}
}
