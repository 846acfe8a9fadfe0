package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sollwert/sollwert/internal/testvault"
	"github.com/sollwert/sollwert/plugins/webhook"
)

// keyedReceiver records, for each webhook delivery, which of its keys
// signed it ("" for none).
type keyedReceiver struct {
	keys  map[string]string // name -> key
	mu    sync.Mutex
	signs []string
}

func (k *keyedReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	got := r.Header.Get(webhook.SignatureHeader)
	by := ""
	for name, key := range k.keys {
		if got == webhook.Sign([]byte(key), b) {
			by = name
		}
	}
	k.mu.Lock()
	k.signs = append(k.signs, by)
	k.mu.Unlock()
	if by == "" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (k *keyedReceiver) signedBy() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.signs...)
}

// TestSinkSecretFromVault: the webhook sink's HMAC key comes from Vault
// (a fake one; the daemon logs in with AppRole through the real vault/api
// client and keeps renewing its token). A real delivery is signed with
// the key; after the key changes in Vault and a reload, the next one is
// signed with the new key. The key's file is private and goes when the
// daemon stops. A reference that does not resolve refuses the reload,
// the start and `rules validate`, naming it. Neither key, nor the secret
// ID, nor a Vault token is in the log, the API's answers or those errors.
func TestSinkSecretFromVault(t *testing.T) {
	requireNmap(t)
	const oldKey, newKey, secretID = "hmac-old-1f9a7c", "hmac-new-b24e60", "approle-secret-id-5d83"
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	v := testvault.New(t)
	v.Put("secret", "sollwert/hooks", map[string]any{"hmac": oldKey, "chat": "unused"})
	v.AddAppRole("sollwert", "sollwert-role", secretID)
	v.SetLoginTTL(2*time.Second, 0, true) // renewed every second or so while the test runs
	rcv := &keyedReceiver{keys: map[string]string{"old": oldKey, "new": newKey}}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close)

	e := newEnv(t)
	idFile := filepath.Join(e.dir, "secret-id")
	if err := os.WriteFile(idFile, []byte(secretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(e.dir, "run") // what systemd's RuntimeDirectory= would be
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNTIME_DIRECTORY", run)
	vaultBlock := fmt.Sprintf(`
vault {
  address        = %q
  auth           = "approle"
  role_id        = "sollwert-role"
  secret_id_file = %q
}
`, v.URL, idFile)
	config := func(ref string) string {
		return vaultBlock + loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed) + fmt.Sprintf(`
sink "hook" {
  type         = "webhook"
  url          = %q
  secret_vault = %q
}
`, hook.URL+"/events", ref)
	}
	secretsIn := func(what, s string) {
		t.Helper()
		for _, secret := range append([]string{oldKey, newKey, secretID}, v.Issued()...) {
			if strings.Contains(s, secret) {
				t.Errorf("%s holds a secret (%.8s...):\n%s", what, secret, s)
			}
		}
	}
	keyFile := func() string {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(run, "sollwert-secrets-*", "*"))
		if len(files) != 1 {
			t.Fatalf("secret files: %v", files)
		}
		return files[0]
	}

	e.writeConfig(config("secret/sollwert/hooks#hmac"))
	e.start()
	if n := v.Requests("/v1/auth/approle/login"); n != 1 {
		t.Fatalf("%d AppRole logins", n)
	}
	file := keyFile()
	if b, err := os.ReadFile(file); err != nil || string(b) != oldKey {
		t.Fatalf("%s: %v", file, err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v", file, fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Dir(file)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: mode %v", filepath.Dir(file), fi.Mode())
	}

	// A real delivery, signed with the key from Vault.
	e.runJob("lo")
	waitFor(t, func() bool { return len(rcv.signedBy()) == 1 })
	if got := rcv.signedBy(); got[0] != "old" {
		t.Fatalf("the opened event was signed by %q", got)
	}

	// The key changes in Vault; a reload reads it again.
	v.Put("secret", "sollwert/hooks", map[string]any{"hmac": newKey})
	e.reload(config("secret/sollwert/hooks#hmac"))
	if b, _ := os.ReadFile(file); string(b) != newKey {
		t.Fatal("the reload did not rewrite the key's file")
	}
	if n := v.Requests("/v1/auth/approle/login"); n != 1 {
		t.Fatalf("%d AppRole logins: an unchanged vault block keeps its token across a reload", n)
	}
	devID := e.deviations("")[0].ID
	if out, err := exec.Command(binary, "ack", "--url", "http://"+e.api, devID, "--comment", "known", "--author", "alice").CombinedOutput(); err != nil {
		t.Fatalf("sollwert ack: %v\n%s", err, out)
	}
	waitFor(t, func() bool { return len(rcv.signedBy()) == 2 })
	if got := rcv.signedBy(); got[1] != "new" {
		t.Fatalf("after the reload the delivery was signed by %q", got)
	}

	// A reference that does not resolve: the reload is refused, naming
	// it; the running configuration and its file stay.
	before := strings.Count(e.logs.String(), "reload refused")
	e.writeConfig(config("secret/sollwert/missing#hmac"))
	e.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Count(e.logs.String(), "reload refused") > before })
	for _, want := range []string{"sollwert.hcl:", `sink \"hook\": secret_vault: cannot read from Vault: secret/sollwert/missing#hmac: GET /v1/secret/data/sollwert/missing`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("the refusal does not say %s:\n%s", want, e.logs.String())
		}
	}
	if b, _ := os.ReadFile(file); string(b) != newKey {
		t.Fatal("a refused reload changed the running key's file")
	}
	audit := e.raw("/v1/audit")
	if !strings.Contains(audit, "secret/sollwert/missing#hmac") {
		t.Errorf("the audit log does not say why the reload was refused:\n%s", audit)
	}

	// The API's answers hold no secret.
	for _, p := range []string{"/healthz", "/v1/sinks", "/v1/jobs", "/v1/audit", "/v1/deviations?state=all", "/metrics"} {
		secretsIn("GET "+p, e.raw(p))
	}
	if n := v.Requests("/v1/auth/token/renew-self"); n == 0 {
		t.Error("the daemon never renewed its Vault token")
	}

	// Stopped, the daemon leaves no secret file behind.
	e.stop(syscall.SIGTERM)
	if left, _ := filepath.Glob(filepath.Join(run, "sollwert-secrets-*")); len(left) != 0 {
		t.Fatalf("left after the stop: %v", left)
	}
	secretsIn("the daemon's log", e.logs.String())

	// A key that is not in the secret: neither `rules validate` nor a
	// start gets past it, and both say where and what.
	bad := filepath.Join(e.dir, "bad.hcl")
	body := fmt.Sprintf("data_dir = %q\napi { listen = %q }\n", filepath.Join(e.dir, "data2"), fmt.Sprintf("127.0.0.1:%d", freePort(t))) +
		config("secret/sollwert/hooks#hmac_key")
	if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"rules", "validate", "--config", bad}, {"daemon", "--config", bad}} {
		cmd := exec.Command(binary, args...)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code == 0 {
			t.Fatalf("sollwert %s succeeded:\n%s", args[0], out)
		}
		for _, want := range []string{"bad.hcl:", "secret_vault", "GET /v1/secret/data/sollwert/hooks", `the secret has no such key \"hmac_key\"`} {
			if want == `the secret has no such key \"hmac_key\"` && args[0] == "rules" {
				want = `the secret has no such key "hmac_key"`
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("sollwert %s does not say %s:\n%s", args[0], want, out)
			}
		}
		secretsIn("sollwert "+args[0], string(out))
	}
	if left, _ := filepath.Glob(filepath.Join(run, "sollwert-secrets-*")); len(left) != 0 {
		t.Fatalf("left after the failed start: %v", left)
	}
}

// raw GETs an API path and returns the body as it came.
func (e *env) raw(path string) string {
	e.t.Helper()
	resp, err := http.Get("http://" + e.api + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
