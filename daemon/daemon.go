package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sollwert/sollwert/auth"
	"github.com/sollwert/sollwert/daemon/api"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/integrity"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/notifier"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/scheduler"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// Options are what cmd/sollwert hands the daemon.
type Options struct {
	// Sources builds the sources a configuration can use: the built-in
	// ones and the plugins in its plugin_dir. It runs again on reload.
	Sources func(*config.Config) (*plugins.Registry, error)
	Logger  hclog.Logger
	// Registry receives the daemon's metrics; nil makes a private one.
	Registry *prometheus.Registry
	Version  string
	Commit   string
	Built    string
	// StaleSweep is how often staleness is re-checked; 0 means 30s.
	StaleSweep time.Duration
	// Delivery tunes event delivery to sinks (the logger is set here).
	Delivery notifier.Options
	// Importers read scans made elsewhere as runs of a job, by the job's
	// source name ("nmap": nmap XML); nil: no imports.
	Importers map[string]func(r io.Reader, log hclog.Logger) sdk.Source
}

// Daemon is a running sollwert.
type Daemon struct {
	opts     Options
	log      hclog.Logger
	store    *store.Store
	sched    *scheduler.Scheduler
	exec     *Executor
	applier  *ingest.Applier
	registry *prometheus.Registry
	notifier *notifier.Manager

	mu      sync.RWMutex
	cfg     *config.Config
	engine  *rules.Engine
	jobs    map[string]config.Job
	sources *plugins.Registry
	// secrets turns NAME_vault into NAME_file at every load (secrets.go).
	secrets *secretFiles

	// checkpoints signs the chains' heads (nil: no integrity block);
	// integrity is what /v1/verify holds them against.
	checkpoints *integrity.Checkpointer
	integrity   integrity.Options

	httpSrv  *http.Server
	listener net.Listener
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// New validates cfg, opens the store and prepares every part without
// starting anything.
func New(cfg *config.Config, opts Options) (_ *Daemon, err error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.StaleSweep <= 0 {
		opts.StaleSweep = 30 * time.Second
	}
	secretFiles := newSecretFiles(cfg.DataDir, opts.Logger.Named("secrets"))
	cfg, staged, err := secretFiles.stage(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		staged.finish(err == nil)
		if err != nil {
			secretFiles.close()
		}
	}()
	sources, err := opts.Sources(cfg)
	if err != nil {
		return nil, err
	}
	if err := Validate(context.Background(), cfg, sources, opts.Logger); err != nil {
		return nil, err
	}
	st, err := store.Open(cfg.DataDir, store.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, log: opts.Logger, store: st, cfg: cfg, registry: opts.Registry, sources: sources, secrets: secretFiles}
	if d.checkpoints, d.integrity, err = checkpointing(cfg.Integrity, st, opts.Logger.Named("integrity")); err != nil {
		st.Close()
		return nil, err
	}
	d.bgCtx, d.bgCancel = context.WithCancel(context.Background())
	metrics, err := NewMetrics(opts.Registry, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	delivery := opts.Delivery
	delivery.Logger = opts.Logger.Named("sink")
	delivery.Active = func(ctx context.Context) ([]sdk.Event, error) {
		d.mu.RLock()
		tenants := d.cfg.Tenants
		d.mu.RUnlock()
		return activeEvents(ctx, st, tenants)
	}
	delivery.Hold = d.heldUntil
	d.notifier = notifier.New(st, delivery)
	if err := opts.Registry.Register(notifierCollector{d.notifier}); err != nil {
		st.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	d.applier = &ingest.Applier{Store: st, Engine: d.currentEngine, Route: d.notifier.Route, Queued: d.notifier.Wake}
	spoolDir := filepath.Join(cfg.DataDir, "spool")
	if err := os.MkdirAll(spoolDir, 0o750); err != nil {
		st.Close()
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	d.exec = &Executor{Store: st, Sources: d, Applier: d.applier, Logger: opts.Logger.Named("job"), Metrics: metrics, SpoolDir: spoolDir}
	d.sched = scheduler.New(d.runScheduled, scheduler.Options{
		MaxConcurrent: cfg.MaxConcurrentJobs,
		Logger:        opts.Logger.Named("scheduler"),
		Observer:      skipRecorder{d},
	})
	if err := d.apply(cfg); err != nil {
		st.Close()
		return nil, err
	}
	if n, err := RecoverInterrupted(context.Background(), st, time.Now().UTC()); err != nil {
		st.Close()
		return nil, err
	} else if n > 0 {
		d.log.Warn("marked runs interrupted by an earlier stop", "runs", n)
	}
	return d, nil
}

// Validate checks a configuration completely: syntax is the config
// package's, each job's source checks its own attributes, and the rules
// must compile. Errors name file, line and column.
func Validate(ctx context.Context, cfg *config.Config, sources SourceFinder, log hclog.Logger) error {
	var errs []error
	for _, job := range cfg.Jobs {
		src, err := sources.Source(job.Source, log)
		if err != nil {
			errs = append(errs, job.FieldError(sourceError(err)))
			continue
		}
		if err := src.Validate(ctx, job.SourceConfig); err != nil {
			var verr *sdkValidationError
			if errors.As(err, &verr) {
				errs = append(errs, job.FieldError(verr))
			} else {
				errs = append(errs, fmt.Errorf("job %q: %w", job.Name, err))
			}
		}
	}
	for _, s := range cfg.Sinks {
		sink, err := sources.Sink(s.Type, log)
		if err != nil {
			errs = append(errs, s.FieldError(&sdkValidationError{Fields: []sdk.FieldError{{Field: "type", Message: err.Error()}}}))
			continue
		}
		if err := sink.Validate(ctx, s.Config); err != nil {
			var verr *sdkValidationError
			if errors.As(err, &verr) {
				errs = append(errs, s.FieldError(verr))
			} else {
				errs = append(errs, fmt.Errorf("sink %q: %w", s.Name, err))
			}
		}
	}
	if _, err := rules.Compile(cfg.Rules, nil); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// activeEvents describes every active deviation as it stands, with the
// counts of its host's active deviations, for sinks that must be reminded
// (Alertmanager, Icinga 2).
func activeEvents(ctx context.Context, st *store.Store, tenants []string) ([]sdk.Event, error) {
	now := time.Now().UTC()
	if len(tenants) == 0 {
		tenants = []string{model.DefaultTenant}
	}
	byAsset := map[string][]model.Deviation{}
	err := st.View(ctx, func(t *store.Txn) error {
		for _, tenant := range tenants {
			err := t.ForEachDeviation(tenant, func(d *model.Deviation) error {
				if d.Active() {
					k := d.Tenant + "\x00" + d.AssetID
					byAsset[k] = append(byAsset[k], *d)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []sdk.Event
	for _, devs := range byAsset {
		for i := range devs {
			kind := sdk.EventOpened
			if devs[i].State == model.StateAcknowledged {
				kind = sdk.EventAcknowledged
			}
			ev := model.NewEvent(&devs[i], kind, now)
			for j := range devs {
				model.CountActive(&ev, &devs[j])
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// sinksOf builds the notifier's view of cfg's sinks.
func sinksOf(cfg *config.Config, reg SourceFinder, log hclog.Logger) ([]notifier.Sink, error) {
	out := make([]notifier.Sink, 0, len(cfg.Sinks))
	for _, s := range cfg.Sinks {
		impl, err := reg.Sink(s.Type, log)
		if err != nil {
			return nil, fmt.Errorf("sink %q: %w", s.Name, err)
		}
		out = append(out, notifier.Sink{Name: s.Name, Type: s.Type, Impl: impl, Config: s.Config, Fingerprint: s.Fingerprint(),
			Filter: notifier.Filter{Tenants: s.Tenants, Severities: s.Severities, Rules: s.Rules, Kinds: s.Kinds, Events: s.Events}})
	}
	return out, nil
}

// apply installs cfg's jobs and rules; on error nothing changes.
func (d *Daemon) apply(cfg *config.Config) error {
	jobs := make([]scheduler.Job, 0, len(cfg.Jobs))
	byName := make(map[string]config.Job, len(cfg.Jobs))
	for _, j := range cfg.Jobs {
		jobs = append(jobs, scheduler.Job{Name: j.Name, Schedule: j.Schedule, Timeout: j.Timeout, Jitter: j.Jitter, Spec: j.Fingerprint()})
		byName[j.Name] = j
	}
	intervals, err := Intervals(cfg)
	if err != nil {
		return err
	}
	engine, err := rules.Compile(cfg.Rules, intervals)
	if err != nil {
		return err
	}
	// Swap jobs before the scheduler can fire one of the new ones.
	d.mu.Lock()
	oldJobs := d.jobs
	d.jobs = byName
	d.mu.Unlock()
	if err := d.sched.Update(jobs); err != nil {
		d.mu.Lock()
		d.jobs = oldJobs
		d.mu.Unlock()
		return err
	}
	d.mu.Lock()
	d.cfg, d.engine = cfg, engine
	reg := d.sources
	d.mu.Unlock()
	sinks, err := sinksOf(cfg, reg, d.log.Named("sink"))
	if err != nil {
		return err
	}
	d.notifier.Update(sinks)
	return nil
}

// Intervals returns each job's nominal schedule interval, which stale
// checks multiply.
func Intervals(cfg *config.Config) (map[string]time.Duration, error) {
	out := make(map[string]time.Duration, len(cfg.Jobs))
	for _, j := range cfg.Jobs {
		iv, err := scheduler.IntervalOf(j.Schedule)
		if err != nil {
			return nil, fmt.Errorf("job %q: %w", j.Name, err)
		}
		out[j.Name] = iv
	}
	return out, nil
}

// Source builds a source of the current configuration, for the executor.
func (d *Daemon) Source(name string, log hclog.Logger) (sdk.Source, error) {
	d.mu.RLock()
	reg := d.sources
	d.mu.RUnlock()
	return reg.Source(name, log)
}

// Sink builds a sink of the current configuration.
func (d *Daemon) Sink(name string, log hclog.Logger) (sdk.Sink, error) {
	d.mu.RLock()
	reg := d.sources
	d.mu.RUnlock()
	return reg.Sink(name, log)
}

func (d *Daemon) currentEngine() *rules.Engine {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.engine
}

func (d *Daemon) job(name string) (config.Job, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	j, ok := d.jobs[name]
	return j, ok
}

func (d *Daemon) runScheduled(ctx context.Context, sj scheduler.Job, trigger string) error {
	job, ok := d.job(sj.Name)
	if !ok {
		return fmt.Errorf("job %q is no longer configured", sj.Name)
	}
	if job.Fingerprint() != sj.Spec {
		// A reload changed the job between the scheduler starting this run
		// and now; mixing the old timeout with the new source config would
		// run neither definition.
		return fmt.Errorf("job %q changed while its run was starting; the next run uses the new definition", sj.Name)
	}
	if until, in := job.InMaintenance(time.Now()); in {
		d.log.Info("run skipped: the job is in a maintenance window", "job", job.Name, "until", until.UTC().Format(time.RFC3339))
		return nil
	}
	_, err := d.exec.Execute(ctx, job, trigger)
	return err
}

// audit records something the daemon itself did, in the default
// tenant's log (a reload and the tokens file concern every tenant).
func (d *Daemon) audit(r model.AuditRecord) {
	r.Time, r.Tenant, r.Actor = time.Now().UTC(), model.DefaultTenant, "daemon"
	if err := d.store.Update(context.Background(), func(t *store.Txn) error { return t.AppendAudit(&r) }); err != nil {
		d.log.Error("audit log", "error", err)
	}
}

// heldUntil says until when an event must wait in the sinks' queues: the
// end of the maintenance windows of the tenant's jobs that are open now
// and whose targets hold the deviation's host. Zero: deliver it.
func (d *Daemon) heldUntil(ev *sdk.Event) time.Time {
	d.mu.RLock()
	cfg := d.cfg
	d.mu.RUnlock()
	host, err := netip.ParseAddr(ev.Deviation.Host)
	if err != nil {
		return time.Time{}
	}
	var until time.Time
	now := time.Now()
	for _, j := range cfg.Jobs {
		if j.Tenant != ev.Tenant || len(j.Maintenance) == 0 {
			continue
		}
		end, in := j.InMaintenance(now)
		if !in || !end.After(until) {
			continue
		}
		for _, p := range j.Targets() {
			if p.Contains(host.Unmap()) {
				until = end
				break
			}
		}
	}
	return until
}

// Reload reads the configuration file again. A configuration that does
// not load or validate is refused and the running one stays.
func (d *Daemon) Reload(ctx context.Context) error {
	d.mu.RLock()
	path, old := d.cfg.Path, d.cfg
	d.mu.RUnlock()
	cfg, err := config.Load(path)
	var staged *secretStage // every Vault reference read again
	if err == nil {
		cfg, staged, err = d.secrets.stage(ctx, cfg)
	}
	var sources *plugins.Registry
	if err == nil {
		sources, err = d.opts.Sources(cfg)
	}
	if err == nil {
		err = Validate(ctx, cfg, sources, d.log)
	}
	if err == nil {
		d.mu.Lock()
		oldSources := d.sources
		d.sources = sources
		d.mu.Unlock()
		if err = d.apply(cfg); err != nil {
			d.mu.Lock()
			d.sources = oldSources
			d.mu.Unlock()
		}
	}
	staged.finish(err == nil)
	if err != nil {
		d.log.Error("reload refused, keeping the running configuration", "error", err)
		d.audit(model.AuditRecord{Action: "reload", Target: path, Detail: "refused: " + err.Error()})
		return fmt.Errorf("reload: %w", err)
	}
	d.audit(model.AuditRecord{Action: "reload", Target: path, Detail: fmt.Sprintf("applied: %d jobs, %d rules", len(cfg.Jobs), len(cfg.Rules))})
	if cfg.DataDir != old.DataDir || cfg.API.Listen != old.API.Listen {
		d.log.Warn("data_dir and api.listen changes take effect at the next restart")
	}
	d.log.Info("configuration reloaded", "jobs", len(cfg.Jobs), "rules", len(cfg.Rules))
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		d.reevaluate(d.bgCtx, "reload")
	}()
	return nil
}

func (d *Daemon) reevaluate(ctx context.Context, why string) {
	sum, err := d.applier.Reevaluate(ctx, model.DefaultTenant)
	if err != nil {
		d.log.Error("re-evaluating assets failed", "reason", why, "error", err)
		return
	}
	if sum.Opened+sum.Resolved > 0 {
		d.log.Info("re-evaluated assets", "reason", why, "opened", sum.Opened, "resolved", sum.Resolved)
	}
}

// Run serves until ctx ends; every value on reload triggers Reload.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	if err := d.Listen(); err != nil {
		return err
	}
	d.sched.Start()
	d.log.Info("sollwert started", "api", d.Addr(), "data_dir", d.cfg.DataDir, "jobs", len(d.cfg.Jobs), "rules", len(d.cfg.Rules))
	serveErr := make(chan error, 1)
	go func() { serveErr <- d.httpSrv.Serve(d.listener) }()

	d.bg.Add(2)
	go func() {
		defer d.bg.Done()
		d.sweepStale(d.bgCtx)
	}()
	go func() {
		defer d.bg.Done()
		d.pruneHistory(d.bgCtx)
	}()
	if d.checkpoints != nil {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.checkpoints.Run(d.bgCtx) // and a last one as the daemon stops
		}()
	}

	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-reload:
			_ = d.Reload(ctx)
		case err = <-serveErr:
			err = fmt.Errorf("api server: %w", err)
			break loop
		}
	}
	return errors.Join(err, d.shutdown())
}

// Listen binds the API address; Run calls it if the caller did not.
func (d *Daemon) Listen() error {
	if d.listener != nil {
		return nil
	}
	cfg := d.cfg.API
	chatToken, err := cfg.ChatToken()
	if err != nil {
		return err
	}
	var guard *auth.Guard
	if cfg.TokensFile != "" {
		if guard, err = auth.NewGuard(cfg.TokensFile, model.DefaultTenant, d.log.Named("auth")); err != nil {
			return fmt.Errorf("api: %w", err)
		}
		path := cfg.TokensFile
		guard.OnReload = func(tokens int) {
			d.audit(model.AuditRecord{Action: "tokens", Target: path, Detail: fmt.Sprintf("tokens file changed: %d tokens", tokens)})
		}
	}
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", cfg.Listen, err)
	}
	switch {
	case cfg.Insecure && (tlsCfg == nil || guard == nil):
		d.log.Warn("the API runs without TLS or without tokens because the config says insecure = true", "listen", cfg.Listen,
			"tls", tlsCfg != nil, "tokens", guard != nil)
	case guard == nil:
		d.log.Info("the API takes no tokens: anyone who can reach " + cfg.Listen + " may read and acknowledge")
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	d.listener = ln
	handler, err := api.New(api.Options{
		Store: d.store, Jobs: jobController{d}, Gatherer: d.registry, Sinks: d.notifier, Acks: d.applier, ChatToken: chatToken,
		Guard: guard, Integrity: d.integrity, Logger: d.log.Named("api"), Version: d.opts.Version, Commit: d.opts.Commit, Built: d.opts.Built,
	})
	if err != nil {
		ln.Close()
		return err
	}
	d.httpSrv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// serverTLS is the API's TLS configuration; nil serves plain HTTP.
// Certificates are read again at every handshake, so a renewed pair on
// disk takes effect without a restart.
func serverTLS(cfg config.API) (*tls.Config, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil
	}
	if _, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
		return nil, fmt.Errorf("api: TLS certificate: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("api: TLS certificate: %w", err)
		}
		return &cert, nil
	}}
	if cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("api: client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("api: client_ca_file %s: no PEM certificate in it", cfg.ClientCAFile)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// Addr is the API's bound address.
func (d *Daemon) Addr() string {
	if d.listener == nil {
		return ""
	}
	return d.listener.Addr().String()
}

func (d *Daemon) shutdown() error {
	d.log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if d.httpSrv != nil {
		errs = append(errs, d.httpSrv.Shutdown(ctx))
	}
	errs = append(errs, d.sched.Stop(ctx))
	d.bgCancel()
	d.bg.Wait()
	d.notifier.Stop()
	errs = append(errs, d.secrets.close())
	errs = append(errs, d.store.Close())
	return errors.Join(errs...)
}

// sweepStale re-judges assets when some job has gone without a successful
// run for longer than the shortest stale limit, so stale_scan deviations
// open without waiting for a scan that may never come.
// pruneHistory applies the retention block a minute after start and then
// every six hours, tenant by tenant.
func (d *Daemon) pruneHistory(ctx context.Context) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = 6 * time.Hour
		d.mu.RLock()
		keep, tenants := d.cfg.Retention.History, d.cfg.Tenants
		d.mu.RUnlock()
		if keep <= 0 {
			continue
		}
		for _, tenant := range tenants {
			n, err := d.store.PruneHistory(ctx, tenant, time.Now().Add(-keep))
			if err != nil {
				d.log.Error("history retention", "tenant", tenant, "error", err)
				continue
			}
			if n > 0 {
				d.log.Info("history retention: dropped old versions", "tenant", tenant, "versions", n, "older_than", keep)
			}
		}
	}
}

func (d *Daemon) sweepStale(ctx context.Context) {
	t := time.NewTicker(d.opts.StaleSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d.staleSuspected(ctx) {
			d.reevaluate(ctx, "stale check")
		}
	}
}

func (d *Daemon) staleSuspected(ctx context.Context) bool {
	d.mu.RLock()
	cfg := d.cfg
	d.mu.RUnlock()
	minFactor := 0
	for _, r := range cfg.Rules {
		if r.StaleAfter > 0 && (minFactor == 0 || r.StaleAfter < minFactor) {
			minFactor = r.StaleAfter
		}
	}
	if minFactor == 0 {
		return false
	}
	intervals, err := Intervals(cfg)
	if err != nil {
		return false
	}
	now := time.Now()
	suspected := false
	_ = d.store.View(ctx, func(t *store.Txn) error {
		for _, j := range cfg.Jobs {
			st, err := t.JobState(j.Tenant, j.Name)
			if err != nil || st.LastSuccess == nil || st.LastSuccess.End == nil {
				continue
			}
			if now.Sub(*st.LastSuccess.End) > time.Duration(minFactor)*intervals[j.Name] {
				suspected = true
			}
		}
		return nil
	})
	return suspected
}

type skipRecorder struct{ d *Daemon }

// Skipped records a run the scheduler did not start, so a job that keeps
// overrunning its schedule shows in its run list, not only in the log.
func (s skipRecorder) Skipped(job scheduler.Job, trigger string, at time.Time, reason string) {
	s.d.log.Warn("run skipped", "job", job.Name, "trigger", trigger, "reason", reason)
	cj, ok := s.d.job(job.Name)
	if !ok {
		return
	}
	at = at.UTC()
	r := model.Run{ID: newRunID(at), Tenant: cj.Tenant, Job: cj.Name, Source: cj.Source, Trigger: trigger,
		Status: model.RunSkipped, Start: at, End: &at, Error: "skipped: " + reason}
	if err := s.d.store.Update(context.Background(), func(t *store.Txn) error { return t.PutRun(&r) }); err != nil {
		s.d.log.Error("cannot record skipped run", "job", job.Name, "error", err)
	}
}

type jobController struct{ d *Daemon }

// Import runs the job once over a scan made elsewhere, read from r by the
// importer of the job's source, as the executor runs any source: a file
// that is malformed or does not cover the job's targets changes nothing.
func (c jobController) Import(ctx context.Context, name string, r io.Reader) (model.Run, error) {
	job, ok := c.d.job(name)
	if !ok {
		return model.Run{}, fmt.Errorf("%w %q", api.ErrUnknownJob, name)
	}
	imp := c.d.opts.Importers[job.Source]
	if imp == nil {
		return model.Run{}, fmt.Errorf("%w: job %q runs source %q, which reads no files", api.ErrNotImportable, name, job.Source)
	}
	exec := *c.d.exec
	exec.Sources = importFinder{SourceFinder: c.d, src: imp(r, c.d.log.Named("import"))}
	out, err := exec.Execute(ctx, job, "import")
	return out.Run, err
}

// importFinder hands the executor the importing source for the job.
type importFinder struct {
	SourceFinder
	src sdk.Source
}

func (f importFinder) Source(string, hclog.Logger) (sdk.Source, error) { return f.src, nil }

func (c jobController) Jobs() []api.JobInfo {
	c.d.mu.RLock()
	cfg := c.d.cfg
	c.d.mu.RUnlock()
	out := make([]api.JobInfo, 0, len(cfg.Jobs))
	for _, j := range cfg.Jobs {
		info := api.JobInfo{Name: j.Name, Source: j.Source, Schedule: j.Schedule, Tenant: j.Tenant, Running: c.d.sched.Running(j.Name)}
		if next, ok := c.d.sched.Next(j.Name); ok {
			info.NextRun = &next
		}
		out = append(out, info)
	}
	return out
}

func (c jobController) RunNow(ctx context.Context, name string) error {
	if job, ok := c.d.job(name); ok {
		if until, in := job.InMaintenance(time.Now()); in {
			return fmt.Errorf("%w: job %q until %s", api.ErrInMaintenance, name, until.UTC().Format(time.RFC3339))
		}
	}
	err := c.d.sched.RunNow(ctx, name)
	switch {
	case errors.Is(err, scheduler.ErrUnknownJob):
		return fmt.Errorf("%w %q", api.ErrUnknownJob, name)
	case errors.Is(err, scheduler.ErrAlreadyRunning):
		return fmt.Errorf("%w: %q", api.ErrAlreadyRunning, name)
	}
	return err
}
