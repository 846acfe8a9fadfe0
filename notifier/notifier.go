// Package notifier delivers deviation events to sinks. Events wait in the
// store's outbox, one queue per sink, written in the same transaction as
// the deviation change that caused them (ingest does that, routed by
// Route). One worker per sink sends them in order, in batches, retries
// what was not taken with exponential backoff and jitter, and moves what
// a sink refuses for good to its dead letters, where /v1/sinks shows it.
//
// Delivery is at least once: an event leaves the queue in the
// transaction after its sink acknowledged it, so a crash between the two
// sends it again, with the same event id for receivers that deduplicate.
package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// Sink is one configured sink.
type Sink struct {
	Name   string
	Type   string
	Impl   sdk.Sink
	Config json.RawMessage
	Filter Filter
	// Fingerprint changes when anything about the sink changes; a reload
	// restarts only sinks whose fingerprint differs.
	Fingerprint string
}

// Filter selects the events a sink gets; an empty list selects all.
type Filter struct {
	Tenants    []string `json:"tenants,omitempty"`
	Severities []string `json:"severities,omitempty"`
	Rules      []string `json:"rules,omitempty"`
	Kinds      []string `json:"kinds,omitempty"`  // deviation kinds
	Events     []string `json:"events,omitempty"` // event kinds
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev *sdk.Event) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(f.Tenants, ev.Tenant) && in(f.Severities, ev.Deviation.Severity) && in(f.Rules, ev.Deviation.Rule) &&
		in(f.Kinds, ev.Deviation.Kind) && in(f.Events, ev.Kind)
}

// Resender is a sink that needs the active deviations posted again at an
// interval (Alertmanager forgets alerts that are not).
type Resender interface {
	ResendInterval(config json.RawMessage) time.Duration
}

// Options tune delivery.
type Options struct {
	Logger hclog.Logger
	// Active returns an event for every active deviation, for Resenders.
	Active func(ctx context.Context) ([]sdk.Event, error)
	// Batch is how many events one Deliver call carries (default 100).
	Batch int
	// MinBackoff and MaxBackoff bound the wait after a failed delivery
	// (defaults 1s and 5m); it doubles per consecutive failure, with
	// jitter of ±50%.
	MinBackoff, MaxBackoff time.Duration
	// Poll is how often an idle worker looks at its queue even when not
	// woken (default 5s): events queued by another process show up too.
	Poll time.Duration
	// DeliverTimeout bounds one Deliver call (default 30s).
	DeliverTimeout time.Duration
	// Hold, if set, says until when an event must stay queued (a
	// maintenance window covers its host); zero delivers it now.
	Hold func(ev *sdk.Event) time.Time
}

// Manager runs one worker per sink.
type Manager struct {
	st   *store.Store
	opts Options
	log  hclog.Logger

	mu      sync.Mutex
	workers map[string]*worker
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a manager with no sinks.
func New(st *store.Store, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.DeliverTimeout <= 0 {
		opts.DeliverTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{st: st, opts: opts, log: opts.Logger, workers: map[string]*worker{}, ctx: ctx, cancel: cancel}
}

// Update installs a new set of sinks: workers of removed or changed sinks
// stop, new ones start. Queues of removed sinks stay in the store.
func (m *Manager) Update(sinks []Sink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]bool{}
	for _, s := range sinks {
		keep[s.Name] = true
		if w := m.workers[s.Name]; w != nil {
			if w.sink.Fingerprint == s.Fingerprint {
				continue
			}
			w.stop()
		}
		w := &worker{m: m, sink: s, wake: make(chan struct{}, 1), log: m.log.Named(s.Name)}
		ctx, cancel := context.WithCancel(m.ctx)
		w.cancel = cancel
		w.done = make(chan struct{})
		m.workers[s.Name] = w
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer close(w.done)
			w.run(ctx)
		}()
	}
	for name, w := range m.workers {
		if !keep[name] {
			w.stop()
			delete(m.workers, name)
		}
	}
}

// Route names the sinks whose filter takes ev.
func (m *Manager) Route(ev *sdk.Event) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name, w := range m.workers {
		if w.sink.Filter.Match(ev) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Wake tells every worker to look at its queue now.
func (m *Manager) Wake() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Stop ends every worker; events not yet delivered stay queued.
func (m *Manager) Stop() {
	m.cancel()
	m.wg.Wait()
}

// Status is what /v1/sinks shows of one sink.
type Status struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Filter      Filter `json:"filter"`
	Queued      int    `json:"queued"`
	OldestAge   string `json:"oldest_undelivered_age,omitempty"`
	oldest      time.Duration
	DeadLetters int            `json:"dead_letters"`
	Delivered   int64          `json:"delivered"`
	Failures    int64          `json:"failures"`
	LastError   string         `json:"last_error,omitempty"`
	LastSuccess *time.Time     `json:"last_success,omitempty"`
	Dead        []store.Queued `json:"dead,omitempty"`
}

// OldestSeconds is the age of the oldest undelivered event.
func (s Status) OldestSeconds() float64 { return s.oldest.Seconds() }

// Statuses reports every sink, by name.
func (m *Manager) Statuses(ctx context.Context, withDead bool) ([]Status, error) {
	m.mu.Lock()
	workers := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		workers = append(workers, w)
	}
	m.mu.Unlock()
	sort.Slice(workers, func(i, j int) bool { return workers[i].sink.Name < workers[j].sink.Name })
	out := make([]Status, 0, len(workers))
	now := time.Now()
	for _, w := range workers {
		s := w.status()
		if err := m.st.View(ctx, func(t *store.Txn) error {
			var err error
			s.Queued, s.oldest, s.DeadLetters, err = t.QueueStats(w.sink.Name, now)
			if err == nil && withDead {
				s.Dead, err = t.DeadLetters(w.sink.Name, 100)
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("sink %s: %w", w.sink.Name, err)
		}
		if s.Queued > 0 {
			s.OldestAge = s.oldest.Round(time.Second).String()
		}
		out = append(out, s)
	}
	return out, nil
}

type worker struct {
	m      *Manager
	sink   Sink
	log    hclog.Logger
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	delivered   int64
	failures    int64
	lastError   string
	lastSuccess *time.Time
}

func (w *worker) stop() {
	w.cancel()
	<-w.done
}

func (w *worker) status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Status{Name: w.sink.Name, Type: w.sink.Type, Filter: w.sink.Filter, Delivered: w.delivered, Failures: w.failures,
		LastError: w.lastError, LastSuccess: w.lastSuccess}
}

func (w *worker) run(ctx context.Context) {
	failed := 0 // consecutive failures, for the backoff
	var resend <-chan time.Time
	if r, ok := w.sink.Impl.(Resender); ok && w.m.opts.Active != nil {
		if every := r.ResendInterval(w.sink.Config); every > 0 {
			t := time.NewTicker(every)
			defer t.Stop()
			resend = t.C
		}
	}
	for ctx.Err() == nil {
		select {
		case <-resend:
			w.resend(ctx)
		default:
		}
		var batch []store.Queued
		err := w.m.st.View(ctx, func(t *store.Txn) error {
			var err error
			batch, err = t.Queue(w.sink.Name, w.m.opts.Batch)
			return err
		})
		if err != nil {
			w.log.Error("read queue", "error", err)
			w.sleep(ctx, w.backoff(&failed))
			continue
		}
		batch, wait := w.release(batch)
		if len(batch) == 0 {
			if !wait.IsZero() {
				// Everything queued is held: look again when the first
				// hold ends, or sooner if woken.
				w.sleepUntil(ctx, wait, resend)
			} else {
				w.idle(ctx, resend)
			}
			continue
		}
		if retry := w.deliver(ctx, batch); retry {
			w.sleep(ctx, w.backoff(&failed))
		} else {
			failed = 0
		}
	}
}

// release drops the events that must wait from batch and returns the
// earliest end of a hold among them (zero if none is held). Events of a
// held host wait; everything else goes on in order.
func (w *worker) release(batch []store.Queued) ([]store.Queued, time.Time) {
	if w.m.opts.Hold == nil {
		return batch, time.Time{}
	}
	var wait time.Time
	out := batch[:0]
	for _, q := range batch {
		if until := w.m.opts.Hold(&q.Event); !until.IsZero() && until.After(time.Now()) {
			if wait.IsZero() || until.Before(wait) {
				wait = until
			}
			continue
		}
		out = append(out, q)
	}
	return out, wait
}

func (w *worker) sleepUntil(ctx context.Context, until time.Time, resend <-chan time.Time) {
	t := time.NewTimer(min(time.Until(until), w.m.opts.Poll))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-t.C:
	case <-resend:
		w.resend(ctx)
	}
}

// deliver sends one batch and records the outcome of every event; it
// reports whether something is left to retry.
func (w *worker) deliver(ctx context.Context, batch []store.Queued) (retry bool) {
	events := make([]sdk.Event, len(batch))
	for i := range batch {
		events[i] = batch[i].Event
	}
	dctx, cancel := context.WithTimeout(ctx, w.m.opts.DeliverTimeout)
	acks, err := w.sink.Impl.Deliver(dctx, sdk.DeliverRequest{Config: w.sink.Config, Events: events})
	cancel()
	if ctx.Err() != nil {
		return false // stopping; the events stay queued
	}
	byID := map[string]sdk.Ack{}
	if err != nil {
		for _, e := range events {
			byID[e.ID] = sdk.Ack{EventID: e.ID, Error: err.Error()}
		}
	} else {
		for _, a := range acks {
			byID[a.EventID] = a
		}
	}
	var delivered, buried, retried int
	var lastErr string
	if uerr := w.m.st.Update(context.WithoutCancel(ctx), func(t *store.Txn) error {
		delivered, buried, retried = 0, 0, 0
		for i := range batch {
			q := &batch[i]
			a, ok := byID[q.Event.ID]
			switch {
			case !ok:
				lastErr = "the sink gave no answer for the event"
				retried++
				if err := t.Retry(q, lastErr); err != nil {
					return err
				}
			case a.Delivered:
				delivered++
				if err := t.Delivered(q); err != nil {
					return err
				}
			case a.Permanent:
				lastErr = a.Error
				buried++
				if err := t.Bury(w.sink.Name, q, a.Error); err != nil {
					return err
				}
			default:
				lastErr = a.Error
				retried++
				if err := t.Retry(q, a.Error); err != nil {
					return err
				}
			}
		}
		return nil
	}); uerr != nil {
		w.log.Error("record deliveries", "error", uerr)
		return true
	}
	now := time.Now()
	w.mu.Lock()
	w.delivered += int64(delivered)
	w.failures += int64(buried + retried)
	if delivered > 0 {
		w.lastSuccess = &now
	}
	if lastErr != "" {
		w.lastError = lastErr
	}
	w.mu.Unlock()
	if buried > 0 {
		w.log.Error("sink refused events for good; they are kept as dead letters", "events", buried, "error", lastErr)
	}
	if retried > 0 {
		w.log.Warn("delivery failed; will retry", "events", retried, "error", lastErr)
	}
	return retried > 0
}

func (w *worker) backoff(failed *int) time.Duration {
	*failed++
	d := w.m.opts.MinBackoff << min(*failed-1, 20)
	if d > w.m.opts.MaxBackoff || d <= 0 {
		d = w.m.opts.MaxBackoff
	}
	// ±50% jitter, so sinks that failed together do not retry together.
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

func (w *worker) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (w *worker) idle(ctx context.Context, resend <-chan time.Time) {
	t := time.NewTimer(w.m.opts.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-t.C:
	case <-resend:
		w.resend(ctx)
	}
}

// resend posts every active deviation the sink's filter takes, once, not
// through the queue: a failed resend is made good by the next one.
func (w *worker) resend(ctx context.Context) {
	events, err := w.m.opts.Active(ctx)
	if err != nil {
		w.log.Error("list active deviations", "error", err)
		return
	}
	events = slices.DeleteFunc(events, func(e sdk.Event) bool { return !w.sink.Filter.Match(&e) })
	for len(events) > 0 {
		n := min(len(events), w.m.opts.Batch)
		dctx, cancel := context.WithTimeout(ctx, w.m.opts.DeliverTimeout)
		_, err := w.sink.Impl.Deliver(dctx, sdk.DeliverRequest{Config: w.sink.Config, Events: events[:n]})
		cancel()
		if err != nil {
			w.log.Warn("resending active deviations failed", "error", err)
			return
		}
		events = events[n:]
	}
}
