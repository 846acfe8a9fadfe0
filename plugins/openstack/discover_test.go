package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// run is one Discover in process, with the plugin's log captured.
type run struct {
	obs      []sdk.Observation
	res      sdk.Result
	err      error
	log      string
	batches  int
	duration time.Duration
}

// logBuffer is an io.Writer safe for the concurrent writes of one pull.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func discover(t testing.TB, ctx context.Context, config []byte) run {
	t.Helper()
	var lb logBuffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &lb, JSONFormat: true})
	ctx = hclog.WithContext(ctx, log)
	var r run
	start := time.Now()
	r.res, r.err = (&source{}).Discover(ctx, sdk.DiscoverRequest{Config: config, Job: "test", RunID: "r1"},
		sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error {
			r.batches++
			r.obs = append(r.obs, b...)
			return nil
		}))
	r.duration = time.Since(start)
	r.log = lb.String()
	return r
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// golden compares what a pull reported with testdata/NAME, or rewrites it
// with -update (or UPDATE_GOLDEN=1).
func golden(t *testing.T, name string, r run) {
	t.Helper()
	got, err := json.MarshalIndent(struct {
		Observations []sdk.Observation `json:"observations"`
		Warnings     []string          `json:"warnings"`
	}{r.obs, r.res.Warnings}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update || os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the tests with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("observations differ from %s (rerun with -update to accept):\n%s", path, diffLines(string(want), string(got)))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, a, b))
		}
		if len(out) > 10 {
			break
		}
	}
	return strings.Join(out, "\n")
}

// writeClouds writes a clouds.yaml (and, when secure is set, a
// secure.yaml beside it) and returns its path.
func writeClouds(t *testing.T, clouds, secure string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(p, []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	if secure != "" {
		if err := os.WriteFile(filepath.Join(dir, "secure.yaml"), []byte(secure), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestEveryAuthFormPullsTheSameServers(t *testing.T) {
	f := newFakeCloud(t)
	pwFile := writeSecret(t, "password", f.password)
	appFile := writeSecret(t, "app-secret", f.appCredSecret)
	t.Setenv("OS_FAKE_PASSWORD", f.password)
	t.Setenv("OS_FAKE_APP_SECRET", f.appCredSecret)

	passwordYAML := fmt.Sprintf(`clouds:
  webshop:
    auth:
      auth_url: %s
      username: %s
      password: %q
      project_name: %s
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
`, f.authURL(), f.username, f.password, f.project)
	appCredYAML := fmt.Sprintf(`clouds:
  webshop-app:
    auth_type: v3applicationcredential
    auth:
      auth_url: %s
      application_credential_id: %s
      application_credential_secret: %s
    region_name: RegionOne
`, f.authURL(), f.appCredID, f.appCredSecret)
	noSecretYAML := fmt.Sprintf(`clouds:
  webshop:
    auth:
      auth_url: %s
      username: %s
      project_name: %s
      user_domain_name: Default
      project_domain_name: Default
`, f.authURL(), f.username, f.project)
	secureYAML := fmt.Sprintf("clouds:\n  webshop:\n    auth:\n      password: %q\n", f.password)

	cases := []struct {
		name   string
		config string
	}{
		{"a password from a file", fmt.Sprintf(`{"auth_url": %q, "username": %q, "password_file": %q, "project_name": %q, "domain_name": "Default", "page_size": 2}`,
			f.authURL(), f.username, pwFile, f.project)},
		{"a password from the environment", fmt.Sprintf(`{"auth_url": %q, "username": %q, "password_env": "OS_FAKE_PASSWORD", "project_name": %q, "region": "RegionOne", "page_size": 2}`,
			f.authURL(), f.username, f.project)},
		{"an application credential from a file", fmt.Sprintf(`{"auth_url": %q, "application_credential_id": %q, "application_credential_secret_file": %q, "page_size": 2}`,
			f.authURL(), f.appCredID, appFile)},
		{"an application credential from the environment", fmt.Sprintf(`{"auth_url": %q, "application_credential_id": %q, "application_credential_secret_env": "OS_FAKE_APP_SECRET", "page_size": 2}`,
			f.authURL(), f.appCredID)},
		{"clouds.yaml with a password", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "webshop", "page_size": 2}`, writeClouds(t, passwordYAML, ""))},
		{"clouds.yaml with an application credential", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "webshop-app", "page_size": 2}`, writeClouds(t, appCredYAML, ""))},
		{"clouds.yaml with the password in secure.yaml", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "webshop", "page_size": 2}`, writeClouds(t, noSecretYAML, secureYAML))},
		{"clouds.yaml with the password from password_file", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "webshop", "password_file": %q, "page_size": 2}`,
			writeClouds(t, noSecretYAML, ""), pwFile)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := (&source{}).Validate(context.Background(), json.RawMessage(tc.config)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			before := f.count("servers")
			r := discover(t, testContext(t), []byte(tc.config))
			if r.err != nil {
				t.Fatalf("Discover: %v\n%s", r.err, r.log)
			}
			for _, o := range r.obs {
				if err := o.Validate(); err != nil {
					t.Errorf("observation %s: %v", o.InstanceID, err)
				}
			}
			// Six servers in pages of two, and the empty page Nova
			// answers after a full one.
			if n := f.count("servers") - before; n != 4 {
				t.Errorf("%d servers requests, want 4 (three pages and the empty one after)", n)
			}
			if len(r.res.Scope.Prefixes) != 0 {
				t.Errorf("scope %v, want none: a provider pull claims no address range", r.res.Scope.Prefixes)
			}
			golden(t, "observations.golden.json", r)
			if strings.Contains(r.log, f.password) || strings.Contains(r.log, f.appCredSecret) {
				t.Error("the log holds the secret")
			}
		})
	}
}

func TestWhatAServerBecomes(t *testing.T) {
	f := newFakeCloud(t)
	r := discover(t, testContext(t), passwordConfig(t, f, ""))
	if r.err != nil {
		t.Fatalf("Discover: %v", r.err)
	}
	byName := map[string]sdk.Observation{}
	for _, o := range r.obs {
		byName[o.Hostnames[0]] = o
	}
	cases := []struct {
		name, host string
		check      func(o sdk.Observation) string
	}{
		{"an active server is up and keeps its provider id", "web-1", func(o sdk.Observation) string {
			if o.Status != sdk.StatusUp || o.InstanceID != "openstack:6e1d2c3b-4a59-4f68-8e7d-0000000000a1" || o.Facts["instance_state"] != "ACTIVE" {
				return fmt.Sprintf("status %q, id %q, state %q", o.Status, o.InstanceID, o.Facts["instance_state"])
			}
			return ""
		}},
		{"a server has its fixed, floating and IPv6 addresses and its MAC", "web-1", func(o sdk.Observation) string {
			return wantAddrs(o, "198.18.1.11/ipv4", "2001:db8:1::11/ipv6", "198.19.0.11/ipv4", "fa:16:3e:11:11:11/mac")
		}},
		{"a server with two ports has both MACs and networks", "web-2", func(o sdk.Observation) string {
			if o.Facts["network"] != "private,storage" {
				return "network " + o.Facts["network"]
			}
			return wantAddrs(o, "198.18.1.12/ipv4", "198.18.2.12/ipv4", "fa:16:3e:12:12:12/mac", "fa:16:3e:12:12:13/mac")
		}},
		{"the groups of all ports are unioned", "web-2", func(o sdk.Observation) string {
			return wantFacts(o, "security_groups=ssh,storage,web", "expected_tcp=22,80,443,2049,8080-8081", "expected_udp=111,2049", "expected_tcp_from=")
		}},
		{"protocol 6 counts as tcp, icmp and egress rules count for nothing", "web-1", func(o sdk.Observation) string {
			return wantFacts(o, "expected_tcp=22,80,443,8080-8081", "expected_udp=")
		}},
		{"a shut-off server is down", "db-1", func(o sdk.Observation) string {
			if o.Status != sdk.StatusDown {
				return "status " + o.Status
			}
			return wantFacts(o, "instance_state=SHUTOFF", "expected_tcp=22,5432,9100-9102", "instance_type=m1.large", "vcpus=4", "memory_mib=8192")
		}},
		{"a server booted from a volume has no image fact", "db-1", func(o sdk.Observation) string {
			if v, ok := o.Facts["image"]; ok {
				return "image " + v
			}
			return ""
		}},
		{"a port without port security lets everything in", "gw-1", func(o sdk.Observation) string {
			return wantFacts(o, "expected_tcp=1-65535", "expected_udp=1-65535", "expected_tcp_from=port-security-disabled", "security_groups=", "port_security=disabled")
		}},
		{"a server without visible ports takes its groups from Nova by name", "legacy-1", func(o sdk.Observation) string {
			return wantFacts(o, "security_groups=default", "expected_tcp=1-65535", "expected_udp=1-65535", "expected_tcp_from=default")
		}},
		{"metadata and tags become labels", "web-1", func(o sdk.Observation) string {
			if o.Labels["env"] != "prod" || o.Labels["team"] != "web" || o.Labels["tag:frontend"] != "true" {
				return fmt.Sprintf("labels %v", o.Labels)
			}
			return ""
		}},
		{"the provider's facts", "web-1", func(o sdk.Observation) string {
			return wantFacts(o, "provider=openstack", "region=RegionOne", "availability_zone=nova", "instance_type=m1.small",
				"image=3f0b5c1e-7d2a-4c8e-9b6f-1a2b3c4d5e6f", "project=5c3e0f6a9b2d4e8f8a1b2c3d4e5f6a7b", "floating_ips=198.19.0.11",
				"created=2026-03-02T10:15:00Z", "key_name=ops")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := byName[tc.host]
			if !ok {
				t.Fatalf("%s was not reported", tc.host)
			}
			if msg := tc.check(o); msg != "" {
				t.Errorf("%s: %s", tc.host, msg)
			}
		})
	}
	if _, ok := byName["build-1"]; ok {
		t.Error("build-1 has no address yet and must not be reported")
	}
	if !strings.Contains(strings.Join(r.res.Warnings, "\n"), `server "build-1"`) {
		t.Errorf("warnings %q do not name build-1", r.res.Warnings)
	}
}

func wantAddrs(o sdk.Observation, want ...string) string {
	var got []string
	for _, a := range o.Addresses {
		got = append(got, a.Addr+"/"+a.Type)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		return fmt.Sprintf("addresses %v, want %v", got, want)
	}
	return ""
}

func wantFacts(o sdk.Observation, want ...string) string {
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		if got := o.Facts[k]; got != v {
			return fmt.Sprintf("fact %s = %q, want %q", k, got, v)
		}
	}
	return ""
}

func TestInterfaceAndRegionPickTheEndpoints(t *testing.T) {
	cases := []struct {
		name, extra, prefix, region string
	}{
		{"public is the default", ``, "/compute/", "RegionOne"},
		{"internal endpoints", `, "interface": "internal"`, "/internal/compute/", "RegionOne"},
		{"another region", `, "region": "RegionTwo"`, "/r2/compute/", "RegionTwo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCloud(t)
			r := discover(t, testContext(t), passwordConfig(t, f, tc.extra))
			if r.err != nil {
				t.Fatalf("Discover: %v", r.err)
			}
			for _, p := range f.seenPaths() {
				if strings.Contains(p, "/compute/") && !strings.HasPrefix(p, tc.prefix) {
					t.Errorf("request to %s, want only %s...", p, tc.prefix)
				}
			}
			if got := r.obs[0].Facts["region"]; got != tc.region {
				t.Errorf("region fact %q, want %q", got, tc.region)
			}
		})
	}
	t.Run("a region the catalog lacks", func(t *testing.T) {
		f := newFakeCloud(t)
		r := discover(t, testContext(t), passwordConfig(t, f, `, "region": "Atlantis"`))
		if r.err == nil || !strings.Contains(r.err.Error(), `no compute endpoint for interface "public" in Atlantis`) {
			t.Errorf("err = %v, want one naming the missing endpoint", r.err)
		}
	})
}

func TestRateLimits(t *testing.T) {
	t.Run("a 429 with Retry-After is waited for and retried", func(t *testing.T) {
		f := newFakeCloud(t)
		f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
			if kind == "servers" && n == 2 {
				w.Header().Set("Retry-After", "1")
				writeFixture(w, http.StatusTooManyRequests, "nova-429.json")
				return true
			}
			return false
		}
		r := discover(t, testContext(t), passwordConfig(t, f, ""))
		if r.err != nil {
			t.Fatalf("Discover: %v", r.err)
		}
		if r.duration < time.Second {
			t.Errorf("the pull took %s: it did not wait the second Retry-After asked for", r.duration)
		}
		if len(r.obs) != 5 {
			t.Errorf("%d observations after the retry, want 5", len(r.obs))
		}
		if !strings.Contains(r.log, "rate limited") {
			t.Error("the wait was not logged")
		}
	})
	t.Run("a Retry-After beyond max_retry_wait fails the run", func(t *testing.T) {
		f := newFakeCloud(t)
		f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
			if kind == "ports" {
				w.Header().Set("Retry-After", "3600")
				writeFixture(w, http.StatusTooManyRequests, "nova-429.json")
				return true
			}
			return false
		}
		r := discover(t, testContext(t), passwordConfig(t, f, `, "max_retry_wait": "5s"`))
		if r.err == nil || !strings.Contains(r.err.Error(), "asks to wait 1h0m0s, longer than max_retry_wait 5s") {
			t.Errorf("err = %v", r.err)
		}
	})
	t.Run("a cloud that keeps answering 429 fails the run after max_retries", func(t *testing.T) {
		f := newFakeCloud(t)
		f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
			if kind == "groups" {
				w.Header().Set("Retry-After", "0")
				writeFixture(w, http.StatusTooManyRequests, "nova-429.json")
				return true
			}
			return false
		}
		r := discover(t, testContext(t), passwordConfig(t, f, `, "max_retries": 2`))
		if r.err == nil || !strings.Contains(r.err.Error(), "still rate limited (HTTP 429) after every retry") {
			t.Errorf("err = %v", r.err)
		}
		if n := f.count("groups"); n != 3 {
			t.Errorf("%d security group requests, want 3 (one and two retries)", n)
		}
	})
}

func TestAFailedRequestFailsTheRun(t *testing.T) {
	cases := []struct {
		name, kind string
		n          int
		fixture    string
		want       string
	}{
		{"a 500 on the second servers page", "servers", 2, "nova-500.json", "list servers (page 2): HTTP 500"},
		{"a 500 on a ports request", "ports", 2, "neutron-500.json", "servers page 1: list ports of 2 servers (page 2): HTTP 500"},
		{"a 500 on the second security groups page", "groups", 2, "neutron-500.json", "list security groups (page 2): HTTP 500"},
		{"a 403 names the role", "servers", 1, "nova-403.json", "list servers (page 1): forbidden (HTTP 403): the user needs at least the reader role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCloud(t)
			f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
				if kind == tc.kind && n == tc.n {
					code := http.StatusInternalServerError
					if strings.Contains(tc.fixture, "403") {
						code = http.StatusForbidden
					}
					writeFixture(w, code, tc.fixture)
					return true
				}
				return false
			}
			r := discover(t, testContext(t), passwordConfig(t, f, ""))
			if r.err == nil {
				t.Fatalf("Discover succeeded with %d observations after a failed page", len(r.obs))
			}
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", r.err, tc.want)
			}
		})
	}
}

func TestExpiredTokens(t *testing.T) {
	t.Run("a token refused mid-pull is renewed once and the pull goes on", func(t *testing.T) {
		f := newFakeCloud(t)
		f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
			if kind == "servers" && n == 1 {
				f.expireTokens() // the next request carries a dead token
			}
			return false
		}
		r := discover(t, testContext(t), passwordConfig(t, f, ""))
		if r.err != nil {
			t.Fatalf("Discover: %v", r.err)
		}
		if n := f.authCount(); n != 2 {
			t.Errorf("%d authentications, want 2", n)
		}
		if len(r.obs) != 5 {
			t.Errorf("%d observations, want 5", len(r.obs))
		}
	})
	t.Run("a fresh token refused too fails the run clearly", func(t *testing.T) {
		f := newFakeCloud(t)
		f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
			if kind == "servers" && n == 1 {
				f.mu.Lock()
				f.refuseTokens = true
				f.mu.Unlock()
			}
			return false
		}
		r := discover(t, testContext(t), passwordConfig(t, f, ""))
		if r.err == nil || !strings.Contains(r.err.Error(), "the cloud refused a fresh token too (HTTP 401 right after authenticating again)") {
			t.Errorf("err = %v", r.err)
		}
		if n := f.authCount(); n != 2 {
			t.Errorf("%d authentications, want 2: authenticate once more, then give up", n)
		}
	})
}

func TestConcurrentRequestsRefusedTogetherAuthenticateOnce(t *testing.T) {
	f := genCloud(t, 400)
	var once sync.Once
	f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
		if kind == "ports" {
			// The token dies while four ports requests are in flight.
			once.Do(f.expireTokens)
		}
		return false
	}
	r := discover(t, testContext(t), passwordConfig(t, f, `, "page_size": 200, "concurrency": 4`))
	if r.err != nil {
		t.Fatalf("Discover: %v", r.err)
	}
	if len(r.obs) != 400 {
		t.Errorf("%d observations, want 400", len(r.obs))
	}
	if n := f.authCount(); n != 2 {
		t.Errorf("%d authentications, want 2", n)
	}
}

func TestBadCredentialsAndSecrets(t *testing.T) {
	f := newFakeCloud(t)
	const wrong = "wrong-password-9d8c7b6a5f4e"
	const wrongSecret = "wrong-app-secret-1a2b3c4d5e"
	cases := []struct {
		name, config, want string
	}{
		{"a wrong password", fmt.Sprintf(`{"auth_url": %q, "username": %q, "password_file": %q, "project_name": %q}`,
			f.authURL(), f.username, writeSecret(t, "pw", wrong), f.project), "the credentials were refused (HTTP 401)"},
		{"a wrong application credential secret", fmt.Sprintf(`{"auth_url": %q, "application_credential_id": %q, "application_credential_secret_file": %q}`,
			f.authURL(), f.appCredID, writeSecret(t, "app", wrongSecret)), "the credentials were refused (HTTP 401)"},
		{"clouds.yaml with a wrong password", fmt.Sprintf(`{"clouds_yaml": %q, "cloud": "c"}`, writeClouds(t, fmt.Sprintf(
			"clouds:\n  c:\n    auth:\n      auth_url: %s\n      username: %s\n      password: %s\n      project_name: %s\n      user_domain_name: Default\n      project_domain_name: Default\n",
			f.authURL(), f.username, wrong, f.project), "")), "the credentials were refused (HTTP 401)"},
		{"a Keystone that is not there", fmt.Sprintf(`{"auth_url": "http://127.0.0.1:1/v3", "username": %q, "password_file": %q, "project_name": %q, "request_timeout": "2s"}`,
			f.username, writeSecret(t, "pw2", wrong), f.project), "authenticate at http://127.0.0.1:1/v3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := discover(t, testContext(t), []byte(tc.config))
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", r.err, tc.want)
			}
			for _, secret := range []string{wrong, wrongSecret, f.password, f.appCredSecret} {
				if strings.Contains(r.err.Error(), secret) || strings.Contains(r.log, secret) {
					t.Errorf("a secret shows in the error or the log:\n%v\n%s", r.err, r.log)
				}
			}
		})
	}
}

func TestCancelledPullReturnsPromptly(t *testing.T) {
	f := newFakeCloud(t)
	ctx, cancel := context.WithCancel(testContext(t))
	f.fault = func(w http.ResponseWriter, _ *http.Request, kind string, n int) bool {
		if kind == "servers" && n == 2 {
			cancel()
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	r := discover(t, ctx, passwordConfig(t, f, ""))
	if r.err == nil {
		t.Fatal("a cancelled pull reported success")
	}
}

func TestEmitErrorEndsThePull(t *testing.T) {
	f := newFakeCloud(t)
	stop := fmt.Errorf("the host is gone")
	_, err := (&source{}).Discover(testContext(t), sdk.DiscoverRequest{Config: passwordConfig(t, f, "")},
		sdk.EmitterFunc(func(context.Context, []sdk.Observation) error { return stop }))
	if err == nil || !strings.Contains(err.Error(), stop.Error()) {
		t.Errorf("err = %v", err)
	}
	if n := f.count("servers"); n != 1 {
		t.Errorf("%d servers pages read after Emit failed on the first, want 1", n)
	}
}

func TestNextLinksNamingAnotherHostStayOnTheEndpoint(t *testing.T) {
	f := newFakeCloud(t)
	// Nova behind a TLS proxy often links to its own internal name.
	f.linkBase = "http://nova-internal.invalid:8774"
	r := discover(t, testContext(t), passwordConfig(t, f, ""))
	if r.err != nil {
		t.Fatalf("Discover: %v", r.err)
	}
	if len(r.obs) != 5 {
		t.Errorf("%d observations, want 5", len(r.obs))
	}
}

func TestALinkThatRepeatsItsPageFailsTheRun(t *testing.T) {
	f := newFakeCloud(t)
	f.fault = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
		if kind == "groups" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"security_groups": [], "security_groups_links": []}`)
			return true
		}
		if kind == "servers" && n == 2 {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"servers": [{"id": "x", "name": "loop", "status": "ACTIVE", "addresses": {"n": [{"addr": "198.18.9.9", "version": 4}]}}], "servers_links": [{"rel": "next", "href": %q}]}`,
				f.srv.URL+r.URL.String())
			return true
		}
		return false
	}
	r := discover(t, testContext(t), passwordConfig(t, f, ""))
	if r.err == nil || !strings.Contains(r.err.Error(), "repeats the page it is on") {
		t.Errorf("err = %v", r.err)
	}
}
