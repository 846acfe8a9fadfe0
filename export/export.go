// Package export turns assets into what other tools read as their
// inventory: an Ansible dynamic inventory and Prometheus HTTP service
// discovery target groups. It reads assets handed to it and knows nothing
// of the store, tokens or HTTP.
package export

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
	"github.com/sollwert/sollwert/sdk"
)

// Inventory is what `ansible-inventory` reads from an inventory script's
// --list: groups with their hosts, and every host's variables in _meta.
type Inventory map[string]any

// Group is one Ansible group.
type Group struct {
	Hosts    []string `json:"hosts,omitempty"`
	Children []string `json:"children,omitempty"`
}

var notIdent = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// groupName makes a valid Ansible group name (letters, digits, _; not
// starting with a digit).
func groupName(parts ...string) string {
	n := strings.Trim(notIdent.ReplaceAllString(strings.ToLower(strings.Join(parts, "_")), "_"), "_")
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		n = "g_" + n
	}
	return n
}

// HostName is an asset's inventory name: its primary address, which
// Ansible can reach without DNS.
func HostName(a *model.Asset) string { return a.Host() }

// HostVars are the variables of one host: where to reach it and what
// sollwert knows of it.
func HostVars(a *model.Asset) map[string]any {
	v := map[string]any{
		"ansible_host":       a.Host(),
		"sollwert_asset_id":  a.ID,
		"sollwert_tenant":    a.Tenant,
		"sollwert_status":    a.Status,
		"sollwert_sources":   nonNil(a.Sources),
		"sollwert_hostnames": nonNil(a.Hostnames),
		"sollwert_last_seen": a.LastSeen,
	}
	if a.OS != "" {
		v["sollwert_os"] = a.OS
	}
	var macs, addrs []string
	for _, ad := range a.Addresses {
		if ad.Type == "mac" {
			macs = append(macs, ad.Addr)
		} else {
			addrs = append(addrs, ad.Addr)
		}
	}
	v["sollwert_addresses"] = nonNil(addrs)
	if len(macs) > 0 {
		v["sollwert_macs"] = macs
	}
	var ports []map[string]any
	for _, s := range a.Services {
		p := map[string]any{"protocol": string(s.Protocol), "port": s.Port}
		if s.Name != "" {
			p["service"] = s.Name
		}
		if s.Product != "" {
			p["product"] = s.Product
		}
		if s.Version != "" {
			p["version"] = s.Version
		}
		if s.Address != "" {
			p["address"] = s.Address
		}
		ports = append(ports, p)
	}
	v["sollwert_open_ports"] = nonNilMaps(ports)
	if len(a.Facts) > 0 {
		v["sollwert_facts"] = a.Facts
	}
	if len(a.Labels) > 0 {
		v["sollwert_labels"] = a.Labels
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMaps(s []map[string]any) []map[string]any {
	if s == nil {
		return []map[string]any{}
	}
	return s
}

// groupsOf names the groups an asset belongs to: its tenant, each source,
// each label (key and key=value), each open service (by name and by
// port).
func groupsOf(a *model.Asset) []string {
	g := []string{groupName("tenant", a.Tenant)}
	for _, s := range a.Sources {
		g = append(g, groupName("source", s))
	}
	for k, v := range a.Labels {
		g = append(g, groupName("label", k), groupName("label", k, v))
	}
	for _, s := range a.Services {
		g = append(g, groupName(string(s.Protocol), strconv.Itoa(int(s.Port))))
		if s.Name != "" {
			g = append(g, groupName("service", s.Name))
		}
	}
	if a.Status != "" {
		g = append(g, groupName("status", a.Status))
	}
	return g
}

// Ansible builds the inventory of assets: the group "sollwert" holds
// every host, and each host is in the groups groupsOf names.
func Ansible(assets []model.Asset) Inventory {
	members := map[string]map[string]bool{}
	hostvars := map[string]any{}
	all := make([]string, 0, len(assets))
	for i := range assets {
		a := &assets[i]
		name := HostName(a)
		if _, dup := hostvars[name]; dup {
			continue
		}
		hostvars[name] = HostVars(a)
		all = append(all, name)
		for _, g := range groupsOf(a) {
			if members[g] == nil {
				members[g] = map[string]bool{}
			}
			members[g][name] = true
		}
	}
	sort.Strings(all)
	inv := Inventory{"_meta": map[string]any{"hostvars": hostvars}}
	names := make([]string, 0, len(members))
	for g, hosts := range members {
		list := make([]string, 0, len(hosts))
		for h := range hosts {
			list = append(list, h)
		}
		sort.Strings(list)
		inv[g] = Group{Hosts: list}
		names = append(names, g)
	}
	sort.Strings(names)
	inv["sollwert"] = Group{Hosts: all, Children: names}
	return inv
}

// TargetGroup is one entry of Prometheus' HTTP service discovery.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Selector picks the services to turn into targets: by nmap service name
// ("ssh"), by port, or, empty, the hosts themselves (for probes such as
// ICMP that need no port).
type Selector struct {
	Service  string
	Port     uint16
	Protocol sdk.Protocol // default tcp
}

// Prometheus builds target groups: one per asset and matching service,
// labelled with what sollwert knows (__meta_sollwert_*, which relabelling
// keeps or drops as the scrape config says).
func Prometheus(assets []model.Asset, sel Selector) []TargetGroup {
	proto := sel.Protocol
	if proto == "" {
		proto = sdk.TCP
	}
	out := []TargetGroup{}
	for i := range assets {
		a := &assets[i]
		ip := a.IP()
		if !ip.IsValid() {
			continue
		}
		labels := map[string]string{
			"__meta_sollwert_asset_id": a.ID,
			"__meta_sollwert_tenant":   a.Tenant,
			"__meta_sollwert_status":   a.Status,
		}
		if len(a.Hostnames) > 0 {
			labels["__meta_sollwert_hostname"] = a.Hostnames[0]
		}
		if a.OS != "" {
			labels["__meta_sollwert_os"] = a.OS
		}
		for k, v := range a.Labels {
			labels["__meta_sollwert_label_"+labelName(k)] = v
		}
		if sel.Service == "" && sel.Port == 0 {
			out = append(out, TargetGroup{Targets: []string{ip.String()}, Labels: labels})
			continue
		}
		for _, s := range a.Services {
			if s.Protocol != proto || (sel.Port != 0 && s.Port != sel.Port) || (sel.Service != "" && s.Name != sel.Service) {
				continue
			}
			l := make(map[string]string, len(labels)+2)
			for k, v := range labels {
				l[k] = v
			}
			l["__meta_sollwert_service"] = s.Name
			l["__meta_sollwert_port"] = strconv.Itoa(int(s.Port))
			at := ip // the address the port is open on: a machine's exporter may listen on one of several
			if p, err := netip.ParseAddr(s.Address); err == nil {
				at = p.Unmap()
			}
			out = append(out, TargetGroup{Targets: []string{netip.AddrPortFrom(at, s.Port).String()}, Labels: l})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Targets[0] < out[j].Targets[0] })
	return out
}

var notLabel = regexp.MustCompile(`[^A-Za-z0-9_]`)

func labelName(s string) string { return notLabel.ReplaceAllString(s, "_") }

// ParseSelector reads the query parameters of the service discovery
// endpoint.
func ParseSelector(service, port, protocol string) (Selector, error) {
	sel := Selector{Service: service, Protocol: sdk.Protocol(protocol)}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return sel, fmt.Errorf("port %q is not a port number", port)
		}
		sel.Port = uint16(n)
	}
	switch sel.Protocol {
	case "", sdk.TCP, sdk.UDP:
	default:
		return sel, fmt.Errorf("protocol %q is neither tcp nor udp", protocol)
	}
	return sel, nil
}

// NmapHosts writes assets as nmap would have reported them, so that two
// states of the store compare with scandiff as two scans do: status,
// addresses, host names, and the open ports with their services. A
// machine with ports open on several of its addresses is written as nmap
// sees it, one host per address with that address's ports; the first
// keeps the MACs and names.
func NmapHosts(assets []model.Asset) []nmapxml.Host {
	out := make([]nmapxml.Host, 0, len(assets))
	for i := range assets {
		a := &assets[i]
		primary := a.IP().String()
		if !slices.ContainsFunc(a.Services, func(s model.Service) bool { return s.Address != "" && s.Address != primary }) {
			out = append(out, nmapHost(a, a.Addresses, a.Hostnames, func(*model.Service) bool { return true }))
			continue
		}
		for _, ad := range a.Addresses {
			if ad.Type == "mac" {
				continue
			}
			addrs, names := []sdk.Address{ad}, []string(nil)
			if ad.Addr == primary {
				names = a.Hostnames
				for _, m := range a.Addresses {
					if m.Type == "mac" {
						addrs = append(addrs, m)
					}
				}
			}
			out = append(out, nmapHost(a, addrs, names, func(s *model.Service) bool {
				return s.Address == ad.Addr || (s.Address == "" && ad.Addr == primary)
			}))
		}
	}
	return out
}

func nmapHost(a *model.Asset, addrs []sdk.Address, names []string, ports func(*model.Service) bool) nmapxml.Host {
	h := nmapxml.Host{Status: nmapxml.Status{State: a.Status}}
	for _, ad := range addrs {
		h.Addresses = append(h.Addresses, nmapxml.Address{Addr: ad.Addr, AddrType: ad.Type, Vendor: ad.Vendor})
	}
	for _, n := range names {
		h.Hostnames = append(h.Hostnames, nmapxml.Hostname{Name: n, Type: "user"})
	}
	for i := range a.Services {
		if s := &a.Services[i]; ports(s) {
			h.Ports = append(h.Ports, nmapxml.Port{Protocol: string(s.Protocol), ID: s.Port, State: nmapxml.PortState{State: s.State},
				Service: nmapxml.Service{Name: s.Name, Product: s.Product, Version: s.Version}})
		}
	}
	return h
}
