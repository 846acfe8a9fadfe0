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
		// Vault references are read as the daemon reads them: one that
		// does not resolve is found here, not at the next start.
		var resolved *config.Config
		var closeSecrets func() error
		if resolved, closeSecrets, err = daemon.ResolveSecrets(context.Background(), cfg, hclog.NewNullLogger()); err == nil {
			defer closeSecrets()
			var srcs *plugins.Registry
			if srcs, err = sources(resolved, hclog.NewNullLogger()); err == nil {
				err = daemon.Validate(context.Background(), resolved, srcs, hclog.NewNullLogger())
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "%s: valid: %d jobs, %d expect blocks\n", *cfgPath, len(cfg.Jobs), len(cfg.Rules))
	return 0
}
