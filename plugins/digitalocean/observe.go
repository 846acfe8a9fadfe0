package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/digitalocean/godo"
	"github.com/sollwert/sollwert/sdk"
)

// allPorts is what a rule with ports "0", "all" or none allows.
var allPorts = sdk.PortRanges{{First: 1, Last: 65535}}

// firewall is a Cloud Firewall reduced to what droplets inherit from it:
// the ports its inbound allow rules open, per protocol.
type firewall struct {
	name     string
	tcp, udp sdk.PortRanges
	// hasTCP and hasUDP: at least one inbound rule allows the protocol.
	hasTCP, hasUDP bool
}

// index holds the account's VPCs and firewalls, looked up per droplet.
type index struct {
	vpcNames map[string]string
	// byDroplet and byTag list the firewalls applied to a droplet id and
	// to a tag; a droplet gets the union, each firewall once.
	byDroplet map[int][]*firewall
	byTag     map[string][]*firewall
}

// newIndex builds the index. A rule whose ports do not parse is left out
// and reported as a warning: the firewall's other rules still count.
func newIndex(vpcs []*godo.VPC, fws []godo.Firewall) (*index, []string) {
	idx := &index{vpcNames: map[string]string{}, byDroplet: map[int][]*firewall{}, byTag: map[string][]*firewall{}}
	for _, v := range vpcs {
		if v != nil && v.ID != "" {
			idx.vpcNames[v.ID] = v.Name
		}
	}
	var warnings []string
	for i := range fws {
		fw := &fws[i]
		f := &firewall{name: fw.Name}
		if f.name == "" {
			f.name = fw.ID
		}
		for _, r := range fw.InboundRules {
			// A deny rule takes away from its sources only, so it
			// changes nothing about what some source may reach.
			if r.Action != "" && r.Action != godo.FirewallRuleActionAllow {
				continue
			}
			proto := strings.ToLower(r.Protocol)
			if proto != "tcp" && proto != "udp" {
				continue // icmp has no ports
			}
			ports, err := rulePorts(r.PortRange)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("firewall %q (%s): inbound %s rule: %v; the rule is left out", f.name, fw.ID, proto, err))
				continue
			}
			if proto == "tcp" {
				f.tcp, f.hasTCP = f.tcp.Union(ports), true
			} else {
				f.udp, f.hasUDP = f.udp.Union(ports), true
			}
		}
		for _, id := range fw.DropletIDs {
			idx.byDroplet[id] = append(idx.byDroplet[id], f)
		}
		for _, t := range fw.Tags {
			idx.byTag[t] = append(idx.byTag[t], f)
		}
	}
	return idx, warnings
}

// rulePorts reads a rule's ports: one port, a range "8000-9000", or "0"
// (the API's word for every port; "all" and "" are read the same way).
func rulePorts(s string) (sdk.PortRanges, error) {
	switch strings.TrimSpace(strings.ToLower(s)) {
	case "", "0", "all", "1-65535":
		return allPorts, nil
	}
	return sdk.ParsePortRanges(s)
}

// firewallsOf returns the firewalls that apply to d, by id or tag, each once.
func (idx *index) firewallsOf(d *godo.Droplet) []*firewall {
	var out []*firewall
	add := func(fs []*firewall) {
		for _, f := range fs {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	add(idx.byDroplet[d.ID])
	for _, t := range d.Tags {
		add(idx.byTag[t])
	}
	return out
}

// observation turns one droplet into an observation. warning is set when
// something could not be reported; an observation without any address (a
// droplet still being created) must not be emitted.
func (idx *index) observation(d *godo.Droplet) (o sdk.Observation, warning string) {
	id := strconv.Itoa(d.ID)
	o = sdk.Observation{
		InstanceID: "digitalocean:" + id,
		Status:     sdk.StatusDown,
		Facts: map[string]string{
			"provider":       "digitalocean",
			"droplet_id":     id,
			"instance_state": d.Status,
		},
	}
	if d.Name != "" {
		o.Hostnames = []string{d.Name}
	}
	if d.Status == "active" {
		o.Status = sdk.StatusUp
	}
	var bad []string
	seen := map[netip.Addr]bool{}
	if d.Networks != nil {
		for _, n := range d.Networks.V4 {
			bad = addAddress(&o, seen, n.IPAddress, n.Type, bad)
		}
		for _, n := range d.Networks.V6 {
			bad = addAddress(&o, seen, n.IPAddress, n.Type, bad)
		}
	}

	f := o.Facts
	if d.Region != nil {
		setFact(f, "region", d.Region.Slug)
	}
	size := d.SizeSlug
	if size == "" && d.Size != nil {
		size = d.Size.Slug
	}
	setFact(f, "instance_type", size)
	setFact(f, "image", imageName(d.Image))
	if d.VPCUUID != "" {
		f["vpc_uuid"] = d.VPCUUID
		f["vpc"] = d.VPCUUID // a VPC the token cannot list keeps its id
		if name := idx.vpcNames[d.VPCUUID]; name != "" {
			f["vpc"] = name
		}
	}
	setFact(f, "created", d.Created)
	if d.Vcpus > 0 {
		f["vcpus"] = strconv.Itoa(d.Vcpus)
	}
	if d.Memory > 0 {
		f["memory_mib"] = strconv.Itoa(d.Memory)
	}
	if d.Disk > 0 {
		f["disk_gb"] = strconv.Itoa(d.Disk)
	}

	fws := idx.firewallsOf(d)
	names := make([]string, 0, len(fws))
	var tcp, udp sdk.PortRanges
	var tcpFrom, udpFrom []string
	for _, fw := range fws {
		names = append(names, fw.name)
		tcp, udp = tcp.Union(fw.tcp), udp.Union(fw.udp)
		if fw.hasTCP {
			tcpFrom = append(tcpFrom, fw.name)
		}
		if fw.hasUDP {
			udpFrom = append(udpFrom, fw.name)
		}
	}
	slices.Sort(names)
	slices.Sort(tcpFrom)
	slices.Sort(udpFrom)
	f["security_groups"] = strings.Join(names, ",")
	// A droplet without a Cloud Firewall is not filtered at all: that is
	// not "nothing allowed", so it gets no expected ports to compare with.
	if len(fws) > 0 {
		f["firewalled"] = "true"
		f["expected_tcp"] = tcp.String()
		f["expected_udp"] = udp.String()
		f["expected_tcp_from"] = strings.Join(tcpFrom, ",")
		f["expected_udp_from"] = strings.Join(udpFrom, ",")
	} else {
		f["firewalled"] = "false"
	}

	if len(d.Tags) > 0 {
		o.Labels = make(map[string]string, len(d.Tags))
		for _, t := range d.Tags {
			o.Labels["tag:"+t] = "true"
		}
	}

	switch {
	case len(o.Addresses) == 0 && len(bad) > 0:
		warning = fmt.Sprintf("droplet %q (%s) has no usable address (%s) and is not reported", d.Name, id, strings.Join(bad, ", "))
	case len(o.Addresses) == 0:
		warning = fmt.Sprintf("droplet %q (%s, %s) has no address yet and is not reported", d.Name, id, d.Status)
	case len(bad) > 0:
		warning = fmt.Sprintf("droplet %q (%s): addresses %s do not parse and are left out", d.Name, id, strings.Join(bad, ", "))
	}
	return o, warning
}

// addAddress adds one of the droplet's addresses, once, and records it as
// a fact by its network type ("public", "private"). An address that does
// not parse is returned in bad instead.
func addAddress(o *sdk.Observation, seen map[netip.Addr]bool, s, netType string, bad []string) []string {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return append(bad, strconv.Quote(s))
	}
	a = a.Unmap()
	if seen[a] {
		return bad
	}
	seen[a] = true
	typ := "ipv6"
	if a.Is4() {
		typ = "ipv4"
	}
	o.Addresses = append(o.Addresses, sdk.Address{Addr: a.String(), Type: typ})
	if netType != "" {
		k := typ + "_" + strings.ToLower(netType) // ipv4_public, ipv4_private, ipv6_public
		if o.Facts[k] == "" {
			o.Facts[k] = a.String()
		} else {
			o.Facts[k] += "," + a.String()
		}
	}
	return bad
}

// imageName prefers the image's slug ("ubuntu-24-04-x64"); snapshots and
// custom images have none and are named "Distribution Name".
func imageName(im *godo.Image) string {
	switch {
	case im == nil:
		return ""
	case im.Slug != "":
		return im.Slug
	case im.Distribution != "" && im.Name != "":
		return im.Distribution + " " + im.Name
	case im.Name != "":
		return im.Name
	case im.ID != 0:
		return strconv.Itoa(im.ID)
	}
	return ""
}

func setFact(facts map[string]string, k, v string) {
	if v != "" {
		facts[k] = v
	}
}
