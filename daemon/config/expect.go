package config

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"

	"github.com/hashicorp/hcl/v2"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/zclconf/go-cty/cty"
)

var expectSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "cidrs", Required: true},
		{Name: "tcp"}, {Name: "udp"},
		{Name: "required_tcp"}, {Name: "required_udp"},
		{Name: "unknown_hosts"},
		{Name: "identity_conflicts"},
		{Name: "managed_by"},
		{Name: "unmanaged"},
		{Name: "missing"},
		{Name: "missing_after"},
		{Name: "severity"},
		{Name: "stale_after"},
		{Name: "interfaces_up"},
		{Name: "open_after"}, {Name: "resolve_after"}, {Name: "gone_after"},
		{Name: "tcp_from"}, {Name: "udp_from"},
		{Name: "flap_threshold"}, {Name: "flap_window"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "fact", LabelNames: []string{"name"}}},
}

var factSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "match"}, {Name: "equals"}, {Name: "required"}},
}

func (d *decoder) decodeExpect(b *hcl.Block) (rules.Rule, bool) {
	r := rules.Rule{Name: b.Labels[0], Tenant: model.DefaultTenant, Severity: model.SeverityWarning, StaleAfter: DefaultStaleAfter}
	content, diags := b.Body.Content(expectSchema)
	if diags.HasErrors() {
		d.add(diags...)
		return r, false
	}
	before := len(d.diags)
	if a := content.Attributes["cidrs"]; a != nil {
		if list, ranges, ok := d.strList(a); ok {
			for i, s := range list {
				p, err := parsePrefix(s)
				if err != nil {
					d.add(errorAt(ranges[i], "Invalid CIDR in cidrs", err.Error()))
					continue
				}
				r.CIDRs = append(r.CIDRs, p)
			}
			if len(list) == 0 {
				d.add(errorAt(a.Expr.Range(), "Invalid cidrs", "an expect block must select at least one CIDR"))
			}
		}
	}
	ports := func(name string) (sdk.PortRanges, bool) {
		a := content.Attributes[name]
		if a == nil {
			return nil, false
		}
		list, ranges, ok := d.strList(a)
		if !ok {
			return nil, false
		}
		var out sdk.PortRanges
		for i, s := range list {
			pr, err := sdk.ParsePortRanges(s)
			if err != nil {
				d.add(errorAt(ranges[i], fmt.Sprintf("Invalid port range in %s", name), err.Error()))
				continue
			}
			out = out.Union(pr)
		}
		if out == nil {
			out = sdk.PortRanges{} // an empty list: no port allowed
		}
		return out, true
	}
	for _, p := range []struct {
		attr  string
		proto sdk.Protocol
		into  *map[sdk.Protocol]sdk.PortRanges
	}{
		{"tcp", sdk.TCP, &r.Allowed}, {"udp", sdk.UDP, &r.Allowed},
		{"required_tcp", sdk.TCP, &r.Required}, {"required_udp", sdk.UDP, &r.Required},
	} {
		if pr, set := ports(p.attr); set {
			if *p.into == nil {
				*p.into = map[sdk.Protocol]sdk.PortRanges{}
			}
			(*p.into)[p.proto] = pr
		}
	}
	r.UnknownHosts = d.optionalSeverity(content.Attributes["unknown_hosts"])
	r.IdentityConflicts = d.optionalSeverity(content.Attributes["identity_conflicts"])
	if a := content.Attributes["severity"]; a != nil {
		if s, ok := d.str(a); ok {
			sev, err := model.ParseSeverity(s)
			if err != nil {
				d.add(errorAt(a.Expr.Range(), "Invalid severity", err.Error()))
			}
			r.Severity = sev
		}
	}
	if a := content.Attributes["stale_after"]; a != nil {
		if n, ok := d.integer(a); ok {
			if n < 0 {
				d.add(errorAt(a.Expr.Range(), "Invalid stale_after", "must be 0 (off) or a number of schedule intervals"))
			}
			r.StaleAfter = n
		}
	}
	for name, into := range map[string]*int{"open_after": &r.Damping.OpenAfter, "resolve_after": &r.Damping.ResolveAfter,
		"flap_threshold": &r.Damping.FlapChanges, "gone_after": &r.GoneAfter} {
		if a := content.Attributes[name]; a != nil {
			if n, ok := d.integer(a); ok {
				if n < 1 || n > 1000 {
					d.add(errorAt(a.Expr.Range(), "Invalid "+name, "must be a number of observations from 1 to 1000"))
				}
				*into = n
			}
		}
	}
	for name, proto := range map[string]sdk.Protocol{"tcp_from": sdk.TCP, "udp_from": sdk.UDP} {
		if a := content.Attributes[name]; a != nil {
			if v, ok := d.str(a); ok {
				if v != "security_groups" {
					d.add(errorAt(a.Expr.Range(), "Invalid "+name, fmt.Sprintf("%q: the one source of allowed ports there is: \"security_groups\"", v)))
				}
				if r.FromGroups == nil {
					r.FromGroups = map[sdk.Protocol]bool{}
				}
				r.FromGroups[proto] = true
			}
		}
	}
	if a := content.Attributes["flap_window"]; a != nil {
		if w, ok := d.duration(a); ok {
			if w <= 0 {
				d.add(errorAt(a.Expr.Range(), "Invalid flap_window", "must be a positive duration such as \"6h\""))
			}
			r.Damping.FlapWindow = w
		}
	}
	if (r.Damping.FlapChanges > 0) != (r.Damping.FlapWindow > 0) {
		d.add(errorAt(b.DefRange, "Invalid flap damping", "set both flap_threshold (opens and resolves) and flap_window, or neither"))
	}
	if a := content.Attributes["managed_by"]; a != nil {
		if list, ranges, ok := d.strList(a); ok {
			for i, p := range list {
				if !nameRE.MatchString(p) {
					d.add(errorAt(ranges[i], "Invalid managed_by", fmt.Sprintf("%q is not a source name", p)))
					continue
				}
				r.ManagedBy = append(r.ManagedBy, p)
			}
		}
	}
	if a := content.Attributes["unmanaged"]; a != nil {
		if r.Unmanaged = d.optionalSeverity(a); r.Unmanaged != "" && content.Attributes["managed_by"] == nil {
			d.add(errorAt(a.Expr.Range(), "Invalid unmanaged", "name the providers that know the managed hosts in managed_by"))
		}
	}
	if a := content.Attributes["missing"]; a != nil {
		if r.Missing = d.optionalSeverity(a); r.Missing != "" {
			r.MissingAfter = DefaultMissingAfter
			if content.Attributes["managed_by"] == nil {
				d.add(errorAt(a.Expr.Range(), "Invalid missing", "name the providers whose machines must answer in managed_by"))
			}
		}
	}
	if a := content.Attributes["missing_after"]; a != nil {
		if n, ok := d.integer(a); ok {
			if n < 1 {
				d.add(errorAt(a.Expr.Range(), "Invalid missing_after", "must be at least 1 (scans in a row)"))
			}
			r.MissingAfter = n
		}
	}
	if a := content.Attributes["interfaces_up"]; a != nil {
		if list, ranges, ok := d.strList(a); ok {
			for i, pattern := range list {
				if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
					d.add(errorAt(ranges[i], "Invalid interface pattern in interfaces_up", fmt.Sprintf("%q is not an interface name or a pattern such as \"Gi0/*\"", pattern)))
					continue
				}
				r.InterfacesUp = append(r.InterfacesUp, pattern)
			}
		}
	}
	seenFacts := map[string]hcl.Range{}
	for _, fb := range content.Blocks {
		name := fb.Labels[0]
		if prev, dup := seenFacts[name]; dup {
			d.add(errorAt(fb.DefRange, "Duplicate fact", fmt.Sprintf("fact %q is already checked at %s:%d", name, prev.Filename, prev.Start.Line)))
			continue
		}
		seenFacts[name] = fb.DefRange
		if f, ok := d.decodeFact(fb); ok {
			r.Facts = append(r.Facts, f)
		}
	}
	return r, len(d.diags) == before
}

func (d *decoder) decodeFact(b *hcl.Block) (rules.FactRule, bool) {
	f := rules.FactRule{Name: b.Labels[0]}
	content, diags := b.Body.Content(factSchema)
	if diags.HasErrors() {
		d.add(diags...)
		return f, false
	}
	match, equals := content.Attributes["match"], content.Attributes["equals"]
	switch {
	case match != nil && equals != nil:
		d.add(errorAt(equals.NameRange, "Invalid fact", "set match or equals, not both"))
		return f, false
	case match != nil:
		s, ok := d.str(match)
		if !ok {
			return f, false
		}
		re, err := regexp.Compile(s)
		if err != nil {
			d.add(errorAt(match.Expr.Range(), "Invalid regular expression in match", err.Error()))
			return f, false
		}
		f.Match = re
	case equals != nil:
		s, ok := d.str(equals)
		if !ok {
			return f, false
		}
		f.Equals = s
	default:
		d.add(errorAt(b.DefRange, "Invalid fact", fmt.Sprintf("fact %q needs match = \"REGEXP\" or equals = \"VALUE\"", f.Name)))
		return f, false
	}
	if a := content.Attributes["required"]; a != nil {
		v, ok := d.value(a)
		if !ok {
			return f, false
		}
		if v.Type() != cty.Bool {
			d.add(errorAt(a.Expr.Range(), "Invalid required", "must be true or false"))
			return f, false
		}
		f.Required = v.True()
	}
	return f, true
}

// parsePrefix accepts a CIDR or a bare address. A CIDR with host bits set
// is refused: "10.0.0.5/24" is more often a typo than a wish for the /24.
func parsePrefix(s string) (netip.Prefix, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %q?", s, p.Masked())
	}
	return p, nil
}

// optionalSeverity reads a severity that "off" or "" (or no attribute)
// turns off.
func (d *decoder) optionalSeverity(a *hcl.Attribute) model.Severity {
	if a == nil {
		return ""
	}
	s, ok := d.str(a)
	if !ok || s == "" || s == "off" {
		return ""
	}
	sev, err := model.ParseSeverity(s)
	if err != nil {
		d.add(errorAt(a.Expr.Range(), "Invalid "+a.Name, err.Error()+", or \"off\""))
	}
	return sev
}
