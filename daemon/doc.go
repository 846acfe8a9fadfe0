// Package daemon wires sollwert together: it loads the configuration,
// opens the store, validates every job against its source, compiles the
// rules, schedules the jobs, serves the API, and handles reload and
// shutdown. It holds no domain logic of its own: each step lives in the
// package that carries its name (scheduler, store, ingest, rules, check).
package daemon
