package model

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// EventKind says what a deviation's change means to monitoring: one of
// the sdk.Event* kinds, or "" when it is no news (only last_seen or the
// wording moved).
func EventKind(prev, next *Deviation) string {
	wasFlapping := prev != nil && prev.Flapping
	switch {
	case next.Flapping && !wasFlapping:
		// Once, as it starts: from then on its opens and resolves are
		// noise until it settles.
		return sdk.EventFlapping
	case next.Flapping:
		return ""
	case wasFlapping:
		// Settled: say where it ended up.
		if next.Active() {
			return sdk.EventOpened
		}
		return sdk.EventResolved
	}
	switch {
	case prev == nil || prev.State == StateResolved || prev.State == StatePending:
		if next.Active() {
			return sdk.EventOpened
		}
	case next.State == StateResolved:
		return sdk.EventResolved
	case prev.State == StateAcknowledged && next.State == StateOpen:
		return sdk.EventUnacknowledged
	case prev.State == StateOpen && next.State == StateAcknowledged,
		prev.State == StateAcknowledged && next.State == StateAcknowledged && prev.Ack != nil && next.Ack != nil && !prev.Ack.At.Equal(next.Ack.At):
		return sdk.EventAcknowledged
	case prev.Severity != next.Severity:
		return sdk.EventSeverityChanged
	}
	return ""
}

// NewEvent describes d after a change of the given kind at now. Its id is
// fixed when the event is made and travels with every retry, so receivers
// that deduplicate see each event once.
func NewEvent(d *Deviation, kind string, now time.Time) sdk.Event {
	h := sha256.Sum256([]byte(d.Tenant + "\x00" + d.ID + "\x00" + kind + "\x00" + strconv.FormatInt(now.UnixNano(), 10)))
	ev := sdk.Event{
		ID: hex.EncodeToString(h[:10]), Kind: kind, Time: now, Tenant: d.Tenant,
		Deviation: sdk.DeviationEvent{
			ID: d.ID, Rule: d.Rule, Kind: string(d.Kind), Severity: string(d.Severity), State: string(d.State),
			AssetID: d.AssetID, Host: d.Host, Protocol: d.Protocol, Port: d.Port, Detail: d.Detail,
			FirstSeen: d.OpenedAt, LastSeen: d.LastSeen,
		},
	}
	if d.Ack != nil {
		ev.Deviation.AckedBy, ev.Deviation.AckComment = d.Ack.By, d.Ack.Comment
	}
	return ev
}

// CountActive adds d, one deviation of ev's host, to ev's counts of the
// host's active deviations and, if d is under ev's rule, to the rule's:
// what a monitoring service per host or per (host, rule) shows. Call it
// for every deviation of the host as it stands after the event.
func CountActive(ev *sdk.Event, d *Deviation) {
	if !d.Active() {
		return
	}
	e := &ev.Deviation
	e.HostActive++
	if e.HostWorst == "" || d.Severity.Rank() > Severity(e.HostWorst).Rank() {
		e.HostWorst = string(d.Severity)
	}
	if d.Rule == e.Rule {
		e.RuleActive++
		if e.RuleWorst == "" || d.Severity.Rank() > Severity(e.RuleWorst).Rank() {
			e.RuleWorst = string(d.Severity)
		}
	}
}
