package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/plugins"
)

func runRules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprintln(stderr, "usage: sollwert rules validate --config FILE")
		return 2
	}
	fs := flag.NewFlagSet("rules validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "sollwert.hcl", "configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err == nil {
		var srcs *plugins.Registry
		if srcs, err = sources(cfg, hclog.NewNullLogger()); err == nil {
			err = daemon.Validate(context.Background(), cfg, srcs, hclog.NewNullLogger())
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "%s: valid: %d jobs, %d expect blocks\n", *cfgPath, len(cfg.Jobs), len(cfg.Rules))
	return 0
}
