package main

import (
	"encoding/xml"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// labelsNS is the namespace of the domain metadata element whose labels
// the plugin reports:
//
//	<metadata>
//	  <sollwert:labels xmlns:sollwert="urn:sollwert:labels">
//	    <label name="team">web</label>
//	  </sollwert:labels>
//	</metadata>
//
// (virsh metadata DOMAIN urn:sollwert:labels --key sollwert --set '<labels>...</labels>')
const labelsNS = "urn:sollwert:labels"

// domainXML is the part of a domain's XML description the plugin reads.
type domainXML struct {
	Type     string `xml:"type,attr"`
	Name     string `xml:"name"`
	UUID     string `xml:"uuid"`
	Title    string `xml:"title"`
	Metadata struct {
		Labels []struct {
			Label []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:",chardata"`
			} `xml:"label"`
		} `xml:"urn:sollwert:labels labels"`
	} `xml:"metadata"`
	Interfaces []interfaceXML `xml:"devices>interface"`
}

type interfaceXML struct {
	Type string `xml:"type,attr"`
	MAC  struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	Source struct {
		Network string `xml:"network,attr"`
		Bridge  string `xml:"bridge,attr"`
		Dev     string `xml:"dev,attr"`
	} `xml:"source"`
	Target struct {
		Dev string `xml:"dev,attr"`
	} `xml:"target"`
	Model struct {
		Type string `xml:"type,attr"`
	} `xml:"model"`
}

// networkXML is the part of a network's XML description the plugin reads.
type networkXML struct {
	Name    string `xml:"name"`
	UUID    string `xml:"uuid"`
	Forward struct {
		Mode string `xml:"mode,attr"`
	} `xml:"forward"`
	Bridge struct {
		Name string `xml:"name,attr"`
	} `xml:"bridge"`
	MAC struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	IPs []struct {
		Family  string `xml:"family,attr"`
		Address string `xml:"address,attr"`
		Netmask string `xml:"netmask,attr"`
		Prefix  string `xml:"prefix,attr"`
		Ranges  []struct {
			Start string `xml:"start,attr"`
			End   string `xml:"end,attr"`
		} `xml:"dhcp>range"`
		Hosts []struct {
			MAC  string `xml:"mac,attr"`
			Name string `xml:"name,attr"`
			IP   string `xml:"ip,attr"`
		} `xml:"dhcp>host"`
	} `xml:"ip"`
}

// network is a libvirt network as the plugin reports it.
type network struct {
	name, uuid, forward, bridge, mac string
	active                           bool
	// addrs are the host's own addresses on the network (the bridge's),
	// with the network's prefix length.
	addrs []netip.Prefix
	// ranges are the DHCP ranges, "first-last".
	ranges []string
	// static maps a lower-case MAC to the address its DHCP host entry
	// reserves.
	static map[string]netip.Addr
}

// parseNetwork reads a network's XML description. A bad address in it is
// an error: libvirt itself would not have accepted it.
func parseNetwork(doc string) (network, error) {
	var x networkXML
	if err := xml.Unmarshal([]byte(doc), &x); err != nil {
		return network{}, fmt.Errorf("network XML: %w", err)
	}
	n := network{name: x.Name, uuid: x.UUID, forward: x.Forward.Mode, bridge: x.Bridge.Name, static: map[string]netip.Addr{}}
	if x.MAC.Address != "" {
		mac, err := normalMAC(x.MAC.Address)
		if err != nil {
			return network{}, fmt.Errorf("network %q: %w", x.Name, err)
		}
		n.mac = mac
	}
	for _, ip := range x.IPs {
		if ip.Address == "" {
			continue
		}
		addr, err := netip.ParseAddr(ip.Address)
		if err != nil {
			return network{}, fmt.Errorf("network %q: ip address %q: %w", x.Name, ip.Address, err)
		}
		bits, err := prefixLen(addr, ip.Netmask, ip.Prefix)
		if err != nil {
			return network{}, fmt.Errorf("network %q: ip %s: %w", x.Name, ip.Address, err)
		}
		n.addrs = append(n.addrs, netip.PrefixFrom(addr, bits))
		for _, r := range ip.Ranges {
			first, err1 := netip.ParseAddr(r.Start)
			last, err2 := netip.ParseAddr(r.End)
			if err1 != nil || err2 != nil {
				return network{}, fmt.Errorf("network %q: dhcp range %q-%q is not two addresses", x.Name, r.Start, r.End)
			}
			n.ranges = append(n.ranges, first.String()+"-"+last.String())
		}
		for _, h := range ip.Hosts {
			if h.MAC == "" || h.IP == "" {
				continue // a host entry by name or id only reserves no MAC
			}
			mac, err := normalMAC(h.MAC)
			if err != nil {
				return network{}, fmt.Errorf("network %q: dhcp host: %w", x.Name, err)
			}
			a, err := netip.ParseAddr(h.IP)
			if err != nil {
				return network{}, fmt.Errorf("network %q: dhcp host %s: address %q: %w", x.Name, mac, h.IP, err)
			}
			n.static[mac] = a
		}
	}
	return n, nil
}

// prefixLen reads an <ip>'s netmask or prefix attribute; without either,
// libvirt assumes the address's classful network for IPv4 and /64 for IPv6.
func prefixLen(addr netip.Addr, netmask, prefix string) (int, error) {
	switch {
	case prefix != "":
		bits, err := strconv.Atoi(prefix)
		if err != nil || bits < 0 || bits > addr.BitLen() {
			return 0, fmt.Errorf("prefix %q is not a prefix length", prefix)
		}
		return bits, nil
	case netmask != "":
		m, err := netip.ParseAddr(netmask)
		if err != nil || !m.Is4() {
			return 0, fmt.Errorf("netmask %q is not an IPv4 netmask", netmask)
		}
		b := m.As4()
		ones, total := net.IPMask(b[:]).Size()
		if total == 0 {
			return 0, fmt.Errorf("netmask %q is not contiguous", netmask)
		}
		return ones, nil
	case addr.Is6():
		return 64, nil
	}
	switch first := addr.As4()[0]; {
	case first < 128:
		return 8, nil
	case first < 192:
		return 16, nil
	}
	return 24, nil
}

// normalMAC returns a MAC in lower-case colon form.
func normalMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address", s)
	}
	return hw.String(), nil
}
