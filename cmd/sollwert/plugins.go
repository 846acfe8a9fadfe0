package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
)

// runPlugins lists the plugins of a configuration's plugin_dir. It starts
// each one to ask what it is, so a plugin that cannot start shows here
// with the reason, before a job fails on it.
func runPlugins(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprintln(stderr, "usage: sollwert plugins list --config FILE [--json]")
		return 2
	}
	fs := flag.NewFlagSet("plugins list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "sollwert.hcl", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if cfg.PluginDir == "" {
		fmt.Fprintf(stderr, "%s sets no plugin_dir\n", *cfgPath)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := pluginHost(cfg, hclog.NewNullLogger()).List(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	bad := 0
	for _, l := range list {
		if l.Error != "" || l.Checksum == "MISMATCH" {
			bad++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(list)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tKINDS\tPROTOCOL\tSDK\tCHECKSUM\tSTATUS")
		for _, l := range list {
			status := "ok"
			if l.Error != "" {
				status = strings.SplitN(l.Error, "\n", 2)[0]
			}
			proto := "-"
			if l.ProtocolVersion > 0 {
				proto = fmt.Sprint(l.ProtocolVersion)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, dash(l.Version), dash(strings.Join(l.Kinds, ",")), proto, dash(l.SDKVersion), l.Checksum, status)
		}
		tw.Flush()
		if len(list) == 0 {
			fmt.Fprintf(stderr, "no plugins (sollwert-plugin-NAME) in %s\n", cfg.PluginDir)
		}
	}
	if bad > 0 {
		return 1
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
