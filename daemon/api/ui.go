package api

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sollwert/sollwert/auth"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/notifier"
	"github.com/sollwert/sollwert/store"
)

// The web view: HTML pages over the same store and the same handlers'
// helpers as the JSON API, on the same mux (so whatever guards the API
// guards the pages). No JavaScript framework: forms post and redirect; a
// few lines of script only turn <time> elements into the viewer's zone.

//go:embed ui
var uiFiles embed.FS

// pageSize is how many rows a list page shows.
const pageSize = 50

type ui struct {
	s     *Server
	pages map[string]*template.Template
	// csrf refuses cross-site form posts (a page elsewhere making the
	// viewer's browser acknowledge deviations).
	csrf *http.CrossOriginProtection
}

func newUI(s *Server) (*ui, error) {
	funcs := template.FuncMap{
		"when":     when,
		"ago":      func(t time.Time) string { return ago(s.opts.Now(), t) },
		"duration": func(r model.Run) string { return r.Duration(s.opts.Now()).Round(time.Millisecond).String() },
		"query":    query,
		"join":     strings.Join,
		"ackArgs":  func(d model.Deviation, back string) ackForm { return ackForm{D: d, Back: back} },
	}
	u := &ui{s: s, pages: map[string]*template.Template{}, csrf: http.NewCrossOriginProtection()}
	for _, page := range []string{"deviations", "assets", "asset", "jobs", "job", "status", "login"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(uiFiles, "ui/layout.html", "ui/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("web view: template %s: %w", page, err)
		}
		u.pages[page] = t
	}
	return u, nil
}

func (u *ui) routes() error {
	u.s.public("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	}))
	read := func(pattern string, h http.HandlerFunc) { u.s.guarded(pattern, auth.Read, h, u.denied) }
	read("GET /ui/{$}", u.deviations)
	read("GET /ui/assets", u.assets)
	read("GET /ui/assets/{id}", u.asset)
	read("GET /ui/jobs", u.jobs)
	read("GET /ui/jobs/{name}", u.job)
	read("GET /ui/status", u.status)
	static, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		return err
	}
	u.s.public("GET /ui/static/", http.StripPrefix("/ui/", http.FileServerFS(static)))
	u.s.public("GET /ui/login", http.HandlerFunc(u.loginForm))
	u.s.public("POST /ui/login", u.csrf.Handler(http.HandlerFunc(u.login)))
	u.s.public("POST /ui/logout", u.csrf.Handler(http.HandlerFunc(u.logout)))
	if u.s.opts.Acks != nil {
		// A cross-origin post is refused even with a valid cookie.
		u.s.guarded("POST /ui/deviations/{id}/ack", auth.Ack, u.csrf.Handler(http.HandlerFunc(u.ack)), u.denied)
		u.s.guarded("POST /ui/deviations/{id}/unack", auth.Ack, u.csrf.Handler(http.HandlerFunc(u.ack)), u.denied)
	}
	return nil
}

// denied sends a viewer without a token to the login form, and shows
// one whose token does not reach far enough why.
func (u *ui) denied(w http.ResponseWriter, r *http.Request, d *auth.Denial) {
	if d.Code == http.StatusUnauthorized {
		next := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			next = safeBack(r.FormValue("back"))
		}
		http.Redirect(w, r, "/ui/login?"+url.Values{"next": {next}}.Encode(), http.StatusSeeOther)
		return
	}
	u.fail(w, r, d.Code, d)
}

type loginPage struct {
	Next string
	Off  bool
}

func (u *ui) loginForm(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, "login", "Log in", http.StatusOK, loginPage{Next: safeBack(r.URL.Query().Get("next")), Off: u.s.opts.Guard == nil})
}

// login checks the token typed into the form and keeps it in a cookie
// that only this server's web view reads (HttpOnly, SameSite=Strict).
func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	next := safeBack(r.FormValue("next"))
	secret := strings.TrimSpace(r.FormValue("token"))
	if u.s.opts.Guard == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if !u.s.opts.Guard.Valid(r, secret) {
		http.Redirect(w, r, "/ui/login?"+url.Values{"next": {next}, "error": {"that token is not valid"}}.Encode(), http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: secret, Path: "/ui/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: "", Path: "/ui/", HttpOnly: true, MaxAge: -1})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// safeBack keeps redirects on this server's web view.
func safeBack(p string) string {
	if !strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/ui/"
	}
	return p
}

// ackForm is what the acknowledge buttons need.
type ackForm struct {
	D    model.Deviation
	Back string
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Version string
	Flash   string
	Error   string
	// Auth is on: the header offers to log out.
	Auth bool
	Data any
}

func (u *ui) render(w http.ResponseWriter, r *http.Request, name, title string, code int, data any) {
	p := page{Title: title, Nav: name, Version: u.s.opts.Version, Data: data,
		Flash: r.URL.Query().Get("flash"), Error: r.URL.Query().Get("error"), Auth: u.s.opts.Guard != nil}
	var b strings.Builder
	if err := u.pages[name].Execute(&b, p); err != nil {
		u.s.opts.Logger.Error("web view", "page", name, "error", err)
		http.Error(w, "the page could not be rendered; see the daemon's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (u *ui) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	u.render(w, r, "status", "Error", code, statusPage{Failure: err.Error()})
}

// pager cuts one page out of n rows.
type pager struct {
	Page, Pages, Total, From, To int
	// Prev and Next are query strings, "" at the ends.
	Prev, Next string
}

func newPager(r *http.Request, total int) pager {
	p := pager{Total: total, Pages: max(1, (total+pageSize-1)/pageSize)}
	p.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	p.From = min((p.Page-1)*pageSize, total)
	p.To = min(p.From+pageSize, total)
	link := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		q.Del("flash")
		q.Del("error")
		return "?" + q.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return p
}

type deviationsPage struct {
	Filter struct{ State, Severity, Host, Rule string }
	Pager  pager
	Rows   []model.Deviation
	Counts struct{ Critical, Warning, Info int }
	CanAck bool
	Back   string
}

func (u *ui) deviations(w http.ResponseWriter, r *http.Request) {
	f, err := parseDeviationFilter(r)
	if err != nil {
		u.fail(w, r, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	if q.Get("state") == "" && q.Get("severity") == "" && q.Get("host") == "" && q.Get("rule") == "" {
		u.activeDeviations(w, r)
		return
	}
	all, err := u.s.deviations(r.Context(), tenantOf(r), f)
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	d := deviationsPage{Pager: newPager(r, len(all)), CanAck: u.s.opts.Acks != nil}
	d.Filter.State, d.Filter.Severity, d.Filter.Host, d.Filter.Rule = q.Get("state"), q.Get("severity"), q.Get("host"), q.Get("rule")
	for i := range all {
		switch all[i].Severity {
		case model.SeverityCritical:
			d.Counts.Critical++
		case model.SeverityWarning:
			d.Counts.Warning++
		case model.SeverityInfo:
			d.Counts.Info++
		}
	}
	d.Rows = all[d.Pager.From:d.Pager.To]
	q.Del("flash")
	q.Del("error")
	d.Back = "/ui/?" + q.Encode()
	u.render(w, r, "deviations", "Deviations", http.StatusOK, d)
}

// activeDeviations is the default view, every active deviation worst
// first, read from the store's index: one page of records and the index's
// keys for the counts, however many deviations there are.
func (u *ui) activeDeviations(w http.ResponseWriter, r *http.Request) {
	d := deviationsPage{CanAck: u.s.opts.Acks != nil, Back: "/ui/?"}
	tenant := tenantOf(r)
	err := u.s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		counts, err := t.CountActiveDeviations(tenant)
		if err != nil {
			return err
		}
		d.Counts.Critical, d.Counts.Warning, d.Counts.Info = counts.Total(model.SeverityCritical), counts.Total(model.SeverityWarning), counts.Total(model.SeverityInfo)
		d.Pager = newPager(r, d.Counts.Critical+d.Counts.Warning+d.Counts.Info)
		return t.ActiveDeviations(tenant, d.Pager.From, func(dv *model.Deviation) error {
			if len(d.Rows) >= d.Pager.To-d.Pager.From {
				return store.ErrStop
			}
			d.Rows = append(d.Rows, *dv)
			return nil
		})
	})
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	u.render(w, r, "deviations", "Deviations", http.StatusOK, d)
}

// ack serves the buttons of the deviations and asset pages, then sends
// the viewer back where the form came from (a path on this server only).
func (u *ui) ack(w http.ResponseWriter, r *http.Request) {
	back := safeBack(r.FormValue("back"))
	var ack *model.Ack
	if strings.HasSuffix(r.URL.Path, "/ack") {
		var err error
		ack, err = u.s.newAck(AckRequest{Author: r.FormValue("author"), Comment: r.FormValue("comment"), For: r.FormValue("for")})
		if err != nil {
			http.Redirect(w, r, withParam(back, "error", err.Error()), http.StatusSeeOther)
			return
		}
	}
	d, err := u.s.opts.Acks.Acknowledge(r.Context(), tenantOf(r), r.PathValue("id"), ack)
	if err != nil {
		http.Redirect(w, r, withParam(back, "error", err.Error()), http.StatusSeeOther)
		return
	}
	msg := "acknowledged " + d.Subject()
	if ack == nil {
		msg = "acknowledgement removed: " + d.Subject()
	}
	http.Redirect(w, r, withParam(back, "flash", msg), http.StatusSeeOther)
}

func withParam(path, key, value string) string {
	u, err := url.Parse(path)
	if err != nil {
		return "/ui/"
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

type assetsPage struct {
	Host  string
	Pager pager
	Rows  []model.Asset
}

// assets lists assets in address order from the address index, reading
// only the records of the page shown: the first page of 100,000 assets
// costs a key scan, not 100,000 decodes.
func (u *ui) assets(w http.ResponseWriter, r *http.Request) {
	sel := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	host := strings.TrimSpace(r.URL.Query().Get("host"))
	if host != "" {
		p, err := parseHostOrCIDR(host)
		if err != nil {
			u.fail(w, r, http.StatusBadRequest, err)
			return
		}
		sel = []netip.Prefix{p}
	}
	var d assetsPage
	d.Host = host
	tenant := tenantOf(r)
	want, _ := strconv.Atoi(r.URL.Query().Get("page"))
	want = max(want, 1) * pageSize
	err := u.s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		// Without a filter the total is a count of asset keys, and the
		// index walk stops at the page shown.
		total := -1
		if host == "" {
			var err error
			if total, err = t.CountAssets(tenant); err != nil {
				return err
			}
		}
		var ids []string
		seen := map[string]bool{}
		for _, p := range sel {
			err := t.AssetIDsInPrefix(tenant, p, func(id string) error {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
				if total >= 0 && len(ids) >= want {
					return errStop
				}
				return nil
			})
			if errors.Is(err, errStop) {
				break
			}
			if err != nil {
				return err
			}
		}
		if total < 0 {
			total = len(ids)
		}
		d.Pager = newPager(r, total)
		for _, id := range ids[min(d.Pager.From, len(ids)):min(d.Pager.To, len(ids))] {
			a, err := t.Asset(tenant, id)
			if err != nil {
				return err
			}
			d.Rows = append(d.Rows, *a)
		}
		return nil
	})
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	u.render(w, r, "assets", "Assets", http.StatusOK, d)
}

type assetPage struct {
	Asset      *model.Asset
	Facts      []model.FactOrigin
	Labels     [][2]string
	Deviations []model.Deviation
	History    []model.Version
	CanAck     bool
	Back       string
}

func (u *ui) asset(w http.ResponseWriter, r *http.Request) {
	d := assetPage{CanAck: u.s.opts.Acks != nil}
	tenant := tenantOf(r)
	err := u.s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		var err error
		if d.Asset, err = findAsset(t, tenant, r.PathValue("id")); err != nil {
			return err
		}
		if d.Deviations, err = t.DeviationsOfAsset(tenant, d.Asset.ID); err != nil {
			return err
		}
		d.History, err = t.History(tenant, d.Asset.ID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		u.fail(w, r, http.StatusNotFound, fmt.Errorf("no asset %q", r.PathValue("id")))
		return
	}
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	d.Facts, d.Labels = model.FactOrigins(d.Asset, d.History), sortedPairs(d.Asset.Labels)
	sort.Slice(d.History, func(i, j int) bool { return d.History[i].Version > d.History[j].Version })
	sort.Slice(d.Deviations, func(i, j int) bool {
		if a, b := d.Deviations[i].Active(), d.Deviations[j].Active(); a != b {
			return a
		}
		return d.Deviations[i].OpenedAt.After(d.Deviations[j].OpenedAt)
	})
	d.Back = "/ui/assets/" + url.PathEscape(d.Asset.ID)
	u.render(w, r, "asset", d.Asset.Host(), http.StatusOK, d)
}

func sortedPairs(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func (u *ui) jobs(w http.ResponseWriter, r *http.Request) {
	jobs, err := u.s.jobs(r.Context(), tenantOf(r))
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Name < jobs[j].Name })
	u.render(w, r, "jobs", "Jobs", http.StatusOK, jobs)
}

type jobPage struct {
	Name string
	Runs []model.Run
}

func (u *ui) job(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !u.s.knownJob(r, name) {
		u.fail(w, r, http.StatusNotFound, fmt.Errorf("no job %q", name))
		return
	}
	d := jobPage{Name: name}
	err := u.s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		var err error
		d.Runs, err = t.Runs(tenantOf(r), name, 100)
		return err
	})
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	u.render(w, r, "job", "Job "+name, http.StatusOK, d)
}

type statusPage struct {
	Failure string
	Version string
	Commit  string
	Built   string
	Sinks   []notifier.Status
	// LastGood is each job's last successful run.
	LastGood []lastGood
	Assets   int
}

type lastGood struct {
	Job string
	Run *model.Run
}

func (u *ui) status(w http.ResponseWriter, r *http.Request) {
	d, err := u.statusData(r.Context(), tenantOf(r))
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	u.render(w, r, "status", "Status", http.StatusOK, d)
}

func (u *ui) statusData(ctx context.Context, tenant string) (statusPage, error) {
	d := statusPage{Version: u.s.opts.Version, Commit: u.s.opts.Commit, Built: u.s.opts.Built}
	if u.s.opts.Sinks != nil {
		var err error
		if d.Sinks, err = u.s.opts.Sinks.Statuses(ctx, false); err != nil {
			return d, err
		}
	}
	jobs := u.s.tenantJobs(tenant)
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Name < jobs[j].Name })
	err := u.s.opts.Store.View(ctx, func(t *store.Txn) error {
		var err error
		if d.Assets, err = t.CountAssets(tenant); err != nil {
			return err
		}
		for _, j := range jobs {
			js, err := t.JobState(j.Tenant, j.Name)
			if err != nil {
				return err
			}
			lg := lastGood{Job: j.Name, Run: js.LastSuccess}
			d.LastGood = append(d.LastGood, lg)
		}
		return nil
	})
	return d, err
}

// when renders a time for the viewer: UTC in the page, turned into the
// viewer's zone by ui/static/local-time.js.
func when(t any) template.HTML {
	var tm time.Time
	switch v := t.(type) {
	case time.Time:
		tm = v
	case *time.Time:
		if v == nil {
			return ""
		}
		tm = *v
	}
	if tm.IsZero() {
		return ""
	}
	utc := tm.UTC()
	// Only formatted times go into this markup: nothing user-supplied.
	return template.HTML(fmt.Sprintf(`<time datetime="%s">%s</time>`, utc.Format(time.RFC3339), utc.Format("2006-01-02 15:04:05 UTC")))
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// query builds a query string from pairs, for links in templates.
func query(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q.Encode()
}
