package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/secrets"
)

// TestVaultErrorsNameTheirPosition: every mistake in a vault block or a
// NAME_vault attribute is one FILE:LINE:COL line.
func TestVaultErrorsNameTheirPosition(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	vaultBlock := "vault {\n  address    = \"https://127.0.0.1:8200\"\n  token_file = " + quote(tokenFile) + "\n}\n"
	sink := func(attrs string) string {
		return "sink \"hook\" {\n  type = \"webhook\"\n  url  = \"http://127.0.0.1:1/\"\n" + attrs + "}\n"
	}
	cases := []struct {
		name, src, want string
	}{
		{"a reference without a vault block", head + sink("  secret_vault = \"secret/hooks#hmac\"\n"),
			"c.hcl:5:18: Missing vault block: secret_vault reads from Vault, but the file has no top-level vault { address = ... } block"},
		{"a reference without a key", head + vaultBlock + sink("  secret_vault = \"secret/hooks\"\n"),
			`c.hcl:9:18: Invalid secret_vault: "secret/hooks" names no key: write MOUNT/PATH#KEY`},
		{"a reference without a path", head + vaultBlock + sink("  secret_vault = \"secret#hmac\"\n"),
			`c.hcl:9:18: Invalid secret_vault: "secret#hmac" needs a mount and a path`},
		{"a reference with a leading slash", head + vaultBlock + sink("  secret_vault = \"/v1/secret/data/hooks#hmac\"\n"),
			`c.hcl:9:18: Invalid secret_vault: "/v1/secret/data/hooks#hmac" starts with '/'`},
		{"a reference that is not a string", head + vaultBlock + sink("  secret_vault = 42\n"),
			`c.hcl:9:18: Invalid secret_vault: must be a string, "MOUNT/PATH#KEY"`},
		{"a reference beside NAME_file", head + vaultBlock + sink("  secret_vault = \"secret/hooks#hmac\"\n  secret_file = \"/k\"\n"),
			"c.hcl:9:18: Conflicting secret_vault: the secret comes from one place: set secret_vault, secret_file or secret_env, not secret_vault and secret_file"},
		{"a reference beside NAME_env in a job", head + vaultBlock +
			"job \"sw\" {\n  source = \"snmp\"\n  schedule = \"@hourly\"\n  community_env = \"C\"\n  community_vault = \"secret/network/snmp#community\"\n}\n",
			"c.hcl:10:21: Conflicting community_vault: the community comes from one place"},
		{"a job reference in a tenant without a vault block", head +
			"tenant \"acme\" {\n  job \"sw\" {\n    source = \"snmp\"\n    schedule = \"@hourly\"\n    community_vault = \"secret/network/snmp#community\"\n  }\n}\n",
			"c.hcl:6:23: Missing vault block: community_vault reads from Vault"},
		{"no address", head + "vault {\n  token_file = " + quote(tokenFile) + "\n}\n", "c.hcl:2:7: Missing required argument"},
		{"an address that is not a URL", head + "vault {\n  address = \"vault:8200\"\n  token_file = " + quote(tokenFile) + "\n}\n",
			`c.hcl:3:13: Invalid vault address: "vault:8200" is not a URL`},
		{"plain http beyond loopback", head + "vault {\n  address = \"http://vault.example:8200\"\n  token_file = " + quote(tokenFile) + "\n}\n",
			`c.hcl:3:13: Insecure vault address: "http://vault.example:8200" would send the Vault token unencrypted`},
		{"an address with a path", head + "vault {\n  address = \"https://vault.example/v1/secret\"\n  token_file = " + quote(tokenFile) + "\n}\n",
			"c.hcl:3:13: Invalid vault address"},
		{"an unknown auth", head + "vault {\n  address = \"https://vault.example\"\n  auth = \"ldap\"\n}\n",
			`c.hcl:4:10: Invalid vault auth: "ldap" is not "token" or "approle"`},
		{"token auth without a token", head + "vault {\n  address = \"https://vault.example\"\n}\n",
			`c.hcl:2:1: Invalid vault block: auth = "token" needs token_file or token_env`},
		{"both token_file and token_env", head + "vault {\n  address = \"https://vault.example\"\n  token_file = " + quote(tokenFile) + "\n  token_env = \"VT\"\n}\n",
			"c.hcl:5:15: Invalid vault block: set token_file or token_env, not both"},
		{"a token file that is not there", head + "vault {\n  address = \"https://vault.example\"\n  token_file = \"/nonexistent/token\"\n}\n",
			"c.hcl:4:16: Invalid token_file: stat /nonexistent/token: no such file or directory"},
		{"AppRole attributes with token auth", head + "vault {\n  address = \"https://vault.example\"\n  token_env = \"VT\"\n  role_id = \"r\"\n}\n",
			`c.hcl:5:13: Invalid vault block: role_id is for auth = "approle"`},
		{"AppRole without a role ID", head + "vault {\n  address = \"https://vault.example\"\n  auth = \"approle\"\n  secret_id_env = \"S\"\n}\n",
			`c.hcl:2:1: Invalid vault block: auth = "approle" needs role_id or role_id_file`},
		{"AppRole with a token", head + "vault {\n  address = \"https://vault.example\"\n  auth = \"approle\"\n  role_id = \"r\"\n  token_env = \"VT\"\n}\n",
			`c.hcl:6:15: Invalid vault block: token_env is for auth = "token"`},
		{"both secret_id_file and secret_id_env", head + "vault {\n  address = \"https://vault.example\"\n  auth = \"approle\"\n  role_id = \"r\"\n  secret_id_file = " + quote(tokenFile) + "\n  secret_id_env = \"S\"\n}\n",
			"c.hcl:7:19: Invalid vault block: set secret_id_file or secret_id_env, not both"},
		{"an empty namespace", head + "vault {\n  address = \"https://vault.example\"\n  token_env = \"VT\"\n  namespace = \"\"\n}\n",
			"c.hcl:5:15: Invalid namespace: must not be empty"},
		{"two vault blocks", head + vaultBlock + vaultBlock, "c.hcl:6:1: Duplicate vault: vault block is already defined at c.hcl:2"},
		{"a vault block in a tenant", head + "tenant \"acme\" {\n" + vaultBlock + "}\n", `c.hcl:3:1: Unsupported block type: Blocks of type "vault" are not expected here`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "c.hcl")
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%s\nwant a line with:\n%s\nconfig:\n%s", err, tc.want, numbered(tc.src))
			}
		})
	}
}

func TestVaultBlockAndReferences(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret-id"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := head + `
vault {
  address        = "https://127.0.0.1:8200"
  auth           = "approle"
  role_id        = "sollwert"
  secret_id_file = "secret-id"
  namespace      = "/team-a/"
}
job "sw" {
  source          = "snmp"
  schedule        = "@hourly"
  targets         = ["127.0.0.1"]
  version         = "3"
  auth_key_vault  = "secret/network/snmp#auth"
  priv_key_vault  = "secret/network/snmp#priv"
}
tenant "acme" {
  sink "hook" {
    type         = "webhook"
    url          = "http://127.0.0.1:1/"
    secret_vault = "kv/acme/hooks#hmac"
  }
}
`
	cfg, err := Parse([]byte(src), filepath.Join(dir, "c.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.Vault
	if v == nil || v.Auth != "approle" || v.RoleID != "sollwert" || v.SecretIDFile != filepath.Join(dir, "secret-id") ||
		v.Namespace != "team-a" || v.AppRoleMount != "approle" || v.Address != "https://127.0.0.1:8200" {
		t.Fatalf("vault block: %+v", v)
	}
	j := cfg.Jobs[0]
	if len(j.VaultRefs) != 2 || j.VaultRefs[0].Name != "auth_key" || j.VaultRefs[0].Ref != (secrets.Ref{Mount: "secret", Path: "network/snmp", Key: "auth"}) ||
		j.VaultRefs[1].Attr != "priv_key_vault" || j.VaultRefs[1].Range.Start.Line != 16 {
		t.Fatalf("job references: %+v", j.VaultRefs)
	}
	if s := cfg.Sinks[0]; len(s.VaultRefs) != 1 || s.VaultRefs[0].Ref.String() != "kv/acme/hooks#hmac" || s.Tenants[0] != "acme" {
		t.Fatalf("sink: %+v", s)
	}
	if !cfg.HasVaultRefs() {
		t.Fatal("HasVaultRefs is false")
	}

	files := map[string]string{"secret/network/snmp#auth": "/run/a", "secret/network/snmp#priv": "/run/p", "kv/acme/hooks#hmac": "/run/h"}
	out, err := cfg.WithSecretFiles(func(r secrets.Ref) string { return files[r.String()] })
	if err != nil {
		t.Fatal(err)
	}
	var src2 map[string]any
	if err := json.Unmarshal(out.Jobs[0].SourceConfig, &src2); err != nil {
		t.Fatal(err)
	}
	if src2["auth_key_file"] != "/run/a" || src2["priv_key_file"] != "/run/p" || src2["auth_key_vault"] != nil || src2["version"] != "3" {
		t.Fatalf("rewritten job config: %s", out.Jobs[0].SourceConfig)
	}
	if r := out.Jobs[0].AttrRanges["priv_key_file"]; r.Start.Line != 16 {
		t.Fatalf("priv_key_file points at line %d, not at priv_key_vault's", r.Start.Line)
	}
	if string(out.Sinks[0].Config) != `{"secret_file":"/run/h","url":"http://127.0.0.1:1/"}` {
		t.Fatalf("rewritten sink config: %s", out.Sinks[0].Config)
	}
	// The loaded configuration itself is left as it was.
	if !strings.Contains(string(cfg.Sinks[0].Config), "secret_vault") || cfg.Jobs[0].AttrRanges["priv_key_file"].Start.Line != 0 {
		t.Fatal("WithSecretFiles changed its receiver")
	}
	if cfg.Jobs[0].Fingerprint() == out.Jobs[0].Fingerprint() {
		t.Fatal("a job's fingerprint does not follow where its secrets come from")
	}
	if _, err := cfg.WithSecretFiles(func(secrets.Ref) string { return "" }); err == nil || !strings.Contains(err.Error(), `job "sw": auth_key_vault: secret/network/snmp#auth was not read`) {
		t.Fatalf("an unread reference: %v", err)
	}
}

func TestVaultSame(t *testing.T) {
	a, err := Parse([]byte(head+"vault {\n  address = \"https://v:8200\"\n  token_env = \"T\"\n}\n"), "a.hcl")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(head+"\n\nvault {\n  address   = \"https://v:8200\"\n  token_env = \"T\"\n}\n"), "b.hcl")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(head+"vault {\n  address = \"https://v:8200\"\n  token_env = \"T2\"\n}\n"), "a.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Vault.Same(*b.Vault) || a.Vault.Same(*c.Vault) {
		t.Fatal("Same does not compare what logs in, and only that")
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// numbered shows a failing case's config with line numbers.
func numbered(src string) string {
	lines := strings.Split(src, "\n")
	for i := range lines {
		lines[i] = fmt.Sprintf("%3d  %s", i+1, lines[i])
	}
	return strings.Join(lines, "\n")
}
