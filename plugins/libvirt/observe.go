package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"github.com/sollwert/sollwert/sdk"
)

// NetworkSource names the observations of libvirt networks: the
// hypervisor's own address on each active network's bridge.
const NetworkSource = "libvirt-network"

// stateNames are libvirt's domain states as virsh's enum names, written
// without spaces so rules can match them.
var stateNames = map[libvirt.DomainState]string{
	libvirt.DomainNostate:     "nostate",
	libvirt.DomainRunning:     "running",
	libvirt.DomainBlocked:     "blocked",
	libvirt.DomainPaused:      "paused",
	libvirt.DomainShutdown:    "shutdown",
	libvirt.DomainShutoff:     "shutoff",
	libvirt.DomainCrashed:     "crashed",
	libvirt.DomainPmsuspended: "pmsuspended",
}

func stateName(s libvirt.DomainState) string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return "state-" + strconv.Itoa(int(s))
}

// observations turns an inventory into one observation per domain and one
// per active network with an address. A domain with no address at all
// (no NIC) cannot be an observation; it comes back as a warning.
func observations(inv inventory) (obs []sdk.Observation, warnings []string) {
	for _, d := range inv.domains {
		o := domainObservation(inv.hypervisor, d)
		if len(o.Addresses) == 0 {
			warnings = append(warnings, fmt.Sprintf("domain %q (%s) has no network interface and is not reported", d.name, d.uuid))
			continue
		}
		obs = append(obs, o)
	}
	for _, n := range inv.networks {
		if o, ok := networkObservation(inv.hypervisor, n); ok {
			obs = append(obs, o)
		}
	}
	return obs, warnings
}

func domainObservation(hypervisor string, d domain) sdk.Observation {
	o := sdk.Observation{
		Hostnames:  []string{d.name},
		Status:     sdk.StatusDown,
		InstanceID: d.uuid,
		Labels:     d.labels,
		Facts: map[string]string{
			"provider":       "libvirt",
			"hypervisor":     hypervisor,
			"uuid":           d.uuid,
			"instance_state": stateName(d.state),
			"vcpus":          strconv.Itoa(int(d.vcpus)),
			"memory_mib":     strconv.FormatUint(d.memoryMiB, 10),
		},
	}
	// Up means the machine runs and can answer: a paused or suspended
	// domain holds its addresses but answers nothing.
	if d.state == libvirt.DomainRunning || d.state == libvirt.DomainBlocked {
		o.Status = sdk.StatusUp
	}
	if d.typ != "" {
		o.Facts["domain_type"] = d.typ
	}
	if d.title != "" {
		o.Facts["title"] = d.title
	}
	seen := map[netip.Addr]bool{}
	for _, f := range d.ifaces {
		for _, p := range f.addrs {
			if !seen[p.Addr()] {
				seen[p.Addr()] = true
				o.Addresses = append(o.Addresses, ipAddress(p.Addr()))
			}
		}
	}
	for _, f := range d.ifaces {
		o.Addresses = append(o.Addresses, sdk.Address{Addr: f.mac, Type: "mac"})
		p := "if." + f.key + "."
		o.Facts[p+"mac"] = f.mac
		setFact(o.Facts, p+"type", f.typ)
		setFact(o.Facts, p+"network", f.network)
		setFact(o.Facts, p+"bridge", f.bridge)
		setFact(o.Facts, p+"model", f.model)
		if len(f.addrs) > 0 {
			o.Facts[p+"addresses"] = joinPrefixes(f.addrs)
			o.Facts[p+"address_source"] = f.addrSource
		}
	}
	return o
}

// networkObservation reports the hypervisor's addresses on an active
// network's bridge, with the network's shape as facts keyed by its name
// (a hypervisor has several networks, and they land on one asset).
func networkObservation(hypervisor string, n network) (sdk.Observation, bool) {
	if !n.active || len(n.addrs) == 0 {
		return sdk.Observation{}, false
	}
	o := sdk.Observation{Source: NetworkSource, Status: sdk.StatusUp, Facts: map[string]string{}}
	if hypervisor != "" {
		o.Hostnames = []string{hypervisor}
	}
	for _, p := range n.addrs {
		o.Addresses = append(o.Addresses, ipAddress(p.Addr()))
	}
	if n.mac != "" {
		o.Addresses = append(o.Addresses, sdk.Address{Addr: n.mac, Type: "mac"})
	}
	k := "network." + n.name + "."
	setFact(o.Facts, k+"uuid", n.uuid)
	setFact(o.Facts, k+"bridge", n.bridge)
	setFact(o.Facts, k+"forward", n.forward)
	subnets := make([]string, len(n.addrs))
	for i, p := range n.addrs {
		subnets[i] = p.Masked().String()
	}
	o.Facts[k+"subnets"] = strings.Join(subnets, ",")
	setFact(o.Facts, k+"dhcp_ranges", strings.Join(n.ranges, ","))
	return o, true
}

func ipAddress(a netip.Addr) sdk.Address {
	a = a.Unmap()
	if a.Is4() {
		return sdk.Address{Addr: a.String(), Type: "ipv4"}
	}
	return sdk.Address{Addr: a.String(), Type: "ipv6"}
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func setFact(facts map[string]string, k, v string) {
	if v != "" {
		facts[k] = v
	}
}
