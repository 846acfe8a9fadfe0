package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// Kind names the way an expectation is broken.
type Kind string

// Deviation kinds.
const (
	KindUnexpectedPort Kind = "unexpected_port"
	KindMissingPort    Kind = "missing_port"
	KindUnknownHost    Kind = "unknown_host"
	KindStaleScan      Kind = "stale_scan"
	KindFactMismatch   Kind = "fact_mismatch"
	KindInterfaceDown  Kind = "interface_down"
	// KindIdentityConflict: two live machines claim one address.
	KindIdentityConflict Kind = "identity_conflict"
	// KindUnmanaged: a host answers that no provider of the rule's
	// managed_by knows.
	KindUnmanaged Kind = "unmanaged"
	// KindMissing: a provider says the machine runs, scans do not find it.
	KindMissing Kind = "missing"
)

// Severity orders how loud a deviation is.
type Severity string

// Severities, from quiet to loud.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// ParseSeverity accepts the severities by name.
func ParseSeverity(s string) (Severity, error) {
	switch Severity(s) {
	case SeverityInfo, SeverityWarning, SeverityCritical:
		return Severity(s), nil
	}
	return "", fmt.Errorf("severity %q is not one of info, warning, critical", s)
}

// Rank orders severities: info 1, warning 2, critical 3.
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// State is where a deviation stands in its lifecycle.
type State string

// Deviation states.
const (
	// StatePending is a finding its rule's damping holds back: seen, but
	// not yet as often in a row as the rule wants before it alerts.
	StatePending      State = "pending"
	StateOpen         State = "open"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
)

// Damping keeps deviations that come and go from paging anyone: an
// expect block can ask for several observations in a row before a
// deviation opens, or resolves, and marks one that changes too often
// within a window as flapping, alerted once. The zero value opens and
// resolves at once and never flaps.
type Damping struct {
	// OpenAfter and ResolveAfter count consecutive successful runs that
	// saw, or no longer saw, the finding (0 and 1 both mean at once).
	OpenAfter    int `json:"open_after,omitempty"`
	ResolveAfter int `json:"resolve_after,omitempty"`
	// FlapChanges opens and resolves within FlapWindow make a deviation
	// flapping; it stops flapping when fewer than half as many remain.
	FlapChanges int           `json:"flap_changes,omitempty"`
	FlapWindow  time.Duration `json:"flap_window,omitempty"`
}

// Finding is what the rules engine says about one asset: one rule broken
// in one way. The store turns findings into deviations. It carries facts,
// not text: the engine runs for every asset of every scan, and only the
// few findings that open or change a deviation need a sentence (Detail).
type Finding struct {
	Rule     string       `json:"rule"`
	Kind     Kind         `json:"kind"`
	Severity Severity     `json:"severity"`
	Protocol sdk.Protocol `json:"protocol,omitempty"`
	Port     uint16       `json:"port,omitempty"`
	// Service is the name of the service on Port, if known.
	Service string `json:"service,omitempty"`
	// Address is the address Port is open on, when the machine has ports
	// open on several.
	Address string `json:"address,omitempty"`
	// Job and Since describe stale data: the job that last scanned the
	// host, and when. Limit is the stale limit.
	Job   string        `json:"job,omitempty"`
	Since time.Time     `json:"since,omitempty"`
	Limit time.Duration `json:"limit,omitempty"`
	// Subject names the fact or interface a finding is about; Value is
	// what it is and Want what the rule expects.
	Subject string `json:"subject,omitempty"`
	Value   string `json:"value,omitempty"`
	Want    string `json:"want,omitempty"`
	// Damping is the rule's.
	Damping Damping `json:"-"`
}

// Detail says in one sentence what is wrong.
func (f Finding) Detail(host string) string {
	switch f.Kind {
	case KindUnexpectedPort:
		svc := ""
		if f.Address != "" {
			svc = " on " + f.Address
		}
		if f.Service != "" {
			svc += " (" + f.Service + ")"
		}
		if f.Want != "" {
			return fmt.Sprintf("%s/%d is open%s but %s (rule %q)", f.Protocol, f.Port, svc, f.Want, f.Rule)
		}
		return fmt.Sprintf("%s/%d is open%s but not allowed by %q", f.Protocol, f.Port, svc, f.Rule)
	case KindMissingPort:
		return fmt.Sprintf("%s/%d is required by %q but closed", f.Protocol, f.Port, f.Rule)
	case KindUnknownHost:
		return fmt.Sprintf("host %s appeared on %s and no earlier scan knew it", host, f.Since.UTC().Format(time.RFC3339))
	case KindFactMismatch:
		if f.Value == "" {
			return fmt.Sprintf("fact %s is missing; rule %q requires it to %s", f.Subject, f.Rule, f.Want)
		}
		return fmt.Sprintf("fact %s is %q; rule %q requires it to %s", f.Subject, f.Value, f.Rule, f.Want)
	case KindInterfaceDown:
		return fmt.Sprintf("interface %s is %s; rule %q requires it up", f.Subject, f.Value, f.Rule)
	case KindIdentityConflict:
		return "identity conflict: " + f.Value
	case KindMissing:
		state := f.Want
		if state == "" {
			state = "running"
		}
		return fmt.Sprintf("host %s is %s according to its provider, but %s scans in a row did not find it (rule %q)", host, state, f.Value, f.Rule)
	case KindUnmanaged:
		return fmt.Sprintf("host %s is seen by %s but none of %s knows it (rule %q)", host, f.Value, f.Want, f.Rule)
	case KindStaleScan:
		return fmt.Sprintf("last successful scan by job %q was at %s; data older than %s is stale", f.Job, f.Since.UTC().Format(time.RFC3339), f.Limit)
	}
	return string(f.Kind)
}

// DeviationID is stable for one (tenant, rule, asset, kind, port,
// subject), so the same problem keeps its id across scans, restarts and
// reopenings.
func DeviationID(tenant, assetID string, f Finding) string {
	h := sha256.New()
	for _, part := range []string{tenant, f.Rule, assetID, string(f.Kind), string(f.Protocol), strconv.Itoa(int(f.Port))} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	if f.Subject != "" { // kinds without a subject keep the ids they always had
		h.Write([]byte(f.Subject))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Deviation is a finding with a lifecycle.
type Deviation struct {
	ID       string       `json:"id"`
	Tenant   string       `json:"tenant"`
	Rule     string       `json:"rule"`
	Kind     Kind         `json:"kind"`
	Severity Severity     `json:"severity"`
	State    State        `json:"state"`
	AssetID  string       `json:"asset_id"`
	Host     string       `json:"host"`
	Protocol sdk.Protocol `json:"protocol,omitempty"`
	Port     uint16       `json:"port,omitempty"`
	// SubjectName is the fact or interface of a fact_mismatch or
	// interface_down deviation.
	SubjectName string `json:"subject,omitempty"`
	Detail      string `json:"detail"`
	// FirstSeen is the first time ever; OpenedAt starts the current episode.
	FirstSeen   time.Time  `json:"first_seen"`
	OpenedAt    time.Time  `json:"opened_at"`
	LastSeen    time.Time  `json:"last_seen"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
	Occurrences int        `json:"occurrences"`
	Ack         *Ack       `json:"ack,omitempty"`
	// Hits counts consecutive runs that saw a pending deviation; Misses
	// consecutive runs that no longer saw an open one.
	Hits   int `json:"hits,omitempty"`
	Misses int `json:"misses,omitempty"`
	// Damping is the rule's as of the last finding.
	Damping *Damping `json:"damping,omitempty"`
	// Changes holds the times it opened or resolved within the flap
	// window; Flapping is set while there are too many.
	Changes  []time.Time `json:"changes,omitempty"`
	Flapping bool        `json:"flapping,omitempty"`
}

// Ack records who accepted a deviation, why and until when.
type Ack struct {
	By      string     `json:"by"`
	Comment string     `json:"comment"`
	At      time.Time  `json:"at"`
	Until   *time.Time `json:"until,omitempty"`
}

// Active reports whether the deviation is open or acknowledged: neither
// resolved nor still held back by its damping.
func (d *Deviation) Active() bool { return d.State == StateOpen || d.State == StateAcknowledged }

// Subject names what the deviation is about, for one-line output.
func (d *Deviation) Subject() string {
	switch {
	case d.Port != 0:
		return fmt.Sprintf("%s %s/%d", d.Host, d.Protocol, d.Port)
	case d.Kind == KindInterfaceDown:
		return d.Host + " interface " + d.SubjectName
	case d.SubjectName != "":
		return d.Host + " " + d.SubjectName
	}
	return d.Host
}
