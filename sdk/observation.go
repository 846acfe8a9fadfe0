package sdk

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Protocol is a transport protocol of a service.
type Protocol string

// The protocols a scope and a service can name.
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
)

// Host states.
const (
	StatusUp   = "up"
	StatusDown = "down"
)

// Observation is one host as one source saw it in one run.
type Observation struct {
	Addresses []Address `json:"addresses"`
	Hostnames []string  `json:"hostnames,omitempty"`
	// Status is "up" or "down"; hosts a scan did not find up are usually
	// simply not emitted, and the scope says they were looked at.
	Status   string            `json:"status"`
	OS       string            `json:"os,omitempty"`
	Services []Service         `json:"services,omitempty"`
	Facts    map[string]string `json:"facts,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// InstanceID is a provider's own identifier for the machine.
	InstanceID string `json:"instance_id,omitempty"`
	// Source, when set, names where this observation came from instead of
	// the run's source: a host seen in a switch's ARP table is an
	// "snmp-neighbour" of an SNMP run.
	Source string `json:"source,omitempty"`
}

// Address is an IP or MAC address of a host.
type Address struct {
	Addr   string `json:"addr"`
	Type   string `json:"type"` // ipv4, ipv6, mac
	Vendor string `json:"vendor,omitempty"`
}

// Service is one port of a host.
type Service struct {
	Protocol Protocol `json:"protocol"`
	Port     uint16   `json:"port"`
	State    string   `json:"state"` // open, closed, filtered, open|filtered, ...
	Name     string   `json:"name,omitempty"`
	Product  string   `json:"product,omitempty"`
	Version  string   `json:"version,omitempty"`
}

// Open reports whether the service accepts connections (or may, for UDP's
// open|filtered).
func (s Service) Open() bool { return strings.HasPrefix(s.State, "open") }

// IP returns the first IP address of the observation.
func (o Observation) IP() (netip.Addr, bool) {
	for _, a := range o.Addresses {
		if a.Type == "mac" {
			continue
		}
		if ip, err := netip.ParseAddr(a.Addr); err == nil {
			return ip.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// Scope is what a run looked at: address ranges times ports per protocol.
// A provider pull that knows nothing of ports leaves Ports empty.
type Scope struct {
	Prefixes []netip.Prefix          `json:"prefixes"`
	Ports    map[Protocol]PortRanges `json:"ports,omitempty"`
}

// ContainsAddr reports whether ip lies inside the scope's address ranges.
func (s Scope) ContainsAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range s.Prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// PortRanges is a sorted list of disjoint, non-adjacent ranges.
type PortRanges []PortRange

// Contains reports whether port lies in one of the ranges.
func (r PortRanges) Contains(port uint16) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i].Last >= port })
	return i < len(r) && r[i].First <= port
}

// Normalize sorts and merges overlapping or adjacent ranges.
func (r PortRanges) Normalize() PortRanges {
	if len(r) == 0 {
		return nil
	}
	out := append(PortRanges(nil), r...)
	sort.Slice(out, func(i, j int) bool { return out[i].First < out[j].First })
	merged := out[:1]
	for _, pr := range out[1:] {
		last := &merged[len(merged)-1]
		if uint32(pr.First) <= uint32(last.Last)+1 {
			if pr.Last > last.Last {
				last.Last = pr.Last
			}
			continue
		}
		merged = append(merged, pr)
	}
	return merged
}

// Union returns the normalized union of r and o.
func (r PortRanges) Union(o PortRanges) PortRanges {
	return append(append(PortRanges(nil), r...), o...).Normalize()
}

// Count is how many ports the ranges hold, each counted once.
func (r PortRanges) Count() int {
	n := 0
	for _, p := range r.Normalize() {
		n += int(p.Last) - int(p.First) + 1
	}
	return n
}

// String formats the ranges in nmap's -p syntax.
func (r PortRanges) String() string {
	parts := make([]string, 0, len(r))
	for _, pr := range r {
		if pr.First == pr.Last {
			parts = append(parts, strconv.Itoa(int(pr.First)))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", pr.First, pr.Last))
		}
	}
	return strings.Join(parts, ",")
}

// ParsePortRanges reads a list such as "22,80,8000-9000". Each element may
// itself contain commas, so both ["22,80"] and ["22", "80"] work.
func ParsePortRanges(specs ...string) (PortRanges, error) {
	var out PortRanges
	for _, spec := range specs {
		for _, part := range strings.Split(spec, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				return nil, fmt.Errorf("empty port in %q", spec)
			}
			lo, hi, isRange := strings.Cut(part, "-")
			first, err := parsePort(lo)
			if err != nil {
				return nil, fmt.Errorf("port range %q: %w", part, err)
			}
			last := first
			if isRange {
				if last, err = parsePort(hi); err != nil {
					return nil, fmt.Errorf("port range %q: %w", part, err)
				}
				if last < first {
					return nil, fmt.Errorf("port range %q: end %d is below start %d", part, last, first)
				}
			}
			out = append(out, PortRange{First: first, Last: last})
		}
	}
	return out.Normalize(), nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is outside 1-65535", n)
	}
	return uint16(n), nil
}

func knownProtocol(p Protocol) bool { return p == TCP || p == UDP || p == SCTP }

// Validate checks what a host cannot take on trust from a source: every
// address parses as what its type says, the status is known, and every
// service names a known protocol and a port in 1-65535. The host rejects a
// run that emits an observation failing it.
func (o Observation) Validate() error {
	if len(o.Addresses) == 0 {
		return fmt.Errorf("observation has no address")
	}
	for i, a := range o.Addresses {
		switch a.Type {
		case "ipv4", "ipv6":
			ip, err := netip.ParseAddr(a.Addr)
			if err != nil || ip.Zone() != "" {
				return fmt.Errorf("address %d: %q is not an IP address", i, a.Addr)
			}
			if ip.Unmap().Is4() != (a.Type == "ipv4") {
				return fmt.Errorf("address %d: %q is not an %s address", i, a.Addr, a.Type)
			}
		case "mac":
			if _, err := net.ParseMAC(a.Addr); err != nil {
				return fmt.Errorf("address %d: %q is not a MAC address", i, a.Addr)
			}
		default:
			return fmt.Errorf("address %d (%q): type %q is not ipv4, ipv6 or mac", i, a.Addr, a.Type)
		}
	}
	switch o.Status {
	case "", StatusUp, StatusDown:
	default:
		return fmt.Errorf("status %q is not %q or %q", o.Status, StatusUp, StatusDown)
	}
	for i, s := range o.Services {
		if !knownProtocol(s.Protocol) {
			return fmt.Errorf("service %d: protocol %q is not tcp, udp or sctp", i, s.Protocol)
		}
		if s.Port == 0 {
			return fmt.Errorf("service %d: port 0 is outside 1-65535", i)
		}
		if s.State == "" {
			return fmt.Errorf("service %s/%d: no state", s.Protocol, s.Port)
		}
	}
	return nil
}
