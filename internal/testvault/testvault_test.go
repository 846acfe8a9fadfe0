package testvault

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// call makes one raw request and decodes the answer.
func call(t *testing.T, s *Server, method, path, token, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %q is not JSON: %v", method, path, b, err)
	}
	return resp.StatusCode, out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// envelopeKeys are the top-level fields of every successful answer in
// Vault's API documentation.
var envelopeKeys = []string{"auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"}

func TestAnswersHaveVaultsShapes(t *testing.T) {
	s := New(t)
	s.Put("secret", "network/snmp", map[string]any{"community": "public"})
	s.Put("secret", "network/snmp", map[string]any{"community": "private"})
	root := s.RootToken()

	t.Run("KV v2 read", func(t *testing.T) {
		code, out := call(t, s, "GET", "/v1/secret/data/network/snmp", root, "", nil)
		if code != 200 || !slices.Equal(keys(out), envelopeKeys) {
			t.Fatalf("HTTP %d keys %v", code, keys(out))
		}
		data := out["data"].(map[string]any)
		meta := data["metadata"].(map[string]any)
		if data["data"].(map[string]any)["community"] != "private" || meta["version"] != 2.0 ||
			!slices.Equal(keys(meta), []string{"created_time", "custom_metadata", "deletion_time", "destroyed", "version"}) {
			t.Fatalf("data %v", data)
		}
		if _, err := time.Parse(time.RFC3339Nano, meta["created_time"].(string)); err != nil {
			t.Fatal(err)
		}
		if code, out := call(t, s, "GET", "/v1/secret/data/network/snmp?version=1", root, "", nil); code != 200 ||
			out["data"].(map[string]any)["data"].(map[string]any)["community"] != "public" {
			t.Fatalf("version 1: %d %v", code, out)
		}
	})
	t.Run("404 for a missing path is an empty error list", func(t *testing.T) {
		code, out := call(t, s, "GET", "/v1/secret/data/nope", root, "", nil)
		if code != 404 || len(out) != 1 || len(out["errors"].([]any)) != 0 {
			t.Fatalf("HTTP %d %v", code, out)
		}
	})
	t.Run("403 without a valid token", func(t *testing.T) {
		for _, tok := range []string{"", "hvs.unknown"} {
			code, out := call(t, s, "GET", "/v1/secret/data/network/snmp", tok, "", nil)
			if code != 403 || out["errors"].([]any)[0] != "permission denied" {
				t.Fatalf("token %q: HTTP %d %v", tok, code, out)
			}
		}
	})
	t.Run("AppRole login", func(t *testing.T) {
		s.AddAppRole("web", "rid", "sid")
		code, out := call(t, s, "POST", "/v1/auth/approle/login", "", `{"role_id":"rid","secret_id":"sid"}`, nil)
		if code != 200 || !slices.Equal(keys(out), envelopeKeys) || out["data"] != nil {
			t.Fatalf("HTTP %d %v", code, out)
		}
		auth := out["auth"].(map[string]any)
		for _, k := range []string{"client_token", "accessor", "policies", "token_policies", "lease_duration", "renewable"} {
			if _, ok := auth[k]; !ok {
				t.Errorf("auth lacks %s: %v", k, auth)
			}
		}
		if auth["lease_duration"] != 3600.0 || auth["renewable"] != true || !s.Valid(auth["client_token"].(string)) {
			t.Fatalf("auth %v", auth)
		}
		if code, out := call(t, s, "POST", "/v1/auth/approle/login", "", `{"role_id":"rid","secret_id":"wrong"}`, nil); code != 400 ||
			out["errors"].([]any)[0] != "invalid role or secret ID" {
			t.Fatalf("wrong secret ID: HTTP %d %v", code, out)
		}
	})
	t.Run("lookup-self and renew-self up to the max TTL", func(t *testing.T) {
		tok := s.NewToken(time.Hour, 90*time.Minute, true)
		code, out := call(t, s, "GET", "/v1/auth/token/lookup-self", tok, "", nil)
		data := out["data"].(map[string]any)
		if code != 200 || data["id"] != tok || data["ttl"] != 3600.0 || data["renewable"] != true || data["expire_time"] == nil ||
			data["creation_ttl"] != 3600.0 || data["explicit_max_ttl"] != 5400.0 {
			t.Fatalf("lookup-self: HTTP %d %v", code, data)
		}
		code, out = call(t, s, "PUT", "/v1/auth/token/renew-self", tok, `{"increment":"2h"}`, nil)
		auth := out["auth"].(map[string]any)
		if code != 200 || auth["client_token"] != tok || auth["lease_duration"] != 5400.0 || len(out["warnings"].([]any)) != 1 {
			t.Fatalf("renew-self past the max TTL: HTTP %d %v", code, out)
		}
		s.Revoke(tok)
		if code, _ := call(t, s, "POST", "/v1/auth/token/renew-self", tok, "", nil); code != 403 {
			t.Fatalf("renewing a revoked token: HTTP %d", code)
		}
		if code, out := call(t, s, "POST", "/v1/auth/token/renew-self", root, "", nil); code != 400 || out["errors"].([]any)[0] != "lease is not renewable" {
			t.Fatalf("renewing a token without a TTL: HTTP %d %v", code, out)
		}
	})
	t.Run("a token expires at its TTL", func(t *testing.T) {
		tok := s.NewToken(time.Second, 0, true)
		time.Sleep(1100 * time.Millisecond)
		if code, _ := call(t, s, "GET", "/v1/auth/token/lookup-self", tok, "", nil); code != 403 {
			t.Fatalf("HTTP %d after the TTL", code)
		}
	})
	t.Run("a lease on a KV read", func(t *testing.T) {
		s.SetLease("secret", "network/snmp", 90*time.Second)
		defer s.SetLease("secret", "network/snmp", 0)
		if _, out := call(t, s, "GET", "/v1/secret/data/network/snmp", root, "", nil); out["lease_duration"] != 90.0 {
			t.Fatalf("lease_duration %v", out["lease_duration"])
		}
	})
	t.Run("a namespace is checked", func(t *testing.T) {
		s.SetNamespace("team-a")
		defer s.SetNamespace("")
		if code, _ := call(t, s, "GET", "/v1/secret/data/network/snmp", root, "", nil); code != 403 {
			t.Fatalf("without the namespace: HTTP %d", code)
		}
		if code, _ := call(t, s, "GET", "/v1/secret/data/network/snmp", root, "", map[string]string{"X-Vault-Namespace": "team-a/"}); code != 200 {
			t.Fatalf("with it: HTTP %d", code)
		}
	})
	if n := s.Requests("/v1/secret/data/network/snmp"); n < 6 {
		t.Fatalf("counted %d reads", n)
	}
}
