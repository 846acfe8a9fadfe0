package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/internal/testvault"
)

// secretsEnv is a fake Vault and a way to write configurations for it.
type secretsEnv struct {
	t     *testing.T
	v     *testvault.Server
	dir   string
	token string // the token file
}

func newSecretsEnv(t *testing.T) *secretsEnv {
	v := testvault.New(t)
	v.Put("secret", "network/snmp", map[string]any{"community": "c0mm-8d2a"})
	v.Put("secret", "hooks", map[string]any{"hmac": "hmac-27fe"})
	dir := t.TempDir()
	t.Setenv("RUNTIME_DIRECTORY", dir)
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(v.RootToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &secretsEnv{t: t, v: v, dir: dir, token: token}
}

// config parses a configuration with a vault block (extra goes into it)
// and body.
func (e *secretsEnv) config(extra, body string) *config.Config {
	e.t.Helper()
	src := "data_dir = \"data\"\nvault {\n  address    = \"" + e.v.URL + "\"\n  token_file = \"" + e.token + "\"\n" + extra + "}\n" + body
	cfg, err := config.Parse([]byte(src), filepath.Join(e.dir, "s.hcl"))
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

const hookSink = "sink \"hook\" {\n  type = \"webhook\"\n  url = \"http://127.0.0.1:1/\"\n  secret_vault = \"secret/hooks#hmac\"\n}\n"
const snmpJob = "job \"sw\" {\n  source = \"snmp\"\n  schedule = \"@hourly\"\n  targets = [\"127.0.0.1\"]\n  community_vault = \"secret/network/snmp#community\"\n}\n"

func sinkFile(t *testing.T, cfg *config.Config) string {
	t.Helper()
	var c struct {
		SecretFile string `json:"secret_file"`
	}
	if err := json.Unmarshal(cfg.Sinks[0].Config, &c); err != nil || c.SecretFile == "" {
		t.Fatalf("sink config %s: %v", cfg.Sinks[0].Config, err)
	}
	return c.SecretFile
}

func TestSecretFilesAcrossReloads(t *testing.T) {
	e := newSecretsEnv(t)
	s := newSecretFiles(filepath.Join(e.dir, "data"), hclog.NewNullLogger())
	defer s.close()
	ctx := context.Background()

	first, st, err := s.stage(ctx, e.config("", hookSink+snmpJob))
	if err != nil {
		t.Fatal(err)
	}
	st.finish(true)
	hookFile := sinkFile(t, first)
	if b, _ := os.ReadFile(hookFile); string(b) != "hmac-27fe" {
		t.Fatalf("%s holds %q", hookFile, b)
	}
	if !strings.Contains(string(first.Jobs[0].SourceConfig), `"community_file":`) || strings.Contains(string(first.Jobs[0].SourceConfig), "_vault") {
		t.Fatalf("job config %s", first.Jobs[0].SourceConfig)
	}

	// The same vault block: the same client, every reference read again.
	reads := e.v.Requests("/v1/secret/data/hooks")
	again, st, err := s.stage(ctx, e.config("", hookSink+snmpJob))
	if err != nil {
		t.Fatal(err)
	}
	st.finish(true)
	if e.v.Requests("/v1/auth/token/lookup-self") != 1 || e.v.Requests("/v1/secret/data/hooks") != reads+1 {
		t.Fatalf("lookups %d, reads %d", e.v.Requests("/v1/auth/token/lookup-self"), e.v.Requests("/v1/secret/data/hooks"))
	}
	if sinkFile(t, again) != hookFile || again.Sinks[0].Fingerprint() != first.Sinks[0].Fingerprint() {
		t.Fatal("an unchanged reference moved to another file: its sink would restart")
	}

	// A refused reload (a reference that does not resolve) changes nothing.
	bad := strings.Replace(hookSink, "secret/hooks#hmac", "secret/hooks#nokey", 1)
	if _, _, err := s.stage(ctx, e.config("", bad+snmpJob)); err == nil {
		t.Fatal("a missing key was staged")
	} else if want := filepath.Join(e.dir, "s.hcl") + ":9:18: sink \"hook\": secret_vault: cannot read from Vault: secret/hooks#nokey: GET /v1/secret/data/hooks: the secret has no such key \"nokey\" (it has keys \"hmac\")"; err.Error() != want {
		t.Fatalf("error\n%s\nwant\n%s", err, want)
	}
	if _, err := os.Stat(hookFile); err != nil {
		t.Fatalf("a refused stage removed a running file: %v", err)
	}

	// A stage that is applied but refused later (the sources' Validate,
	// say) keeps the running files too.
	_, st, err = s.stage(ctx, e.config("", snmpJob))
	if err != nil {
		t.Fatal(err)
	}
	st.finish(false)
	if _, err := os.Stat(hookFile); err != nil {
		t.Fatalf("a refused configuration removed a running file: %v", err)
	}

	// Another vault block: a new client (a new lookup); the old stops.
	other := filepath.Join(e.dir, "token2")
	if err := os.WriteFile(other, []byte(e.v.RootToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.token = other
	moved, st, err := s.stage(ctx, e.config("", hookSink))
	if err != nil {
		t.Fatal(err)
	}
	st.finish(true)
	if n := e.v.Requests("/v1/auth/token/lookup-self"); n != 2 {
		t.Fatalf("%d lookups after the vault block changed", n)
	}
	if sinkFile(t, moved) != hookFile {
		// Same address and namespace: the same secret, the same file.
		t.Fatal("the hook's file moved")
	}

	// No references left: no files, no client.
	_, st, err = s.stage(ctx, e.config("", ""))
	if err != nil {
		t.Fatal(err)
	}
	st.finish(true)
	if _, err := os.Stat(hookFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s outlived its reference: %v", hookFile, err)
	}
	if s.client != nil {
		t.Fatal("a Vault client outlived the references")
	}
	dir := s.mgr.Dir()
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s outlived close: %v", dir, err)
	}
}

func TestSecretFilesLoginErrorNamesTheBlock(t *testing.T) {
	e := newSecretsEnv(t)
	e.v.Revoke(e.v.RootToken())
	s := newSecretFiles(filepath.Join(e.dir, "data"), hclog.NewNullLogger())
	defer s.close()
	_, _, err := s.stage(context.Background(), e.config("", hookSink))
	want := filepath.Join(e.dir, "s.hcl") + ":2:1: vault: checking the token: GET /v1/auth/token/lookup-self: 403 Forbidden: permission denied"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %s...", err, want)
	}
	if strings.Contains(err.Error(), e.v.RootToken()) {
		t.Fatal("the error holds the token")
	}
	// The failed stage let go: another can start.
	e.token = filepath.Join(e.dir, "token3")
	if err := os.WriteFile(e.token, []byte(e.v.NewToken(0, 0, false)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, st, err := s.stage(context.Background(), e.config("", hookSink))
	if err != nil {
		t.Fatal(err)
	}
	st.finish(true)
}
