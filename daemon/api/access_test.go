package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/auth"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// TestEveryRouteIsGuarded walks the router's own list of routes, so that
// a new route cannot be forgotten: without a token, with a bad one, with
// a read token on a write route, and with tenant B's token on tenant A's
// objects. Each is refused, and no answer carries a byte of tenant A's.
func TestEveryRouteIsGuarded(t *testing.T) {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	// Tenant "acme" owns everything the test asks for; "globex" owns
	// one asset of its own at the same address.
	const secretA = "acme-secret-detail"
	err = st.Update(context.Background(), func(tx *store.Txn) error {
		for _, tenant := range []string{"acme", "globex"} {
			a := &model.Asset{ID: tenant + "-asset", Tenant: tenant, Status: "up", LastScanned: now, Hostnames: []string{tenant + "-host"},
				Addresses: []sdk.Address{{Addr: "127.0.0.1", Type: "ipv4"}}}
			if err := tx.PutAsset(a, nil); err != nil {
				return err
			}
			detail := "globex detail"
			if tenant == "acme" {
				detail = secretA
			}
			if err := tx.PutDeviation(&model.Deviation{ID: tenant + "-dev", Tenant: tenant, Rule: "r", Kind: model.KindUnexpectedPort,
				Severity: model.SeverityCritical, State: model.StateOpen, AssetID: a.ID, Host: "127.0.0.1", Protocol: "tcp", Port: 23,
				Detail: detail, OpenedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	readA, _, _ := auth.Create(tokens, "read-a", []auth.Scope{auth.Read}, "acme", 0, now)
	allB, _, _ := auth.Create(tokens, "all-b", []auth.Scope{auth.Admin}, "globex", 0, now)
	guard, err := auth.NewGuard(tokens, model.DefaultTenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	guard.FailureLimit = 1 << 20 // every request here comes from 127.0.0.1
	acks := &ingest.Applier{Store: st, Route: func(*sdk.Event) []string { return nil }}
	srv, err := New(Options{Store: st, Jobs: fakeJobs{}, Acks: acks, Guard: guard, Sinks: nil})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(`{"author":"a","comment":"c"}`))
		req.Header.Set("Origin", hs.URL)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	routes := srv.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes listed", len(routes))
	}
	public := map[string]bool{"GET /healthz": true, "GET /{$}": true, "GET /ui/static/": true, "GET /ui/login": true,
		"POST /ui/login": true, "POST /ui/logout": true, "POST /v1/chat/command": true}
	for _, r := range routes {
		if r.Scope == "" {
			if !public[r.Pattern] {
				t.Errorf("%s needs no token, and is not one of the routes meant to be public", r.Pattern)
			}
			continue
		}
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = strings.NewReplacer("{id}", "acme-dev", "{name}", "lo", "{$}", "").Replace(path)
		if strings.HasPrefix(path, "/v1/assets/") || strings.HasPrefix(path, "/ui/assets/") {
			path = strings.Replace(path, "acme-dev", "acme-asset", 1)
		}
		t.Run(r.Pattern, func(t *testing.T) {
			for _, c := range []struct {
				who, token string
				want       []int
			}{
				{"no token", "", []int{401, 303}},
				{"a bad token", "swt_bad", []int{401, 303}},
				{"tenant B's token", allB, nil},
			} {
				code, body := do(method, path+"?tenant=acme", c.token)
				if c.want == nil {
					c.want = []int{403}
				}
				if !contains(c.want, code) {
					t.Errorf("%s: HTTP %d, want %v", c.who, code, c.want)
				}
				for _, leak := range []string{secretA, "acme-host", "acme-dev"} {
					if strings.Contains(body, leak) && !strings.Contains(body, "next=") {
						t.Errorf("%s: the answer holds tenant A's %q:\n%s", c.who, leak, body)
					}
				}
			}
			// Tenant B's token without naming a tenant sees only B.
			if code, body := do(method, path, allB); strings.Contains(body, secretA) || strings.Contains(body, "acme-host") {
				t.Errorf("tenant B's token: HTTP %d with tenant A's data:\n%s", code, body)
			}
			if r.Scope != auth.Read {
				if code, _ := do(method, path, readA); code != 403 {
					t.Errorf("a read token on a %s route: HTTP %d, want 403", r.Scope, code)
				}
			}
		})
	}
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
