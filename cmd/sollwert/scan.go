package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/store"
)

func runScan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "sollwert.hcl", "configuration file")
	jobName := fs.String("job", "", "job to run (required)")
	ephemeral := fs.Bool("ephemeral", false, "keep results in memory only (use while a daemon holds the data dir)")
	logLevel := fs.String("log-level", "", "trace, debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	level := firstNonEmpty(*logLevel, cfg.Log.Level)
	var bar *progressBar
	var log hclog.Logger
	if isTerminal(stderr) && *logLevel == "" {
		// On a terminal a progress bar stands for the info lines; warnings
		// and errors still print.
		bar = newProgressBar(stderr, *jobName)
		il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "sollwert", Level: hclog.Warn, Output: stderr})
		il.RegisterSink(sinkAt{bar, hclog.Info})
		log = il
	} else {
		log = newLogger(stderr, level, cfg.Log.Format)
	}
	cfg, closeSecrets, err := daemon.ResolveSecrets(context.Background(), cfg, log.Named("secrets"))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer closeSecrets()
	srcs, err := sources(cfg, log)
	if err == nil {
		err = daemon.Validate(context.Background(), cfg, srcs, log)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var job *config.Job
	for i := range cfg.Jobs {
		if cfg.Jobs[i].Name == *jobName {
			job = &cfg.Jobs[i]
		}
	}
	if job == nil {
		fmt.Fprintf(stderr, "sollwert scan: no job %q in %s (jobs: %v)\n", *jobName, *cfgPath, cfg.JobNames())
		return 2
	}
	intervals, err := daemon.Intervals(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	engine, err := rules.Compile(cfg.Rules, intervals)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	st, err := store.Open(cfg.DataDir, store.Options{InMemory: *ephemeral, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "sollwert scan: %v (add --ephemeral to scan without the store)\n", err)
		return 1
	}
	defer st.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, job.Timeout)
		defer cancel()
	}
	exec := &daemon.Executor{
		Store: st, Sources: srcs, Logger: log.Named("job"),
		Applier: &ingest.Applier{Store: st, Engine: func() *rules.Engine { return engine }},
	}
	if bar != nil {
		exec.Progress = bar.Hosts
	}
	out, err := exec.Execute(ctx, *job, "cli")
	if bar != nil {
		bar.Done()
	}
	r := out.Run
	if err != nil {
		fmt.Fprintf(stdout, "job %s: %s after %s: %s\nnothing was changed\n", r.Job, r.Status, r.Duration(time.Now()).Round(time.Millisecond), r.Error)
		return 1
	}
	s := out.Summary
	fmt.Fprintf(stdout, "job %s: %s in %s: %d hosts up, %d changed, %d went down; deviations: %d opened, %d resolved\n",
		r.Job, r.Status, r.Duration(time.Now()).Round(time.Millisecond), s.Hosts, s.Changed, s.Down, s.Opened, s.Resolved)
	var active []model.Deviation
	_ = st.View(context.Background(), func(t *store.Txn) error {
		return t.ForEachDeviation(job.Tenant, func(d *model.Deviation) error {
			ip, err := netip.ParseAddr(d.Host)
			if d.Active() && (err != nil || r.Scope == nil || r.Scope.ContainsAddr(ip)) {
				active = append(active, *d)
			}
			return nil
		})
	})
	if len(active) == 0 {
		fmt.Fprintln(stdout, "no active deviations in the job's scope")
	}
	for _, d := range active {
		fmt.Fprintf(stdout, "  %-8s %-16s %-22s %s (rule %s)\n", d.Severity, d.Kind, d.Subject(), d.Detail, d.Rule)
	}
	return 0
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
