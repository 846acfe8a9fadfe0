package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/robfig/cron/v3"
)

// Trigger says why a run started.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// Reasons given to Observer.Skipped.
const (
	reasonRunning  = "still running"
	reasonShutdown = "shutting down"
)

const defaultMaxConcurrent = 4

var (
	// ErrUnknownJob is returned by RunNow for a name that is not scheduled.
	ErrUnknownJob = errors.New("unknown job")
	// ErrAlreadyRunning is returned by RunNow while a run of the job is
	// running or waiting to run.
	ErrAlreadyRunning = errors.New("job is already running")

	errStopped = errors.New("scheduler is stopped")
)

// Job is what the scheduler needs to know about a job.
type Job struct {
	Name     string
	Schedule string        // standard 5-field cron spec or a descriptor such as "@every 5m" or "@hourly"
	Timeout  time.Duration // 0 means no timeout
	Jitter   time.Duration // random delay before a scheduled (not manual) run; 0 means none
	// Spec is an opaque fingerprint of everything else about the job. Update
	// restarts a job only if Schedule, Timeout, Jitter or Spec changed.
	Spec string
}

// Func executes one run of a job. ctx carries the job's timeout and is
// cancelled on shutdown.
type Func func(ctx context.Context, job Job, trigger string) error

// Observer is told about runs the scheduler did not start.
type Observer interface {
	// Skipped reports a run that was declined or abandoned before Func was
	// called; reason is e.g. "still running" or "shutting down".
	Skipped(job Job, trigger string, at time.Time, reason string)
}

// Options configure a Scheduler.
type Options struct {
	MaxConcurrent int // global limit on concurrently running jobs; <=0 means 4
	Logger        hclog.Logger
	Observer      Observer         // may be nil
	Now           func() time.Time // for tests; nil means time.Now
}

// Scheduler runs jobs on their schedules and on demand.
type Scheduler struct {
	run   Func
	log   hclog.Logger
	obs   Observer
	now   func() time.Time
	cron  *cron.Cron
	slots chan struct{}

	// ctx is the parent of every run's context; Stop cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	jobs map[string]*entry
	// running is keyed by name rather than entry so that a run of a job
	// that was changed or removed still blocks the next run of that name:
	// two runs of one job must never overlap.
	running map[string]bool
	started bool
	stopped bool
}

// entry is one scheduled version of a job; Update replaces the entry when
// the job changes, so a tick can tell whether it is still current.
type entry struct {
	job   Job
	sched cron.Schedule
	id    cron.EntryID
}

// New returns a scheduler without jobs; call Update and Start.
func New(run Func, opts Options) *Scheduler {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = defaultMaxConcurrent
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Scheduler{
		run:     run,
		log:     opts.Logger,
		obs:     opts.Observer,
		now:     opts.Now,
		slots:   make(chan struct{}, opts.MaxConcurrent),
		jobs:    make(map[string]*entry),
		running: make(map[string]bool),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cron = cron.New(
		cron.WithParser(parser),
		cron.WithLocation(time.Local),
		cron.WithLogger(cronLogger{opts.Logger}),
	)
	return s
}

// Start starts the cron loop. It does nothing after Stop.
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return
	}
	s.started = true
	s.cron.Start()
}

// Update sets the job list: new jobs are added, missing ones removed,
// changed ones rescheduled, and unchanged ones left untouched so their
// next activation does not move. A run of a removed or changed job is
// allowed to finish. If any job is invalid, nothing changes.
func (s *Scheduler) Update(jobs []Job) error {
	parsed := make(map[string]cron.Schedule, len(jobs))
	for _, j := range jobs {
		if j.Name == "" {
			return errors.New("update jobs: job without a name")
		}
		if _, dup := parsed[j.Name]; dup {
			return fmt.Errorf("update jobs: job %q is listed twice", j.Name)
		}
		sched, err := parse(j.Schedule, s.now())
		if err != nil {
			return fmt.Errorf("job %q: %w", j.Name, err)
		}
		parsed[j.Name] = sched
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.jobs {
		if _, keep := parsed[name]; !keep {
			s.cron.Remove(e.id)
			delete(s.jobs, name)
		}
	}
	for _, j := range jobs {
		old, ok := s.jobs[j.Name]
		if ok && old.job == j {
			continue
		}
		if ok {
			s.cron.Remove(old.id)
		}
		e := &entry{job: j, sched: parsed[j.Name]}
		e.id = s.cron.Schedule(e.sched, cron.FuncJob(func() { s.tick(e) }))
		s.jobs[j.Name] = e
	}
	return nil
}

// RunNow starts a manual run of the job and returns once it is started;
// the run may still be waiting for a concurrency slot. ctx only bounds the
// call: the run outlives it, since callers are typically API requests.
func (s *Scheduler) RunNow(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run job %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.jobs[name]
	switch {
	case !ok:
		return fmt.Errorf("job %q: %w", name, ErrUnknownJob)
	case s.stopped:
		return fmt.Errorf("run job %q: %w", name, errStopped)
	case s.running[name]:
		return fmt.Errorf("job %q: %w", name, ErrAlreadyRunning)
	}
	s.launchLocked(e.job, TriggerManual, 0)
	return nil
}

// Running reports whether a run of the job is running or waiting to run.
func (s *Scheduler) Running(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[name]
}

// Next returns the job's next scheduled activation.
func (s *Scheduler) Next(name string) (time.Time, bool) {
	s.mu.Lock()
	e, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return time.Time{}, false
	}
	// cron only knows the next activation once its loop runs; before that
	// (or if the entry was just replaced) compute it from the schedule.
	if next := s.cron.Entry(e.id).Next; !next.IsZero() {
		return next, true
	}
	return e.sched.Next(s.now()), true
}

// Interval returns the job's nominal interval: the duration of an
// "@every" schedule, or the gap between the next two activations.
func (s *Scheduler) Interval(name string) (time.Duration, bool) {
	s.mu.Lock()
	e, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return 0, false
	}
	return interval(e.sched, s.now()), true
}

// Stop stops scheduling, cancels the contexts of running runs and waits
// for them to return. If ctx ends first, Stop returns its error and the
// remaining runs finish in the background.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	// No tick can start a run from here on: tick and launchLocked check
	// stopped under mu, so wg cannot grow while we wait for it.
	cronDone := s.cron.Stop()
	s.cancel()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		<-cronDone.Done()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop scheduler: waiting for running jobs: %w", ctx.Err())
	}
}

// tick is cron's callback for e.
func (s *Scheduler) tick(e *entry) {
	s.mu.Lock()
	if s.stopped || s.jobs[e.job.Name] != e {
		// Stopped, or e was replaced or removed after cron dispatched it.
		s.mu.Unlock()
		return
	}
	if s.running[e.job.Name] {
		s.mu.Unlock()
		s.skipped(e.job, TriggerSchedule, reasonRunning)
		return
	}
	var jitter time.Duration
	if e.job.Jitter > 0 {
		jitter = rand.N(e.job.Jitter)
	}
	s.launchLocked(e.job, TriggerSchedule, jitter)
	s.mu.Unlock()
}

// launchLocked marks the job running and starts its run; s.mu must be held
// and s.stopped must be false.
func (s *Scheduler) launchLocked(job Job, trigger string, delay time.Duration) {
	s.running[job.Name] = true
	s.wg.Add(1)
	go s.execute(job, trigger, delay)
}

// execute waits out delay and a concurrency slot, then calls Func. The
// job counts as running throughout, so ticks during the wait are skipped
// instead of piling up; the timeout starts only once the run does.
func (s *Scheduler) execute(job Job, trigger string, delay time.Duration) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.running, job.Name)
		s.mu.Unlock()
	}()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.skipped(job, trigger, reasonShutdown)
			return
		}
	}
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		s.skipped(job, trigger, reasonShutdown)
		return
	}
	defer func() { <-s.slots }()

	ctx := s.ctx
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, job.Timeout)
		defer cancel()
	}
	if err := s.call(ctx, job, trigger); err != nil {
		s.log.Warn("job run failed", "job", job.Name, "trigger", trigger, "error", err)
	}
}

// call runs Func, turning a panic into an error so one broken run cannot
// take the daemon down.
func (s *Scheduler) call(ctx context.Context, job Job, trigger string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("job run panicked", "job", job.Name, "trigger", trigger, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("job %q panicked: %v", job.Name, r)
		}
	}()
	return s.run(ctx, job, trigger)
}

func (s *Scheduler) skipped(job Job, trigger, reason string) {
	s.log.Debug("run skipped", "job", job.Name, "trigger", trigger, "reason", reason)
	if s.obs != nil {
		s.obs.Skipped(job, trigger, s.now(), reason)
	}
}

// cronLogger routes cron's own messages to hclog; cron's default logger
// would write to stdout.
type cronLogger struct{ log hclog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Trace(msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append(kv, "error", err)...)
}
