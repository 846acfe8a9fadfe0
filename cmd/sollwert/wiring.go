package main

import (
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/plugins/nmap"
)

// sources is the one place that decides which sources this binary has.
func sources() *plugins.Registry {
	r := plugins.NewRegistry()
	_ = r.Register("nmap", func(l hclog.Logger) sdkSource { return nmap.New(l) })
	return r
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
