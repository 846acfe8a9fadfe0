// Package testvault is a fake HashiCorp Vault for tests, on 127.0.0.1: the
// few routes sollwert uses, answering in the shapes of Vault's API
// documentation, so the real github.com/hashicorp/vault/api client can be
// tested against it. No Vault server can be installed where the tests
// run; this one also produces on demand what a real one makes slow to
// reach: tokens that hit their max TTL within seconds, revoked tokens,
// leases on KV reads.
//
// Routes: GET /v1/MOUNT/data/PATH (KV v2 read), PUT or POST
// /v1/auth/APPROLE_MOUNT/login, PUT or POST /v1/auth/token/renew-self, GET
// /v1/auth/token/lookup-self. A request without a valid X-Vault-Token (or
// with the wrong X-Vault-Namespace, when a namespace is set) gets 403
// {"errors":["permission denied"]}; a path with no secret 404
// {"errors":[]}.
package testvault

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running fake Vault.
type Server struct {
	// URL is its address, http://127.0.0.1:PORT.
	URL string

	mu           sync.Mutex
	namespace    string
	appRoleMount string
	tokens       map[string]*token
	roles        map[string]*role // by role ID
	mounts       map[string]map[string]*secret
	requests     map[string]int // by URL path
	issued       []string
	loginTTL     time.Duration
	loginMax     time.Duration
	loginRenew   bool
	root         string
}

type token struct {
	id, accessor, path string
	policies           []string
	ttl                time.Duration // what a renewal grants; 0: no TTL
	maxExpiry          time.Time     // zero: no max TTL
	expires            time.Time     // zero: never
	created            time.Time
	renewable, revoked bool
}

type role struct{ name, secretID string }

type secret struct {
	versions []version
	lease    time.Duration
}

type version struct {
	data    map[string]any
	created time.Time
	deleted time.Time
}

// New starts a fake Vault with a KV v2 engine at "secret", AppRole at
// "approle" and a root token (no TTL); it stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		appRoleMount: "approle",
		tokens:       map[string]*token{},
		roles:        map[string]*role{},
		mounts:       map[string]map[string]*secret{"secret": {}},
		requests:     map[string]int{},
		loginTTL:     time.Hour,
		loginRenew:   true,
	}
	s.root = s.NewToken(0, 0, false)
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// RootToken is a token with no TTL, valid until revoked.
func (s *Server) RootToken() string { return s.root }

// NewToken issues a token: ttl is its lifetime and what each renewal
// grants (0: no TTL, never expires), maxTTL caps its whole life (0: none).
func (s *Server) NewToken(ttl, maxTTL time.Duration, renewable bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issue("auth/token/create", []string{"root"}, ttl, maxTTL, renewable).id
}

// issue makes a token; s.mu is held.
func (s *Server) issue(path string, policies []string, ttl, maxTTL time.Duration, renewable bool) *token {
	now := time.Now()
	tok := &token{id: "hvs." + randomHex(12), accessor: randomHex(12), path: path, policies: policies,
		ttl: ttl, created: now, renewable: renewable}
	if ttl > 0 {
		tok.expires = now.Add(ttl)
	}
	if maxTTL > 0 {
		tok.maxExpiry = now.Add(maxTTL)
		if tok.expires.IsZero() || tok.expires.After(tok.maxExpiry) {
			tok.expires = tok.maxExpiry
		}
	}
	s.tokens[tok.id] = tok
	s.issued = append(s.issued, tok.id)
	return tok
}

// Issued lists every token the server has handed out, the root token
// first: what must appear in no log line.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Revoke makes token invalid at once.
func (s *Server) Revoke(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[tok]; t != nil {
		t.revoked = true
	}
}

// Valid reports whether tok would be accepted now.
func (s *Server) Valid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.valid(tok) != nil
}

// SetNamespace makes every request need X-Vault-Namespace: ns.
func (s *Server) SetNamespace(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.namespace = ns
}

// AddAppRole lets role_id with secret_id log in ("" secretID: a role
// without bind_secret_id).
func (s *Server) AddAppRole(name, roleID, secretID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleID] = &role{name: name, secretID: secretID}
}

// SetAppRoleMount moves the AppRole method to auth/MOUNT.
func (s *Server) SetAppRoleMount(mount string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appRoleMount = mount
}

// SetLoginTTL sets the TTL and max TTL of tokens AppRole logins issue
// from now on, and whether they are renewable (default: 1h, none, yes).
func (s *Server) SetLoginTTL(ttl, maxTTL time.Duration, renewable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginTTL, s.loginMax, s.loginRenew = ttl, maxTTL, renewable
}

// Mount enables a KV v2 engine at name.
func (s *Server) Mount(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mounts[name] == nil {
		s.mounts[name] = map[string]*secret{}
	}
}

// Put writes a new version of the secret at mount/path (mounting a KV v2
// engine there if needed) and returns its version number.
func (s *Server) Put(mount, path string, data map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mounts[mount] == nil {
		s.mounts[mount] = map[string]*secret{}
	}
	sec := s.mounts[mount][path]
	if sec == nil {
		sec = &secret{}
		s.mounts[mount][path] = sec
	}
	sec.versions = append(sec.versions, version{data: data, created: time.Now().UTC()})
	return len(sec.versions)
}

// Delete soft-deletes the latest version, as `vault kv delete` does.
func (s *Server) Delete(mount, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.mounts[mount][path]; sec != nil && len(sec.versions) > 0 {
		sec.versions[len(sec.versions)-1].deleted = time.Now().UTC()
	}
}

// SetLease makes reads of mount/path carry lease_duration d (whole
// seconds, as Vault counts them), as a secret with a TTL does.
func (s *Server) SetLease(mount, path string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.mounts[mount][path]; sec != nil {
		sec.lease = d
	}
}

// Requests counts the requests made to a URL path ("/v1/secret/data/x",
// "/v1/auth/approle/login"), whatever their answer.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[r.URL.Path]++
	if s.namespace != "" && strings.Trim(r.Header.Get("X-Vault-Namespace"), "/") != s.namespace {
		deny(w)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		notFound(w, r.URL.Path)
		return
	}
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	switch {
	case path == "auth/"+s.appRoleMount+"/login" && write:
		s.login(w, r)
	case path == "auth/token/renew-self" && write:
		s.renewSelf(w, r)
	case path == "auth/token/lookup-self" && r.Method == http.MethodGet:
		s.lookupSelf(w, r)
	case r.Method == http.MethodGet:
		s.read(w, r, path)
	default:
		notFound(w, path)
	}
}

// valid is the token of a request if Vault would take it; s.mu is held.
func (s *Server) valid(id string) *token {
	t := s.tokens[id]
	if t == nil || t.revoked || (!t.expires.IsZero() && !time.Now().Before(t.expires)) {
		return nil
	}
	return t
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RoleID   string `json:"role_id"`
		SecretID string `json:"secret_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		answer(w, http.StatusBadRequest, map[string]any{"errors": []string{"failed to parse JSON input: " + err.Error()}})
		return
	}
	if body.RoleID == "" {
		answer(w, http.StatusBadRequest, map[string]any{"errors": []string{"missing role_id"}})
		return
	}
	ro := s.roles[body.RoleID]
	if ro == nil || ro.secretID != body.SecretID {
		answer(w, http.StatusBadRequest, map[string]any{"errors": []string{"invalid role or secret ID"}})
		return
	}
	policies := []string{"default", ro.name}
	tok := s.issue("auth/"+s.appRoleMount+"/login", policies, s.loginTTL, s.loginMax, s.loginRenew)
	answer(w, http.StatusOK, envelope(nil, 0, nil, s.authBlock(tok, tok.expires)))
}

func (s *Server) authBlock(tok *token, until time.Time) map[string]any {
	return map[string]any{
		"client_token":    tok.id,
		"accessor":        tok.accessor,
		"policies":        tok.policies,
		"token_policies":  tok.policies,
		"metadata":        map[string]string{},
		"lease_duration":  leaseSeconds(until),
		"renewable":       tok.renewable,
		"entity_id":       "",
		"token_type":      "service",
		"orphan":          true,
		"mfa_requirement": nil,
		"num_uses":        0,
	}
}

func (s *Server) renewSelf(w http.ResponseWriter, r *http.Request) {
	tok := s.valid(r.Header.Get("X-Vault-Token"))
	if tok == nil {
		deny(w)
		return
	}
	if !tok.renewable || tok.ttl == 0 {
		answer(w, http.StatusBadRequest, map[string]any{"errors": []string{"lease is not renewable"}})
		return
	}
	var body struct {
		Increment json.RawMessage `json:"increment"`
	}
	b, _ := io.ReadAll(r.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			answer(w, http.StatusBadRequest, map[string]any{"errors": []string{"failed to parse JSON input: " + err.Error()}})
			return
		}
	}
	grant := tok.ttl
	if inc := parseIncrement(body.Increment); inc > 0 {
		grant = inc
	}
	now := time.Now()
	until := now.Add(grant)
	var warnings []string
	if !tok.maxExpiry.IsZero() && until.After(tok.maxExpiry) {
		until = tok.maxExpiry
		warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", grant, until.Sub(now).Round(time.Second)))
	}
	tok.expires = until
	answer(w, http.StatusOK, envelope(nil, 0, warnings, s.authBlock(tok, until)))
}

func (s *Server) lookupSelf(w http.ResponseWriter, r *http.Request) {
	tok := s.valid(r.Header.Get("X-Vault-Token"))
	if tok == nil {
		deny(w)
		return
	}
	var expire any
	if !tok.expires.IsZero() {
		expire = tok.expires.UTC().Format(time.RFC3339Nano)
	}
	var explicitMax int64
	if !tok.maxExpiry.IsZero() {
		explicitMax = int64(tok.maxExpiry.Sub(tok.created) / time.Second)
	}
	answer(w, http.StatusOK, envelope(map[string]any{
		"accessor":         tok.accessor,
		"creation_time":    tok.created.Unix(),
		"creation_ttl":     int64(tok.ttl / time.Second),
		"display_name":     "token",
		"entity_id":        "",
		"expire_time":      expire,
		"explicit_max_ttl": explicitMax,
		"id":               tok.id,
		"issue_time":       tok.created.UTC().Format(time.RFC3339Nano),
		"meta":             nil,
		"num_uses":         0,
		"orphan":           true,
		"path":             tok.path,
		"policies":         tok.policies,
		"renewable":        tok.renewable && tok.ttl > 0,
		"ttl":              leaseSeconds(tok.expires),
		"type":             "service",
	}, 0, nil, nil))
}

func (s *Server) read(w http.ResponseWriter, r *http.Request, path string) {
	if s.valid(r.Header.Get("X-Vault-Token")) == nil {
		deny(w)
		return
	}
	mount, rest, _ := strings.Cut(path, "/")
	secPath, isData := strings.CutPrefix(rest, "data/")
	kv := s.mounts[mount]
	if kv == nil || !isData {
		notFound(w, path)
		return
	}
	sec := kv[secPath]
	if sec == nil || len(sec.versions) == 0 {
		answer(w, http.StatusNotFound, map[string]any{"errors": []string{}})
		return
	}
	n := len(sec.versions)
	v := sec.versions[n-1]
	if q := r.URL.Query().Get("version"); q != "" {
		i, err := strconv.Atoi(q)
		if err != nil || i < 1 || i > n {
			answer(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
		n, v = i, sec.versions[i-1]
	}
	deletion := ""
	var data any = v.data
	status := http.StatusOK
	if !v.deleted.IsZero() {
		// A deleted version: 404, with its metadata and no data.
		deletion, data, status = v.deleted.Format(time.RFC3339Nano), nil, http.StatusNotFound
	}
	answer(w, status, envelope(map[string]any{
		"data": data,
		"metadata": map[string]any{
			"created_time":    v.created.Format(time.RFC3339Nano),
			"custom_metadata": nil,
			"deletion_time":   deletion,
			"destroyed":       false,
			"version":         n,
		},
	}, sec.lease, nil, nil))
}

// envelope is the body every Vault answer has.
func envelope(data any, lease time.Duration, warnings []string, auth any) map[string]any {
	return map[string]any{
		"request_id":     uuid(),
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": int64(lease / time.Second),
		"data":           data,
		"wrap_info":      nil,
		"warnings":       warnings,
		"auth":           auth,
	}
}

func answer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func deny(w http.ResponseWriter) {
	answer(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
}

func notFound(w http.ResponseWriter, path string) {
	answer(w, http.StatusNotFound, map[string]any{"errors": []string{fmt.Sprintf("no handler for route %q. route entry not found.", path)}})
}

// leaseSeconds is what is left until t in whole seconds, as Vault counts
// (0 for no expiry). Rounded, not cut: a token issued for 1s has a
// lease_duration of 1 although a few microseconds have passed.
func leaseSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(int64(time.Until(t).Round(time.Second)/time.Second), 0)
}

// parseIncrement reads a renewal's increment: seconds, or a duration
// such as "1h".
func parseIncrement(raw json.RawMessage) time.Duration {
	if len(raw) == 0 {
		return 0
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return time.Duration(n) * time.Second
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
