package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTokensFileKeepsOnlyHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	secret, tok, err := Create(path, "ci", []Scope{Read, Ack}, "acme", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "swt_") || len(secret) < 40 {
		t.Fatalf("secret %q", secret)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), secret) || strings.Contains(string(b), secret[4:]) {
		t.Fatal("the tokens file holds the secret")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	if tok.Expires == nil || !tok.Expires.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("expiry %v", tok.Expires)
	}
	if _, _, err := Create(path, "ci", []Scope{Read}, "acme", 0, now); err == nil {
		t.Fatal("a second token of the same name")
	}
	if _, _, err := Create(path, "bad name", []Scope{Read}, "acme", 0, now); err == nil {
		t.Fatal("a name with a space")
	}
	tokens, err := Load(path)
	if err != nil || len(tokens) != 1 || tokens[0].Hash != hashOf(secret) {
		t.Fatalf("load: %+v %v", tokens, err)
	}
	if err := Revoke(path, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := Revoke(path, "ci"); err == nil {
		t.Fatal("revoked twice")
	}
	if tokens, _ := Load(path); len(tokens) != 0 {
		t.Fatalf("after revoke: %+v", tokens)
	}
	if err := os.WriteFile(path, []byte(`{"tokens":[{"name":"x","sha256":"zz","tenant":"a"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("malformed file: %v", err)
	}
}

func TestGuardDecides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Now()
	reader, _, _ := Create(path, "reader", []Scope{Read}, "acme", 0, now)
	acker, _, _ := Create(path, "acker", []Scope{Read, Ack}, "acme", 0, now)
	admin, _, _ := Create(path, "admin", []Scope{Admin}, AllTenants, 0, now)
	expired, _, _ := Create(path, "old", []Scope{Read}, "acme", time.Millisecond, now.Add(-time.Hour))
	g, err := NewGuard(path, "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	req := func(token, query string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/v1/assets"+query, nil)
		r.RemoteAddr = "198.18.0.1:5000"
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return r
	}
	for _, tc := range []struct {
		name, token, query string
		scope              Scope
		code               int
		tenant             string
	}{
		{"no token", "", "", Read, 401, ""},
		{"a wrong token", "swt_nope", "", Read, 401, ""},
		{"an expired token", expired, "", Read, 401, ""},
		{"read with a read token", reader, "", Read, 0, "acme"},
		{"ack with a read token", reader, "", Ack, 403, ""},
		{"ack with an ack token", acker, "", Ack, 0, "acme"},
		{"another tenant", reader, "?tenant=globex", Read, 403, ""},
		{"its own tenant by name", reader, "?tenant=acme", Read, 0, "acme"},
		{"admin anywhere", admin, "?tenant=globex", Run, 0, "globex"},
		{"admin without a tenant", admin, "", Admin, 0, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, d := g.Check(req(tc.token, tc.query), tc.scope)
			switch {
			case tc.code == 0 && d != nil:
				t.Fatalf("refused: %v", d)
			case tc.code != 0 && (d == nil || d.Code != tc.code):
				t.Fatalf("got %+v, want %d", d, tc.code)
			case tc.code == 0 && p.Tenant != tc.tenant:
				t.Fatalf("tenant %q, want %q", p.Tenant, tc.tenant)
			}
		})
	}

	// A token revoked on disk stops working within the recheck interval.
	if err := Revoke(path, "reader"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * recheck)
	for {
		if _, d := g.Check(req(reader, ""), Read); d != nil && d.Code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a revoked token still works")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRepeatedFailuresAreSlowedDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	good, _, _ := Create(path, "good", []Scope{Read}, "default", 0, time.Now())
	g, err := NewGuard(path, "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	g.now = func() time.Time { return clock }
	from := func(addr, token string) *Denial {
		r := httptest.NewRequest(http.MethodGet, "/v1/check", nil)
		r.RemoteAddr = addr
		r.Header.Set("Authorization", "Bearer "+token)
		_, d := g.Check(r, Read)
		return d
	}
	for i := 0; i < maxFailures; i++ {
		if d := from("198.18.0.9:1", "swt_guess"); d == nil || d.Code != 401 {
			t.Fatalf("attempt %d: %+v", i, d)
		}
	}
	d := from("198.18.0.9:2", good)
	if d == nil || d.Code != http.StatusTooManyRequests || d.RetryAfter <= 0 {
		t.Fatalf("after %d failures even a good token: %+v", maxFailures, d)
	}
	if d := from("198.18.0.10:1", good); d != nil {
		t.Fatalf("another client is refused: %+v", d)
	}
	clock = clock.Add(failureWindow)
	if d := from("198.18.0.9:3", good); d != nil {
		t.Fatalf("after the window: %+v", d)
	}
}

func TestRequireWritesTheDenial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	g, err := NewGuard(path, "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := g.Require(Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Fatal("let through") }),
		func(w http.ResponseWriter, _ *http.Request, d *Denial) { http.Error(w, d.Message, d.Code) })
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/assets", nil))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("HTTP %d %v", w.Code, w.Header())
	}
	// A nil guard is authentication off.
	var off *Guard
	called := false
	off.Require(Admin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := From(r.Context())
		called = p.Tenant == "default" && p.Allows(Admin)
	}), nil).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !called {
		t.Fatal("a nil guard did not let the request through as the default tenant")
	}
}
