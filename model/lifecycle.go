package model

import "time"

// Reconcile moves the deviations of one asset (or one job) to match what
// the rules find now. existing holds every deviation recorded for the
// subject, in any state; findings is the complete set the engine returned.
// It returns the deviations that changed and must be written.
//
// Resolution is safe here because findings only lose an entry when the
// asset itself changed, and assets only change inside a finished run's
// scope: a failed or partial run never reaches this point.
//
// observed says whether a run just saw the asset; only then does a kept
// deviation's last_seen move. Re-judging stored assets (after a reload)
// must not make old data look fresh.
func Reconcile(tenant string, a *Asset, existing []Deviation, findings []Finding, now time.Time, observed bool) []Deviation {
	byID := make(map[string]*Deviation, len(existing))
	for i := range existing {
		byID[existing[i].ID] = &existing[i]
	}
	var changed []Deviation
	seen := make(map[string]bool, len(findings))
	for _, f := range findings {
		id := DeviationID(tenant, a.ID, f)
		if seen[id] {
			continue
		}
		seen[id] = true
		d, ok := byID[id]
		switch {
		case !ok:
			changed = append(changed, Deviation{
				ID: id, Tenant: tenant, Rule: f.Rule, Kind: f.Kind, Severity: f.Severity,
				State: StateOpen, AssetID: a.ID, Host: a.Host(), Protocol: f.Protocol, Port: f.Port, SubjectName: f.Subject,
				Detail: f.Detail(a.Host()), FirstSeen: now, OpenedAt: now, LastSeen: now, Occurrences: 1,
			})
		case d.State == StateResolved:
			next := *d
			next.State, next.OpenedAt, next.LastSeen, next.ResolvedAt, next.Ack = StateOpen, now, now, nil, nil
			next.Severity, next.Detail, next.Host = f.Severity, f.Detail(a.Host()), a.Host()
			next.Occurrences++
			changed = append(changed, next)
		default:
			next := *d
			next.Severity, next.Detail = f.Severity, f.Detail(a.Host())
			if observed {
				next.LastSeen = now
			}
			if next.State == StateAcknowledged && next.Ack != nil && next.Ack.Until != nil && now.After(*next.Ack.Until) {
				next.State, next.Ack = StateOpen, nil
			}
			if !sameDeviation(&next, d) {
				changed = append(changed, next)
			}
		}
	}
	for i := range existing {
		d := existing[i]
		if seen[d.ID] || d.State == StateResolved {
			continue
		}
		resolved := now
		d.State, d.ResolvedAt, d.LastSeen = StateResolved, &resolved, now
		changed = append(changed, d)
	}
	return changed
}

func sameDeviation(a, b *Deviation) bool {
	return a.State == b.State && a.Severity == b.Severity && a.Detail == b.Detail &&
		a.LastSeen.Equal(b.LastSeen) && (a.Ack == nil) == (b.Ack == nil)
}
