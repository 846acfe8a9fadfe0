package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseNetwork(t *testing.T) {
	n, err := parseNetwork(`<network><name>v6</name><bridge name="br6"/>
  <ip family="ipv6" address="2001:db8:10::1" prefix="64"><dhcp><range start="2001:db8:10::100" end="2001:db8:10::1ff"/></dhcp></ip>
  <ip address="198.18.30.1"><dhcp><host mac="52:54:00:AB:CD:EF" ip="198.18.30.9"/><host name="only-a-name" ip="198.18.30.10"/></dhcp></ip>
</network>`)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8:10::1/64"), netip.MustParsePrefix("198.18.30.1/24")}
	if len(n.addrs) != 2 || n.addrs[0] != want[0] || n.addrs[1] != want[1] {
		t.Errorf("addrs %v, want %v (an IPv4 address without netmask or prefix is classful: 198 is class C)", n.addrs, want)
	}
	if strings.Join(n.ranges, ",") != "2001:db8:10::100-2001:db8:10::1ff" {
		t.Errorf("ranges %v", n.ranges)
	}
	if n.static["52:54:00:ab:cd:ef"] != netip.MustParseAddr("198.18.30.9") || len(n.static) != 1 {
		t.Errorf("static %v", n.static)
	}
}

func TestParseNetworkErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"not XML":            `<network>`,
		"a bad address":      `<network><name>x</name><ip address="198.18.300.1"/></network>`,
		"a bad netmask":      `<network><name>x</name><ip address="198.18.3.1" netmask="255.0.255.0"/></network>`,
		"a prefix too long":  `<network><name>x</name><ip address="198.18.3.1" prefix="33"/></network>`,
		"a bad range":        `<network><name>x</name><ip address="198.18.3.1" prefix="24"><dhcp><range start="a" end="b"/></dhcp></ip></network>`,
		"a bad MAC":          `<network><name>x</name><mac address="zz"/></network>`,
		"a bad host address": `<network><name>x</name><ip address="198.18.3.1" prefix="24"><dhcp><host mac="52:54:00:00:00:01" ip="x"/></dhcp></ip></network>`,
	} {
		if _, err := parseNetwork(doc); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzParseNetwork: libvirtd's answers are input too; no network XML may
// make the parser panic.
func FuzzParseNetwork(f *testing.F) {
	f.Add(`<network><name>lab</name><bridge name="virbr10"/><ip address="198.18.10.1" netmask="255.255.255.0"><dhcp><range start="198.18.10.100" end="198.18.10.199"/><host mac="52:54:00:10:00:03" ip="198.18.10.50"/></dhcp></ip></network>`)
	f.Add(`<network><ip address="::1" prefix="200"/></network>`)
	f.Fuzz(func(t *testing.T, doc string) {
		n, err := parseNetwork(doc)
		if err != nil {
			return
		}
		for _, p := range n.addrs {
			if !p.IsValid() {
				t.Errorf("invalid prefix %v from %q", p, doc)
			}
		}
	})
}
