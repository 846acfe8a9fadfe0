package scangen_test

import (
	"bytes"
	"testing"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml/scangen"
)

func write(t *testing.T, cfg scangen.Config) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := scangen.Write(&b, cfg); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestScansAreSeededAndLookLikeNmaps(t *testing.T) {
	const hosts = 4096
	old := write(t, scangen.Config{Hosts: hosts, Seed: 1})
	if again := write(t, scangen.Config{Hosts: hosts, Seed: 1}); !bytes.Equal(old, again) {
		t.Fatal("the same seed wrote different scans")
	}
	if other := write(t, scangen.Config{Hosts: hosts, Seed: 2}); bytes.Equal(old, other) {
		t.Fatal("another seed wrote the same scan")
	}
	// 65,536 hosts are to come to about 45 MB, like the scans of issue 6.
	if per := len(old) / hosts; per < 600 || per > 780 {
		t.Fatalf("%d bytes per host", per)
	}
	s, err := nmapxml.ReadAll(bytes.NewReader(old), nmapxml.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var down, mac, names, versions, scripts int
	for _, h := range s.Hosts {
		if h.Status.State == "down" {
			down++
			continue
		}
		if len(h.Addresses) == 2 && h.Addresses[1].AddrType == "mac" && h.Addresses[1].Vendor != "" {
			mac++
		}
		if len(h.Hostnames) > 0 {
			names++
		}
		if len(h.HostScripts) > 0 {
			scripts++
		}
		for _, p := range h.Ports {
			if p.Service.Product != "" && p.Service.Version != "" {
				versions++
			}
			scripts += len(p.Scripts)
		}
	}
	if len(s.Hosts) != hosts || s.Run.HostStats.Total != hosts || down < hosts/5 || down > hosts/3 || mac == 0 || names == 0 || versions == 0 || scripts == 0 {
		t.Fatalf("%d hosts (stats %+v): %d down, %d with MAC, %d named, %d versions, %d scripts", len(s.Hosts), s.Run.HostStats, down, mac, names, versions, scripts)
	}

	changed, err := nmapxml.ReadAll(bytes.NewReader(write(t, scangen.Config{Hosts: hosts, Seed: 1, Changed: true})), nmapxml.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 1 % disappear, 1 % appear: about as many hosts as before.
	if n := len(changed.Hosts); n < hosts*97/100 || n > hosts*103/100 || n == hosts {
		t.Fatalf("%d hosts in the changed scan", n)
	}
}
