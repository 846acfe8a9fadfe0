// Package secrets turns references to secrets held in a secret store
// (HashiCorp Vault's KV v2, see secrets/vault) into files that only the
// daemon can read. Sources and sinks then read them as they read any
// NAME_file, with sdk.ReadSecret: in-process sinks and plugin processes
// alike, without knowing where the value came from. This is the pattern of
// Vault Agent's templates and of Kubernetes' secret volumes.
//
// The package owns those files: the private directory they live in (a
// tmpfs where there is one), writing them atomically, rewriting one when a
// re-read finds a new value, re-reading before a lease ends, and removing
// them when nothing refers to them any more and when the daemon stops. A
// new set of references is staged first and committed or aborted as a
// whole, so a configuration that is refused leaves the running one and
// its files as they were.
//
// It must never log, return or keep a secret value: errors and log lines
// name the reference (MOUNT/PATH#KEY) and the file, and what is kept in
// memory to notice a change is a hash of the value.
package secrets
