// Package api serves sollwert's HTTP API (JSON under /v1), the check
// endpoint, /healthz and /metrics. It reads the store and asks a
// JobController to start runs; it never scans or evaluates rules itself.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sollwert/sollwert/auth"
	"github.com/sollwert/sollwert/check"
	"github.com/sollwert/sollwert/export"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/integrity"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/notifier"
	"github.com/sollwert/sollwert/plugins/nmap/scandiff"
	"github.com/sollwert/sollwert/store"
)

// Errors a JobController returns for RunNow.
var (
	ErrUnknownJob     = errors.New("unknown job")
	ErrAlreadyRunning = errors.New("job is already running")
	ErrInMaintenance  = errors.New("job is in a maintenance window")
	ErrNotImportable  = errors.New("job cannot import scans")
)

// JobInfo describes a configured job.
type JobInfo struct {
	Name      string     `json:"name"`
	Source    string     `json:"source"`
	Schedule  string     `json:"schedule"`
	Tenant    string     `json:"tenant"`
	Running   bool       `json:"running"`
	NextRun   *time.Time `json:"next_run,omitempty"`
	LastRun   *model.Run `json:"last_run,omitempty"`
	LastState string     `json:"last_status,omitempty"`
}

// JobController is the scheduler as the API sees it.
type JobController interface {
	Jobs() []JobInfo
	// RunNow starts a run; errors wrap ErrUnknownJob or ErrAlreadyRunning.
	RunNow(ctx context.Context, name string) error
	// Import runs the job over a scan made elsewhere, read from r, and
	// returns the run; errors wrap ErrUnknownJob or ErrNotImportable, or
	// are the run's failure.
	Import(ctx context.Context, name string, r io.Reader) (model.Run, error)
}

// Acker acknowledges deviations (ingest.Applier).
type Acker interface {
	Acknowledge(ctx context.Context, tenant, id string, ack *model.Ack) (*model.Deviation, error)
}

// SinkReporter tells how event delivery stands (notifier.Manager).
type SinkReporter interface {
	Statuses(ctx context.Context, withDead bool) ([]notifier.Status, error)
}

// Options configure a Server.
type Options struct {
	Store *store.Store
	Jobs  JobController
	Sinks SinkReporter // nil: no /v1/sinks
	Acks  Acker        // nil: deviations cannot be acknowledged
	// ChatToken is the slash-command token; "" leaves /v1/chat/command off.
	ChatToken string
	// Guard checks tokens; nil: no authentication (loopback only, see
	// the daemon's listen checks).
	Guard    *auth.Guard
	Gatherer prometheus.Gatherer
	// Integrity is what GET /v1/verify holds the chains against.
	Integrity integrity.Options
	Logger    hclog.Logger
	Version   string
	Commit    string
	Built     string
	Now       func() time.Time
}

// Server is the HTTP handler.
type Server struct {
	opts   Options
	mux    *http.ServeMux
	routes []Route

	countMu sync.Mutex
	counts  map[string]countAt // assets by tenant, for the check
}

// checkListed is how many deviations the check over everything lists in
// its long output; the rest are counted.
const checkListed = 200

// assetCount is the tenant's number of assets for the check's perfdata,
// counted at most once a second: a count walks every asset key, and a
// monitoring system polls the check thousands of times a second.
func (s *Server) assetCount(t *store.Txn, tenant string) (int, error) {
	now := s.opts.Now()
	s.countMu.Lock()
	c, ok := s.counts[tenant]
	s.countMu.Unlock()
	if ok && now.Sub(c.at) < time.Second && !now.Before(c.at) {
		return c.n, nil
	}
	n, err := t.CountAssets(tenant)
	if err != nil {
		return 0, err
	}
	s.countMu.Lock()
	s.counts[tenant] = countAt{n: n, at: now}
	s.countMu.Unlock()
	return n, nil
}

type countAt struct {
	n  int
	at time.Time
}

// Route is one route and the scope it needs; "" for the few that need no
// token (liveness, the login form, static files, the slash command with
// its own token).
type Route struct {
	Pattern string
	Scope   auth.Scope
}

// Routes lists every route, so a test can walk them all.
func (s *Server) Routes() []Route { return s.routes }

// New builds the handler with every route.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), counts: map[string]countAt{}}
	// Every route names the scope it needs; with a Guard, a request
	// without a token that holds it goes no further.
	s.public("GET /healthz", http.HandlerFunc(s.healthz))
	if opts.Gatherer != nil {
		s.route("GET /metrics", auth.Admin, promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	}
	s.route("GET /v1/assets", auth.Read, s.listAssets)
	s.route("GET /v1/assets/{id}", auth.Read, s.getAsset)
	s.route("GET /v1/assets/{id}/history", auth.Read, s.assetHistory)
	s.route("GET /v1/assets/{id}/facts", auth.Read, s.assetFacts)
	s.route("GET /v1/deviations", auth.Read, s.listDeviations)
	s.route("GET /v1/deviations/{id}", auth.Read, s.getDeviation)
	s.route("GET /v1/jobs", auth.Read, s.listJobs)
	s.route("GET /v1/jobs/{name}/runs", auth.Read, s.jobRuns)
	s.route("POST /v1/jobs/{name}/run", auth.Run, s.runJob)
	s.route("POST /v1/jobs/{name}/import", auth.Run, s.importScan)
	s.route("GET /v1/check", auth.Read, s.check)
	s.route("GET /v1/audit", auth.Admin, s.listAudit)
	s.route("GET /v1/changes", auth.Read, s.changes)
	s.route("GET /v1/backup", auth.Admin, s.backup)
	s.route("GET /v1/verify", auth.Admin, s.verify)
	s.route("GET /v1/inventory/ansible", auth.Read, s.ansibleInventory)
	s.route("GET /v1/sd/prometheus", auth.Read, s.prometheusSD)
	if opts.Sinks != nil {
		s.route("GET /v1/sinks", auth.Read, s.listSinks)
	}
	if opts.ChatToken != "" {
		// Mattermost and Slack authenticate with the command's own token
		// (checked in chatCommand); it acts on the default tenant.
		s.public("POST /v1/chat/command", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.chatCommand(w, r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{Token: "chat", Tenant: model.DefaultTenant})))
		}))
	}
	if opts.Acks != nil {
		s.route("POST /v1/deviations/{id}/ack", auth.Ack, s.ack)
		s.route("DELETE /v1/deviations/{id}/ack", auth.Ack, s.unack)
	}
	u, err := newUI(s)
	if err != nil {
		return nil, err
	}
	if err := u.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// AckRequest is the body of POST /v1/deviations/{id}/ack.
type AckRequest struct {
	Author  string `json:"author"`
	Comment string `json:"comment"`
	// For is how long the acknowledgement holds ("24h"); Until is when it
	// ends. Neither: until the deviation resolves.
	For   string     `json:"for,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	var req AckRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	ack, err := s.newAck(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s.writeAck(w, r, ack)
}

// newAck checks an acknowledgement request, for the API and the web view.
func (s *Server) newAck(req AckRequest) (*model.Ack, error) {
	if strings.TrimSpace(req.Author) == "" || strings.TrimSpace(req.Comment) == "" {
		return nil, errors.New("author and comment are required: say who accepts the deviation and why")
	}
	ack := &model.Ack{By: req.Author, Comment: req.Comment, Until: req.Until}
	if req.For != "" {
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("for: %q is not a duration such as \"24h\"", req.For)
		}
		until := s.opts.Now().Add(d).UTC()
		ack.Until = &until
	}
	return ack, nil
}

func (s *Server) unack(w http.ResponseWriter, r *http.Request) { s.writeAck(w, r, nil) }

func (s *Server) writeAck(w http.ResponseWriter, r *http.Request, ack *model.Ack) {
	d, err := s.opts.Acks.Acknowledge(r.Context(), tenantOf(r), r.PathValue("id"), ack)
	if err != nil {
		writeError(w, ackErrorStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// ackErrorStatus is the HTTP status of an Acknowledge error.
func ackErrorStatus(err error) int {
	switch {
	case errors.Is(err, ingest.ErrResolved), errors.Is(err, ingest.ErrNotAcked):
		return http.StatusConflict
	case errors.Is(err, ingest.ErrAckEnded):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// listSinks shows each sink's queue, failures and, with ?dead=1, the
// events it refused for good.
func (s *Server) listSinks(w http.ResponseWriter, r *http.Request) {
	st, err := s.opts.Sinks.Statuses(r.Context(), r.URL.Query().Get("dead") != "")
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route registers an API handler behind the scope it needs.
func (s *Server) route(pattern string, scope auth.Scope, h http.HandlerFunc) {
	s.guarded(pattern, scope, h, func(w http.ResponseWriter, _ *http.Request, d *auth.Denial) { writeError(w, d.Code, d) })
}

// public registers a route that needs no token. Every route goes through
// public or guarded, so Routes is complete.
func (s *Server) public(pattern string, h http.Handler) {
	s.routes = append(s.routes, Route{Pattern: pattern})
	s.mux.Handle(pattern, h)
}

// guarded registers h behind scope. Requests that change something, and
// every refusal, go to the audit log.
func (s *Server) guarded(pattern string, scope auth.Scope, h http.Handler, denied func(http.ResponseWriter, *http.Request, *auth.Denial)) {
	s.routes = append(s.routes, Route{Pattern: pattern, Scope: scope})
	if action := auditAction(pattern); action != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			inner.ServeHTTP(rec, r)
			target := r.PathValue("id")
			if target == "" {
				target = r.PathValue("name")
			}
			s.audit(r, action, target, "", rec.status)
		})
	}
	s.mux.Handle(pattern, s.opts.Guard.Require(scope, h, func(w http.ResponseWriter, r *http.Request, d *auth.Denial) {
		s.audit(r, "denied", r.Method+" "+r.URL.Path, d.Message, d.Code)
		denied(w, r, d)
	}))
}

// auditAction names what a route pattern does, "" for reads.
func auditAction(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	switch {
	case method == http.MethodGet:
		return ""
	case strings.HasSuffix(path, "/unack"), method == http.MethodDelete && strings.HasSuffix(path, "/ack"):
		return "unack"
	case strings.HasSuffix(path, "/ack"):
		return "ack"
	case strings.HasSuffix(path, "/import"):
		return "import"
	case strings.HasSuffix(path, "/run"):
		return "run"
	}
	return strings.ToLower(method) + " " + path
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// audit records one request. Its tenant is the one the request acted for
// (or asked for, when it was refused).
func (s *Server) audit(r *http.Request, action, target, detail string, status int) {
	rec := model.AuditRecord{Time: s.opts.Now().UTC(), Tenant: tenantOf(r), Actor: "anonymous", Action: action,
		Target: target, Detail: detail, Status: status}
	if p, ok := auth.From(r.Context()); ok && p.Token != "" {
		rec.Actor = p.Token
	} else if t := r.URL.Query().Get("tenant"); t != "" {
		rec.Tenant = t
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		rec.From = host
	}
	if err := s.opts.Store.Update(context.WithoutCancel(r.Context()), func(t *store.Txn) error { return t.AppendAudit(&rec) }); err != nil {
		s.opts.Logger.Error("audit log", "error", err)
	}
}

// backup streams a consistent copy of the whole store (every tenant: an
// admin token bound to all of them is what a backup needs), taken while
// the daemon goes on writing.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if p, ok := auth.From(r.Context()); ok && p.Token != "" && !p.AllTenants() {
		writeError(w, http.StatusForbidden, errors.New("a backup holds every tenant: it needs an admin token bound to all (--tenant '*')"))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="sollwert.backup"`)
	// The status line goes out before the backup is complete: the trailer
	// says whether it was, and `sollwert backup` keeps the file only then.
	w.Header().Set("Trailer", HeaderBackupStatus)
	if err := s.opts.Store.Backup(w); err != nil {
		s.opts.Logger.Error("backup", "error", err)
		w.Header().Set(HeaderBackupStatus, "error: "+err.Error())
		return
	}
	w.Header().Set(HeaderBackupStatus, "complete")
}

// verify walks every tenant's chain of history and audit records and
// holds it against the checkpoints; like a backup it concerns every
// tenant. 200 with the report whatever it found: report.ok says.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	if p, ok := auth.From(r.Context()); ok && p.Token != "" && !p.AllTenants() {
		writeError(w, http.StatusForbidden, errors.New("verify walks every tenant's chain: it needs an admin token bound to all (--tenant '*')"))
		return
	}
	rep, err := integrity.Verify(r.Context(), s.opts.Store, s.opts.Integrity)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, VerifyAnswer{OK: rep.OK(), Report: rep})
}

// VerifyAnswer is the body of GET /v1/verify.
type VerifyAnswer struct {
	OK bool `json:"ok"`
	*integrity.Report
}

// HeaderBackupStatus is the trailer of GET /v1/backup: "complete", or
// "error: ..." when the backup broke off.
const HeaderBackupStatus = "X-Sollwert-Backup-Status"

// listAudit shows the audit log of the request's tenant: ?from= and ?to=
// (RFC 3339), ?limit= (default 1000).
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := timeParam(q.Get("from"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("from: %w", err))
		return
	}
	to, err := timeParam(q.Get("to"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("to: %w", err))
		return
	}
	limit, err := intParam(q.Get("limit"), 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var out []model.AuditRecord
	err = s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		var err error
		out, err = t.Audit(tenantOf(r), from, to, limit)
		return err
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if out == nil {
		out = []model.AuditRecord{}
	}
	writeJSON(w, http.StatusOK, out)
}

// tenantOf is the tenant a request acts for, as its token allows; every
// read and write is scoped by it.
func tenantOf(r *http.Request) string {
	if p, ok := auth.From(r.Context()); ok && p.Tenant != "" {
		return p.Tenant
	}
	return model.DefaultTenant
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version, "commit": s.opts.Commit, "built": s.opts.Built})
}

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var sel netip.Prefix
	if h := q.Get("host"); h != "" {
		p, err := parseHostOrCIDR(h)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		sel = p
	}
	status := q.Get("status")
	limit, err := intParam(q.Get("limit"), 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	at, err := timeParam(q.Get("at"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("at: %w", err))
		return
	}
	tenant := tenantOf(r)
	out := []model.Asset{}
	err = s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		keep := func(a *model.Asset) error {
			if sel.IsValid() && !sel.Contains(a.IP()) {
				return nil
			}
			if status != "" && a.Status != status {
				return nil
			}
			if len(out) >= limit {
				return errStop
			}
			out = append(out, *a)
			return nil
		}
		if !at.IsZero() {
			// Time travel: every asset as its history had it then.
			return t.ForEachAssetAt(tenant, at, keep)
		}
		return t.ForEachAsset(tenant, keep)
	})
	if err != nil && !errors.Is(err, errStop) {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeAssets(w, out, byIP(out))
}

var errStop = errors.New("stop")

func (s *Server) allAssets(ctx context.Context, tenant string) ([]model.Asset, error) {
	var out []model.Asset
	err := s.opts.Store.View(ctx, func(t *store.Txn) error {
		return t.ForEachAsset(tenant, func(a *model.Asset) error {
			out = append(out, *a)
			return nil
		})
	})
	return out, err
}

// changes answers what changed between two times (?from=, ?to=, default
// now; ?host= a CIDR): hosts that appeared, disappeared or changed state,
// ports opened or closed, services changed, in `sollwert diff`'s JSON, or
// with ?format=text in its ndiff-like text.
func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := timeParam(q.Get("from"))
	if err == nil && from.IsZero() {
		err = errors.New("from is required: the earlier time, RFC 3339")
	}
	var to time.Time
	if err == nil {
		to, err = timeParam(q.Get("to"))
	}
	var sel netip.Prefix
	if err == nil && q.Get("host") != "" {
		sel, err = parseHostOrCIDR(q.Get("host"))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if to.IsZero() {
		to = s.opts.Now()
	}
	tenant := tenantOf(r)
	var then, now []model.Asset
	err = s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		for at, into := range map[time.Time]*[]model.Asset{from: &then, to: &now} {
			if err := t.ForEachAssetAt(tenant, at, func(a *model.Asset) error {
				if !sel.IsValid() || sel.Contains(a.IP()) {
					*into = append(*into, *a)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	d, err := scandiff.Hosts(r.Context(), scandiff.ScanInfo{File: from.UTC().Format(time.RFC3339), Scanner: "sollwert", Start: from.Unix()}, export.NmapHosts(then),
		scandiff.ScanInfo{File: to.UTC().Format(time.RFC3339), Scanner: "sollwert", Start: to.Unix()}, export.NmapHosts(now))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if q.Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = d.WriteText(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = d.WriteJSON(w)
}

// ansibleInventory answers an inventory script: the whole inventory, or
// with ?host= the variables of one host.
func (s *Server) ansibleInventory(w http.ResponseWriter, r *http.Request) {
	assets, err := s.allAssets(r.Context(), tenantOf(r))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if host := r.URL.Query().Get("host"); host != "" {
		for i := range assets {
			if export.HostName(&assets[i]) == host {
				writeJSON(w, http.StatusOK, export.HostVars(&assets[i]))
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	writeJSON(w, http.StatusOK, export.Ansible(assets))
}

// prometheusSD is Prometheus' HTTP service discovery: the full list of
// target groups at every poll, [] when there is none.
func (s *Server) prometheusSD(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sel, err := export.ParseSelector(q.Get("service"), q.Get("port"), q.Get("protocol"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	assets, err := s.allAssets(r.Context(), tenantOf(r))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, export.Prometheus(assets, sel))
}

// findAsset accepts an asset id or one of its IP addresses.
func findAsset(t *store.Txn, tenant, ref string) (*model.Asset, error) {
	if ip, err := netip.ParseAddr(ref); err == nil {
		id, err := t.AssetIDByIP(tenant, ip.Unmap())
		if err != nil {
			return nil, err
		}
		ref = id
	}
	return t.Asset(tenant, ref)
}

func (s *Server) getAsset(w http.ResponseWriter, r *http.Request) {
	var a *model.Asset
	err := s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		var err error
		a, err = findAsset(t, tenantOf(r), r.PathValue("id"))
		return err
	})
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) assetHistory(w http.ResponseWriter, r *http.Request) {
	var hist []model.Version
	err := s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		a, err := findAsset(t, tenantOf(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		hist, err = t.History(tenantOf(r), a.ID)
		return err
	})
	if err == nil {
		// ?from= and ?to= keep the versions made in that span.
		var from, to time.Time
		if from, err = timeParam(r.URL.Query().Get("from")); err == nil {
			to, err = timeParam(r.URL.Query().Get("to"))
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		hist = slices.DeleteFunc(hist, func(v model.Version) bool {
			return !from.IsZero() && v.Time.Before(from) || !to.IsZero() && v.Time.After(to)
		})
	}
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if hist == nil {
		hist = []model.Version{}
	}
	writeJSON(w, http.StatusOK, hist)
}

// assetFacts answers an asset's facts, each with the source, job, run
// and time of the version that set its value.
func (s *Server) assetFacts(w http.ResponseWriter, r *http.Request) {
	var facts []model.FactOrigin
	err := s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		a, err := findAsset(t, tenantOf(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		hist, err := t.History(tenantOf(r), a.ID)
		facts = model.FactOrigins(a, hist)
		return err
	})
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, facts)
}

// deviationFilter selects deviations from query parameters shared by the
// list and the check endpoint.
type deviationFilter struct {
	states   map[model.State]bool // nil: active ones
	severity model.Severity
	host     netip.Prefix
	rule     string
	kind     model.Kind
}

func parseDeviationFilter(r *http.Request) (deviationFilter, error) {
	q := r.URL.Query()
	var f deviationFilter
	if st := q.Get("state"); st != "" && st != "active" {
		f.states = map[model.State]bool{}
		for _, s := range strings.Split(st, ",") {
			switch model.State(s) {
			case model.StatePending, model.StateOpen, model.StateAcknowledged, model.StateResolved:
				f.states[model.State(s)] = true
			default:
				if s == "all" {
					f.states[model.StatePending], f.states[model.StateOpen], f.states[model.StateAcknowledged], f.states[model.StateResolved] = true, true, true, true
					continue
				}
				return f, errors.New("state must be active, all, pending, open, acknowledged or resolved")
			}
		}
	}
	if sev := q.Get("severity"); sev != "" {
		s, err := model.ParseSeverity(sev)
		if err != nil {
			return f, err
		}
		f.severity = s
	}
	if h := q.Get("host"); h != "" {
		p, err := parseHostOrCIDR(h)
		if err != nil {
			return f, err
		}
		f.host = p
	}
	f.rule = q.Get("rule")
	f.kind = model.Kind(q.Get("kind"))
	return f, nil
}

func (f deviationFilter) match(d *model.Deviation) bool {
	if f.states == nil {
		if !d.Active() {
			return false
		}
	} else if !f.states[d.State] {
		return false
	}
	if f.severity != "" && d.Severity != f.severity {
		return false
	}
	if f.host.IsValid() {
		ip, err := netip.ParseAddr(d.Host)
		if err != nil || !f.host.Contains(ip) {
			return false
		}
	}
	if f.rule != "" && d.Rule != f.rule {
		return false
	}
	if f.kind != "" && d.Kind != f.kind {
		return false
	}
	return true
}

// deviations lists what f selects, from the index that fits: the
// deviations of the assets in a small host range, the active-deviation
// index for active ones, all records only for other states.
func (s *Server) deviations(ctx context.Context, tenant string, f deviationFilter) ([]model.Deviation, error) {
	out := []model.Deviation{}
	err := s.opts.Store.View(ctx, func(t *store.Txn) error {
		keep := func(d *model.Deviation) error {
			if f.match(d) {
				out = append(out, *d)
			}
			return nil
		}
		switch {
		case f.host.IsValid() && f.host.Addr().BitLen()-f.host.Bits() <= 16:
			return t.AssetIDsInPrefix(tenant, f.host, func(id string) error {
				devs, err := t.DeviationsOfAsset(tenant, id)
				if err != nil {
					return err
				}
				for i := range devs {
					if err := keep(&devs[i]); err != nil {
						return err
					}
				}
				return nil
			})
		case f.states == nil:
			return t.ActiveDeviations(tenant, 0, keep)
		}
		return t.ForEachDeviation(tenant, keep)
	})
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].Severity.Rank(), out[j].Severity.Rank(); a != b {
			return a > b
		}
		return out[i].OpenedAt.Before(out[j].OpenedAt)
	})
	return out, err
}

func (s *Server) listDeviations(w http.ResponseWriter, r *http.Request) {
	f, err := parseDeviationFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out, err := s.deviations(r.Context(), tenantOf(r), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getDeviation(w http.ResponseWriter, r *http.Request) {
	var d *model.Deviation
	err := s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		var err error
		d, err = t.Deviation(tenantOf(r), r.PathValue("id"))
		return err
	})
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	jobs, err := s.jobs(r.Context(), tenantOf(r))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if jobs == nil {
		jobs = []JobInfo{}
	}
	writeJSON(w, http.StatusOK, jobs)
}

// jobs lists a tenant's jobs with their last run.
func (s *Server) jobs(ctx context.Context, tenant string) ([]JobInfo, error) {
	jobs := s.tenantJobs(tenant)
	err := s.opts.Store.View(ctx, func(t *store.Txn) error {
		for i := range jobs {
			runs, err := t.Runs(jobs[i].Tenant, jobs[i].Name, 1)
			if err != nil {
				return err
			}
			if len(runs) == 1 {
				jobs[i].LastRun = &runs[0]
				jobs[i].LastState = string(runs[0].Status)
			}
		}
		return nil
	})
	return jobs, err
}

func (s *Server) jobRuns(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query().Get("limit"), 50)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	name := r.PathValue("name")
	if !s.knownJob(r, name) {
		writeError(w, http.StatusNotFound, errors.New("unknown job "+strconv.Quote(name)))
		return
	}
	var runs []model.Run
	err = s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		var err error
		runs, err = t.Runs(tenantOf(r), name, limit)
		return err
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if runs == nil {
		runs = []model.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

// tenantJobs lists the configured jobs of one tenant.
func (s *Server) tenantJobs(tenant string) []JobInfo {
	var out []JobInfo
	for _, j := range s.opts.Jobs.Jobs() {
		if j.Tenant == tenant {
			out = append(out, j)
		}
	}
	return out
}

// knownJob reports whether the request's tenant has the job.
func (s *Server) knownJob(r *http.Request, name string) bool {
	for _, j := range s.tenantJobs(tenantOf(r)) {
		if j.Name == name {
			return true
		}
	}
	return false
}

func (s *Server) runJob(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.knownJob(r, name) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w %q", ErrUnknownJob, name))
		return
	}
	err := s.opts.Jobs.RunNow(r.Context(), name)
	switch {
	case errors.Is(err, ErrUnknownJob):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrAlreadyRunning), errors.Is(err, ErrInMaintenance):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"job": name, "status": "started"})
	}
}

// importScan takes a scan made elsewhere (the body: nmap XML) as a run of
// the job. It answers with the run: 200 when it succeeded, 422 when the
// file was refused (and nothing changed).
func (s *Server) importScan(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.knownJob(r, name) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w %q", ErrUnknownJob, name))
		return
	}
	run, err := s.opts.Jobs.Import(r.Context(), name, http.MaxBytesReader(w, r.Body, 4<<30))
	switch {
	case errors.Is(err, ErrNotImportable):
		writeError(w, http.StatusBadRequest, err)
	case err != nil && run.ID == "":
		writeError(w, http.StatusInternalServerError, err)
	case err != nil:
		writeJSON(w, http.StatusUnprocessableEntity, run)
	default:
		writeJSON(w, http.StatusOK, run)
	}
}

// Check headers carry the plugin verdict next to the HTTP status.
const (
	HeaderCheckStatus = "X-Sollwert-Check-Status" // 0-3
	HeaderCheckState  = "X-Sollwert-Check-State"  // OK, WARNING, CRITICAL, UNKNOWN
)

// checkHTTPStatus maps a verdict for HTTP-only probes: CRITICAL and
// UNKNOWN (stale data, when so configured) answer 503; a request the check
// cannot answer at all gets 400 or 500 from the handler instead.
func checkHTTPStatus(st check.Status) int {
	if st == check.OK || st == check.Warning {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	unknown := func(code int, msg string) {
		w.Header().Set(HeaderCheckStatus, strconv.Itoa(int(check.Unknown)))
		w.Header().Set(HeaderCheckState, check.Unknown.String())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte("SOLLWERT UNKNOWN - " + msg + "\n"))
	}
	f, err := parseDeviationFilter(r)
	if err != nil {
		unknown(http.StatusBadRequest, err.Error())
		return
	}
	f.states = nil
	var maxAge time.Duration
	if v := q.Get("max_age"); v != "" {
		if maxAge, err = time.ParseDuration(v); err != nil || maxAge <= 0 {
			unknown(http.StatusBadRequest, "max_age must be a positive duration such as 30m")
			return
		}
	}
	warn, err := check.ParseThresholds(q.Get("warning"))
	if err != nil {
		unknown(http.StatusBadRequest, "warning: "+err.Error())
		return
	}
	crit, err := check.ParseThresholds(q.Get("critical"))
	if err != nil {
		unknown(http.StatusBadRequest, "critical: "+err.Error())
		return
	}
	stale := check.Critical
	if v := q.Get("stale_status"); v != "" {
		switch strings.ToLower(v) {
		case "critical":
		case "unknown":
			stale = check.Unknown
		default:
			unknown(http.StatusBadRequest, "stale_status must be critical or unknown")
			return
		}
	}
	tenant := tenantOf(r)
	in := check.Input{MaxAge: maxAge, StaleStatus: stale, Warn: warn, Crit: crit, Now: s.opts.Now()}
	if !f.host.IsValid() && f.rule == "" && f.kind == "" && f.severity == "" {
		// The check over everything: counted from the index, the first
		// alerting ones listed.
		err = s.opts.Store.View(r.Context(), func(t *store.Txn) error {
			c, err := t.CountActiveDeviations(tenant)
			if err != nil {
				return err
			}
			in.Counts = &check.Counts{Open: c.Open, Acked: c.AckedTotal()}
			return t.ActiveDeviations(tenant, 0, func(d *model.Deviation) error {
				if len(in.Deviations) == checkListed || d.Severity.Rank() < model.SeverityWarning.Rank() {
					return store.ErrStop // worst first: no alerting one follows an info
				}
				if d.State == model.StateOpen {
					in.Deviations = append(in.Deviations, *d)
				}
				return nil
			})
		})
	} else {
		in.Deviations, err = s.deviations(r.Context(), tenant, f)
	}
	if err != nil {
		unknown(http.StatusInternalServerError, "reading deviations: "+err.Error())
		return
	}
	err = s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		if f.host.IsValid() {
			return t.AssetIDsInPrefix(tenant, f.host, func(id string) error {
				a, err := t.Asset(tenant, id)
				if err != nil {
					return err
				}
				in.Assets++
				if a.LastScanned.After(in.LastScan) {
					in.LastScan = a.LastScanned
				}
				return nil
			})
		}
		var err error
		if in.Assets, err = s.assetCount(t, tenant); err != nil {
			return err
		}
		for _, j := range s.tenantJobs(tenant) {
			st, err := t.JobState(j.Tenant, j.Name)
			if err != nil {
				return err
			}
			if st.LastSuccess != nil && st.LastSuccess.End != nil && st.LastSuccess.End.After(in.LastScan) {
				in.LastScan = *st.LastSuccess.End
			}
		}
		return nil
	})
	if err != nil {
		unknown(http.StatusInternalServerError, "reading store: "+err.Error())
		return
	}
	res := check.Evaluate(in)
	w.Header().Set(HeaderCheckStatus, strconv.Itoa(int(res.Status)))
	w.Header().Set(HeaderCheckState, res.Status.String())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(checkHTTPStatus(res.Status))
	_, _ = w.Write([]byte(res.String()))
}

func parseHostOrCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("host must be an IP address or a CIDR, got " + strconv.Quote(s))
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// timeParam reads an RFC 3339 time; "" is the zero time.
func timeParam(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2026-12-01T12:00:00Z", s)
	}
	return t, nil
}

func intParam(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, errors.New("limit must be a positive integer")
	}
	return n, nil
}

// byIP returns the order of as by primary address, parsing each once
// and moving no asset.
func byIP(as []model.Asset) []int {
	ips := make([]netip.Addr, len(as))
	order := make([]int, len(as))
	for i := range as {
		ips[i], order[i] = as[i].IP(), i
	}
	sort.SliceStable(order, func(i, j int) bool { return ips[order[i]].Less(ips[order[j]]) })
	return order
}

// writeAssets writes a list of assets in the given order (indexes of
// as) as writeJSON would, each encoded by Asset.AppendJSON, in parts on
// every core: a hundred thousand assets are tens of megabytes.
func writeAssets(w http.ResponseWriter, as []model.Asset, order []int) {
	const minPart = 2048
	parts := max(1, min(runtime.GOMAXPROCS(0), len(order)/minPart))
	bufs := make([][]byte, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi := p*len(order)/parts, (p+1)*len(order)/parts
			b := make([]byte, 0, (hi-lo)*1024)
			for i := lo; i < hi; i++ {
				if i > 0 {
					b = append(b, ',')
				}
				b = as[order[i]].AppendJSON(b)
			}
			bufs[p] = b
		}()
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte{'['}); err != nil {
		return
	}
	for _, b := range bufs {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
	_, _ = w.Write([]byte("]\n"))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// Compact: an answer may hold a hundred thousand assets, and
	// indenting them costs as much as encoding them; `jq .` or the CLI
	// make it pretty.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeError(w, http.StatusInternalServerError, err)
}
