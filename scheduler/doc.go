// Package scheduler decides when sollwert's jobs run and enforces the
// limits around a run: one run per job at a time (shared by scheduled and
// manual runs), a global cap on concurrent runs, the job's timeout, an
// optional jitter before scheduled runs, and cancellation on shutdown.
//
// It owns the cron loop, the per-job running state and the concurrency
// slots, and nothing else. It must not know what a job does: sources,
// nmap, the store, rules and run records belong to the Func it is given,
// which is expected to record its own runs. The scheduler only logs the
// errors (and recovered panics) a Func returns, and tells its Observer
// about runs it declined to start.
package scheduler
