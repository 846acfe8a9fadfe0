package rules

import (
	"net/netip"

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
	// Severity applies to every other kind.
	Severity model.Severity
	// StaleAfter is how many schedule intervals of the scanning job may pass
	// without a successful scan before the host's data counts as stale.
	// Zero turns the check off.
	StaleAfter int
}
