// Package sdktest is the conformance kit for sollwert plugins. A plugin
// author calls Run from a test with the path of their built binary; it
// starts the plugin exactly as the daemon does and checks the handshake,
// Describe, that Validate rejects a bad configuration with a field error,
// that Discover streams well-formed observations and a result, and that
// Discover stops when it is cancelled.
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, sdktest.Config{
//			Binary:  buildPlugin(t),
//			Valid:   json.RawMessage(`{"file": "testdata/hosts.csv"}`),
//			Invalid: json.RawMessage(`{"file": ""}`),
//		})
//	}
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// Config describes the plugin under test.
type Config struct {
	// Binary is the built plugin.
	Binary string
	// Valid is a configuration Discover can run with, without network
	// access beyond what the test provides.
	Valid json.RawMessage
	// Invalid is a configuration Validate must reject with at least one
	// error naming a field.
	Invalid json.RawMessage
	// MinObservations is how many observations Discover with Valid must
	// emit at least (default 1).
	MinObservations int
	// Slow, when set, is a configuration whose Discover runs long enough
	// (a second or more) to be cancelled midway; without it the
	// cancellation check cancels Discover with Valid right away.
	Slow json.RawMessage
	// Timeout bounds each check (default 30s).
	Timeout time.Duration
}

// Run checks the plugin at cfg.Binary against the protocol.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.MinObservations == 0 {
		cfg.MinObservations = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	var desc sdk.Description
	t.Run("handshake", func(t *testing.T) {
		withSource(t, cfg, func(ctx context.Context, c *sdk.Client, src sdk.Source) {
			if c.ProtocolVersion() != sdk.ProtocolVersion {
				t.Errorf("negotiated protocol version %d, want %d", c.ProtocolVersion(), sdk.ProtocolVersion)
			}
			if c.SDKVersion() == "" {
				t.Error("the plugin reports no sdk version")
			}
		})
	})
	t.Run("describe", func(t *testing.T) {
		withSource(t, cfg, func(ctx context.Context, _ *sdk.Client, src sdk.Source) {
			var err error
			if desc, err = src.Describe(ctx); err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if desc.Name == "" || desc.Version == "" {
				t.Errorf("Describe must give a name and a version: %+v", desc)
			}
			types := []string{"string", "number", "bool", "list(string)", "duration", "object"}
			for _, f := range desc.Fields {
				if f.Name == "" || !slices.Contains(types, f.Type) {
					t.Errorf("field %+v: needs a name and a type out of %v", f, types)
				}
			}
		})
	})
	t.Run("validate", func(t *testing.T) {
		withSource(t, cfg, func(ctx context.Context, _ *sdk.Client, src sdk.Source) {
			if err := src.Validate(ctx, cfg.Valid); err != nil {
				t.Errorf("Validate rejects the valid configuration: %v", err)
			}
			err := src.Validate(ctx, cfg.Invalid)
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate of the invalid configuration: want field errors, got %v", err)
			}
			for _, f := range verr.Fields {
				if f.Field == "" || f.Message == "" {
					t.Errorf("field error %+v must name the field and say what is wrong", f)
				}
				if len(desc.Fields) > 0 && f.Field != "" && !slices.ContainsFunc(desc.Fields, func(d sdk.Field) bool { return d.Name == f.Field }) {
					t.Errorf("field error names %q, which Describe does not list", f.Field)
				}
			}
		})
	})
	t.Run("discover", func(t *testing.T) {
		withSource(t, cfg, func(ctx context.Context, _ *sdk.Client, src sdk.Source) {
			n := 0
			// The host checks every observation as it arrives (see
			// sdk.Observation.Validate) and fails the run on the first
			// malformed one, so an error here names it.
			res, err := src.Discover(ctx, sdk.DiscoverRequest{Config: cfg.Valid, Job: "conformance", Tenant: "default", RunID: "conformance-1"},
				sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error {
					n += len(b)
					return nil
				}))
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if n < cfg.MinObservations {
				t.Errorf("Discover emitted %d observations, want at least %d", n, cfg.MinObservations)
			}
			for _, p := range res.Scope.Prefixes {
				if !p.IsValid() {
					t.Errorf("scope prefix %v is not valid", p)
				}
			}
		})
	})
	t.Run("cancel", func(t *testing.T) {
		config := cfg.Slow
		if config == nil {
			config = cfg.Valid
		}
		finished := make(chan struct{}, 1)
		watch := func(line string) {
			if strings.Contains(line, sdk.DiscoverFinishedMessage) {
				select {
				case finished <- struct{}{}:
				default:
				}
			}
		}
		withSourceLog(t, cfg, watch, func(ctx context.Context, _ *sdk.Client, src sdk.Source) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := src.Discover(ctx, sdk.DiscoverRequest{Config: config, Job: "conformance", Tenant: "default", RunID: "conformance-2"},
					sdk.EmitterFunc(func(ctx context.Context, b []sdk.Observation) error {
						cancel() // cancel as soon as something arrives
						return ctx.Err()
					}))
				done <- err
			}()
			if cfg.Slow != nil {
				time.AfterFunc(500*time.Millisecond, cancel)
			}
			select {
			case err := <-done:
				if err == nil && cfg.Slow != nil {
					t.Error("Discover reported success after it was cancelled")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Discover did not return within 10s of being cancelled")
			}
			// The host has let go; the plugin's own Discover must end too.
			select {
			case <-finished:
			case <-time.After(5 * time.Second):
				t.Fatal("the plugin's Discover was still running 5s after it was cancelled: honour ctx and Emit's errors")
			}
			probe, stop := context.WithTimeout(context.Background(), 5*time.Second)
			defer stop()
			if _, err := src.Describe(probe); err != nil {
				t.Errorf("after a cancelled Discover the plugin does not answer: %v", err)
			}
		})
	})
}

func withSource(t *testing.T, cfg Config, fn func(context.Context, *sdk.Client, sdk.Source)) {
	t.Helper()
	withSourceLog(t, cfg, nil, fn)
}

func withSourceLog(t *testing.T, cfg Config, watch func(string), fn func(context.Context, *sdk.Client, sdk.Source)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logWriter{t: t, watch: watch}})
	c, err := sdk.Launch(ctx, sdk.LaunchConfig{Path: cfg.Binary, Logger: log})
	if err != nil {
		t.Fatalf("launch %s: %v", cfg.Binary, err)
	}
	defer c.Close()
	src, err := c.Source()
	if err != nil {
		t.Fatal(err)
	}
	fn(ctx, c, src)
}

// logWriter shows the plugin's warnings and errors in the test log and
// hands every line to watch.
type logWriter struct {
	t     *testing.T
	watch func(string)
}

func (w logWriter) Write(p []byte) (int, error) {
	line := string(p)
	if w.watch != nil {
		w.watch(line)
	}
	if strings.Contains(line, "[WARN]") || strings.Contains(line, "[ERROR]") {
		w.t.Log(strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}
