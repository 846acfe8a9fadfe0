// Package ingest applies the result of one finished job run to the store:
// it merges observations into assets (recording a history version for
// every change), marks hosts the scope covered but the run did not find as
// down, asks the rules engine what each changed asset breaks, and moves
// deviations through their lifecycle. Each batch of assets and the
// deviations they cause commit in one transaction, so a crash leaves no
// asset whose deviations disagree with it.
//
// Only finished runs reach this package: a failed, timed-out or cancelled
// run is never applied, so it can neither close ports nor resolve
// deviations.
package ingest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// batchSize bounds how many assets one transaction holds; Badger refuses
// transactions larger than a fraction of its memtable.
const batchSize = 256

// Summary counts what applying one run did.
type Summary struct {
	Hosts    int `json:"hosts"`
	Changed  int `json:"changed"`
	Down     int `json:"down"`
	Opened   int `json:"opened"`
	Resolved int `json:"resolved"`
	Skipped  int `json:"skipped"` // observations without an IP address
	// Events counts deviation events queued for sinks.
	Events int `json:"events"`
}

// Applier writes runs into a store, judged by the engine current at the
// time of each batch.
type Applier struct {
	Store  *store.Store
	Engine func() *rules.Engine
	Now    func() time.Time
	// Route names the sinks an event goes to; nil queues no events. The
	// events are written in the transaction of the deviation change that
	// causes them.
	Route func(ev *sdk.Event) []string
	// Queued is called after a commit that queued events, so delivery
	// starts without waiting for a poll.
	Queued func()
}

// Apply merges a finished run held in memory.
func (a *Applier) Apply(ctx context.Context, run *model.Run, obs []sdk.Observation, scope sdk.Scope) (Summary, error) {
	return a.ApplyFrom(ctx, run, Slice(obs), scope)
}

// ApplyFrom merges a finished run. run identifies the job; scope is what
// the run covered. Observations are read once, batch by batch, so a run
// spooled to disk is never held in memory whole.
func (a *Applier) ApplyFrom(ctx context.Context, run *model.Run, obs Observations, scope sdk.Scope) (Summary, error) {
	sum := Summary{Hosts: obs.Hosts(), Skipped: obs.Skipped()}
	now := a.now()
	var state store.JobState
	if err := a.Store.View(ctx, func(t *store.Txn) error {
		var err error
		state, err = t.JobState(run.Tenant, run.Job)
		return err
	}); err != nil {
		return sum, fmt.Errorf("ingest: read job state: %w", err)
	}
	ref := model.RunRef{Source: run.Source, Job: run.Job, RunID: run.ID, Baseline: state.SucceededCount == 0}

	// seen serves the search for absent hosts, which only a scope with
	// address ranges has; a provider pull without one skips the cost.
	var mu sync.Mutex // guards seen across batch workers
	var seen *idSet
	if len(scope.Prefixes) > 0 {
		seen = newIDSet(obs.Hosts())
	}
	err := batches(ctx, a.Store, func(feed func([]*sdk.Observation) error) error {
		return obs.Each(batchSize, feed)
	}, func(t *store.Txn, batch []*sdk.Observation) (Summary, error) {
		var part Summary
		ids := make([]string, 0, len(batch))
		for _, o := range batch {
			r, err := resolve(t, run.Tenant, o)
			if err != nil {
				return part, err
			}
			ids = append(ids, r.id)
			for _, ab := range r.absorb {
				ids = append(ids, ab.ID)
			}
			if err := a.apply(t, r, o, run.Tenant, scope, ref, now, &part); err != nil {
				return part, err
			}
		}
		if seen != nil {
			mu.Lock()
			for _, id := range ids {
				seen.note(id)
			}
			mu.Unlock()
		}
		return part, nil
	}, &sum)
	if err != nil {
		return sum, fmt.Errorf("ingest: apply run %s: %w", run.ID, err)
	}

	// Hosts the scope covered that the run did not find are down, once
	// as many successful runs in a row as their rules' gone_after have
	// missed them.
	var absent []string
	var earlier []time.Time // starts of this job's earlier successful runs, newest first
	if err := a.Store.View(ctx, func(t *store.Txn) error {
		if len(scope.Prefixes) > 0 {
			runs, err := t.Runs(run.Tenant, run.Job, 64)
			if err != nil {
				return err
			}
			for _, r := range runs {
				if r.ID != run.ID && r.Status == model.RunSucceeded {
					earlier = append(earlier, r.Start)
				}
			}
		}
		for _, p := range scope.Prefixes {
			if err := t.AssetIDsInPrefix(run.Tenant, p, func(id string) error {
				if seen.add(id) {
					absent = append(absent, id)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return sum, fmt.Errorf("ingest: find absent hosts: %w", err)
	}
	err = batches(ctx, a.Store, chunks(absent), func(t *store.Txn, ids []string) (Summary, error) {
		var part Summary
		for _, id := range ids {
			prev, err := t.Asset(run.Tenant, id)
			if err != nil {
				return part, err
			}
			var next model.Asset
			var changes []model.Change
			if prev.Status == sdk.StatusUp && !a.gone(prev, earlier) {
				next = cloneAsset(prev)
			} else {
				next, changes = model.MarkAbsent(*prev, scope, ref, now)
				if prev.Status == sdk.StatusUp {
					part.Down++
				}
			}
			// A provider's machine counts the scans that miss it, whatever
			// its status says (the provider keeps reporting it up).
			changes = append(changes, model.MissedByScan(&next, a.missingAfter(prev))...)
			if len(changes) == 0 {
				continue
			}
			if err := a.write(t, prev, &next, changes, ref, now, &part); err != nil {
				return part, err
			}
		}
		return part, nil
	}, &sum)
	if err != nil {
		return sum, fmt.Errorf("ingest: mark absent hosts of run %s: %w", run.ID, err)
	}
	a.notify(sum)
	return sum, nil
}

// missingAfter is how many scans must miss a as its rules count.
func (a *Applier) missingAfter(as *model.Asset) int {
	if eng := a.Engine(); eng != nil {
		return eng.MissingAfter(as)
	}
	return 0
}

// gone reports whether an asset this run did not find has now been
// missed by as many successful runs in a row as its rules ask
// (gone_after): this one, and the earlier ones since it was last seen.
func (a *Applier) gone(as *model.Asset, earlier []time.Time) bool {
	k := 1
	if eng := a.Engine(); eng != nil {
		k = eng.GoneAfter(as)
	}
	missed := 1
	for _, start := range earlier {
		if missed >= k || !start.After(as.LastSeen) {
			break
		}
		missed++
	}
	return missed >= k
}

func (a *Applier) notify(sum Summary) {
	if sum.Events > 0 && a.Queued != nil {
		a.Queued()
	}
}

// chunks feeds items in batches of batchSize.
func chunks[T any](items []T) func(func([]T) error) error {
	return func(feed func([]T) error) error {
		for start := 0; start < len(items); start += batchSize {
			if err := feed(items[start:min(start+batchSize, len(items))]); err != nil {
				return err
			}
		}
		return nil
	}
}

// Reevaluate judges every asset of tenant again, for a new rule set or the
// passing of time (stale scans). Assets do not change.
func (a *Applier) Reevaluate(ctx context.Context, tenant string) (Summary, error) {
	var sum Summary
	now := a.now()
	var ids []string
	if err := a.Store.View(ctx, func(t *store.Txn) error {
		return t.ForEachAsset(tenant, func(as *model.Asset) error {
			ids = append(ids, as.ID)
			return nil
		})
	}); err != nil {
		return sum, fmt.Errorf("ingest: list assets: %w", err)
	}
	err := batches(ctx, a.Store, chunks(ids), func(t *store.Txn, ids []string) (Summary, error) {
		var part Summary
		for _, id := range ids {
			as, err := t.Asset(tenant, id)
			if err != nil {
				return part, err
			}
			if err := a.judge(t, as, now, false, false, &part); err != nil {
				return part, err
			}
		}
		return part, nil
	}, &sum)
	if err != nil {
		return sum, fmt.Errorf("ingest: re-evaluate: %w", err)
	}
	a.notify(sum)
	return sum, nil
}

// batches runs fn over the batches produce hands out, each in a
// transaction of its own, on four workers. A worker hands each commit to
// Badger's single writer and builds its next batch while the writer
// works, so building and writing overlap even on one core. Batches hold
// disjoint assets; should two ever touch the same one, Badger's conflict
// detection makes the later one retry. sum receives the counts of the
// batches that committed.
func batches[T any](ctx context.Context, st *store.Store, produce func(feed func([]T) error) error, fn func(t *store.Txn, batch []T) (Summary, error), sum *Summary) error {
	const workers = 4
	var (
		mu      sync.Mutex
		first   error
		wg      sync.WaitGroup
		commits sync.WaitGroup
		work    = make(chan []T)
		// Bounds the batches built but not yet written, so a slow disk
		// holds back the builders instead of filling memory.
		inFlight = make(chan struct{}, 2*workers)
	)
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range work {
				if failed() != nil {
					continue // drain what the producer already handed over
				}
				var part Summary // written by fn, read once the commit is done
				inFlight <- struct{}{}
				commits.Add(1)
				st.UpdateAsync(ctx, func(t *store.Txn) error {
					var err error
					part, err = fn(t, batch) // a retried transaction recounts from zero
					return err
				}, func(err error) {
					defer commits.Done()
					defer func() { <-inFlight }()
					if err != nil {
						fail(err)
						return
					}
					mu.Lock()
					sum.add(part)
					mu.Unlock()
				})
			}
		}()
	}
	perr := produce(func(batch []T) error {
		if err := failed(); err != nil {
			return err
		}
		select {
		case work <- batch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(work)
	wg.Wait()
	commits.Wait()
	if err := failed(); err != nil {
		return err
	}
	return perr
}

// Add counts o into s, for a run applied in parts.
func (s *Summary) Add(o Summary) {
	s.Hosts += o.Hosts
	s.add(o)
}

func (s *Summary) add(o Summary) {
	s.Changed += o.Changed
	s.Down += o.Down
	s.Opened += o.Opened
	s.Resolved += o.Resolved
	s.Events += o.Events
}

func (a *Applier) write(t *store.Txn, prev, next *model.Asset, changes []model.Change, ref model.RunRef, now time.Time, sum *Summary) error {
	if prev != nil {
		next.Version = prev.Version
	}
	if len(changes) > 0 {
		next.Version++
		sum.Changed++
		if err := t.PutVersion(prev, &model.Version{
			AssetID: next.ID, Version: next.Version, Time: now, Source: ref.Source,
			Job: ref.Job, RunID: ref.RunID, Changes: changes, Asset: *next,
		}); err != nil {
			return err
		}
	} else if err := t.PutAsset(next, prev); err != nil {
		return err
	}
	return a.judge(t, next, now, true, prev == nil, sum)
}

// judge evaluates as and moves its deviations on. A new asset has none
// yet, which saves a read per host of a first run.
func (a *Applier) judge(t *store.Txn, as *model.Asset, now time.Time, observed, isNew bool, sum *Summary) error {
	findings := a.Engine().Evaluate(as, now, nil)
	if isNew && len(findings) == 0 {
		return nil
	}
	var existing []model.Deviation
	if !isNew {
		var err error
		if existing, err = t.DeviationsOfAsset(as.Tenant, as.ID); err != nil {
			return err
		}
	}
	if len(findings) == 0 && !anyActive(existing) {
		return nil
	}
	changed := model.Reconcile(as.Tenant, as, existing, findings, now, observed)
	for i := range changed {
		d := &changed[i]
		switch {
		case d.State == model.StateResolved:
			sum.Resolved++
		case d.OpenedAt.Equal(now):
			sum.Opened++
		}
		if err := t.PutDeviation(d); err != nil {
			return err
		}
	}
	return a.queueEvents(t, existing, changed, now, sum)
}

// queueEvents queues the events of one asset's changed deviations, each
// with the state of its (host, rule) after all the changes.
func (a *Applier) queueEvents(t *store.Txn, existing, changed []model.Deviation, now time.Time, sum *Summary) error {
	if a.Route == nil || len(changed) == 0 {
		return nil
	}
	after := make(map[string]*model.Deviation, len(existing)+len(changed))
	for i := range existing {
		after[existing[i].ID] = &existing[i]
	}
	for i := range changed {
		after[changed[i].ID] = &changed[i]
	}
	for i := range changed {
		if err := a.queueEvent(t, previous(existing, changed[i].ID), &changed[i], after, now, sum); err != nil {
			return err
		}
	}
	return nil
}

// queueEvent puts the event a deviation change means, if any, into the
// outbox of every sink it is routed to.
func (a *Applier) queueEvent(t *store.Txn, prev, next *model.Deviation, after map[string]*model.Deviation, now time.Time, sum *Summary) error {
	if a.Route == nil {
		return nil
	}
	kind := model.EventKind(prev, next)
	if kind == "" {
		return nil
	}
	ev := model.NewEvent(next, kind, now)
	for _, d := range after {
		model.CountActive(&ev, d)
	}
	for _, sink := range a.Route(&ev) {
		if err := t.Enqueue(sink, &ev); err != nil {
			return err
		}
		sum.Events++
	}
	return nil
}

func previous(existing []model.Deviation, id string) *model.Deviation {
	for i := range existing {
		if existing[i].ID == id {
			return &existing[i]
		}
	}
	return nil
}

func anyActive(ds []model.Deviation) bool {
	for i := range ds {
		if ds[i].Active() {
			return true
		}
	}
	return false
}

// idSet is a set of asset ids. The ids AssetID makes are 16 hex digits,
// which it keeps as the 8 bytes they spell, with nothing for the garbage
// collector to scan. The ids a run's batches found are only noted, by an
// append to a slice; the first add sorts them once and answers from them
// by binary search, and the ids added from then on (the absent hosts) go
// into a map beside them. The batch workers then pay an append per host
// instead of an insert at a random place of a million-entry map, which
// beside Badger's writer cost them 7-10 % of their time; the search for
// absent hosts pays a binary search instead of a map lookup, which
// costs about the same.
type idSet struct {
	noted  []uint64 // sorted and without duplicates from sorted on
	sorted bool
	hex    map[uint64]struct{}
	other  map[string]struct{}
}

func newIDSet(n int) *idSet {
	return &idSet{noted: make([]uint64, 0, n), hex: map[uint64]struct{}{}, other: map[string]struct{}{}}
}

// note adds id without saying whether it was new.
func (s *idSet) note(id string) {
	if v, ok := hexID(id); ok && !s.sorted {
		s.noted = append(s.noted, v)
		return
	}
	s.add(id)
}

// add adds id and reports whether it was new.
func (s *idSet) add(id string) bool {
	if v, ok := hexID(id); ok {
		if !s.sorted {
			slices.Sort(s.noted)
			s.noted = slices.Compact(s.noted)
			s.sorted = true
		}
		if _, dup := slices.BinarySearch(s.noted, v); dup {
			return false
		}
		if _, dup := s.hex[v]; dup {
			return false
		}
		s.hex[v] = struct{}{}
		return true
	}
	if _, dup := s.other[id]; dup {
		return false
	}
	s.other[id] = struct{}{}
	return true
}

// hexID reads an id of 16 lower-case hex digits, as AssetID makes them.
func hexID(id string) (uint64, bool) {
	if len(id) != 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// AssetID derives the id of an asset first known by its address
// (model.AddressAssetID).
func AssetID(tenant string, ip netip.Addr) string { return model.AddressAssetID(tenant, ip) }

// legacyAssetID is the id AssetID gave a host first known by an IPv4
// address before ids began with it: a hash alone.
func legacyAssetID(tenant string, ip netip.Addr) string {
	return model.LegacyAddressAssetID(tenant, ip)
}

func (a *Applier) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}
