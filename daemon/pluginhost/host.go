// Package pluginhost runs the plugins in plugin_dir as sources. Each is a
// binary named sollwert-plugin-NAME, started through the sdk's Launch for
// every call and stopped after it: a crash, a leak or a hang stays inside
// one job run, the next run gets a fresh process, and an idle daemon runs
// no plugin processes at all. Starting one costs a few milliseconds
// (docs/benchmarks.md), which no schedule notices.
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/sdk"
)

// Host finds and starts plugins. Use it by pointer: it keeps state
// between starts.
type Host struct {
	// Dir holds the plugin binaries.
	Dir string
	// Pins maps plugin names to the sha256 their binary must have.
	Pins map[string]string
	// Logger receives the plugins' log lines, each under its name.
	Logger hclog.Logger

	// launcher keeps the host's TLS certificate and the checksums of
	// pinned binaries from one start to the next (sdk.Launcher): about
	// 13 ms of a pinned start (docs/benchmarks.md).
	launcher sdk.Launcher
}

// Plugin is a binary found in Dir.
type Plugin struct {
	Name string
	Path string
}

// Find lists the plugins in Dir, sorted by name. A missing Dir holds none.
func (h *Host) Find() ([]Plugin, error) {
	if h.Dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(h.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plugin_dir: %w", err)
	}
	var out []Plugin
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), sdk.PluginPrefix)
		if !ok || name == "" || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Mode()&0o111 == 0 {
			continue // not executable: a README, a checksum file, ...
		}
		out = append(out, Plugin{Name: name, Path: filepath.Join(h.Dir, e.Name())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Register adds every plugin in Dir to reg as a source. A plugin may not
// take the name of a built-in source.
func (h *Host) Register(reg *plugins.Registry) error {
	found, err := h.Find()
	if err != nil {
		return err
	}
	for _, p := range found {
		p := p
		if err := reg.Register(p.Name, func(log hclog.Logger) sdk.Source {
			return &source{host: h, plugin: p, log: log}
		}); err != nil {
			return fmt.Errorf("plugin %s in %s: %w", p.Name, h.Dir, err)
		}
		// Whether it serves a sink shows when it starts: a plugin named as
		// a sink that serves none fails validation with a clear error.
		if err := reg.RegisterSink(p.Name, func(log hclog.Logger) sdk.Sink {
			return &sink{host: h, plugin: p}
		}); err != nil {
			return fmt.Errorf("plugin %s in %s: %w", p.Name, h.Dir, err)
		}
	}
	return nil
}

// Launch starts one plugin, checking its pin.
func (h *Host) Launch(ctx context.Context, p Plugin) (*sdk.Client, error) {
	log := h.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// go-plugin names the plugin's log lines after its binary already.
	return h.launcher.Launch(ctx, sdk.LaunchConfig{Path: p.Path, SHA256: h.Pins[p.Name], Logger: log})
}

// source is a plugin seen as an sdk.Source: every call runs in a process
// of its own.
type source struct {
	host   *Host
	plugin Plugin
	log    hclog.Logger
}

func (s *source) with(ctx context.Context, fn func(sdk.Source) error) error {
	c, err := s.host.Launch(ctx, s.plugin)
	if err != nil {
		return err
	}
	defer c.Close()
	src, err := c.Source()
	if err != nil {
		return err
	}
	return fn(src)
}

func (s *source) Describe(ctx context.Context) (d sdk.Description, err error) {
	err = s.with(ctx, func(src sdk.Source) error {
		d, err = src.Describe(ctx)
		return err
	})
	return d, err
}

func (s *source) Validate(ctx context.Context, config json.RawMessage) error {
	return s.with(ctx, func(src sdk.Source) error { return src.Validate(ctx, config) })
}

func (s *source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (res sdk.Result, err error) {
	err = s.with(ctx, func(src sdk.Source) error {
		res, err = src.Discover(ctx, req, emit)
		return err
	})
	return res, err
}

// sink is a plugin seen as an sdk.Sink, a process per call like source.
type sink struct {
	host   *Host
	plugin Plugin
}

func (s *sink) with(ctx context.Context, fn func(sdk.Sink) error) error {
	c, err := s.host.Launch(ctx, s.plugin)
	if err != nil {
		return err
	}
	defer c.Close()
	k, err := c.Sink()
	if err != nil {
		return err
	}
	return fn(k)
}

func (s *sink) Describe(ctx context.Context) (d sdk.Description, err error) {
	err = s.with(ctx, func(k sdk.Sink) error {
		d, err = k.Describe(ctx)
		return err
	})
	return d, err
}

func (s *sink) Validate(ctx context.Context, config json.RawMessage) error {
	return s.with(ctx, func(k sdk.Sink) error { return k.Validate(ctx, config) })
}

func (s *sink) Deliver(ctx context.Context, req sdk.DeliverRequest) (acks []sdk.Ack, err error) {
	err = s.with(ctx, func(k sdk.Sink) error {
		acks, err = k.Deliver(ctx, req)
		return err
	})
	return acks, err
}

// Listing is what `sollwert plugins list` shows of one plugin.
type Listing struct {
	Name            string   `json:"name"`
	Path            string   `json:"path"`
	Version         string   `json:"version,omitempty"`
	Kinds           []string `json:"kinds,omitempty"`
	ProtocolVersion int      `json:"protocol_version,omitempty"`
	SDKVersion      string   `json:"sdk_version,omitempty"`
	SHA256          string   `json:"sha256"`
	// Checksum is "pinned" (matches its pin), "MISMATCH" or "unpinned".
	Checksum string `json:"checksum"`
	Error    string `json:"error,omitempty"`
}

// List starts each plugin once and asks what it is.
func (h *Host) List(ctx context.Context) ([]Listing, error) {
	found, err := h.Find()
	if err != nil {
		return nil, err
	}
	out := make([]Listing, 0, len(found))
	for _, p := range found {
		l := Listing{Name: p.Name, Path: p.Path, Checksum: "unpinned"}
		sum, err := fileSHA256(p.Path)
		if err != nil {
			l.Error = err.Error()
			out = append(out, l)
			continue
		}
		l.SHA256 = sum
		if pin, ok := h.Pins[p.Name]; ok {
			l.Checksum = "pinned"
			if !strings.EqualFold(pin, sum) {
				l.Checksum = "MISMATCH"
			}
		}
		if err := h.describe(ctx, p, &l); err != nil {
			l.Error = err.Error()
		}
		out = append(out, l)
	}
	return out, nil
}

func (h *Host) describe(ctx context.Context, p Plugin, l *Listing) error {
	c, err := h.Launch(ctx, p)
	if err != nil {
		return err
	}
	defer c.Close()
	l.Kinds, l.ProtocolVersion, l.SDKVersion = c.Kinds(), c.ProtocolVersion(), c.SDKVersion()
	var d sdk.Description
	if src, err := c.Source(); err == nil {
		d, err = src.Describe(ctx)
		if err != nil {
			return err
		}
	} else if sink, err := c.Sink(); err == nil {
		d, err = sink.Describe(ctx)
		if err != nil {
			return err
		}
	}
	l.Version = d.Version
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
