package sdk

import (
	"context"
	"encoding/json"
)

// Source produces observations. Implementations must honour ctx: when it
// is cancelled or its deadline passes, Discover returns promptly with an
// error, and the host treats the whole run as failed.
type Source interface {
	// Describe says what the source is and what its configuration holds.
	Describe(ctx context.Context) (Description, error)
	// Validate checks a configuration without touching the network. A bad
	// configuration yields a *ValidationError so the host can point at the
	// offending field in the user's file.
	Validate(ctx context.Context, config json.RawMessage) error
	// Discover runs once. It hands observations to emit in batches as it
	// goes and returns the scope it covered. A non-nil error means the run
	// did not finish: nothing it emitted may be taken as complete.
	Discover(ctx context.Context, req DiscoverRequest, emit Emitter) (Result, error)
}

// Emitter receives batches of observations during Discover. An error from
// Emit (for example the host is shutting down) must end Discover. The
// observations of a batch may share their Facts and Labels maps (a
// plugin's stream decoded by the host shares equal ones), so an Emitter
// only reads them.
type Emitter interface {
	Emit(ctx context.Context, batch []Observation) error
}

// PartEmitter is an Emitter that also takes finished parts of a run. A
// source that splits a large run into parts (the nmap source's chunks)
// hands each part over with its own scope as soon as the part finished;
// the host applies it at once, so its absences count right away. A part
// that failed is never handed over and leaves its share of the scope as
// it was. The host's emitter for in-process sources is one; a source must
// work without it too.
type PartEmitter interface {
	Emitter
	EmitPart(ctx context.Context, obs []Observation, scope Scope) error
}

// EmitterFunc adapts a function to Emitter.
type EmitterFunc func(ctx context.Context, batch []Observation) error

// Emit calls f.
func (f EmitterFunc) Emit(ctx context.Context, batch []Observation) error { return f(ctx, batch) }

// DiscoverRequest is what the host hands a source for one run.
type DiscoverRequest struct {
	// Config is the job's source configuration as a JSON object.
	Config json.RawMessage `json:"config"`
	// Job and Tenant name the run's owner; sources may use them in logs.
	Job    string `json:"job"`
	Tenant string `json:"tenant"`
	// RunID identifies this run in logs on both sides.
	RunID string `json:"run_id"`
}

// Result closes a successful run.
type Result struct {
	// Scope is what the run looked at. Only inside it may the host read
	// absence as "closed" or "gone".
	Scope Scope `json:"scope"`
	// Warnings are things the user should see that did not fail the run.
	Warnings []string `json:"warnings,omitempty"`
}

// Description identifies a source and its configuration schema.
type Description struct {
	Name    string  `json:"name"`
	Version string  `json:"version"`
	Fields  []Field `json:"fields,omitempty"`
	// Observes lists what the source can see, e.g. "services", "os",
	// "interfaces", "instances".
	Observes []string `json:"observes,omitempty"`
}

// Field documents one configuration attribute.
type Field struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // string, number, bool, list(string), duration
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}
