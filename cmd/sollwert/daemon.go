package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sollwert/sollwert/daemon"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/plugins"
)

func runDaemon(args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "sollwert.hcl", "configuration file")
	logLevel := fs.String("log-level", "", "trace, debug, info, warn, error (overrides the config)")
	logFormat := fs.String("log-format", "", "text or json (overrides the config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	level, format := cfg.Log.Level, cfg.Log.Format
	if *logLevel != "" {
		level = *logLevel
	}
	if *logFormat != "" {
		format = *logFormat
	}
	log := newLogger(stderr, level, format)
	d, err := daemon.New(cfg, daemon.Options{
		Sources: func(c *config.Config) (*plugins.Registry, error) { return sources(c, log) },
		Logger:  log, Version: version, Commit: commit, Built: built,
		Importers: importers()})
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := d.Run(ctx, reload); err != nil {
		log.Error("stopped with error", "error", err)
		return 1
	}
	return 0
}
