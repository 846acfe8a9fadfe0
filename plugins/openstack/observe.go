package main

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// allPorts is what a rule without a port range, or a port without port
// security, lets in.
var allPorts = sdk.PortRanges{{First: 1, Last: 65535}}

// portSecurityDisabled stands in expected_tcp_from for a port whose port
// security is off: Neutron filters nothing on it.
const portSecurityDisabled = "port-security-disabled"

// secGroup is a security group reduced to what it lets in.
type secGroup struct {
	id, name, project string
	tcp, udp          sdk.PortRanges
}

func (g *secGroup) label() string {
	if g.name != "" {
		return g.name
	}
	return g.id
}

// groupIndex finds security groups by id (ports name them so) and by
// project and name (servers without visible ports name them so).
type groupIndex struct {
	byID   map[string]*secGroup
	byName map[string][]*secGroup // key: project + "/" + name
}

func newGroupIndex() *groupIndex {
	return &groupIndex{byID: map[string]*secGroup{}, byName: map[string][]*secGroup{}}
}

func (x *groupIndex) add(j secGroupJSON) {
	g := &secGroup{id: j.ID, name: j.Name, project: j.ProjectID}
	if g.project == "" {
		g.project = j.TenantID
	}
	for _, r := range j.Rules {
		proto, lo, hi, ok := r.ingress()
		if !ok {
			continue
		}
		pr := sdk.PortRanges{{First: lo, Last: hi}}
		if proto == "" || proto == "tcp" {
			g.tcp = g.tcp.Union(pr)
		}
		if proto == "" || proto == "udp" {
			g.udp = g.udp.Union(pr)
		}
	}
	x.byID[g.id] = g
	key := g.project + "/" + g.name
	x.byName[key] = append(x.byName[key], g)
}

// ingress reads an ingress rule for TCP or UDP: the protocol ("" for a
// rule that names none and so matches every protocol) and its port range.
// Other rules (egress, ICMP and the rest) let in no TCP or UDP port.
func (r rule) ingress() (proto string, lo, hi uint16, ok bool) {
	if r.Direction != "ingress" {
		return "", 0, 0, false
	}
	if r.Protocol != nil {
		switch strings.ToLower(*r.Protocol) {
		case "", "any":
		case "tcp", "6":
			proto = "tcp"
		case "udp", "17":
			proto = "udp"
		default:
			return "", 0, 0, false
		}
	}
	if proto == "" {
		// A rule for every protocol has no port range.
		return "", 1, 65535, true
	}
	first, last := 0, 0
	if r.PortRangeMin != nil {
		first = *r.PortRangeMin
	}
	if r.PortRangeMax != nil {
		last = *r.PortRangeMax
	}
	switch {
	case first <= 0 && last <= 0:
		return proto, 1, 65535, true
	case last <= 0:
		last = first
	case first <= 0:
		first = 1
	}
	first, last = min(max(first, 1), 65535), min(max(last, 1), 65535)
	if last < first {
		return "", 0, 0, false
	}
	return proto, uint16(first), uint16(last), true
}

// observe turns one server and its ports into an observation, or nil (and
// a warning) when the server has no address to report yet.
func observe(srv server, srvPorts []port, idx *groupIndex, region string) (*sdk.Observation, []string) {
	var warnings []string
	addrs := newAddrSet()
	var networks, floating []string
	for _, name := range sortedKeys(srv.Addresses) {
		networks = append(networks, name)
		for _, a := range srv.Addresses[name] {
			if ip, ok := addrs.ip(a.Addr); ok && a.Type == "floating" {
				floating = append(floating, ip)
			}
		}
	}
	for _, p := range srvPorts {
		for _, f := range p.FixedIPs {
			addrs.ip(f.IPAddress)
		}
	}
	for _, name := range sortedKeys(srv.Addresses) {
		for _, a := range srv.Addresses[name] {
			addrs.mac(a.MAC)
		}
	}
	for _, p := range srvPorts {
		addrs.mac(p.MACAddress)
	}
	if len(addrs.list) == 0 {
		return nil, []string{fmt.Sprintf("server %q (%s, %s) has no address yet; not reported", srv.Name, srv.ID, srv.Status)}
	}
	for _, bad := range addrs.bad {
		warnings = append(warnings, fmt.Sprintf("server %q (%s): %q is not an address; left out", srv.Name, srv.ID, bad))
	}

	status := sdk.StatusDown
	if srv.Status == "ACTIVE" {
		status = sdk.StatusUp
	}
	facts := map[string]string{
		"provider":       "openstack",
		"instance_state": srv.Status,
		"project":        srv.TenantID,
	}
	set := func(k, v string) {
		if v != "" {
			facts[k] = v
		}
	}
	set("region", region)
	set("availability_zone", srv.AvailabilityZone)
	set("instance_type", cmp.Or(srv.Flavor.OriginalName, srv.Flavor.ID))
	if srv.Flavor.VCPUs > 0 {
		facts["vcpus"] = strconv.Itoa(srv.Flavor.VCPUs)
	}
	if srv.Flavor.RAM > 0 {
		facts["memory_mib"] = strconv.Itoa(srv.Flavor.RAM)
	}
	if img, ok := srv.Image.(map[string]any); ok {
		id, _ := img["id"].(string)
		set("image", id)
	}
	set("network", strings.Join(networks, ","))
	set("floating_ips", strings.Join(floating, ","))
	set("user_id", srv.UserID)
	set("created", srv.Created)
	set("key_name", srv.KeyName)
	set("host_id", srv.HostID)

	gs, warn := groupsOf(srv, srvPorts, idx)
	warnings = append(warnings, warn...)
	var names, anyTCP []string
	var tcp, udp sdk.PortRanges
	for _, g := range gs {
		names = append(names, g.label())
		tcp, udp = tcp.Union(g.tcp), udp.Union(g.udp)
		if slices.Equal(g.tcp, allPorts) {
			anyTCP = append(anyTCP, g.label())
		}
	}
	for _, p := range srvPorts {
		if p.PortSecurityEnabled != nil && !*p.PortSecurityEnabled {
			tcp, udp = allPorts, allPorts
			anyTCP = append(anyTCP, portSecurityDisabled)
			facts["port_security"] = "disabled"
			break
		}
	}
	facts["security_groups"] = joinSorted(names)
	facts["expected_tcp"] = tcp.String()
	facts["expected_udp"] = udp.String()
	facts["expected_tcp_from"] = joinSorted(anyTCP)

	var labels map[string]string
	if len(srv.Metadata) > 0 || len(srv.Tags) > 0 {
		labels = make(map[string]string, len(srv.Metadata)+len(srv.Tags))
		for k, v := range srv.Metadata {
			labels[k] = v
		}
		for _, t := range srv.Tags {
			labels["tag:"+t] = "true"
		}
	}
	var hostnames []string
	if srv.Name != "" {
		hostnames = []string{srv.Name}
	}
	return &sdk.Observation{
		InstanceID: "openstack:" + srv.ID,
		Hostnames:  hostnames,
		Addresses:  addrs.list,
		Status:     status,
		Facts:      facts,
		Labels:     labels,
	}, warnings
}

// groupsOf finds the security groups of a server: those of its ports, or,
// for a server whose ports the project cannot see, those Nova names on the
// server when the name is unique in its project.
func groupsOf(srv server, srvPorts []port, idx *groupIndex) ([]*secGroup, []string) {
	var out []*secGroup
	var warnings []string
	seen := map[string]bool{}
	addGroup := func(g *secGroup) {
		if !seen[g.id] {
			seen[g.id] = true
			out = append(out, g)
		}
	}
	if len(srvPorts) > 0 {
		for _, p := range srvPorts {
			for _, id := range p.SecurityGroups {
				g, ok := idx.byID[id]
				if !ok {
					// A group of another project, or one made after the
					// groups were read: its name and rules are unknown.
					warnings = append(warnings, fmt.Sprintf("server %q (%s): security group %s of port %s is not visible to the project; its rules are not counted", srv.Name, srv.ID, id, p.ID))
					g = &secGroup{id: id}
				}
				addGroup(g)
			}
		}
		return out, warnings
	}
	for _, sg := range srv.SecurityGroups {
		cands := idx.byName[srv.TenantID+"/"+sg.Name]
		if len(cands) != 1 {
			warnings = append(warnings, fmt.Sprintf("server %q (%s): security group %q is not one group of its project; its rules are not counted", srv.Name, srv.ID, sg.Name))
			addGroup(&secGroup{id: "name:" + sg.Name, name: sg.Name})
			continue
		}
		addGroup(cands[0])
	}
	return out, warnings
}

// addrSet collects a server's addresses once each, normalised.
type addrSet struct {
	list []sdk.Address
	seen map[string]bool
	bad  []string
}

func newAddrSet() *addrSet { return &addrSet{seen: map[string]bool{}} }

func (s *addrSet) ip(v string) (string, bool) {
	if v == "" {
		return "", false
	}
	ip, err := netip.ParseAddr(v)
	if err != nil || ip.Zone() != "" {
		s.bad = append(s.bad, v)
		return "", false
	}
	ip = ip.Unmap()
	typ := "ipv4"
	if ip.Is6() {
		typ = "ipv6"
	}
	str := ip.String()
	if !s.seen[str] {
		s.seen[str] = true
		s.list = append(s.list, sdk.Address{Addr: str, Type: typ})
	}
	return str, true
}

func (s *addrSet) mac(v string) {
	if v == "" {
		return
	}
	hw, err := net.ParseMAC(v)
	if err != nil || len(hw) != 6 {
		s.bad = append(s.bad, v)
		return
	}
	str := hw.String()
	if !s.seen[str] {
		s.seen[str] = true
		s.list = append(s.list, sdk.Address{Addr: str, Type: "mac"})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinSorted(v []string) string {
	v = slices.Clone(v)
	sort.Strings(v)
	return strings.Join(slices.Compact(v), ",")
}
