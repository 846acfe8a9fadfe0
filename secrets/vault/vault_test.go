package vault_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/internal/testvault"
	"github.com/sollwert/sollwert/secrets"
	"github.com/sollwert/sollwert/secrets/vault"
)

const (
	community = "c0mmunity-9f2e"
	hmacKey   = "hmac-4b7d1a"
	secretID  = "secret-id-77c3e1"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logs collects what the client logs, to prove no secret is in it.
func logs(t *testing.T) (hclog.Logger, *strings.Builder) {
	var b strings.Builder
	return hclog.New(&hclog.LoggerOptions{Output: &syncWriter{b: &b}, Level: hclog.Trace}), &b
}

type syncWriter struct{ b *strings.Builder }

func (w *syncWriter) Write(p []byte) (int, error) { return w.b.Write(p) }

func newClient(t *testing.T, cfg vault.Config) *vault.Client {
	t.Helper()
	c, err := vault.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// noSecretIn fails when s holds a value, a secret ID or a token.
func noSecretIn(t *testing.T, what, s string, v *testvault.Server) {
	t.Helper()
	for _, secret := range append([]string{community, hmacKey, secretID}, v.Issued()...) {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds a secret (%.6s...): %s", what, secret, s)
		}
	}
}

func TestRead(t *testing.T) {
	v := testvault.New(t)
	v.Put("secret", "network/snmp", map[string]any{"community": community, "port": 161, "v3": map[string]any{"user": "x"}})
	v.Put("kv", "team/hooks", map[string]any{"hmac": hmacKey})
	v.Put("secret", "gone", map[string]any{"k": "v"})
	v.Delete("secret", "gone")
	c := newClient(t, vault.Config{Address: v.URL, Auth: "token", TokenFile: writeFile(t, "token", v.RootToken())})

	cases := []struct {
		name, ref string
		want      string
		is        error
		msg       []string
	}{
		{name: "a key of a secret is its value", ref: "secret/network/snmp#community", want: community},
		{name: "another mount and a nested path", ref: "kv/team/hooks#hmac", want: hmacKey},
		{name: "a missing path is not found, naming the request", ref: "secret/network/nope#community", is: vault.ErrNotFound,
			msg: []string{"GET /v1/secret/data/network/nope", "no secret at this path"}},
		{name: "a missing key names the key and the keys there are", ref: "secret/network/snmp#comunity", is: vault.ErrNoKey,
			msg: []string{`"comunity"`, `"community"`, `"port"`, "GET /v1/secret/data/network/snmp"}},
		{name: "a key that is not a string says its type", ref: "secret/network/snmp#port", msg: []string{`key "port" holds a number, not a string`}},
		{name: "an object says its type", ref: "secret/network/snmp#v3", msg: []string{"holds an object"}},
		{name: "a deleted latest version is not found", ref: "secret/gone#k", is: vault.ErrNotFound, msg: []string{"deleted"}},
		{name: "an unknown mount is not found", ref: "nomount/x#k", is: vault.ErrNotFound, msg: []string{"GET /v1/nomount/data/x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := secrets.ParseRef(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Read(context.Background(), ref)
			if tc.want != "" {
				if err != nil || got.Secret != tc.want || got.Lease != 0 {
					t.Fatalf("got %q lease %s, %v", got.Secret, got.Lease, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("read succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %q", err, tc.is)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %s", err, m)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			noSecretIn(t, "error", err.Error(), v)
		})
	}
}

func TestTokenAuth(t *testing.T) {
	ref := secrets.Ref{Mount: "secret", Path: "network/snmp", Key: "community"}
	t.Run("a revoked token stops the start with a 403", func(t *testing.T) {
		v := testvault.New(t)
		tok := v.NewToken(time.Hour, 0, true)
		v.Revoke(tok)
		_, err := vault.New(context.Background(), vault.Config{Address: v.URL, TokenFile: writeFile(t, "token", tok)}, nil)
		if err == nil || !errors.Is(err, vault.ErrDenied) || !strings.Contains(err.Error(), "GET /v1/auth/token/lookup-self: 403 Forbidden: permission denied") {
			t.Fatalf("error %v", err)
		}
		noSecretIn(t, "error", err.Error(), v)
	})
	t.Run("a token revoked while running fails reads with a 403 naming the path", func(t *testing.T) {
		v := testvault.New(t)
		v.Put("secret", "network/snmp", map[string]any{"community": community})
		tok := v.NewToken(time.Hour, 0, true)
		c := newClient(t, vault.Config{Address: v.URL, TokenFile: writeFile(t, "token", tok)})
		if _, err := c.Read(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
		v.Revoke(tok)
		_, err := c.Read(context.Background(), ref)
		if !errors.Is(err, vault.ErrDenied) || !strings.Contains(err.Error(), "GET /v1/secret/data/network/snmp: 403") || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("error %v", err)
		}
		noSecretIn(t, "error", err.Error(), v)
	})
	t.Run("a new token in token_file is taken after a 403", func(t *testing.T) {
		v := testvault.New(t)
		v.Put("secret", "network/snmp", map[string]any{"community": community})
		old := v.NewToken(time.Hour, 0, true)
		file := writeFile(t, "token", old)
		c := newClient(t, vault.Config{Address: v.URL, TokenFile: file})
		v.Revoke(old)
		if err := os.WriteFile(file, []byte(v.NewToken(time.Hour, 0, true)), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Read(context.Background(), ref); err != nil || got.Secret != community {
			t.Fatalf("read after the token changed: %q, %v", got.Secret, err)
		}
	})
	t.Run("token_env", func(t *testing.T) {
		v := testvault.New(t)
		v.Put("secret", "network/snmp", map[string]any{"community": community})
		t.Setenv("SOLLWERT_TEST_VAULT_TOKEN", v.RootToken())
		c := newClient(t, vault.Config{Address: v.URL, TokenEnv: "SOLLWERT_TEST_VAULT_TOKEN"})
		if got, err := c.Read(context.Background(), ref); err != nil || got.Secret != community {
			t.Fatalf("%q, %v", got.Secret, err)
		}
	})
	t.Run("VAULT_TOKEN and VAULT_NAMESPACE do not override the vault block", func(t *testing.T) {
		v := testvault.New(t)
		v.Put("secret", "network/snmp", map[string]any{"community": community})
		revoked := v.NewToken(time.Hour, 0, true)
		v.Revoke(revoked)
		t.Setenv("VAULT_TOKEN", revoked)
		t.Setenv("VAULT_NAMESPACE", "elsewhere")
		t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
		c := newClient(t, vault.Config{Address: v.URL, TokenFile: writeFile(t, "token", v.RootToken())})
		if got, err := c.Read(context.Background(), ref); err != nil || got.Secret != community {
			t.Fatalf("%q, %v", got.Secret, err)
		}
	})
	t.Run("an empty token file is refused naming the file", func(t *testing.T) {
		v := testvault.New(t)
		file := writeFile(t, "token", "")
		_, err := vault.New(context.Background(), vault.Config{Address: v.URL, TokenFile: file}, nil)
		if err == nil || !strings.Contains(err.Error(), file+" is empty") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("a renewable token is renewed past its TTL", func(t *testing.T) {
		v := testvault.New(t)
		v.Put("secret", "network/snmp", map[string]any{"community": community})
		tok := v.NewToken(time.Second, time.Minute, true)
		c := newClient(t, vault.Config{Address: v.URL, TokenFile: writeFile(t, "token", tok)})
		time.Sleep(2500 * time.Millisecond)
		if n := v.Requests("/v1/auth/token/renew-self"); n < 2 {
			t.Fatalf("%d renewals in 2.5s of a 1s token", n)
		}
		if !v.Valid(tok) {
			t.Fatal("the token expired although it was renewed")
		}
		if _, err := c.Read(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAppRole(t *testing.T) {
	ref := secrets.Ref{Mount: "secret", Path: "network/snmp", Key: "community"}
	setup := func(t *testing.T) (*testvault.Server, vault.Config) {
		v := testvault.New(t)
		v.Put("secret", "network/snmp", map[string]any{"community": community})
		v.AddAppRole("sollwert", "role-1", secretID)
		return v, vault.Config{Address: v.URL, Auth: "approle", RoleID: "role-1", SecretIDFile: writeFile(t, "secret-id", secretID)}
	}
	cases := []struct {
		name    string
		setup   func(t *testing.T, v *testvault.Server, c *vault.Config)
		wantErr []string
	}{
		{name: "role_id and secret_id_file log in"},
		{name: "role_id_file", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) {
			c.RoleID, c.RoleIDFile = "", writeFile(t, "role", "role-1")
		}},
		{name: "secret_id_env", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) {
			t.Setenv("SOLLWERT_TEST_SECRET_ID", secretID)
			c.SecretIDFile, c.SecretIDEnv = "", "SOLLWERT_TEST_SECRET_ID"
		}},
		{name: "a role without a secret ID", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) {
			v.AddAppRole("open", "role-2", "")
			c.RoleID, c.SecretIDFile = "role-2", ""
		}},
		{name: "another mount", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) {
			v.SetAppRoleMount("ar")
			c.AppRoleMount = "ar"
		}},
		{name: "a namespace", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) {
			v.SetNamespace("team-a")
			c.Namespace = "team-a"
		}},
		{name: "a wrong secret ID is refused", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) {
			c.SecretIDFile = writeFile(t, "wrong", "wrong-"+secretID)
		},
			wantErr: []string{"AppRole login", "PUT /v1/auth/approle/login: 400 Bad Request: invalid role or secret ID"}},
		{name: "a missing namespace is refused", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) { v.SetNamespace("team-a") },
			wantErr: []string{"AppRole login", "403"}},
		{name: "an unreadable secret_id_file names the file", setup: func(t *testing.T, v *testvault.Server, c *vault.Config) { c.SecretIDFile = "/nonexistent/secret-id" },
			wantErr: []string{"secret_id", "/nonexistent/secret-id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, cfg := setup(t)
			if tc.setup != nil {
				tc.setup(t, v, &cfg)
			}
			c, err := vault.New(context.Background(), cfg, nil)
			if tc.wantErr != nil {
				if err == nil {
					c.Close()
					t.Fatal("login succeeded")
				}
				for _, m := range tc.wantErr {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not say %s", err, m)
					}
				}
				noSecretIn(t, "error", err.Error(), v)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got, err := c.Read(context.Background(), ref); err != nil || got.Secret != community {
				t.Fatalf("%q, %v", got.Secret, err)
			}
			if n := v.Requests("/v1/auth/" + map[bool]string{true: "ar", false: "approle"}[cfg.AppRoleMount == "ar"] + "/login"); n != 1 {
				t.Fatalf("%d logins", n)
			}
		})
	}
}

// TestAppRoleTokenLifecycle: the token is renewed while it can be, and
// a new login follows when it reaches its max TTL or is revoked; no
// token or secret ID reaches the log.
func TestAppRoleTokenLifecycle(t *testing.T) {
	ref := secrets.Ref{Mount: "secret", Path: "network/snmp", Key: "community"}
	start := func(t *testing.T, ttl, maxTTL time.Duration) (*testvault.Server, *vault.Client, *strings.Builder) {
		v := testvault.New(t)
		v.Put("secret", "network/snmp", map[string]any{"community": community})
		v.AddAppRole("sollwert", "role-1", secretID)
		v.SetLoginTTL(ttl, maxTTL, true)
		log, out := logs(t)
		c, err := vault.New(context.Background(), vault.Config{Address: v.URL, Auth: "approle", RoleID: "role-1",
			SecretIDFile: writeFile(t, "secret-id", secretID)}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.Close()
			noSecretIn(t, "log", out.String(), v)
		})
		return v, c, out
	}
	t.Run("renewed within its max TTL, no new login", func(t *testing.T) {
		v, c, _ := start(t, time.Second, time.Minute)
		time.Sleep(2500 * time.Millisecond)
		if n := v.Requests("/v1/auth/token/renew-self"); n < 2 {
			t.Fatalf("%d renewals", n)
		}
		if n := v.Requests("/v1/auth/approle/login"); n != 1 {
			t.Fatalf("%d logins", n)
		}
		if _, err := c.Read(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("logs in again when the token reaches its max TTL", func(t *testing.T) {
		v, c, _ := start(t, time.Second, 2*time.Second)
		first := v.Issued()[1]
		deadline := time.Now().Add(8 * time.Second)
		for v.Requests("/v1/auth/approle/login") < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("no new login; %d renewals", v.Requests("/v1/auth/token/renew-self"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Until(time.Now().Add(500 * time.Millisecond)))
		if got, err := c.Read(context.Background(), ref); err != nil || got.Secret != community {
			t.Fatalf("read with the new token: %q, %v", got.Secret, err)
		}
		// The first token ended at its max TTL; the read above used another.
		waitFor(t, func() bool { return !v.Valid(first) })
		if _, err := c.Read(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("logs in again when a read finds the token revoked", func(t *testing.T) {
		v, c, _ := start(t, time.Hour, 0)
		v.Revoke(v.Issued()[1])
		if got, err := c.Read(context.Background(), ref); err != nil || got.Secret != community {
			t.Fatalf("%q, %v", got.Secret, err)
		}
		if n := v.Requests("/v1/auth/approle/login"); n != 2 {
			t.Fatalf("%d logins", n)
		}
	})
}

func TestLeaseIsReported(t *testing.T) {
	v := testvault.New(t)
	v.Put("secret", "db", map[string]any{"password": hmacKey})
	v.SetLease("secret", "db", 90*time.Second)
	c := newClient(t, vault.Config{Address: v.URL, TokenFile: writeFile(t, "token", v.RootToken())})
	got, err := c.Read(context.Background(), secrets.Ref{Mount: "secret", Path: "db", Key: "password"})
	if err != nil || got.Lease != 90*time.Second {
		t.Fatalf("lease %s, %v", got.Lease, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
