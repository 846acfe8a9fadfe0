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
// deviation's last_seen move, and only then do damping's counts move.
// Re-judging stored assets (after a reload) must not make old data look
// fresh, nor count as another observation.
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
		damping := dampingOf(f.Damping)
		switch {
		case !ok:
			next := Deviation{
				ID: id, Tenant: tenant, Rule: f.Rule, Kind: f.Kind, Severity: f.Severity,
				State: StatePending, AssetID: a.ID, Host: a.Host(), Protocol: f.Protocol, Port: f.Port, SubjectName: f.Subject,
				Detail: f.Detail(a.Host()), FirstSeen: now, LastSeen: now, Hits: 1, Damping: damping,
			}
			if next.Hits >= f.Damping.OpenAfter {
				open(&next, now)
			}
			flap(&next, now)
			changed = append(changed, next)
		case d.State == StateResolved || d.State == StatePending:
			next := *d
			next.Severity, next.Detail, next.Host, next.Damping = f.Severity, f.Detail(a.Host()), a.Host(), damping
			if d.State == StateResolved {
				next.State, next.Hits, next.Misses, next.ResolvedAt, next.Ack = StatePending, 0, 0, nil, nil
			}
			if observed || d.State == StateResolved {
				next.Hits++
				next.LastSeen = now
			}
			if next.Hits >= f.Damping.OpenAfter {
				open(&next, now)
			}
			flap(&next, now)
			if !sameDeviation(&next, d) {
				changed = append(changed, next)
			}
		default:
			next := *d
			next.Severity, next.Detail, next.Damping, next.Misses = f.Severity, f.Detail(a.Host()), damping, 0
			if observed {
				next.LastSeen = now
			}
			if next.State == StateAcknowledged && next.Ack != nil && next.Ack.Until != nil && now.After(*next.Ack.Until) {
				next.State, next.Ack = StateOpen, nil
			}
			flap(&next, now)
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
		prev := d
		switch {
		case d.State == StatePending:
			// Never opened: it goes without a word.
			resolved := now
			d.State, d.ResolvedAt, d.Hits = StateResolved, &resolved, 0
		case !observed:
			// Re-judged without a new run: the finding went because the
			// rules changed, so there is nothing to wait for.
			resolve(&d, now)
		default:
			d.Misses++
			after := 1
			if d.Damping != nil && d.Damping.ResolveAfter > 1 {
				after = d.Damping.ResolveAfter
			}
			if d.Misses >= after {
				resolve(&d, now)
			}
		}
		flap(&d, now)
		if !sameDeviation(&d, &prev) {
			changed = append(changed, d)
		}
	}
	return changed
}

func dampingOf(d Damping) *Damping {
	if d == (Damping{}) {
		return nil
	}
	return &d
}

// open starts an episode of a deviation.
func open(d *Deviation, now time.Time) {
	d.State, d.OpenedAt, d.LastSeen, d.Hits, d.Misses = StateOpen, now, now, 0, 0
	d.Occurrences++
	d.Changes = append(d.Changes, now)
}

func resolve(d *Deviation, now time.Time) {
	resolved := now
	d.State, d.ResolvedAt, d.LastSeen, d.Misses = StateResolved, &resolved, now, 0
	d.Changes = append(d.Changes, now)
}

// flap keeps the changes within the window and decides flapping, with
// hysteresis: on at FlapChanges, off below half of it, as Icinga does with
// its two thresholds.
func flap(d *Deviation, now time.Time) {
	if d.Damping == nil || d.Damping.FlapChanges <= 0 || d.Damping.FlapWindow <= 0 {
		d.Changes, d.Flapping = nil, false
		return
	}
	kept := d.Changes[:0:0]
	for _, t := range d.Changes {
		if now.Sub(t) < d.Damping.FlapWindow {
			kept = append(kept, t)
		}
	}
	d.Changes = kept
	switch n := len(kept); {
	case n >= d.Damping.FlapChanges:
		d.Flapping = true
	case n*2 < d.Damping.FlapChanges:
		d.Flapping = false
	}
}

func sameDeviation(a, b *Deviation) bool {
	return a.State == b.State && a.Severity == b.Severity && a.Detail == b.Detail &&
		a.LastSeen.Equal(b.LastSeen) && (a.Ack == nil) == (b.Ack == nil) && a.Hits == b.Hits && a.Misses == b.Misses &&
		a.Flapping == b.Flapping && len(a.Changes) == len(b.Changes) && (a.Damping == nil) == (b.Damping == nil) &&
		(a.Damping == nil || *a.Damping == *b.Damping)
}
