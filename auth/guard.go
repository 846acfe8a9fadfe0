package auth

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/model"
)

// CookieName carries a token for the web view, so a browser need not
// send a header.
const CookieName = "sollwert_token"

// Failed logins: after maxFailures from one client within failureWindow,
// it gets 429 until the window has passed.
const (
	maxFailures   = 10
	failureWindow = time.Minute
	// recheck bounds how often the tokens file is looked at for changes.
	recheck = time.Second
)

// Principal is who a request acts as.
type Principal struct {
	// Token names the token; "" when authentication is off.
	Token  string
	Tenant string
	token  *Token
}

// AllTenants reports whether the principal's token is bound to every
// tenant (true without authentication).
func (p Principal) AllTenants() bool { return p.token == nil || p.token.Tenant == AllTenants }

// Allows reports whether the principal holds scope; without
// authentication everything is allowed.
func (p Principal) Allows(s Scope) bool { return p.token == nil || p.token.Allows(s) }

type principalKey struct{}

// From returns the request's principal, set by Guard.Require.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx acting as p (for requests authenticated by
// other means, such as the slash command's own token).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Guard checks bearer tokens against a tokens file. A nil *Guard lets
// everything through as the default tenant: authentication is off.
type Guard struct {
	// FailureLimit is how many failed logins one client may make per
	// minute before it gets 429 (default 10).
	FailureLimit int
	// OnReload, if set, hears that the tokens file changed (token create
	// or revoke), with the number of tokens now, for the audit log.
	OnReload func(tokens int)

	path          string
	defaultTenant string
	log           hclog.Logger
	now           func() time.Time

	mu       sync.Mutex
	byHash   map[[32]byte]*Token
	modTime  time.Time
	size     int64
	checked  time.Time
	failures map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

// NewGuard loads the tokens file at path (it may not exist yet: then no
// token is valid until `sollwert token create` writes one).
func NewGuard(path, defaultTenant string, log hclog.Logger) (*Guard, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	g := &Guard{path: path, defaultTenant: defaultTenant, log: log, now: time.Now, failures: map[string]*failures{}}
	if err := g.reload(true); err != nil {
		return nil, err
	}
	return g, nil
}

// reload re-reads the tokens file when it changed. A file that became
// unreadable or malformed keeps the tokens last read, loudly.
func (g *Guard) reload(force bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if !force && now.Sub(g.checked) < recheck {
		return nil
	}
	g.checked = now
	st, err := os.Stat(g.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if g.byHash == nil || len(g.byHash) > 0 {
			g.byHash = map[[32]byte]*Token{}
		}
		g.modTime, g.size = time.Time{}, 0
		return nil
	case err != nil:
		return fmt.Errorf("tokens file: %w", err)
	}
	if !force && st.ModTime().Equal(g.modTime) && st.Size() == g.size {
		return nil
	}
	tokens, err := Load(g.path)
	if err != nil {
		if !force {
			g.log.Error("tokens file unreadable; keeping the tokens read before", "error", err)
		}
		return err
	}
	byHash := make(map[[32]byte]*Token, len(tokens))
	for i := range tokens {
		var h [32]byte
		if _, err := hex.Decode(h[:], []byte(tokens[i].Hash)); err != nil {
			return fmt.Errorf("tokens file: token %q: %w", tokens[i].Name, err)
		}
		byHash[h] = &tokens[i]
	}
	g.byHash, g.modTime, g.size = byHash, st.ModTime(), st.Size()
	if !force {
		g.log.Info("tokens file reloaded", "tokens", len(tokens))
		if g.OnReload != nil {
			// Outside the lock: the callback writes to the store.
			defer func(n int) { go g.OnReload(n) }(len(tokens))
		}
	}
	return nil
}

// Denial says why a request was refused.
type Denial struct {
	Code       int // 401, 403 or 429
	Message    string
	RetryAfter time.Duration
}

func (d *Denial) Error() string { return d.Message }

// Check authenticates r and authorises scope for the tenant it asks for
// (the tenant query parameter, else the token's own, else the default).
func (g *Guard) Check(r *http.Request, scope Scope) (Principal, *Denial) {
	tenant := r.URL.Query().Get("tenant")
	if g == nil {
		if tenant == "" {
			tenant = model.DefaultTenant
		}
		return Principal{Tenant: tenant}, nil
	}
	client := clientOf(r)
	if wait := g.blocked(client); wait > 0 {
		return Principal{}, &Denial{Code: http.StatusTooManyRequests, Message: "too many failed logins from " + client + "; try again later", RetryAfter: wait}
	}
	secret := bearer(r)
	if secret == "" {
		g.fail(client)
		return Principal{}, &Denial{Code: http.StatusUnauthorized, Message: "a token is required: Authorization: Bearer TOKEN"}
	}
	_ = g.reload(false)
	tok := g.lookup(secret)
	if tok == nil || tok.Expired(g.now()) {
		g.fail(client)
		g.log.Warn("refused a token", "client", client, "path", r.URL.Path)
		return Principal{}, &Denial{Code: http.StatusUnauthorized, Message: "the token is not valid (unknown, revoked or expired)"}
	}
	switch {
	case tenant == "" && tok.Tenant == AllTenants:
		tenant = g.defaultTenant
	case tenant == "":
		tenant = tok.Tenant
	case tok.Tenant != AllTenants && tenant != tok.Tenant:
		return Principal{}, &Denial{Code: http.StatusForbidden, Message: fmt.Sprintf("token %q is bound to tenant %q", tok.Name, tok.Tenant)}
	}
	if !tok.Allows(scope) {
		return Principal{}, &Denial{Code: http.StatusForbidden, Message: fmt.Sprintf("token %q lacks the %s scope", tok.Name, scope)}
	}
	return Principal{Token: tok.Name, Tenant: tenant, token: tok}, nil
}

// lookup finds the token whose hash is the secret's. The map is keyed by
// hash, so the secret's bytes never meet a stored one in a comparison;
// the final compare is constant-time all the same.
func (g *Guard) lookup(secret string) *Token {
	var h [32]byte
	_, _ = hex.Decode(h[:], []byte(hashOf(secret)))
	g.mu.Lock()
	tok := g.byHash[h]
	g.mu.Unlock()
	if tok == nil || subtle.ConstantTimeCompare([]byte(tok.Hash), []byte(hashOf(secret))) != 1 {
		return nil
	}
	return tok
}

// Valid reports whether secret is a live token, for the login form.
func (g *Guard) Valid(r *http.Request, secret string) bool {
	client := clientOf(r)
	if g.blocked(client) > 0 {
		return false
	}
	_ = g.reload(false)
	tok := g.lookup(secret)
	if tok == nil || tok.Expired(g.now()) {
		g.fail(client)
		return false
	}
	return true
}

func (g *Guard) blocked(client string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.failures[client]
	if f == nil {
		return 0
	}
	left := failureWindow - g.now().Sub(f.since)
	if left <= 0 {
		delete(g.failures, client)
		return 0
	}
	limit := g.FailureLimit
	if limit <= 0 {
		limit = maxFailures
	}
	if f.n >= limit {
		return left
	}
	return 0
}

func (g *Guard) fail(client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	f := g.failures[client]
	if f == nil || now.Sub(f.since) >= failureWindow {
		f = &failures{since: now}
		g.failures[client] = f
	}
	f.n++
	// The table cannot grow without bound under a spray from many
	// addresses: stale entries go when it gets large.
	if len(g.failures) > 10000 {
		for k, v := range g.failures {
			if now.Sub(v.since) >= failureWindow {
				delete(g.failures, k)
			}
		}
	}
}

func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	// The cookie only counts for the web view, whose forms are guarded
	// against cross-site posts; API clients send the header.
	if strings.HasPrefix(r.URL.Path, "/ui/") {
		if c, err := r.Cookie(CookieName); err == nil {
			return c.Value
		}
	}
	return ""
}

func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Require wraps next: it runs only for requests whose token holds scope,
// with the principal in the request's context. onDenied writes refusals
// (JSON for the API, a redirect to the login form for the web view).
func (g *Guard) Require(scope Scope, next http.Handler, onDenied func(http.ResponseWriter, *http.Request, *Denial)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, denied := g.Check(r, scope)
		if denied != nil {
			if denied.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(denied.RetryAfter.Seconds())+1))
			}
			if denied.Code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sollwert"`)
			}
			onDenied(w, r, denied)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
