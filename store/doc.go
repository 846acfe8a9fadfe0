// Package store keeps sollwert's state in an embedded Badger database:
// assets and every version of them, deviations, job runs and per-job
// state. It owns the key layout (keys.go, described in
// docs/architecture.md), the schema version and encoding. It makes no
// decisions: what an observation does to an asset lives in model, and
// what counts as a deviation lives in rules.
package store
