// Package plugins holds sollwert's first-party sources and the registry
// through which the daemon finds every source by name. Each source lives
// in a folder of its own (nmap/, ...) and is added to a Registry in
// cmd/sollwert: nothing registers itself, so two daemons in one process
// never share a table.
package plugins

import (
	"fmt"
	"sort"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// Factory builds a source with its own logger.
type Factory func(logger hclog.Logger) sdk.Source

// SinkFactory builds a sink with its own logger.
type SinkFactory func(logger hclog.Logger) sdk.Sink

// Registry maps source and sink type names to factories.
type Registry struct {
	sources map[string]Factory
	sinks   map[string]SinkFactory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sources: map[string]Factory{}, sinks: map[string]SinkFactory{}}
}

// RegisterSink adds a sink type.
func (r *Registry) RegisterSink(name string, f SinkFactory) error {
	if _, dup := r.sinks[name]; dup {
		return fmt.Errorf("sink type %q registered twice", name)
	}
	r.sinks[name] = f
	return nil
}

// Sink builds a sink of the named type.
func (r *Registry) Sink(name string, logger hclog.Logger) (sdk.Sink, error) {
	f, ok := r.sinks[name]
	if !ok {
		names := make([]string, 0, len(r.sinks))
		for n := range r.sinks {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown sink type %q (known: %v)", name, names)
	}
	return f(logger.Named(name)), nil
}

// Register adds a source; registering a name twice is a programming error
// reported as an error, not a panic.
func (r *Registry) Register(name string, f Factory) error {
	if _, dup := r.sources[name]; dup {
		return fmt.Errorf("source %q registered twice", name)
	}
	r.sources[name] = f
	return nil
}

// Source builds the named source.
func (r *Registry) Source(name string, logger hclog.Logger) (sdk.Source, error) {
	f, ok := r.sources[name]
	if !ok {
		return nil, fmt.Errorf("unknown source %q (known: %v)", name, r.Names())
	}
	return f(logger.Named(name)), nil
}

// Names lists the registered sources, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.sources))
	for n := range r.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
