package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/sollwert/sollwert/secrets"
	"github.com/zclconf/go-cty/cty"
)

// Vault is the vault block: where NAME_vault attributes are read and how
// the daemon logs in. The config package only checks it; the daemon talks
// to Vault (secrets/vault).
type Vault struct {
	Address, CAFile, Namespace string
	// Auth is "token" (TokenFile or TokenEnv) or "approle" (RoleID or
	// RoleIDFile, and SecretIDFile or SecretIDEnv unless the role needs no
	// secret ID).
	Auth                      string
	TokenFile, TokenEnv       string
	RoleID, RoleIDFile        string
	SecretIDFile, SecretIDEnv string
	// AppRoleMount is where the AppRole method is mounted ("approle").
	AppRoleMount string
	Range        hcl.Range
}

// Same reports whether v and o log in to the same Vault the same way
// (their positions in the file aside).
func (v Vault) Same(o Vault) bool {
	v.Range, o.Range = hcl.Range{}, hcl.Range{}
	return v == o
}

// VaultRef is one NAME_vault attribute of a job or sink: the secret NAME
// comes from Vault. The daemon reads it into a file and hands the source
// or sink NAME_file instead (WithSecretFiles).
type VaultRef struct {
	// Name is the secret's name (community, auth_key, secret, ...); Attr
	// is the attribute, Name + "_vault".
	Name, Attr string
	Ref        secrets.Ref
	Range      hcl.Range
}

var vaultSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "address", Required: true}, {Name: "ca_file"}, {Name: "namespace"}, {Name: "auth"},
	{Name: "token_file"}, {Name: "token_env"}, {Name: "role_id"}, {Name: "role_id_file"},
	{Name: "secret_id_file"}, {Name: "secret_id_env"}, {Name: "approle_mount"},
}}

func (d *decoder) decodeVault(b *hcl.Block) *Vault {
	content, diags := b.Body.Content(vaultSchema)
	if diags.HasErrors() {
		d.add(diags...)
		return nil
	}
	v := &Vault{Auth: "token", AppRoleMount: "approle", Range: b.DefRange}
	strs := map[string]*string{"address": &v.Address, "ca_file": &v.CAFile, "namespace": &v.Namespace, "auth": &v.Auth,
		"token_file": &v.TokenFile, "token_env": &v.TokenEnv, "role_id": &v.RoleID, "role_id_file": &v.RoleIDFile,
		"secret_id_file": &v.SecretIDFile, "secret_id_env": &v.SecretIDEnv, "approle_mount": &v.AppRoleMount}
	for _, name := range sortedKeys(strs) {
		a := content.Attributes[name]
		if a == nil {
			continue
		}
		s, ok := d.str(a)
		if !ok {
			continue
		}
		if s == "" {
			d.add(errorAt(a.Expr.Range(), "Invalid "+name, "must not be empty; leave it out instead"))
			continue
		}
		if strings.HasSuffix(name, "_file") {
			if !filepath.IsAbs(s) {
				s = filepath.Join(filepath.Dir(a.Expr.Range().Filename), s)
			}
			// The file must be there; it is read when the daemon logs in.
			if _, err := os.Stat(s); err != nil {
				d.add(errorAt(a.Expr.Range(), "Invalid "+name, err.Error()))
			}
		}
		*strs[name] = s
	}
	at := func(name string) hcl.Range {
		if a := content.Attributes[name]; a != nil {
			return a.Expr.Range()
		}
		return b.DefRange
	}
	if a := content.Attributes["address"]; a != nil && v.Address != "" {
		u, err := url.Parse(v.Address)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			d.add(errorAt(a.Expr.Range(), "Invalid vault address", fmt.Sprintf("%q is not a URL such as \"https://vault.example:8200\"", v.Address)))
		case u.Scheme == "http" && !loopback(u.Host) && !loopback(u.Host+":0"):
			d.add(errorAt(a.Expr.Range(), "Insecure vault address",
				fmt.Sprintf("%q would send the Vault token unencrypted: use https (http only reaches a Vault on this machine)", v.Address)))
		case u.Path != "" && u.Path != "/":
			d.add(errorAt(a.Expr.Range(), "Invalid vault address", fmt.Sprintf("%q has a path: give Vault's address only; references name the mount and path", v.Address)))
		}
	}
	v.Namespace = strings.Trim(v.Namespace, "/")
	v.AppRoleMount = strings.Trim(v.AppRoleMount, "/")
	if v.AppRoleMount == "" || strings.Contains(v.AppRoleMount, "//") {
		d.add(errorAt(at("approle_mount"), "Invalid approle_mount", "name the path the AppRole method is mounted at, such as \"approle\""))
	}
	set := func(name string) bool { return content.Attributes[name] != nil }
	tokenAttrs := []string{"token_file", "token_env"}
	roleAttrs := []string{"role_id", "role_id_file", "secret_id_file", "secret_id_env", "approle_mount"}
	switch v.Auth {
	case "token":
		for _, name := range roleAttrs {
			if set(name) {
				d.add(errorAt(at(name), "Invalid vault block", fmt.Sprintf("%s is for auth = \"approle\"; this block logs in with a token", name)))
			}
		}
		switch {
		case set("token_file") && set("token_env"):
			d.add(errorAt(at("token_env"), "Invalid vault block", "set token_file or token_env, not both"))
		case !set("token_file") && !set("token_env"):
			d.add(errorAt(b.DefRange, "Invalid vault block", "auth = \"token\" needs token_file or token_env (or use auth = \"approle\")"))
		}
	case "approle":
		for _, name := range tokenAttrs {
			if set(name) {
				d.add(errorAt(at(name), "Invalid vault block", fmt.Sprintf("%s is for auth = \"token\"; this block logs in with AppRole", name)))
			}
		}
		switch {
		case set("role_id") && set("role_id_file"):
			d.add(errorAt(at("role_id_file"), "Invalid vault block", "set role_id or role_id_file, not both"))
		case !set("role_id") && !set("role_id_file"):
			d.add(errorAt(b.DefRange, "Invalid vault block", "auth = \"approle\" needs role_id or role_id_file"))
		}
		if set("secret_id_file") && set("secret_id_env") {
			d.add(errorAt(at("secret_id_env"), "Invalid vault block", "set secret_id_file or secret_id_env, not both"))
		}
	default:
		d.add(errorAt(at("auth"), "Invalid vault auth", fmt.Sprintf("%q is not \"token\" or \"approle\"", v.Auth)))
	}
	return v
}

// vaultRefs finds the NAME_vault attributes of a job or sink block.
func (d *decoder) vaultRefs(attrs hcl.Attributes) []VaultRef {
	var out []VaultRef
	for _, attr := range sortedKeys(attrs) {
		name, ok := strings.CutSuffix(attr, "_vault")
		if !ok || name == "" {
			continue
		}
		a := attrs[attr]
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			continue // the attribute loop reports it
		}
		if v.IsNull() || v.Type() != cty.String {
			d.add(errorAt(a.Expr.Range(), "Invalid "+attr, `must be a string, "MOUNT/PATH#KEY"`))
			continue
		}
		ref, err := secrets.ParseRef(v.AsString())
		if err != nil {
			d.add(errorAt(a.Expr.Range(), "Invalid "+attr, err.Error()))
			continue
		}
		var others []string
		for _, o := range []string{name + "_file", name + "_env"} {
			if attrs[o] != nil {
				others = append(others, o)
			}
		}
		if len(others) > 0 {
			d.add(errorAt(a.Expr.Range(), "Conflicting "+attr,
				fmt.Sprintf("the %s comes from one place: set %s, %s_file or %s_env, not %s and %s", strings.ReplaceAll(name, "_", " "), attr, name, name, attr, strings.Join(others, " and "))))
			continue
		}
		out = append(out, VaultRef{Name: name, Attr: attr, Ref: ref, Range: a.Expr.Range()})
	}
	return out
}

// checkVaultRefs insists on a vault block when something refers to Vault.
func (d *decoder) checkVaultRefs(cfg *Config) {
	if cfg.Vault != nil {
		return
	}
	var refs []VaultRef
	for _, j := range cfg.Jobs {
		refs = append(refs, j.VaultRefs...)
	}
	for _, s := range cfg.Sinks {
		refs = append(refs, s.VaultRefs...)
	}
	for _, r := range refs {
		d.add(errorAt(r.Range, "Missing vault block", fmt.Sprintf("%s reads from Vault, but the file has no top-level vault { address = ... } block", r.Attr)))
	}
}

// HasVaultRefs reports whether any job or sink refers to Vault.
func (c *Config) HasVaultRefs() bool {
	for _, j := range c.Jobs {
		if len(j.VaultRefs) > 0 {
			return true
		}
	}
	for _, s := range c.Sinks {
		if len(s.VaultRefs) > 0 {
			return true
		}
	}
	return false
}

// WithSecretFiles returns a copy of c in which each NAME_vault attribute
// of a job or sink is replaced by NAME_file = file(ref): what the source
// or sink reads with sdk.ReadSecret. Errors about NAME_file point at the
// NAME_vault attribute. c is not changed.
func (c *Config) WithSecretFiles(file func(secrets.Ref) string) (*Config, error) {
	out := *c
	out.Jobs = slices.Clone(c.Jobs)
	out.Sinks = slices.Clone(c.Sinks)
	for i := range out.Jobs {
		j := &out.Jobs[i]
		if len(j.VaultRefs) == 0 {
			continue
		}
		raw, ranges, err := withFiles(j.SourceConfig, j.AttrRanges, j.VaultRefs, file)
		if err != nil {
			return nil, fmt.Errorf("job %q: %w", j.Name, err)
		}
		j.SourceConfig, j.AttrRanges = raw, ranges
	}
	for i := range out.Sinks {
		s := &out.Sinks[i]
		if len(s.VaultRefs) == 0 {
			continue
		}
		raw, ranges, err := withFiles(s.Config, s.AttrRanges, s.VaultRefs, file)
		if err != nil {
			return nil, fmt.Errorf("sink %q: %w", s.Name, err)
		}
		s.Config, s.AttrRanges = raw, ranges
	}
	return &out, nil
}

func withFiles(raw json.RawMessage, ranges map[string]hcl.Range, refs []VaultRef, file func(secrets.Ref) string) (json.RawMessage, map[string]hcl.Range, error) {
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, nil, err
	}
	ranges = maps.Clone(ranges)
	for _, r := range refs {
		path := file(r.Ref)
		if path == "" {
			return nil, nil, fmt.Errorf("%s: %s was not read", r.Attr, r.Ref)
		}
		p, err := json.Marshal(path)
		if err != nil {
			return nil, nil, err
		}
		delete(obj, r.Attr)
		obj[r.Name+"_file"] = p
		ranges[r.Name+"_file"] = r.Range
	}
	out, err := json.Marshal(obj)
	return out, ranges, err
}
