package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// Executor runs one job once: source, then store, then rules. The daemon's
// scheduler and `sollwert scan` both use it, so a run from the command line
// is the same as a scheduled one.
type Executor struct {
	Store    *store.Store
	Sources  SourceFinder
	Applier  *ingest.Applier
	Logger   hclog.Logger
	Metrics  *Metrics // may be nil
	Now      func() time.Time
	MaxHosts int // observations one run may report; 0 = 16,777,216
	// SpoolDir holds runs' observations until they finish; "" = the
	// system's temporary directory.
	SpoolDir string
	// Progress, if set, hears how many observations a run has reported
	// so far, as batches arrive (for a progress bar).
	Progress func(observations int)
}

// SourceFinder builds sources and sinks by type name; *plugins.Registry
// is one.
type SourceFinder interface {
	Source(name string, log hclog.Logger) (sdk.Source, error)
	Sink(name string, log hclog.Logger) (sdk.Sink, error)
}

// Outcome is what a run did.
type Outcome struct {
	Run     model.Run
	Summary ingest.Summary
}

// Execute runs job. The returned error is the run's failure, already
// recorded in the store.
func (e *Executor) Execute(ctx context.Context, job config.Job, trigger string) (Outcome, error) {
	run := model.Run{
		ID: newRunID(e.now()), Tenant: job.Tenant, Job: job.Name, Source: job.Source,
		Trigger: trigger, Status: model.RunRunning, Start: e.now(),
	}
	log := e.Logger.With("job", job.Name, "run", run.ID)
	// Bookkeeping must land even when the run's own context is done.
	bg := context.WithoutCancel(ctx)
	if err := e.Store.Update(bg, func(t *store.Txn) error { return t.PutRun(&run) }); err != nil {
		return Outcome{Run: run}, fmt.Errorf("job %q: record run start: %w", job.Name, err)
	}
	log.Info("run started", "source", job.Source, "trigger", trigger)

	out, err := e.discoverAndApply(ctx, bg, job, &run, log)
	end := e.now()
	run.End = &end
	switch {
	case err == nil:
		run.Status = model.RunSucceeded
	case errors.As(err, new(*partialError)):
		run.Status = model.RunPartial
	case errors.Is(err, context.DeadlineExceeded):
		run.Status = model.RunTimedOut
	case errors.Is(err, context.Canceled):
		run.Status = model.RunCancelled
	default:
		run.Status = model.RunFailed
	}
	if err != nil {
		run.Error = err.Error()
	}
	if rerr := e.Store.Update(bg, func(t *store.Txn) error {
		st, err := t.JobState(run.Tenant, run.Job)
		if err != nil {
			return err
		}
		st.LastRunID, st.LastStatus = run.ID, string(run.Status)
		if run.Status == model.RunSucceeded {
			st.SucceededCount++
			st.LastSuccess = &run
		}
		if err := t.PutJobState(run.Tenant, run.Job, st); err != nil {
			return err
		}
		return t.PutRun(&run)
	}); rerr != nil {
		log.Error("cannot record run end", "error", rerr)
	}
	if e.Metrics != nil {
		e.Metrics.observeRun(&run)
	}
	out.Run = run
	if err != nil {
		log.Warn("run failed: nothing was changed", "status", run.Status, "error", err)
		return out, fmt.Errorf("job %q: %w", job.Name, err)
	}
	s := out.Summary
	log.Info("run finished", "duration", end.Sub(run.Start).Round(time.Millisecond), "hosts", s.Hosts,
		"changed", s.Changed, "down", s.Down, "opened", s.Opened, "resolved", s.Resolved)
	return out, nil
}

func (e *Executor) discoverAndApply(ctx, bg context.Context, job config.Job, run *model.Run, log hclog.Logger) (Outcome, error) {
	src, err := e.Sources.Source(job.Source, log)
	if err != nil {
		return Outcome{}, err
	}
	limit := e.MaxHosts
	if limit <= 0 {
		limit = 1 << 24
	}
	// Observations wait on disk until the run has finished: a run that
	// fails half-way must change nothing, and a provider's million hosts
	// must not wait in memory.
	spool, err := ingest.NewSpool(e.SpoolDir)
	if err != nil {
		return Outcome{}, err
	}
	defer spool.Close()
	collect := &collector{e: e, spool: spool, limit: limit, bg: bg, run: run}
	res, err := src.Discover(ctx, sdk.DiscoverRequest{Config: job.SourceConfig, Job: job.Name, Tenant: job.Tenant, RunID: run.ID}, collect)
	if err == nil {
		err = ctx.Err() // a source that ignores cancellation must not count as finished
	}
	collect.mu.Lock()
	defer collect.mu.Unlock()
	if err != nil {
		if collect.parts > 0 {
			run.Hosts, run.Scope = collect.hosts, &collect.scope
			err = &partialError{parts: collect.parts, err: err}
		}
		return Outcome{Summary: collect.sum}, fmt.Errorf("%s: %w", job.Source, err)
	}
	run.Hosts = collect.hosts + spool.Hosts()
	scope := res.Scope
	if collect.parts > 0 {
		scope = unionScope(collect.scope, res.Scope)
	}
	run.Scope = &scope
	run.Warnings = res.Warnings
	// Applying is bounded work on a finished result: finish it even if
	// shutdown starts now, so no run is left half-applied.
	sum, err := e.Applier.ApplyFrom(bg, run, spool, res.Scope)
	collect.sum.Add(sum)
	if err != nil {
		return Outcome{Summary: collect.sum}, err
	}
	return Outcome{Summary: collect.sum}, nil
}

// collector is the executor's emitter: batches wait in the spool until
// the run has finished; finished parts (sdk.PartEmitter) are applied as
// they come, one at a time.
type collector struct {
	e     *Executor
	spool *ingest.Spool
	limit int
	bg    context.Context
	run   *model.Run

	mu    sync.Mutex
	parts int
	hosts int
	scope sdk.Scope
	sum   ingest.Summary
}

func (c *collector) Emit(ctx context.Context, batch []sdk.Observation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spool.Observations()+len(batch) > c.limit {
		return fmt.Errorf("run produced more than %d observations; split the job", c.limit)
	}
	if err := c.spool.Add(batch); err != nil {
		return err
	}
	if c.e.Progress != nil {
		c.e.Progress(c.hosts + c.spool.Observations())
	}
	return ctx.Err()
}

// EmitPart implements sdk.PartEmitter: a finished part is applied with
// its own scope now, as a small run of its own would be.
func (c *collector) EmitPart(ctx context.Context, obs []sdk.Observation, scope sdk.Scope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range obs {
		if err := obs[i].Validate(); err != nil {
			return fmt.Errorf("observation %d of a part: %w", i, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sum, err := c.e.Applier.Apply(c.bg, c.run, obs, scope)
	if err != nil {
		return err
	}
	c.parts++
	c.hosts += len(obs)
	c.scope = unionScope(c.scope, scope)
	c.sum.Add(sum)
	if c.e.Progress != nil {
		c.e.Progress(c.hosts + c.spool.Observations())
	}
	return nil
}

// partialError is a split run of which some parts were applied.
type partialError struct {
	parts int
	err   error
}

func (e *partialError) Error() string {
	return fmt.Sprintf("%v (the %d parts that finished before were applied; the rest of the scope is unchanged)", e.err, e.parts)
}

func (e *partialError) Unwrap() error { return e.err }

func unionScope(a, b sdk.Scope) sdk.Scope {
	out := sdk.Scope{Prefixes: append(append([]netip.Prefix(nil), a.Prefixes...), b.Prefixes...)}
	for _, m := range []map[sdk.Protocol]sdk.PortRanges{a.Ports, b.Ports} {
		for p, r := range m {
			if out.Ports == nil {
				out.Ports = map[sdk.Protocol]sdk.PortRanges{}
			}
			out.Ports[p] = out.Ports[p].Union(r)
		}
	}
	return out
}

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// newRunID sorts by time and stays unique within a millisecond.
func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

// RecoverInterrupted marks runs left "running" by a crash as interrupted.
// Their observations were never applied, so nothing else needs repair.
func RecoverInterrupted(ctx context.Context, st *store.Store, now time.Time) (int, error) {
	var stuck []model.Run
	if err := st.View(ctx, func(t *store.Txn) error {
		return t.ForEachRunning(func(r *model.Run) error { stuck = append(stuck, *r); return nil })
	}); err != nil {
		return 0, fmt.Errorf("find interrupted runs: %w", err)
	}
	for i := range stuck {
		r := &stuck[i]
		r.Status, r.End, r.Error = model.RunInterrupted, &now, "the daemon stopped while this run was in progress"
		if err := st.Update(ctx, func(t *store.Txn) error { return t.PutRun(r) }); err != nil {
			return i, fmt.Errorf("mark run %s interrupted: %w", r.ID, err)
		}
	}
	return len(stuck), nil
}
