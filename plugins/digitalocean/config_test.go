package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func TestConfigDefaults(t *testing.T) {
	t.Setenv("DO_TOKEN", "x")
	s, err := parseConfig([]byte(`{"token_env": "DO_TOKEN"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := settings{tokenEnv: "DO_TOKEN", perPage: 200, apiURL: DefaultAPIURL, maxRetries: 4, concurrency: 4}
	if s != want {
		t.Errorf("settings %+v, want %+v", s, want)
	}
}

func TestAPIURLGetsTheSlashGodoResolvesAgainst(t *testing.T) {
	t.Setenv("DO_TOKEN", "x")
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":           "http://127.0.0.1:8080/",
		"https://do-proxy.example.net/do": "https://do-proxy.example.net/do/",
		"http://[::1]:9/":                 "http://[::1]:9/",
		"http://localhost:9":              "http://localhost:9/",
	} {
		s, err := parseConfig([]byte(`{"token_env": "DO_TOKEN", "api_url": "` + in + `"}`))
		if err != nil || s.apiURL != want {
			t.Errorf("api_url %q: %q, %v; want %q", in, s.apiURL, err, want)
		}
	}
}

func TestBadConfigsNameTheirField(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DO_TOKEN", "x")
	os.Unsetenv("DO_TOKEN_UNSET")
	for _, tc := range []struct {
		name, config, field, says string
	}{
		{"no token at all", `{}`, "token_file", "required"},
		{"both token_file and token_env", `{"token_file": "` + tok + `", "token_env": "DO_TOKEN"}`, "token_file", "not both"},
		{"a token file that is not there", `{"token_file": "/nonexistent/do-token"}`, "token_file", "no such file"},
		{"an unset variable", `{"token_env": "DO_TOKEN_UNSET"}`, "token_env", "not set"},
		{"the token itself in the config", `{"token": "dop_v1_x"}`, "token", "unknown attribute"},
		{"per_page above the API's 200", `{"token_env": "DO_TOKEN", "per_page": 500}`, "per_page", "outside 1-200"},
		{"per_page zero", `{"token_env": "DO_TOKEN", "per_page": 0}`, "per_page", "outside"},
		{"per_page as text", `{"token_env": "DO_TOKEN", "per_page": "200"}`, "per_page", "whole number"},
		{"a tag with a space", `{"token_env": "DO_TOKEN", "tag": "web servers"}`, "tag", "not a DigitalOcean tag"},
		{"a tag with an ampersand", `{"token_env": "DO_TOKEN", "tag": "a&per_page=1"}`, "tag", "not a DigitalOcean tag"},
		{"plain http to another host", `{"token_env": "DO_TOKEN", "api_url": "http://api.digitalocean.com/"}`, "api_url", "unencrypted"},
		{"not a URL", `{"token_env": "DO_TOKEN", "api_url": "api.digitalocean.com"}`, "api_url", "not an http(s) URL"},
		{"a URL with a query", `{"token_env": "DO_TOKEN", "api_url": "https://api.digitalocean.com/?x=1"}`, "api_url", "without user, query"},
		{"too many retries", `{"token_env": "DO_TOKEN", "max_retries": 11}`, "max_retries", "outside 0-10"},
		{"no concurrency", `{"token_env": "DO_TOKEN", "concurrency": 0}`, "concurrency", "outside 1-16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (&source{}).Validate(context.Background(), []byte(tc.config))
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate: %v, want field errors", err)
			}
			for _, f := range verr.Fields {
				if f.Field == tc.field && strings.Contains(f.Message, tc.says) {
					return
				}
			}
			t.Errorf("errors %v, want one on %s saying %q", verr.Fields, tc.field, tc.says)
		})
	}
}

func TestDescribeListsEveryAttribute(t *testing.T) {
	d, err := (&source{}).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, f := range d.Fields {
		listed[f.Name] = true
	}
	for _, name := range configFieldNames() {
		if !listed[name] {
			t.Errorf("Describe does not list %q", name)
		}
	}
	if len(listed) != len(configFieldNames()) {
		t.Errorf("Describe lists %d fields, the config has %d", len(listed), len(configFieldNames()))
	}
}

// configFieldNames reads the attribute names the decoder accepts, from
// the error DecodeConfig gives for an unknown one.
func configFieldNames() []string {
	err := sdk.DecodeConfig([]byte(`{"no_such_attribute": 1}`), &config{})
	var verr *sdk.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 1 {
		return nil
	}
	_, known, _ := strings.Cut(verr.Fields[0].Message, "(known: ")
	return strings.Split(strings.TrimSuffix(known, ")"), ", ")
}

func TestRetryAfter(t *testing.T) {
	now := time_(t, "2026-12-01T12:00:00Z")
	for _, tc := range []struct {
		header map[string]string
		want   string
		ok     bool
	}{
		{map[string]string{"Retry-After": "7"}, "7s", true},
		{map[string]string{"Retry-After": "Tue, 01 Dec 2026 12:00:30 GMT"}, "30s", true},
		{map[string]string{"Retry-After": "Tue, 01 Dec 2026 11:00:00 GMT"}, "0s", true},
		{map[string]string{"Ratelimit-Reset": "1796126445"}, "45s", true}, // 12:00:45
		{map[string]string{"Retry-After": "soon"}, "0s", false},
		{map[string]string{}, "0s", false},
	} {
		h := make(map[string][]string)
		for k, v := range tc.header {
			h[k] = []string{v}
		}
		got, ok := retryAfter(h, now)
		if got.String() != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%v) = %s, %v; want %s, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func time_(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
