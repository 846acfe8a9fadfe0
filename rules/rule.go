package rules

import (
	"net/netip"
	"regexp"
	"strconv"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// Rule is one expect block: which hosts it selects and what must hold for
// them.
type Rule struct {
	Name   string
	Tenant string
	// CIDRs selects hosts by address. A rule with no CIDRs selects nothing.
	CIDRs []netip.Prefix
	// Allowed lists, per protocol, the ports that may be open. A protocol
	// missing from the map is not restricted.
	Allowed map[sdk.Protocol]sdk.PortRanges
	// Required lists, per protocol, ports that must be open.
	Required map[sdk.Protocol]sdk.PortRanges
	// UnknownHosts is the severity of an unknown_host deviation, or "" when
	// new hosts are fine.
	UnknownHosts model.Severity
	// IdentityConflicts is the severity of an identity_conflict deviation
	// (two live machines claim one address), or "" to let it pass.
	IdentityConflicts model.Severity
	// Severity applies to every other kind.
	Severity model.Severity
	// StaleAfter is how many schedule intervals of the scanning job may pass
	// without a successful scan before the host's data counts as stale.
	// Zero turns the check off.
	StaleAfter int
	// Facts must hold for the facts sources report (SNMP's sys_descr, ...).
	Facts []FactRule
	// InterfacesUp are interface names, or path.Match patterns, whose
	// operational status must be up.
	InterfacesUp []string
	// Damping holds back deviations that come and go.
	Damping model.Damping
	// FromGroups takes the allowed ports of a protocol from the host's
	// provider facts (expected_tcp, expected_udp: what its security
	// groups or firewalls allow inbound) where a provider reported them;
	// hosts without them keep Allowed. tcp_from / udp_from =
	// "security_groups" in the configuration.
	FromGroups map[sdk.Protocol]bool
	// ManagedBy names the providers that are the source of truth for the
	// rule's hosts; Unmanaged is the severity of an unmanaged deviation
	// for a host that is up, that another source reports, and that none
	// of them knows ("" to let it pass).
	ManagedBy []string
	Unmanaged model.Severity
	// Missing is the severity of a missing deviation for a host one of
	// ManagedBy reports running but that MissingAfter successful scans in
	// a row did not find ("" to let it pass).
	Missing      model.Severity
	MissingAfter int
	// GoneAfter is how many successful runs in a row must miss a host
	// before it counts as down (0 and 1: the first).
	GoneAfter int
}

// FactRule is what one fact must be: matching a regular expression, or
// equal to a value. A fact no source reported is only a deviation when
// Required is set: a host no SNMP agent answers for has no sys_descr.
type FactRule struct {
	Name     string
	Match    *regexp.Regexp
	Equals   string
	Required bool
}

// want says what the rule expects, for a deviation's detail.
func (f FactRule) want() string {
	if f.Match != nil {
		return "match " + strconv.Quote(f.Match.String())
	}
	return "equal " + strconv.Quote(f.Equals)
}

// holds reports whether value satisfies the rule.
func (f FactRule) holds(value string) bool {
	if f.Match != nil {
		return f.Match.MatchString(value)
	}
	return value == f.Equals
}
