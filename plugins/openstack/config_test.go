package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func TestValidateNamesTheField(t *testing.T) {
	pw := writeSecret(t, "pw", "hunter2-never-shown")
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	os.WriteFile(clouds, []byte("clouds:\n  prod:\n    auth:\n      auth_url: https://keystone.example.net:5000/v3\n      username: u\n      password: p\n      project_name: x\n  noauth:\n    region_name: RegionOne\n  nourl:\n    auth:\n      username: u\n"), 0o600)
	broken := filepath.Join(dir, "broken.yaml")
	// A password where a mapping belongs: yaml.v2 quotes the value in its
	// error, which must not reach the user's log.
	os.WriteFile(broken, []byte("clouds:\n  prod:\n    auth: hunter2-never-shown\n"), 0o600)

	explicit := func(extra string) string {
		return fmt.Sprintf(`{"auth_url": "https://keystone.example.net:5000/v3", "username": "u", "password_file": %q, "project_name": "p"%s}`, pw, extra)
	}
	cases := []struct {
		name, config, field, message string
	}{
		{"an unknown attribute", `{"auth_url": "https://k/v3", "tenant": "x"}`, "tenant", "unknown attribute"},
		{"no auth at all", `{}`, "auth_url", "is required"},
		{"auth_url that is not a URL", `{"auth_url": "keystone:5000", "application_credential_id": "a", "application_credential_secret_file": "` + pw + `"}`, "auth_url", "is not an http(s) URL"},
		{"a username without a password", `{"auth_url": "https://k/v3", "username": "u", "project_name": "p"}`, "password_file", "username needs a password"},
		{"a username without a project", `{"auth_url": "https://k/v3", "username": "u", "password_file": "` + pw + `"}`, "project_name", "is required with username"},
		{"both a username and an application credential", explicit(`, "application_credential_id": "a"`), "application_credential_id", "not both"},
		{"an application credential without its secret", `{"auth_url": "https://k/v3", "application_credential_id": "a"}`, "application_credential_secret_file", "needs its secret"},
		{"an application credential with a project", `{"auth_url": "https://k/v3", "application_credential_id": "a", "application_credential_secret_env": "HOME", "project_name": "p"}`, "project_name", "bound to its project"},
		{"a password file that is missing", `{"auth_url": "https://k/v3", "username": "u", "password_file": "/nonexistent/pw", "project_name": "p"}`, "password_file", "no such file"},
		{"a password variable that is not set", `{"auth_url": "https://k/v3", "username": "u", "password_env": "SOLLWERT_TEST_UNSET_VAR", "project_name": "p"}`, "password_env", "is not set"},
		{"both password_file and password_env", explicit(`, "password_env": "HOME"`), "password_file", "not both"},
		{"an unknown interface", explicit(`, "interface": "admin"`), "interface", "is not public or internal"},
		{"a page size too large", explicit(`, "page_size": 5000`), "page_size", "outside 1-1000"},
		{"a page size of the wrong type", explicit(`, "page_size": "200"`), "page_size", "must be a whole number"},
		{"no concurrency", explicit(`, "concurrency": 0`), "concurrency", "outside 1-32"},
		{"a bad duration", explicit(`, "max_retry_wait": "soon"`), "max_retry_wait", "is not a duration"},
		{"a cloud without clouds_yaml", `{"cloud": "prod"}`, "clouds_yaml", "set clouds_yaml"},
		{"clouds_yaml without a cloud", fmt.Sprintf(`{"clouds_yaml": %q}`, clouds), "cloud", "is required with clouds_yaml"},
		{"a clouds_yaml that does not exist", `{"clouds_yaml": "/nonexistent/clouds.yaml", "cloud": "prod"}`, "clouds_yaml", "does not exist"},
		{"a cloud that is not in the file", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "staging"}`, clouds), "cloud", `"staging" is not a cloud in`},
		{"a cloud without an auth section", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "noauth"}`, clouds), "cloud", "has no auth section"},
		{"a cloud without auth_url", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "nourl"}`, clouds), "cloud", "has no auth.auth_url"},
		{"clouds_yaml and explicit auth", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "prod", "username": "u"}`, clouds), "username", "comes from the cloud's entry"},
		{"a clouds_yaml that is not YAML for clouds", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "prod"}`, broken), "clouds_yaml", "cannot unmarshal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := (&source{}).Validate(context.Background(), json.RawMessage(tc.config))
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want field errors", err)
			}
			found := false
			for _, f := range verr.Fields {
				if f.Field == tc.field && strings.Contains(f.Message, tc.message) {
					found = true
				}
				if !knownField(f.Field) && tc.field != "tenant" {
					t.Errorf("field error names %q, which Describe does not list", f.Field)
				}
			}
			if !found {
				t.Errorf("got %v, want %s: ...%s...", err, tc.field, tc.message)
			}
			if strings.Contains(err.Error(), "hunter2-never-shown") {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
}

func knownField(name string) bool {
	for _, f := range fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

func TestValidateAcceptsBothForms(t *testing.T) {
	pw := writeSecret(t, "pw", "x")
	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	os.WriteFile(clouds, []byte("clouds:\n  prod:\n    auth:\n      auth_url: https://keystone.example.net:5000/v3\n      application_credential_id: a\n      application_credential_secret: s\n"), 0o600)
	for _, c := range []string{
		fmt.Sprintf(`{"auth_url": "https://keystone.example.net:5000/v3", "username": "u", "password_file": %q, "project_name": "p", "domain_name": "ldap", "project_domain_name": "Default", "region": "RegionOne", "interface": "internal"}`, pw),
		fmt.Sprintf(`{"auth_url": "https://keystone.example.net:5000/v3", "username": "u", "password_file": %q, "project_id": "5c3e0f6a9b2d4e8f8a1b2c3d4e5f6a7b"}`, pw),
		fmt.Sprintf(`{"auth_url": "https://keystone.example.net:5000/v3", "application_credential_id": "a", "application_credential_secret_file": %q}`, pw),
		fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "prod", "region": "RegionTwo", "interface": "internal", "page_size": 1000}`, clouds),
	} {
		if err := (&source{}).Validate(context.Background(), json.RawMessage(c)); err != nil {
			t.Errorf("Validate(%s) = %v", c, err)
		}
	}
}

func TestIngressRules(t *testing.T) {
	p := func(v int) *int { return &v }
	s := func(v string) *string { return &v }
	cases := []struct {
		name   string
		r      rule
		proto  string
		lo, hi uint16
		counts bool
	}{
		{"tcp with a range", rule{Direction: "ingress", Protocol: s("tcp"), PortRangeMin: p(8000), PortRangeMax: p(8100)}, "tcp", 8000, 8100, true},
		{"udp by number", rule{Direction: "ingress", Protocol: s("17"), PortRangeMin: p(53), PortRangeMax: p(53)}, "udp", 53, 53, true},
		{"tcp without a range is every port", rule{Direction: "ingress", Protocol: s("tcp")}, "tcp", 1, 65535, true},
		{"no protocol is every protocol and port", rule{Direction: "ingress"}, "", 1, 65535, true},
		{"protocol any", rule{Direction: "ingress", Protocol: s("any")}, "", 1, 65535, true},
		{"only a minimum is one port", rule{Direction: "ingress", Protocol: s("tcp"), PortRangeMin: p(22)}, "tcp", 22, 22, true},
		{"egress counts for nothing", rule{Direction: "egress", Protocol: s("tcp"), PortRangeMin: p(22), PortRangeMax: p(22)}, "", 0, 0, false},
		{"icmp counts for nothing", rule{Direction: "ingress", Protocol: s("icmp"), PortRangeMin: p(8), PortRangeMax: p(0)}, "", 0, 0, false},
		{"an inverted range counts for nothing", rule{Direction: "ingress", Protocol: s("tcp"), PortRangeMin: p(90), PortRangeMax: p(80)}, "", 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proto, lo, hi, ok := tc.r.ingress()
			if ok != tc.counts || proto != tc.proto || lo != tc.lo || hi != tc.hi {
				t.Errorf("ingress() = %q %d-%d %v, want %q %d-%d %v", proto, lo, hi, ok, tc.proto, tc.lo, tc.hi, tc.counts)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now, _ := parseHTTPDate("Wed, 21 Oct 2026 07:28:00 GMT")
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"120", "2m0s", true},
		{"0", "0s", true},
		{"Wed, 21 Oct 2026 07:28:30 GMT", "30s", true},
		{"", "0s", false},
		{"soon", "0s", false},
		{"-5", "0s", false},
	}
	for _, tc := range cases {
		d, ok := parseRetryAfter(tc.in, now)
		if d.String() != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s %v, want %s %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
}

func parseHTTPDate(s string) (time.Time, error) { return http.ParseTime(s) }
