package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fastTuning keeps the backoffs after 5xx answers short in tests.
var fastTuning = tuning{backoff: 5 * time.Millisecond, backoffMax: 20 * time.Millisecond}

// run is one in-process Discover with what it emitted and logged.
type run struct {
	obs     []sdk.Observation
	batches int
	res     sdk.Result
	err     error
	logs    string
}

// syncBuffer is a log sink safe for the pull's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func discover(ctx context.Context, config []byte) run {
	logs := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs, JSONFormat: true})
	ctx = hclog.WithContext(ctx, log)
	var r run
	r.res, r.err = (&source{tuning: fastTuning}).Discover(ctx, sdk.DiscoverRequest{Config: config, Job: "test", RunID: "r1"},
		sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error {
			r.obs = append(r.obs, b...)
			r.batches++
			return nil
		}))
	r.logs = logs.String()
	return r
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// golden compares got with testdata/NAME, or rewrites it with -update or
// UPDATE_GOLDEN=1.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name)
	if *update || os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs from what Discover emitted (run with -update to accept):\n%s", path, b)
	}
}

func byID(obs []sdk.Observation) map[string]sdk.Observation {
	m := map[string]sdk.Observation{}
	for _, o := range obs {
		m[o.InstanceID] = o
	}
	return m
}

func TestDiscoverReportsDropletsAsTheGoldenFileSays(t *testing.T) {
	for _, tc := range []struct {
		name, extra, golden string
		wantIDs             []string
		wantRequests        []string
	}{
		{
			name: "every droplet of the account", golden: "observations.golden.json",
			wantIDs:      []string{"digitalocean:3164444", "digitalocean:3164445", "digitalocean:3164446", "digitalocean:3164447"},
			wantRequests: []string{"droplets 1", "droplets 2", "droplets 3", "firewalls 1", "firewalls 2", "firewalls 3", "vpcs 1"},
		},
		{
			name: "only the droplets with a tag", extra: `"tag": "web"`, golden: "observations-tag-web.golden.json",
			wantIDs:      []string{"digitalocean:3164444", "digitalocean:3164445"},
			wantRequests: []string{"droplets-tag-web 1", "droplets-tag-web 2", "firewalls 1", "firewalls 2", "firewalls 3", "vpcs 1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			r := discover(testContext(t), api.config(t, tc.extra))
			if r.err != nil {
				t.Fatalf("Discover: %v", r.err)
			}
			for _, o := range r.obs {
				if err := o.Validate(); err != nil {
					t.Errorf("observation %s: %v", o.InstanceID, err)
				}
			}
			sort.Slice(r.obs, func(i, j int) bool { return r.obs[i].InstanceID < r.obs[j].InstanceID })
			var ids []string
			for _, o := range r.obs {
				ids = append(ids, o.InstanceID)
			}
			if !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("instances %v, want %v", ids, tc.wantIDs)
			}
			reqs := api.log()
			sort.Strings(reqs)
			if !slices.Equal(reqs, tc.wantRequests) {
				t.Errorf("requests %v, want every page once: %v", reqs, tc.wantRequests)
			}
			if len(r.res.Scope.Prefixes) != 0 || len(r.res.Scope.Ports) != 0 {
				t.Errorf("scope %+v: a provider pull claims no address range", r.res.Scope)
			}
			golden(t, tc.golden, struct {
				Observations []sdk.Observation `json:"observations"`
				Warnings     []string          `json:"warnings"`
			}{r.obs, r.res.Warnings})
		})
	}
}

// The facts the rules engine reads, spelled out here as well as in the
// golden file, so a golden rewrite cannot quietly change them.
func TestFirewallsBecomeExpectedPorts(t *testing.T) {
	api := newFakeAPI(t)
	r := discover(testContext(t), api.config(t, ""))
	if r.err != nil {
		t.Fatal(r.err)
	}
	obs := byID(r.obs)
	for _, tc := range []struct {
		id    string
		facts map[string]string
	}{
		{"digitalocean:3164444", map[string]string{ // web-1: by tag web (web-fw, monitoring) and by id (ssh-admin)
			"security_groups": "monitoring,ssh-admin,web-fw", "firewalled": "true",
			"expected_tcp": "22,80,443,8000-8100,9100", "expected_udp": "161",
			"expected_tcp_from": "monitoring,ssh-admin,web-fw", "expected_udp_from": "monitoring",
			"vpc": "default-nyc3", "region": "nyc3", "instance_state": "active", "instance_type": "s-1vcpu-1gb",
			"image": "ubuntu-24-04-x64", "provider": "digitalocean",
		}},
		{"digitalocean:3164446", map[string]string{ // db-1: ports "0" means every port
			"security_groups": "db-fw,internal-all,ssh-admin",
			"expected_tcp":    "22,5432", "expected_udp": "1-65535", "expected_tcp_from": "db-fw,ssh-admin",
			"instance_state": "off",
		}},
		{"digitalocean:3164447", map[string]string{ // batch-1: no firewall, an unlisted VPC, a snapshot image
			"security_groups": "", "firewalled": "false", "vpc": "0d3f7c2e-8a1b-4f6d-9e2c-7b5a4d3c2b1a",
			"image": "Ubuntu batch-snap-2025-06", "region": "ams3",
		}},
	} {
		o, ok := obs[tc.id]
		if !ok {
			t.Errorf("%s not reported", tc.id)
			continue
		}
		for k, want := range tc.facts {
			if got, ok := o.Facts[k]; !ok || got != want {
				t.Errorf("%s: fact %s = %q (set %v), want %q", tc.id, k, got, ok, want)
			}
		}
	}
	if _, ok := obs["digitalocean:3164447"].Facts["expected_tcp"]; ok {
		t.Error("batch-1 has no firewall: it must get no expected_tcp (unfiltered is not 'nothing allowed')")
	}
	web1 := obs["digitalocean:3164444"]
	if web1.Status != sdk.StatusUp || obs["digitalocean:3164446"].Status != sdk.StatusDown {
		t.Errorf("status: web-1 %q (want up), db-1 %q (want down)", web1.Status, obs["digitalocean:3164446"].Status)
	}
	want := []sdk.Address{{Addr: "198.19.0.10", Type: "ipv4"}, {Addr: "198.18.1.10", Type: "ipv4"}, {Addr: "2001:db8:1::10", Type: "ipv6"}}
	if !slices.Equal(web1.Addresses, want) {
		t.Errorf("web-1 addresses %v, want %v", web1.Addresses, want)
	}
	if !slices.Equal(web1.Hostnames, []string{"web-1"}) || web1.Labels["tag:web"] != "true" || web1.Labels["tag:env:prod"] != "true" {
		t.Errorf("web-1 hostnames %v labels %v", web1.Hostnames, web1.Labels)
	}
	if len(r.res.Warnings) != 1 || !strings.Contains(r.res.Warnings[0], `"new-1"`) {
		t.Errorf("warnings %q, want one naming new-1, which has no address yet", r.res.Warnings)
	}
}

func TestRateLimitsAndServerErrorsAreRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		key      string
		faults   []fault
		minWait  time.Duration
		requests int
	}{
		{
			name: "a 429 waits for Retry-After", key: "droplets 2",
			faults:  []fault{{status: 429, file: "error-429.json", header: map[string]string{"Retry-After": "1", "Ratelimit-Remaining": "0"}}},
			minWait: time.Second, requests: 2,
		},
		{
			name: "a 429 without Retry-After waits for ratelimit-reset", key: "firewalls 2",
			faults: []fault{{status: 429, file: "error-429.json", header: map[string]string{
				"Ratelimit-Reset": strconv.FormatInt(time.Now().Unix()+1, 10)}}},
			requests: 2,
		},
		{
			name: "a 500 and a 503 mid-pagination are retried", key: "droplets 3",
			faults:   []fault{{status: 500, file: "error-500.json"}, {status: 503, body: "upstream connect error"}},
			requests: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			api.fail(tc.key, tc.faults...)
			start := time.Now()
			r := discover(testContext(t), api.config(t, ""))
			if r.err != nil {
				t.Fatalf("Discover: %v", r.err)
			}
			if took := time.Since(start); took < tc.minWait {
				t.Errorf("the pull took %s, less than the %s the API asked to wait", took, tc.minWait)
			}
			if n := api.count(tc.key); n != tc.requests {
				t.Errorf("%s was asked %d times, want %d", tc.key, n, tc.requests)
			}
			if len(r.obs) != 4 {
				t.Errorf("%d observations after retrying, want 4", len(r.obs))
			}
			if !strings.Contains(r.logs, "digitalocean: retrying") {
				t.Errorf("no retry in the log:\n%s", r.logs)
			}
		})
	}
}

func TestAFailedPageFailsTheRun(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		fault     fault
		extra     string
		wantErr   []string
		wantAsked int
	}{
		{
			name: "a 500 that persists on the last droplet page", key: "droplets 3",
			fault:   fault{status: 500, file: "error-500.json", always: true},
			wantErr: []string{"list droplets page 3", "500", "Unexpected server-side error", "gave up after 3 attempts"}, wantAsked: 3,
			extra: `"max_retries": 2`,
		},
		{
			name: "a 500 on a firewall page", key: "firewalls 2",
			fault:   fault{status: 500, file: "error-500.json", always: true},
			wantErr: []string{"list firewalls page 2", "500"}, wantAsked: 2, extra: `"max_retries": 1`,
		},
		{
			name: "a page that is not JSON", key: "droplets 2",
			fault:   fault{status: 200, body: `{"droplets": [`, always: true},
			wantErr: []string{"list droplets page 2"}, wantAsked: 1, extra: `"max_retries": 0`,
		},
		{
			name: "a 404 is not retried", key: "vpcs 1",
			fault:   fault{status: 404, body: `{"id":"not_found","message":"The resource you were accessing could not be found."}`, always: true},
			wantErr: []string{"list vpcs page 1", "404"}, wantAsked: 1,
		},
		{
			name: "a rate limit longer than five minutes", key: "droplets 2",
			fault:   fault{status: 429, file: "error-429.json", header: map[string]string{"Retry-After": "3600"}, always: true},
			wantErr: []string{"list droplets page 2", "rate limited", "1h0m0s"}, wantAsked: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			api.fail(tc.key, tc.fault)
			r := discover(testContext(t), api.config(t, tc.extra))
			if r.err == nil {
				t.Fatalf("Discover succeeded with %d observations; a failed page must fail the run", len(r.obs))
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q does not say %q", r.err, w)
				}
			}
			if n := api.count(tc.key); n != tc.wantAsked {
				t.Errorf("%s asked %d times, want %d", tc.key, n, tc.wantAsked)
			}
		})
	}
}

func TestARefusedTokenIsAClearErrorAndNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, api *fakeAPI) []byte
		want  string
	}{
		{"an expired or revoked token", func(t *testing.T, api *fakeAPI) []byte {
			tok := filepath.Join(t.TempDir(), "token")
			os.WriteFile(tok, []byte("dop_v1_expired0000000000000000000000000000000000000000000000000000\n"), 0o600)
			return []byte(`{"api_url": "` + api.URL() + `", "token_file": "` + tok + `", "per_page": 2}`)
		}, "the token is invalid, expired or revoked"},
		{"a token without firewall:read", func(t *testing.T, api *fakeAPI) []byte {
			api.fail("firewalls 1", fault{status: 403, file: "error-403.json", always: true})
			return api.config(t, "")
		}, "needs droplet:read, vpc:read and firewall:read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			r := discover(testContext(t), tc.setup(t, api))
			if !errors.Is(r.err, errAuth) || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("error %v, want errAuth saying %q", r.err, tc.want)
			}
			for _, k := range api.log() {
				if api.count(k) > 1 {
					t.Errorf("%s asked %d times: a refused token must not be retried", k, api.count(k))
				}
			}
			if len(r.obs) != 0 {
				t.Errorf("%d observations emitted", len(r.obs))
			}
		})
	}
}

// The token appears in no error and no log line, whatever happens, even
// when the API echoes it back.
func TestTheTokenNeverLeaks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		fault  fault
		failed bool
	}{
		{name: "a good pull"},
		{name: "retries", key: "droplets 2", fault: fault{status: 429, header: map[string]string{"Retry-After": "0"}, body: `{"id":"too_many_requests","message":"API Rate limit exceeded."}`}},
		{name: "an API that echoes the token", key: "droplets 1", failed: true, fault: fault{status: 400, always: true,
			body: `{"id":"bad_request","message":"Authorization: Bearer ` + testToken + `"}`}},
		{name: "a server error", key: "vpcs 1", failed: true, fault: fault{status: 500, always: true, body: testToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			if tc.key != "" {
				api.fail(tc.key, tc.fault)
			}
			r := discover(testContext(t), api.config(t, `"max_retries": 1`))
			if (r.err != nil) != tc.failed {
				t.Fatalf("Discover: error %v, want failed=%v", r.err, tc.failed)
			}
			if r.err != nil && strings.Contains(r.err.Error(), testToken) {
				t.Errorf("the error holds the token: %v", r.err)
			}
			if strings.Contains(r.logs, testToken) || strings.Contains(r.logs, testToken[8:24]) {
				t.Errorf("the log holds the token:\n%s", r.logs)
			}
			if r.logs == "" {
				t.Error("nothing was logged: the test sees no log to check")
			}
		})
	}
	t.Run("a validation error", func(t *testing.T) {
		t.Setenv("DO_TOKEN_TEST", testToken)
		err := (&source{}).Validate(context.Background(), []byte(`{"token_env": "DO_TOKEN_TEST", "token_file": "/nonexistent", "per_page": 0}`))
		if err == nil || strings.Contains(err.Error(), testToken) {
			t.Errorf("Validate: %v", err)
		}
	})
}

func TestCancellationEndsThePull(t *testing.T) {
	api := newFakeAPI(t)
	api.hold = holdUntilCancelled
	ctx, cancel := context.WithCancel(testContext(t))
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	r := discover(ctx, api.config(t, ""))
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Discover: %v, want context.Canceled", r.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Discover took %s to notice the cancellation", took)
	}
}

func TestARetryThatWouldOutliveTheJobFailsAtOnce(t *testing.T) {
	api := newFakeAPI(t)
	api.fail("droplets 1", fault{status: 429, file: "error-429.json", header: map[string]string{"Retry-After": "60"}, always: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	r := discover(ctx, api.config(t, ""))
	if r.err == nil || !strings.Contains(r.err.Error(), "would pass the job's timeout") {
		t.Errorf("Discover: %v, want a rate limit that outlives the timeout", r.err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("Discover waited instead of failing at once")
	}
}

// An emitter that fails (the host went away) ends the pull with its error.
func TestAFailingEmitterEndsThePull(t *testing.T) {
	api := newFakeAPI(t)
	gone := errors.New("the host is gone")
	calls := 0
	_, err := (&source{tuning: fastTuning}).Discover(testContext(t), sdk.DiscoverRequest{Config: api.config(t, "")},
		sdk.EmitterFunc(func(context.Context, []sdk.Observation) error { calls++; return gone }))
	if !errors.Is(err, gone) {
		t.Errorf("Discover: %v, want the emitter's error", err)
	}
	if calls != 1 {
		t.Errorf("Emit called %d times after it failed", calls)
	}
}

func TestDropletsDuplicatedByShiftingPagesAreReportedOnce(t *testing.T) {
	api := newFakeAPI(t)
	// Page 2 answers as page 1 did, as if two droplets were created
	// before page 2 was read, with a new total.
	b, err := os.ReadFile(filepath.Join("testdata", "api", "droplets.page1.json"))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(b), `"total": 5`, `"total": 7`, 1)
	api.fail("droplets 2", fault{status: 200, body: body})
	r := discover(testContext(t), api.config(t, ""))
	if r.err != nil {
		t.Fatal(r.err)
	}
	seen := map[string]int{}
	for _, o := range r.obs {
		seen[o.InstanceID]++
		if seen[o.InstanceID] > 1 {
			t.Errorf("%s reported twice", o.InstanceID)
		}
	}
	if !slices.ContainsFunc(r.res.Warnings, func(w string) bool { return strings.Contains(w, "changed during the pull") }) {
		t.Errorf("warnings %q, want one saying the list changed", r.res.Warnings)
	}
}

// A redirect is not followed, so the token cannot travel to another host.
func TestARedirectIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var sawAuth []string
	other := newFakeAPI(t)
	other.hold = func(r *http.Request) {
		mu.Lock()
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		mu.Unlock()
	}
	api := newFakeAPI(t)
	api.fail("droplets 2", fault{status: http.StatusFound, always: true, header: map[string]string{"Location": other.URL() + "/v2/droplets?page=2&per_page=2"}})
	r := discover(testContext(t), api.config(t, ""))
	if r.err == nil || !strings.Contains(r.err.Error(), "302") {
		t.Errorf("Discover: %v, want the 302 as an error", r.err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range sawAuth {
		if strings.Contains(a, testToken) {
			t.Error("the token went to the redirect's host")
		}
	}
}
