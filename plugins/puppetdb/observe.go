package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// Node states, PuppetDB's words, as the instance_state fact.
const (
	stateActive      = "active"
	stateDeactivated = "deactivated"
	stateExpired     = "expired"
)

// nodeRow is one row of the nodes entity, as the plugin projects it. A
// null (no report yet, not deactivated) decodes as "".
type nodeRow struct {
	Certname           string `json:"certname"`
	Deactivated        string `json:"deactivated"`
	Expired            string `json:"expired"`
	ReportTimestamp    string `json:"report_timestamp"`
	LatestReportStatus string `json:"latest_report_status"`
	ReportEnvironment  string `json:"report_environment"`
	FactsEnvironment   string `json:"facts_environment"`
}

var nodeFields = []string{"certname", "deactivated", "expired", "report_timestamp", "latest_report_status", "report_environment", "facts_environment"}

// inventoryRow is one row of the inventory entity with the facts that
// identify a machine. The facts are whatever the agent sent, so each is
// decoded on its own and a malformed one costs only itself.
type inventoryRow struct {
	Certname   string          `json:"certname"`
	Networking json.RawMessage `json:"facts.networking"`
	OS         json.RawMessage `json:"facts.os"`
	DMI        json.RawMessage `json:"facts.dmi"`
	Serial     json.RawMessage `json:"facts.serialnumber"`
	FQDN       json.RawMessage `json:"facts.fqdn"`
}

var inventoryFields = []string{"certname", "facts.networking", "facts.os", "facts.dmi", "facts.serialnumber", "facts.fqdn"}

// networking is facter's (3 and later) networking fact, as far as the
// plugin reads it.
type networking struct {
	FQDN       string                     `json:"fqdn"`
	IP         string                     `json:"ip"`
	IP6        string                     `json:"ip6"`
	MAC        string                     `json:"mac"`
	Primary    string                     `json:"primary"`
	Interfaces map[string]json.RawMessage `json:"interfaces"`
}

type iface struct {
	MAC       string    `json:"mac"`
	IP        string    `json:"ip"`
	IP6       string    `json:"ip6"`
	Bindings  []binding `json:"bindings"`
	Bindings6 []binding `json:"bindings6"`
}

type binding struct {
	Address string `json:"address"`
	Netmask string `json:"netmask"`
}

type osFact struct {
	Name    string `json:"name"`
	Family  string `json:"family"`
	Release struct {
		Full string `json:"full"`
	} `json:"release"`
}

type dmiFact struct {
	Product struct {
		UUID         string `json:"uuid"`
		SerialNumber string `json:"serial_number"`
	} `json:"product"`
}

// observer turns nodes and their facts into observations.
type observer struct {
	exclude []string // interface name patterns left out
}

func (ob *observer) excluded(name string) bool {
	for _, p := range ob.exclude {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// observation builds one node's observation. inv is nil when PuppetDB
// has no facts for it. problems name facts that did not have facter's
// shape and addresses that did not parse; the caller must not emit an
// observation without addresses.
func (ob *observer) observation(n *nodeRow, inv *inventoryRow) (o sdk.Observation, problems []string) {
	state := stateActive
	switch {
	case n.Deactivated != "":
		state = stateDeactivated
	case n.Expired != "":
		state = stateExpired
	}
	// Every fact the plugin owns is set on every run, "" when PuppetDB
	// has nothing: facts merge into the asset, so one left out would keep
	// an old value (a reactivated node would stay "deactivated_time").
	o = sdk.Observation{
		InstanceID: "puppetdb:" + n.Certname,
		Hostnames:  []string{n.Certname},
		Status:     sdk.StatusDown,
		Facts: map[string]string{
			"provider":           "puppetdb",
			"certname":           n.Certname,
			"instance_state":     state,
			"deactivated_time":   n.Deactivated,
			"expired_time":       n.Expired,
			"last_report_status": n.LatestReportStatus,
			"last_report_time":   n.ReportTimestamp,
			"report_environment": n.ReportEnvironment,
			"facts_environment":  n.FactsEnvironment,
			"fqdn":               "",
			"dmi_uuid":           "",
			"serial_number":      "",
			"os_family":          "",
		},
	}
	// Up means Puppet manages the machine; a deactivated or expired node
	// is one Puppet no longer does (decommissioned, or silent past
	// node-ttl), which is what "down" says.
	if state == stateActive {
		o.Status = sdk.StatusUp
	}
	if inv == nil {
		return o, nil
	}
	bad := func(fact string, err error) {
		problems = append(problems, fmt.Sprintf("fact %s: %v", fact, shortJSONError(err)))
	}

	var net networking
	if present(inv.Networking) {
		if err := json.Unmarshal(inv.Networking, &net); err != nil {
			bad("networking", err)
			net = networking{}
		}
	}
	fqdn := net.FQDN
	if fqdn == "" {
		fqdn = scalar(inv.FQDN)
	}
	if fqdn != "" {
		o.Facts["fqdn"] = fqdn
		if !strings.EqualFold(fqdn, n.Certname) {
			o.Hostnames = append(o.Hostnames, fqdn)
		}
	}
	problems = append(problems, ob.addresses(&o, &net)...)

	if present(inv.OS) {
		var os osFact
		if err := json.Unmarshal(inv.OS, &os); err != nil {
			bad("os", err)
		} else {
			o.OS = strings.TrimSpace(os.Name + " " + os.Release.Full)
			o.Facts["os_family"] = os.Family
		}
	}
	var dmi dmiFact
	if present(inv.DMI) {
		if err := json.Unmarshal(inv.DMI, &dmi); err != nil {
			bad("dmi", err)
		}
	}
	// Lower case, as libvirt writes a domain's UUID: a VM's SMBIOS UUID
	// is its domain's, and the two should compare equal.
	o.Facts["dmi_uuid"] = strings.ToLower(strings.TrimSpace(dmi.Product.UUID))
	serial := strings.TrimSpace(dmi.Product.SerialNumber)
	if serial == "" {
		serial = strings.TrimSpace(scalar(inv.Serial))
	}
	o.Facts["serial_number"] = serial
	return o, problems
}

// addresses adds the node's IP and MAC addresses and the interface facts:
// the primary ones first (networking.ip, ip6, mac), then each interface's
// (the primary interface first, then by name), each address once.
// Loopback, link-local, multicast and unspecified addresses say nothing
// about which machine this is and are left out, as are the interfaces
// exclude_interfaces names.
func (ob *observer) addresses(o *sdk.Observation, n *networking) (problems []string) {
	seen := map[string]bool{}
	addIP := func(s, where string) (netip.Addr, bool) {
		s = strings.TrimSpace(s)
		if s == "" {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q is not an IP address", where, s))
			return netip.Addr{}, false
		}
		a = a.WithZone("").Unmap()
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
			return netip.Addr{}, false
		}
		if !seen[a.String()] {
			seen[a.String()] = true
			typ := "ipv6"
			if a.Is4() {
				typ = "ipv4"
			}
			o.Addresses = append(o.Addresses, sdk.Address{Addr: a.String(), Type: typ})
		}
		return a, true
	}
	var macs []string
	addMAC := func(s, where string) string {
		s = strings.TrimSpace(s)
		if s == "" {
			return ""
		}
		hw, err := net.ParseMAC(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q is not a MAC address", where, s))
			return ""
		}
		if allZero(hw) {
			return ""
		}
		m := hw.String()
		if !seen[m] {
			seen[m] = true
			macs = append(macs, m)
		}
		return m
	}

	names := make([]string, 0, len(n.Interfaces))
	for name := range n.Interfaces {
		if !ob.excluded(name) {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == n.Primary) != (names[j] == n.Primary) {
			return names[i] == n.Primary
		}
		return names[i] < names[j]
	})
	primaryExcluded := n.Primary != "" && ob.excluded(n.Primary)
	if !primaryExcluded {
		addIP(n.IP, "networking.ip")
		addIP(n.IP6, "networking.ip6")
		addMAC(n.MAC, "networking.mac")
	}
	for _, name := range names {
		where := "networking.interfaces." + name
		var f iface
		if err := json.Unmarshal(n.Interfaces[name], &f); err != nil {
			problems = append(problems, fmt.Sprintf("fact %s: %v", where, shortJSONError(err)))
			continue
		}
		var prefixes []string
		add := func(addr, mask string) {
			if a, ok := addIP(addr, where); ok {
				prefixes = append(prefixes, withMask(a, mask))
			}
		}
		for _, b := range f.Bindings {
			add(b.Address, b.Netmask)
		}
		for _, b := range f.Bindings6 {
			add(b.Address, b.Netmask)
		}
		if len(f.Bindings) == 0 {
			add(f.IP, "")
		}
		if len(f.Bindings6) == 0 {
			add(f.IP6, "")
		}
		k := "if." + name + "."
		if m := addMAC(f.MAC, where); m != "" {
			o.Facts[k+"mac"] = m
		}
		if len(prefixes) > 0 {
			o.Facts[k+"addresses"] = strings.Join(prefixes, ",")
		}
	}
	for _, m := range macs {
		o.Addresses = append(o.Addresses, sdk.Address{Addr: m, Type: "mac"})
	}
	return problems
}

// withMask writes a as a prefix when mask is a contiguous netmask
// ("255.255.255.0", "ffff:ffff:ffff:ffff::"), else as the address alone.
func withMask(a netip.Addr, mask string) string {
	m, err := netip.ParseAddr(strings.TrimSpace(mask))
	if err != nil || m.Is4() != a.Is4() {
		return a.String()
	}
	ones := net.IPMask(m.AsSlice())
	bits, total := ones.Size()
	if total == 0 {
		return a.String()
	}
	return netip.PrefixFrom(a, bits).String()
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// present is false for an absent fact and for JSON null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// scalar reads a fact that should be a string; a number or a boolean is
// taken as written, anything else as absent.
func scalar(raw json.RawMessage) string {
	if !present(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return strconv.FormatBool(b)
	}
	return ""
}

// shortJSONError says what was wrong without quoting Go type names.
func shortJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s is a JSON %s, not facter's shape", te.Field, te.Value)
		}
		return fmt.Sprintf("a JSON %s, not facter's shape", te.Value)
	}
	return err.Error()
}
