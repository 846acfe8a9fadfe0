package rules

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// protocols the engine keeps per-rule port sets for, in array order.
var protocols = [...]sdk.Protocol{sdk.TCP, sdk.UDP, sdk.SCTP}

func protoIndex(p sdk.Protocol) int {
	switch p {
	case sdk.TCP:
		return 0
	case sdk.UDP:
		return 1
	case sdk.SCTP:
		return 2
	}
	return -1
}

type portSet struct {
	set    bool
	ranges sdk.PortRanges
}

type compiled struct {
	Rule
	allowed  [len(protocols)]portSet
	required [len(protocols)]portSet
}

// Engine evaluates assets against a compiled set of rules.
type Engine struct {
	rules     []compiled
	byName    map[string]int
	byTenant  map[string]*prefixIndex
	intervals map[string]time.Duration
}

// Compile builds an engine. intervals gives each job's schedule interval,
// which stale-scan checks multiply by a rule's StaleAfter.
func Compile(rs []Rule, intervals map[string]time.Duration) (*Engine, error) {
	e := &Engine{
		byName:    make(map[string]int, len(rs)),
		byTenant:  map[string]*prefixIndex{},
		intervals: intervals,
	}
	for i, r := range rs {
		key := r.Tenant + "\x00" + r.Name
		if _, dup := e.byName[key]; dup {
			return nil, fmt.Errorf("rule %q is defined twice", r.Name)
		}
		if r.Severity == "" {
			r.Severity = model.SeverityWarning
		}
		if r.Tenant == "" {
			r.Tenant = model.DefaultTenant
		}
		c := compiled{Rule: r}
		for p, ranges := range r.Allowed {
			idx := protoIndex(p)
			if idx < 0 {
				return nil, fmt.Errorf("rule %q: unknown protocol %q", r.Name, p)
			}
			c.allowed[idx] = portSet{set: true, ranges: ranges.Normalize()}
		}
		for p, ranges := range r.Required {
			idx := protoIndex(p)
			if idx < 0 {
				return nil, fmt.Errorf("rule %q: unknown protocol %q", r.Name, p)
			}
			c.required[idx] = portSet{set: true, ranges: ranges.Normalize()}
		}
		e.rules = append(e.rules, c)
		e.byName[key] = i
		idx := e.byTenant[r.Tenant]
		if idx == nil {
			idx = newPrefixIndex()
			e.byTenant[r.Tenant] = idx
		}
		for _, p := range r.CIDRs {
			idx.add(p, int32(i))
		}
	}
	return e, nil
}

// Rules returns the compiled rules in configuration order.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i := range e.rules {
		out[i] = e.rules[i].Rule
	}
	return out
}

// Matching appends the names of the rules that select ip in tenant.
func (e *Engine) Matching(tenant string, ip netip.Addr) []string {
	idx := e.byTenant[tenant]
	if idx == nil {
		return nil
	}
	var names []string
	for _, i := range idx.lookup(ip, nil) {
		names = append(names, e.rules[i].Name)
	}
	return names
}

// GoneAfter is how many successful runs in a row must miss a to call it
// down: the largest gone_after of the rules that select it, at least 1.
func (e *Engine) GoneAfter(a *model.Asset) int {
	return max(1, e.most(a, func(r *compiled) int { return r.GoneAfter }))
}

// MissingAfter is how many successful scans in a row must miss a host
// before a rule that selects it calls it missing: the most any such rule
// asks, 0 when none does.
func (e *Engine) MissingAfter(a *model.Asset) int {
	return e.most(a, func(r *compiled) int {
		if r.Missing == "" {
			return 0
		}
		return r.MissingAfter
	})
}

// most is the largest of what the rules that select a ask (0: none).
func (e *Engine) most(a *model.Asset, of func(*compiled) int) int {
	k := 0
	idx := e.byTenant[a.Tenant]
	ip := a.IP()
	if idx == nil || !ip.IsValid() {
		return k
	}
	var buf [16]int32
	for _, ri := range idx.lookup(ip, buf[:0]) {
		k = max(k, of(&e.rules[ri]))
	}
	return k
}

// Evaluate appends to out every finding for a at time now.
func (e *Engine) Evaluate(a *model.Asset, now time.Time, out []model.Finding) []model.Finding {
	idx := e.byTenant[a.Tenant]
	if idx == nil {
		return out
	}
	ip := a.IP()
	if !ip.IsValid() {
		return out
	}
	var buf, more [16]int32
	selected := idx.lookup(ip, buf[:0])
	at := portAddresses(a, ip)
	for _, ri := range selected {
		out = e.evaluateRule(ri, a, now, at, false, out)
	}
	if at == nil {
		return out
	}
	// A rule that selects another address of the machine judges the ports
	// open there, and only those.
	extra := more[:0]
	for _, addr := range at {
		if addr == ip {
			continue
		}
		for _, ri := range idx.lookup(addr, nil) {
			if !slices.Contains(selected, ri) && !slices.Contains(extra, ri) {
				extra = append(extra, ri)
			}
		}
	}
	for _, ri := range extra {
		out = e.evaluateRule(ri, a, now, at, true, out)
	}
	return out
}

func (e *Engine) evaluateRule(ri int32, a *model.Asset, now time.Time, at []netip.Addr, portsOnly bool, out []model.Finding) []model.Finding {
	from := len(out)
	out = e.rules[ri].evaluate(a, now, e.intervals, at, portsOnly, out)
	if d := e.rules[ri].Damping; d != (model.Damping{}) {
		for i := from; i < len(out); i++ {
			out[i].Damping = d
		}
	}
	return out
}

// portAddresses returns, for a machine with ports open on more than its
// primary address ip, the address of each of a's services (ip for one
// without an address); nil when every port is the primary address's,
// the usual case, in which every rule that selects the asset judges all
// of them.
func portAddresses(a *model.Asset, ip netip.Addr) []netip.Addr {
	if len(a.Services) == 0 {
		return nil // a host a provider reports: no ports, nothing to spell out
	}
	var buf [48]byte
	primary := string(ip.AppendTo(buf[:0]))
	if !slices.ContainsFunc(a.Services, func(s model.Service) bool { return s.Address != "" && s.Address != primary }) {
		return nil
	}
	at := make([]netip.Addr, len(a.Services))
	for i := range a.Services {
		at[i] = ip
		if p, err := netip.ParseAddr(a.Services[i].Address); err == nil {
			at[i] = p.Unmap()
		}
	}
	return at
}

// judges reports whether the rule judges a port open on addr.
func (c *compiled) judges(addr netip.Addr) bool {
	return slices.ContainsFunc(c.CIDRs, func(p netip.Prefix) bool { return p.Contains(addr) })
}

// managedBy reports whether one of the providers named knows a.
func managedBy(a *model.Asset, providers []string) bool {
	for _, p := range providers {
		if a.Facts[model.FactInstancePrefix+p] != "" {
			return true
		}
	}
	return false
}

// unmanaged reports whether a is known to none of the providers named,
// though another source reports it; seenBy names those sources.
func unmanaged(a *model.Asset, providers []string) (seenBy string, ok bool) {
	if managedBy(a, providers) {
		return "", false
	}
	var others []string
	for _, s := range a.Sources {
		if !slices.Contains(providers, s) {
			others = append(others, s)
		}
	}
	return strings.Join(others, ", "), len(others) > 0
}

// groupPorts is what a host's security groups allow for one protocol.
type groupPorts struct {
	ranges sdk.PortRanges
	want   string // for the deviation's sentence
}

// groupPortsOf reads the provider facts expected_PROTO (port ranges, ""
// for none) and expected_PROTO_from (the groups that allow them); nil
// when no provider reported them for this host.
func groupPortsOf(a *model.Asset, proto sdk.Protocol) *groupPorts {
	spec, ok := a.Facts["expected_"+string(proto)]
	if !ok {
		return nil
	}
	g := &groupPorts{}
	if spec != "" {
		r, err := sdk.ParsePortRanges(spec)
		if err != nil {
			return nil // not a port list: judge by the rule's own
		}
		g.ranges = r
	}
	names := a.Facts["security_groups"]
	if from := a.Facts["expected_"+string(proto)+"_from"]; from != "" {
		names = from
	}
	allowed := "nothing"
	if spec != "" {
		allowed = string(proto) + " " + spec
	}
	if names == "" {
		g.want = "its provider's firewall allows " + allowed
	} else {
		g.want = "its security groups (" + names + ") allow " + allowed
	}
	return g
}

// evaluate appends the rule's findings for a. at holds the address of
// each of a's services when they are open on several (portAddresses):
// the rule then judges those on the addresses it selects. portsOnly is
// set for a rule that selects another address of a than its primary one:
// it judges only which ports are open there.
func (c *compiled) evaluate(a *model.Asset, now time.Time, intervals map[string]time.Duration, at []netip.Addr, portsOnly bool, out []model.Finding) []model.Finding {
	if a.Status == model.StatusMerged {
		return out // its machine is judged as the asset it went into
	}
	if portsOnly {
		if a.Status == sdk.StatusUp {
			out = c.unexpectedPorts(a, at, out)
		}
		return out
	}
	if c.Unmanaged != "" && a.Status == sdk.StatusUp {
		if seenBy, ok := unmanaged(a, c.ManagedBy); ok {
			out = append(out, model.Finding{Rule: c.Name, Kind: model.KindUnmanaged, Severity: c.Unmanaged,
				Value: seenBy, Want: strings.Join(c.ManagedBy, ", ")})
		}
	}
	if c.Missing != "" && managedBy(a, c.ManagedBy) && model.InstanceRunning(a) {
		if n := model.ScanMisses(a); n >= max(c.MissingAfter, 1) {
			out = append(out, model.Finding{Rule: c.Name, Kind: model.KindMissing, Severity: c.Missing,
				Value: strconv.Itoa(n), Want: a.Facts["instance_state"]})
		}
	}
	if c.IdentityConflicts != "" {
		if detail := a.Facts[model.FactIdentityConflict]; detail != "" {
			out = append(out, model.Finding{Rule: c.Name, Kind: model.KindIdentityConflict, Severity: c.IdentityConflicts, Value: detail})
		}
	}
	if a.Status == sdk.StatusUp {
		out = c.unexpectedPorts(a, at, out)
		for pi := range c.required {
			req := &c.required[pi]
			if !req.set {
				continue
			}
			proto := protocols[pi]
			scanned := a.Scanned[proto]
			for _, r := range req.ranges {
				for port := uint32(r.First); port <= uint32(r.Last); port++ {
					p := uint16(port)
					if scanned.Contains(p) && !c.hasOpen(a.Services, at, proto, p) {
						out = append(out, model.Finding{
							Rule: c.Name, Kind: model.KindMissingPort, Severity: c.Severity,
							Protocol: proto, Port: p,
						})
					}
				}
			}
		}
		if c.UnknownHosts != "" && a.Unknown {
			out = append(out, model.Finding{
				Rule: c.Name, Kind: model.KindUnknownHost, Severity: c.UnknownHosts, Since: a.FirstSeen,
			})
		}
	}
	for _, f := range c.Facts {
		value, ok := a.Facts[f.Name]
		if (ok && !f.holds(value)) || (!ok && f.Required) {
			out = append(out, model.Finding{
				Rule: c.Name, Kind: model.KindFactMismatch, Severity: c.Severity,
				Subject: f.Name, Value: value, Want: f.want(),
			})
		}
	}
	if len(c.InterfacesUp) > 0 {
		out = c.interfacesDown(a, out)
	}
	if c.StaleAfter > 0 && a.LastScannedBy != "" {
		if interval := intervals[a.LastScannedBy]; interval > 0 {
			limit := time.Duration(c.StaleAfter) * interval
			if now.Sub(a.LastScanned) > limit {
				out = append(out, model.Finding{
					Rule: c.Name, Kind: model.KindStaleScan, Severity: c.Severity,
					Job: a.LastScannedBy, Since: a.LastScanned, Limit: limit,
				})
			}
		}
	}
	return out
}

// interfacesDown finds the interfaces the rule names (facts
// if.NAME.oper_status, as the snmp source reports them) that are not up.
func (c *compiled) interfacesDown(a *model.Asset, out []model.Finding) []model.Finding {
	for key, status := range a.Facts {
		rest, ok := strings.CutPrefix(key, "if.")
		if !ok {
			continue
		}
		name, ok := strings.CutSuffix(rest, ".oper_status")
		if !ok || status == "up" {
			continue
		}
		for _, pattern := range c.InterfacesUp {
			if matched, _ := path.Match(pattern, name); matched {
				out = append(out, model.Finding{
					Rule: c.Name, Kind: model.KindInterfaceDown, Severity: c.Severity, Subject: name, Value: status,
				})
				break
			}
		}
	}
	return out
}

// hasOpen reports whether port is open on an address the rule judges.
func (c *compiled) hasOpen(services []model.Service, at []netip.Addr, proto sdk.Protocol, port uint16) bool {
	for i := range services {
		if services[i].Port == port && services[i].Protocol == proto && (at == nil || c.judges(at[i])) {
			return true
		}
	}
	return false
}

// unexpectedPorts appends a finding for each port open on an address the
// rule judges that its allowed ports (or the security groups, where it
// asks for them) do not allow: one per port, however many addresses of
// the machine have it open.
func (c *compiled) unexpectedPorts(a *model.Asset, at []netip.Addr, out []model.Finding) []model.Finding {
	var groups [len(protocols)]*groupPorts // the provider's word, where the rule asks for it
	for pi, proto := range protocols {
		if c.FromGroups[proto] {
			groups[pi] = groupPortsOf(a, proto)
		}
	}
	var last *model.Service
	for i := range a.Services {
		s := &a.Services[i]
		pi := protoIndex(s.Protocol)
		if pi < 0 || (at != nil && !c.judges(at[i])) {
			continue
		}
		if last != nil && last.Port == s.Port && last.Protocol == s.Protocol {
			continue // open on a second address: one deviation per port
		}
		last = s
		var addr string
		if at != nil {
			addr = s.Address // several addresses: say which
		}
		if g := groups[pi]; g != nil {
			if !g.ranges.Contains(s.Port) {
				out = append(out, model.Finding{
					Rule: c.Name, Kind: model.KindUnexpectedPort, Severity: c.Severity,
					Protocol: s.Protocol, Port: s.Port, Service: s.Name, Address: addr, Want: g.want,
				})
			}
			continue
		}
		if allowed := &c.allowed[pi]; allowed.set && !allowed.ranges.Contains(s.Port) {
			out = append(out, model.Finding{
				Rule: c.Name, Kind: model.KindUnexpectedPort, Severity: c.Severity,
				Protocol: s.Protocol, Port: s.Port, Service: s.Name, Address: addr,
			})
		}
	}
	return out
}
