// Package auth decides who may call sollwert's API and web view: bearer
// tokens with scopes, bound to one tenant or to all, kept as SHA-256
// hashes in a tokens file that `sollwert token` manages and the daemon
// re-reads when it changes. It knows nothing of the routes it guards
// beyond the scope each one asks for.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Scope is what a token may do.
type Scope string

// Scopes, from least to most. admin includes every other.
const (
	Read  Scope = "read"  // every GET: assets, deviations, jobs, check, web view
	Ack   Scope = "ack"   // acknowledge deviations and lift acknowledgements
	Run   Scope = "run"   // start job runs
	Admin Scope = "admin" // everything, including metrics and audit
)

// AllTenants binds a token to every tenant.
const AllTenants = "*"

// secretPrefix starts every token, so that a leaked one is recognisable
// (and found by secret scanners).
const secretPrefix = "swt_"

// Token is one API token as the tokens file holds it: never the secret,
// only its SHA-256. Tokens are 256 random bits, so a plain hash is as
// hard to reverse as the token is to guess.
type Token struct {
	Name    string     `json:"name"`
	Hash    string     `json:"sha256"`
	Scopes  []Scope    `json:"scopes"`
	Tenant  string     `json:"tenant"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
}

// Allows reports whether the token holds scope.
func (t *Token) Allows(s Scope) bool {
	return slices.Contains(t.Scopes, Admin) || slices.Contains(t.Scopes, s)
}

// Expired reports whether the token no longer counts at now.
func (t *Token) Expired(now time.Time) bool { return t.Expires != nil && !now.Before(*t.Expires) }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseScopes reads "read,ack".
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, p := range strings.Split(s, ",") {
		sc := Scope(strings.TrimSpace(p))
		switch sc {
		case Read, Ack, Run, Admin:
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		default:
			return nil, fmt.Errorf("scope %q is not one of read, ack, run, admin", p)
		}
	}
	return out, nil
}

func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Load reads a tokens file; a file that does not exist holds no tokens.
func Load(path string) ([]Token, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	var f struct {
		Tokens []Token `json:"tokens"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	for i, t := range f.Tokens {
		if _, err := hex.DecodeString(t.Hash); err != nil || len(t.Hash) != 64 || !nameRE.MatchString(t.Name) || t.Tenant == "" {
			return nil, fmt.Errorf("tokens file %s: token %d (%q) is malformed", path, i+1, t.Name)
		}
	}
	return f.Tokens, nil
}

// save writes tokens atomically: a reader sees the old file or the new.
func save(path string, tokens []Token) error {
	sort.Slice(tokens, func(i, j int) bool { return tokens[i].Name < tokens[j].Name })
	b, err := json.MarshalIndent(struct {
		Tokens []Token `json:"tokens"`
	}{tokens}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tokens-*")
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	return nil
}

// Create adds a token to the file and returns its secret, which exists
// nowhere else: the file keeps the hash.
func Create(path, name string, scopes []Scope, tenant string, ttl time.Duration, now time.Time) (string, Token, error) {
	if !nameRE.MatchString(name) {
		return "", Token{}, fmt.Errorf("token name %q: use letters, digits, '.', '_' and '-'", name)
	}
	if len(scopes) == 0 {
		return "", Token{}, errors.New("a token needs at least one scope")
	}
	if tenant == "" {
		return "", Token{}, errors.New("a token needs a tenant, or * for all")
	}
	tokens, err := Load(path)
	if err != nil {
		return "", Token{}, err
	}
	for _, t := range tokens {
		if t.Name == name {
			return "", Token{}, fmt.Errorf("a token named %q exists: revoke it first", name)
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, err
	}
	secret := secretPrefix + base64.RawURLEncoding.EncodeToString(raw)
	t := Token{Name: name, Hash: hashOf(secret), Scopes: scopes, Tenant: tenant, Created: now.UTC()}
	if ttl > 0 {
		exp := now.Add(ttl).UTC()
		t.Expires = &exp
	}
	if err := save(path, append(tokens, t)); err != nil {
		return "", Token{}, err
	}
	return secret, t, nil
}

// Revoke removes the named token from the file.
func Revoke(path, name string) error {
	tokens, err := Load(path)
	if err != nil {
		return err
	}
	kept := slices.DeleteFunc(slices.Clone(tokens), func(t Token) bool { return t.Name == name })
	if len(kept) == len(tokens) {
		return fmt.Errorf("no token named %q", name)
	}
	return save(path, kept)
}
