package scheduler

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// waitLimit bounds every wait for something that should happen; tests
// normally finish far sooner.
const waitLimit = 5 * time.Second

type skip struct {
	job     string
	trigger string
	reason  string
}

type skipObserver chan skip

func (o skipObserver) Skipped(job Job, trigger string, _ time.Time, reason string) {
	select {
	case o <- skip{job.Name, trigger, reason}:
	default:
	}
}

type call struct {
	job     Job
	trigger string
	ctx     context.Context
}

// newTest returns a scheduler that is stopped when the test ends.
func newTest(t *testing.T, run Func, opts Options) *Scheduler {
	t.Helper()
	s := New(run, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// blockingRun reports each call on calls and returns when release is
// closed or its ctx ends.
func blockingRun(calls chan<- call, release <-chan struct{}) Func {
	return func(ctx context.Context, job Job, trigger string) error {
		calls <- call{job, trigger, ctx}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		schedule string
		wantErr  string // substring; empty means valid
	}{
		{"@every 5m", ""},
		{"@every 1s", ""},
		{"@every 1h30m", ""},
		{"@hourly", ""},
		{"@daily", ""},
		{"0 * * * *", ""},
		{"*/15 2-4 * * 1-5", ""},
		{"CRON_TZ=UTC 0 3 * * *", ""},
		{"", "empty"},
		{"   ", "empty"},
		{"* * * *", "expected exactly 5 fields"},
		{"0 0 * * * *", "expected exactly 5 fields"},
		{"61 * * * *", "above maximum"},
		{"@every", "unrecognized descriptor"},
		{"@every five minutes", "failed to parse duration"},
		{"@every 0s", "at least 1s"},
		{"@every -5m", "at least 1s"},
		{"@every 500ms", "at least 1s"},
		{"@fortnightly", "unrecognized descriptor"},
		{"0 0 30 2 *", "never fires"},
	}
	for _, tc := range cases {
		t.Run(tc.schedule, func(t *testing.T) {
			err := Validate(tc.schedule)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tc.schedule, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate(%q) = %v, want error containing %q", tc.schedule, err, tc.wantErr)
			}
		})
	}
}

func TestInterval(t *testing.T) {
	cases := []struct {
		schedule string
		want     time.Duration
	}{
		{"@every 90s", 90 * time.Second},
		{"@every 1h30m", 90 * time.Minute},
		{"@every 1500ms", time.Second}, // cron rounds down to whole seconds
		{"0 * * * *", time.Hour},
		{"*/15 * * * *", 15 * time.Minute},
		{"@hourly", time.Hour},
		{"CRON_TZ=UTC 0 3 * * *", 24 * time.Hour},
	}
	s := newTest(t, func(context.Context, Job, string) error { return nil }, Options{})
	jobs := make([]Job, len(cases))
	for i, tc := range cases {
		jobs[i] = Job{Name: tc.schedule, Schedule: tc.schedule}
	}
	if err := s.Update(jobs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.schedule, func(t *testing.T) {
			got, ok := s.Interval(tc.schedule)
			if !ok || got != tc.want {
				t.Errorf("Interval = %v, %v; want %v, true", got, ok, tc.want)
			}
			got, err := IntervalOf(tc.schedule)
			if err != nil || got != tc.want {
				t.Errorf("IntervalOf = %v, %v; want %v, nil", got, err, tc.want)
			}
		})
	}
	if _, ok := s.Interval("unknown"); ok {
		t.Error("Interval of an unknown job reported ok")
	}
	if _, err := IntervalOf("not a schedule"); err == nil {
		t.Error("IntervalOf accepted an invalid schedule")
	}
}

func TestScheduledRunsRepeatedly(t *testing.T) {
	t.Parallel()
	calls := make(chan call, 10)
	s := newTest(t, func(ctx context.Context, job Job, trigger string) error {
		calls <- call{job, trigger, ctx}
		return nil
	}, Options{})
	if err := s.Update([]Job{{Name: "tick", Schedule: "@every 1s"}}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	for i := range 2 {
		c := receive(t, calls, "a scheduled run")
		if c.job.Name != "tick" || c.trigger != TriggerSchedule {
			t.Fatalf("run %d: got job %q trigger %q", i, c.job.Name, c.trigger)
		}
	}
}

func TestSkipIfStillRunning(t *testing.T) {
	t.Parallel()
	calls := make(chan call, 10)
	release := make(chan struct{})
	obs := make(skipObserver, 10)
	s := newTest(t, blockingRun(calls, release), Options{Observer: obs})
	if err := s.Update([]Job{{Name: "slow", Schedule: "@every 1s"}}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	receive(t, calls, "the first run")
	got := receive(t, obs, "a skipped tick")
	if want := (skip{"slow", TriggerSchedule, "still running"}); got != want {
		t.Errorf("Skipped: got %+v, want %+v", got, want)
	}
	select {
	case c := <-calls:
		t.Fatalf("a second run started while the first was running: %+v", c)
	default:
	}
	close(release)
}

func TestRunNow(t *testing.T) {
	t.Parallel()
	calls := make(chan call, 10)
	release := make(chan struct{})
	s := newTest(t, blockingRun(calls, release), Options{})
	// A long jitter must not delay a manual run.
	if err := s.Update([]Job{{Name: "scan", Schedule: "@every 1h", Jitter: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	ctx := context.Background()

	if err := s.RunNow(ctx, "scan"); err != nil {
		t.Fatalf("RunNow: %v", err)
	}
	c := receive(t, calls, "the manual run")
	if c.job.Name != "scan" || c.trigger != TriggerManual {
		t.Errorf("got job %q trigger %q, want scan/manual", c.job.Name, c.trigger)
	}
	if !s.Running("scan") {
		t.Error("Running = false during a run")
	}
	if err := s.RunNow(ctx, "scan"); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second RunNow = %v, want ErrAlreadyRunning", err)
	}
	err := s.RunNow(ctx, "nope")
	if !errors.Is(err, ErrUnknownJob) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("RunNow(unknown) = %v, want ErrUnknownJob naming the job", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.RunNow(cancelled, "scan"); !errors.Is(err, context.Canceled) {
		t.Errorf("RunNow(cancelled ctx) = %v, want context.Canceled", err)
	}

	close(release)
	eventually(t, "the run to finish", func() bool { return !s.Running("scan") })
	if err := s.RunNow(ctx, "scan"); err != nil {
		t.Fatalf("RunNow after the run finished: %v", err)
	}
	receive(t, calls, "the second manual run")
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		limit, jobs int
	}{
		{limit: 1, jobs: 3},
		{limit: 2, jobs: 5},
	}
	for _, tc := range cases {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			var cur, peak, done atomic.Int32
			release := make(chan struct{})
			s := newTest(t, func(ctx context.Context, job Job, trigger string) error {
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				<-release
				cur.Add(-1)
				done.Add(1)
				return nil
			}, Options{MaxConcurrent: tc.limit})
			var jobs []Job
			for i := range tc.jobs {
				jobs = append(jobs, Job{Name: string(rune('a' + i)), Schedule: "@every 1h"})
			}
			if err := s.Update(jobs); err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if err := s.RunNow(context.Background(), j.Name); err != nil {
					t.Fatalf("RunNow(%s): %v", j.Name, err)
				}
			}
			eventually(t, "the slots to fill", func() bool { return cur.Load() == int32(tc.limit) })
			// Give the waiting runs a chance to break the limit.
			time.Sleep(50 * time.Millisecond)
			for _, j := range jobs {
				// Waiting runs count as running so they cannot pile up.
				if err := s.RunNow(context.Background(), j.Name); !errors.Is(err, ErrAlreadyRunning) {
					t.Errorf("RunNow(%s) while started = %v, want ErrAlreadyRunning", j.Name, err)
				}
			}
			close(release)
			eventually(t, "all runs to finish", func() bool { return done.Load() == int32(tc.jobs) })
			if got := peak.Load(); got != int32(tc.limit) {
				t.Errorf("peak concurrency = %d, want %d", got, tc.limit)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	errs := make(chan error, 1)
	holding := make(chan struct{})
	release := make(chan struct{})
	s := newTest(t, func(ctx context.Context, job Job, trigger string) error {
		if job.Name == "hog" {
			close(holding)
			<-release
			return nil
		}
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) < timeout/2 {
			errs <- errors.New("deadline missing or shortened by the wait for a slot")
			return nil
		}
		<-ctx.Done()
		errs <- ctx.Err()
		return ctx.Err()
	}, Options{MaxConcurrent: 1})
	err := s.Update([]Job{
		{Name: "hog", Schedule: "@every 1h"},
		{Name: "limited", Schedule: "@every 1h", Timeout: timeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.RunNow(ctx, "hog"); err != nil {
		t.Fatal(err)
	}
	receive(t, holding, "the hog to take the only slot")
	if err := s.RunNow(ctx, "limited"); err != nil {
		t.Fatal(err)
	}
	// Longer than the timeout: the wait for a slot must not count.
	time.Sleep(timeout + 50*time.Millisecond)
	close(release)
	if err := receive(t, errs, "the timed-out run"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run ctx error = %v, want context.DeadlineExceeded", err)
	}
}

func TestStop(t *testing.T) {
	// Not parallel: it counts goroutines.
	before := runtime.NumGoroutine()
	calls := make(chan call, 10)
	var finished atomic.Bool
	obs := make(skipObserver, 10)
	s := New(func(ctx context.Context, job Job, trigger string) error {
		calls <- call{job, trigger, ctx}
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // Stop must wait for this
		finished.Store(true)
		return ctx.Err()
	}, Options{MaxConcurrent: 1, Observer: obs})
	err := s.Update([]Job{
		{Name: "run", Schedule: "@every 1h"},
		{Name: "wait", Schedule: "@every 1h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	ctx := context.Background()
	if err := s.RunNow(ctx, "run"); err != nil {
		t.Fatal(err)
	}
	c := receive(t, calls, "the run")
	// "wait" never gets the slot; shutdown must abandon it and say so.
	if err := s.RunNow(ctx, "wait"); err != nil {
		t.Fatal(err)
	}

	stopCtx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() {
		t.Error("Stop returned before the run did")
	}
	if !errors.Is(c.ctx.Err(), context.Canceled) {
		t.Errorf("run ctx error = %v, want context.Canceled", c.ctx.Err())
	}
	if got, want := receive(t, obs, "the abandoned run"), (skip{"wait", TriggerManual, "shutting down"}); got != want {
		t.Errorf("Skipped: got %+v, want %+v", got, want)
	}
	if err := s.RunNow(ctx, "run"); err == nil {
		t.Error("RunNow after Stop succeeded")
	}
	if err := s.Stop(stopCtx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	eventually(t, "the scheduler's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestStopGivesUp(t *testing.T) {
	t.Parallel()
	calls := make(chan call, 1)
	release := make(chan struct{})
	s := New(func(ctx context.Context, job Job, trigger string) error {
		calls <- call{job, trigger, ctx}
		<-release // ignores ctx on purpose
		return nil
	}, Options{})
	if err := s.Update([]Job{{Name: "stubborn", Schedule: "@every 1h"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RunNow(context.Background(), "stubborn"); err != nil {
		t.Fatal(err)
	}
	receive(t, calls, "the run")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want context.DeadlineExceeded", err)
	}
	close(release)
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop after the run returned: %v", err)
	}
}

func TestStopDuringJitter(t *testing.T) {
	t.Parallel()
	var ran atomic.Bool
	obs := make(skipObserver, 10)
	s := New(func(context.Context, Job, string) error {
		ran.Store(true)
		return nil
	}, Options{Observer: obs})
	if err := s.Update([]Job{{Name: "jittery", Schedule: "@every 1s", Jitter: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	eventually(t, "the tick", func() bool { return s.Running("jittery") })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if ran.Load() {
		t.Error("the run did not wait for its jitter")
	}
	if got, want := receive(t, obs, "the abandoned run"), (skip{"jittery", TriggerSchedule, "shutting down"}); got != want {
		t.Errorf("Skipped: got %+v, want %+v", got, want)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	calls := make(chan call, 10)
	release := make(chan struct{})
	s := newTest(t, blockingRun(calls, release), Options{})
	initial := []Job{
		{Name: "same", Schedule: "@every 1h", Spec: "v1"},
		{Name: "spec", Schedule: "@every 1h", Spec: "v1"},
		{Name: "sched", Schedule: "@every 1h"},
		{Name: "gone", Schedule: "@every 1h"},
	}
	if err := s.Update(initial); err != nil {
		t.Fatal(err)
	}
	s.Start()
	ids := func() map[string]int {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := make(map[string]int)
		for name, e := range s.jobs {
			out[name] = int(e.id)
		}
		return out
	}
	before := ids()
	sameNext, _ := s.Next("same")
	if sameNext.IsZero() {
		t.Fatal("Next of a scheduled job is zero")
	}
	// A changed job that is running must be allowed to finish.
	if err := s.RunNow(context.Background(), "spec"); err != nil {
		t.Fatal(err)
	}
	run := receive(t, calls, "the run of the job about to change")

	err := s.Update([]Job{
		{Name: "same", Schedule: "@every 1h", Spec: "v1"},
		{Name: "spec", Schedule: "@every 1h", Spec: "v2"},
		{Name: "sched", Schedule: "@every 2h"},
		{Name: "new", Schedule: "@every 1h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	after := ids()

	if after["same"] != before["same"] {
		t.Error("unchanged job was rescheduled")
	}
	if next, _ := s.Next("same"); !next.Equal(sameNext) {
		t.Errorf("unchanged job's Next moved from %v to %v", sameNext, next)
	}
	for _, name := range []string{"spec", "sched"} {
		if after[name] == before[name] {
			t.Errorf("changed job %q was not rescheduled", name)
		}
	}
	if iv, _ := s.Interval("sched"); iv != 2*time.Hour {
		t.Errorf("changed job's interval = %v, want 2h", iv)
	}
	if _, ok := s.Next("gone"); ok {
		t.Error("removed job still has a Next time")
	}
	if err := s.RunNow(context.Background(), "gone"); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("RunNow(removed) = %v, want ErrUnknownJob", err)
	}
	if _, ok := s.Next("new"); !ok {
		t.Error("added job has no Next time")
	}
	if n := len(s.cron.Entries()); n != 4 {
		t.Errorf("cron has %d entries, want 4", n)
	}

	if run.ctx.Err() != nil {
		t.Errorf("changing a job cancelled its run: %v", run.ctx.Err())
	}
	if err := s.RunNow(context.Background(), "spec"); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("RunNow of the changed job during its old run = %v, want ErrAlreadyRunning", err)
	}
	close(release)
	eventually(t, "the old run to finish", func() bool { return !s.Running("spec") })
}

func TestUpdateInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		jobs    []Job
		wantErr string
	}{
		{"bad schedule", []Job{{Name: "ok", Schedule: "@hourly"}, {Name: "broken", Schedule: "* * *"}}, `"broken"`},
		{"never fires", []Job{{Name: "feb30", Schedule: "0 0 30 2 *"}}, `"feb30"`},
		{"duplicate", []Job{{Name: "twice", Schedule: "@hourly"}, {Name: "twice", Schedule: "@daily"}}, `"twice"`},
		{"no name", []Job{{Schedule: "@hourly"}}, "without a name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTest(t, func(context.Context, Job, string) error { return nil }, Options{})
			if err := s.Update([]Job{{Name: "keep", Schedule: "@every 1h"}}); err != nil {
				t.Fatal(err)
			}
			s.Start()
			next, _ := s.Next("keep")

			err := s.Update(tc.jobs)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Update = %v, want error containing %s", err, tc.wantErr)
			}
			if got, ok := s.Next("keep"); !ok || !got.Equal(next) {
				t.Errorf("existing job changed: Next = %v, %v; want %v", got, ok, next)
			}
			for _, j := range tc.jobs {
				if _, ok := s.Next(j.Name); ok {
					t.Errorf("job %q was added despite the error", j.Name)
				}
			}
			if n := len(s.cron.Entries()); n != 1 {
				t.Errorf("cron has %d entries, want 1", n)
			}
		})
	}
}

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	calls := make(chan string, 10)
	s := newTest(t, func(ctx context.Context, job Job, trigger string) error {
		calls <- job.Name
		if job.Name == "panics" {
			panic("boom")
		}
		return errors.New("plain failure")
	}, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
	err := s.Update([]Job{
		{Name: "panics", Schedule: "@every 1h"},
		{Name: "fails", Schedule: "@every 1h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 { // the second run proves the first left the job runnable
		if err := s.RunNow(ctx, "panics"); err != nil {
			t.Fatal(err)
		}
		receive(t, calls, "the panicking run")
		eventually(t, "the panicking run to end", func() bool { return !s.Running("panics") })
	}
	if err := s.RunNow(ctx, "fails"); err != nil {
		t.Fatal(err)
	}
	receive(t, calls, "the failing run")
	eventually(t, "the failing run to end", func() bool { return !s.Running("fails") })

	out := logs.String()
	for _, want := range []string{"[ERROR] job run panicked: job=panics", "panic=boom", "[WARN]  job run failed: job=fails", "plain failure"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestNextBeforeStart(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newTest(t, func(context.Context, Job, string) error { return nil }, Options{Now: func() time.Time { return now }})
	if err := s.Update([]Job{{Name: "hourly", Schedule: "CRON_TZ=UTC 0 * * * *"}}); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC)
	if got, ok := s.Next("hourly"); !ok || !got.Equal(want) {
		t.Errorf("Next = %v, %v; want %v, true", got, ok, want)
	}
	if _, ok := s.Next("unknown"); ok {
		t.Error("Next of an unknown job reported ok")
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
