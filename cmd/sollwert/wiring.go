package main

import (
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/daemon/pluginhost"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/plugins/alertmanager"
	"github.com/sollwert/sollwert/plugins/icinga2"
	"github.com/sollwert/sollwert/plugins/nagios"
	"github.com/sollwert/sollwert/plugins/nmap"
	"github.com/sollwert/sollwert/plugins/snmp"
	"github.com/sollwert/sollwert/plugins/webhook"
	"github.com/sollwert/sollwert/sdk"
)

// sources is the one place that decides which sources a configuration
// has: the built-in scanners, then the plugins of its plugin_dir.
func sources(cfg *config.Config, log hclog.Logger) (*plugins.Registry, error) {
	r := plugins.NewRegistry()
	if err := r.Register("nmap", func(l hclog.Logger) sdkSource { return nmap.New(l) }); err != nil {
		return nil, err
	}
	if err := r.Register("snmp", func(l hclog.Logger) sdkSource { return snmp.New(l) }); err != nil {
		return nil, err
	}
	if err := r.RegisterSink("webhook", func(l hclog.Logger) sdk.Sink { return webhook.New(l) }); err != nil {
		return nil, err
	}
	if err := r.RegisterSink("alertmanager", func(l hclog.Logger) sdk.Sink { return alertmanager.New(l) }); err != nil {
		return nil, err
	}
	if err := r.RegisterSink("icinga2", func(l hclog.Logger) sdk.Sink { return icinga2.New(l) }); err != nil {
		return nil, err
	}
	if err := r.RegisterSink("nagios", func(l hclog.Logger) sdk.Sink { return nagios.New(l) }); err != nil {
		return nil, err
	}
	if err := pluginHost(cfg, log).Register(r); err != nil {
		return nil, err
	}
	return r, nil
}

// importers read scans made elsewhere, by source name (sollwert import).
func importers() map[string]func(io.Reader, hclog.Logger) sdk.Source {
	return map[string]func(io.Reader, hclog.Logger) sdk.Source{
		"nmap": func(r io.Reader, l hclog.Logger) sdk.Source { return nmap.NewImport(r, l) },
	}
}

func pluginHost(cfg *config.Config, log hclog.Logger) *pluginhost.Host {
	return &pluginhost.Host{Dir: cfg.PluginDir, Pins: cfg.Pins(), Logger: log.Named("plugin")}
}

func newLogger(w io.Writer, level, format string) hclog.Logger {
	if level == "" {
		level = os.Getenv("SOLLWERT_LOG_LEVEL")
	}
	if level == "" {
		level = "info"
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "sollwert",
		Level:      hclog.LevelFromString(level),
		JSONFormat: strings.EqualFold(format, "json"),
		Output:     w,
	})
}
