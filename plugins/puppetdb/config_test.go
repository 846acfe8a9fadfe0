package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func TestConfigDefaults(t *testing.T) {
	s, err := parseConfig([]byte(`{"url": "https://puppetdb.example.test:8081"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := settings{
		base: "https://puppetdb.example.test:8081", endpoint: "https://puppetdb.example.test:8081/pdb/query/v4",
		includeDeactivated: true, pageSize: 500, concurrency: 2, maxRetries: 4,
		maxRetryWait: 60 * time.Second, requestTimeout: 60 * time.Second, excludeInterfaces: defaultExcludeInterfaces,
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("settings\n%+v, want\n%+v", s, want)
	}
}

func TestURLIsTakenForItsBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":                             "http://127.0.0.1:8080/pdb/query/v4",
		"https://puppetdb.example.test:8081/":               "https://puppetdb.example.test:8081/pdb/query/v4",
		"https://puppetdb.example.test:8081/pdb/query/v4":   "https://puppetdb.example.test:8081/pdb/query/v4",
		"https://proxy.example.test/puppetdb":               "https://proxy.example.test/puppetdb/pdb/query/v4",
		"https://proxy.example.test/puppetdb/pdb/query/v4/": "https://proxy.example.test/puppetdb/pdb/query/v4",
	} {
		s, err := parseConfig([]byte(`{"url": "` + in + `"}`))
		if err != nil || s.endpoint != want {
			t.Errorf("url %q: endpoint %q, %v; want %q", in, s.endpoint, err, want)
		}
	}
}

func TestBadConfigsNameTheirField(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok := file("token", "x")
	notPEM := file("not.pem", "hello")
	t.Setenv("PDB_TOKEN", "x")
	os.Unsetenv("PDB_TOKEN_UNSET")
	for _, tc := range []struct {
		name, config, field, says string
	}{
		{"no url", `{}`, "url", "required"},
		{"a url without scheme", `{"url": "puppetdb.example.test:8081"}`, "url", "not an http(s) URL"},
		{"an ftp url", `{"url": "ftp://puppetdb.example.test/"}`, "url", "not an http(s) URL"},
		{"a url with a query", `{"url": "https://puppetdb.example.test/?x=1"}`, "url", "without user, query"},
		{"a url with a user", `{"url": "https://admin:pw@puppetdb.example.test/"}`, "url", "without user, query"},
		{"a token over plain http to another host", `{"url": "http://puppetdb.example.test:8080", "token_env": "PDB_TOKEN"}`, "url", "unencrypted"},
		{"both token_file and token_env", `{"url": "https://p.example.test", "token_file": "` + tok + `", "token_env": "PDB_TOKEN"}`, "token_file", "not both"},
		{"a token file that is not there", `{"url": "https://p.example.test", "token_file": "/nonexistent/token"}`, "token_file", "no such file"},
		{"an unset token variable", `{"url": "https://p.example.test", "token_env": "PDB_TOKEN_UNSET"}`, "token_env", "not set"},
		{"the token itself in the config", `{"url": "https://p.example.test", "token": "x"}`, "token", "unknown attribute"},
		{"a certificate without key", `{"url": "https://p.example.test", "cert_file": "` + tok + `"}`, "key_file", "needs its private key"},
		{"a key without certificate", `{"url": "https://p.example.test", "key_file": "` + tok + `"}`, "cert_file", "needs its certificate"},
		{"a key in a file and a variable", `{"url": "https://p.example.test", "cert_file": "` + tok + `", "key_file": "` + tok + `", "key_env": "PDB_TOKEN"}`, "key_file", "not both"},
		{"a CA file that is not PEM", `{"url": "https://p.example.test", "ca_file": "` + notPEM + `"}`, "ca_file", "no PEM certificate"},
		{"a CA file that is not there", `{"url": "https://p.example.test", "ca_file": "/nonexistent/ca.pem"}`, "ca_file", "no such file"},
		{"a certificate and key that do not load", `{"url": "https://p.example.test", "cert_file": "` + notPEM + `", "key_file": "` + notPEM + `"}`, "key_file", "do not load as a pair"},
		{"a CA over plain http", `{"url": "http://127.0.0.1:8080", "ca_file": "` + notPEM + `"}`, "ca_file", "only used over https"},
		{"a whole query", `{"url": "https://p.example.test", "query": "nodes[certname] { certname = \"a\" }"}`, "query", "whole query"},
		{"a query with its own limit", `{"url": "https://p.example.test", "query": "certname ~ \"web\" limit 10"}`, "query", "remove the limit clause"},
		{"a query with its own order", `{"url": "https://p.example.test", "query": "certname ~ \"web\" order by certname"}`, "query", "remove the order clause"},
		{"a query with an open string", `{"url": "https://p.example.test", "query": "certname = \"web"}`, "query", "not closed"},
		{"a query with an open bracket", `{"url": "https://p.example.test", "query": "certname in inventory[certname] { facts.os.family = \"Debian\""}`, "query", "missing \"}\""},
		{"a query closing what it did not open", `{"url": "https://p.example.test", "query": "certname = \"a\")"}`, "query", "closes nothing"},
		{"page_size zero", `{"url": "https://p.example.test", "page_size": 0}`, "page_size", "outside 1-5000"},
		{"page_size as text", `{"url": "https://p.example.test", "page_size": "500"}`, "page_size", "whole number"},
		{"no concurrency", `{"url": "https://p.example.test", "concurrency": 0}`, "concurrency", "outside 1-8"},
		{"too many retries", `{"url": "https://p.example.test", "max_retries": 11}`, "max_retries", "outside 0-10"},
		{"a request_timeout that is not a duration", `{"url": "https://p.example.test", "request_timeout": "60"}`, "request_timeout", "not a duration"},
		{"a zero request_timeout", `{"url": "https://p.example.test", "request_timeout": "0s"}`, "request_timeout", "longer than 0s"},
		{"the job's timeout, which belongs to the daemon", `{"url": "https://p.example.test", "timeout": "1m"}`, "timeout", "unknown attribute"},
		{"include_deactivated as text", `{"url": "https://p.example.test", "include_deactivated": "yes"}`, "include_deactivated", "true or false"},
		{"an interface pattern that is not one", `{"url": "https://p.example.test", "exclude_interfaces": ["eth["]}`, "exclude_interfaces", "not an interface name"},
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

func TestQueriesThatPass(t *testing.T) {
	for _, q := range []string{
		`facts_environment = "production"`,
		`certname ~ "^web-[0-9]+\\."`,
		`certname in inventory[certname] { facts.os.family = "Debian" and facts.dmi.product.name = 'KVM' }`,
		`(latest_report_status = "failed" or latest_report_status = "changed") and !(certname = "a\"b")`,
		`certname = "limit"`,
		`facts_environment = 'order by'`,
	} {
		if msg := checkQuery(q); msg != "" {
			t.Errorf("checkQuery(%s): %s", q, msg)
		}
	}
}

func TestNodesQueryWrapsTheCondition(t *testing.T) {
	for _, tc := range []struct {
		s    settings
		want string
	}{
		{settings{includeDeactivated: true}, `{ node_state = "any" }`},
		{settings{includeDeactivated: true, query: `a = 1 or b = 2`}, `{ node_state = "any" and (a = 1 or b = 2) }`},
		{settings{query: `a = 1`}, `{ (a = 1) }`},
		{settings{}, `{  }`},
	} {
		got := nodesQuery(tc.s)
		if !strings.HasPrefix(got, "nodes[certname, deactivated, expired, ") || !strings.HasSuffix(got, tc.want) {
			t.Errorf("nodesQuery(%+v) = %s, want ...%s", tc.s, got, tc.want)
		}
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
	names := configFieldNames()
	for _, name := range names {
		if !listed[name] {
			t.Errorf("Describe does not list %q", name)
		}
	}
	if len(listed) != len(names) || len(names) == 0 {
		t.Errorf("Describe lists %d fields, the config has %d", len(listed), len(names))
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
	now, _ := time.Parse(time.RFC3339, "2026-12-01T12:00:00Z")
	for _, tc := range []struct {
		header string
		want   string
		ok     bool
	}{
		{"7", "7s", true},
		{"Tue, 01 Dec 2026 12:00:30 GMT", "30s", true},
		{"Tue, 01 Dec 2026 11:00:00 GMT", "0s", true},
		{"soon", "0s", false},
		{"", "0s", false},
		{"-1", "0s", false},
	} {
		h := map[string][]string{}
		if tc.header != "" {
			h["Retry-After"] = []string{tc.header}
		}
		got, ok := retryAfter(h, now)
		if got.String() != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestErrorTextIsOneTrimmedLine(t *testing.T) {
	long := "PQL parse error at line 1, column 29:\n\nnodes[certname]{ certname = }\n                            ^\n\nExpected one of:\n\n" + strings.Repeat("[\nfalse\ntrue\n", 40)
	got := errorText(strings.NewReader(long), "")
	if strings.Contains(got, "\n") || len(got) > maxErrorText+len("…") || !strings.HasPrefix(got, "PQL parse error at line 1, column 29: nodes[certname]{ certname = } ^ Expected one of:") {
		t.Errorf("errorText = %q", got)
	}
	if got := errorText(strings.NewReader("bad token abc123 here"), "abc123"); got != "bad token [token] here" {
		t.Errorf("errorText with the token = %q", got)
	}
}
