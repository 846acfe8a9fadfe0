package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The static credentials every test signs with. The secret must never
// show up in an error or a log line.
const (
	testKeyID  = "AKIAFAKETESTKEY00001"
	testSecret = "wJalrXUtnFEMI-sollwert-test-secret-DO-NOT-PRINT"
)

// awsEnv gives the SDK's standard chain static credentials from the
// environment and nothing else to find: no shared files, no instance
// metadata service (which would mean a request to 169.254.169.254).
func awsEnv(t testing.TB) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           testKeyID,
		"AWS_SECRET_ACCESS_KEY":       testSecret,
		"AWS_SESSION_TOKEN":           "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE":                 "",
		"AWS_DEFAULT_PROFILE":         "",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_EC2":        "",
		"AWS_RETRY_MODE":              "",
		"AWS_MAX_ATTEMPTS":            "",
		"AWS_ROLE_ARN":                "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_CA_BUNDLE":               "",
	} {
		t.Setenv(k, v)
	}
}

// jobConfig is a configuration pointed at the fake, with short backoffs.
func jobConfig(endpoint string, extra map[string]any) json.RawMessage {
	c := map[string]any{
		"regions":      []string{"us-east-1", "eu-central-1"},
		"endpoint_url": endpoint,
		"max_backoff":  "5ms",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, _ := json.Marshal(c)
	return b
}

// syncBuffer collects log output written from several goroutines.
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

// discover runs the source in process and returns what it emitted and
// what it logged.
func discover(t testing.TB, config json.RawMessage) ([]sdk.Observation, sdk.Result, string, error) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = hclog.WithContext(ctx, hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs}))
	var all []sdk.Observation
	res, err := (&source{}).Discover(ctx, sdk.DiscoverRequest{Config: config, Job: "test", RunID: "r1"},
		sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error {
			all = append(all, b...)
			return nil
		}))
	sort.Slice(all, func(i, j int) bool { return all[i].InstanceID < all[j].InstanceID })
	return all, res, logs.String(), err
}

func byID(obs []sdk.Observation) map[string]sdk.Observation {
	m := map[string]sdk.Observation{}
	for _, o := range obs {
		m[o.InstanceID] = o
	}
	return m
}

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
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("observations differ from %s (go test -update rewrites it after a deliberate change):\n%s", path, b)
	}
}

func TestInstancesBecomeObservations(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{dir: "testdata/ec2"}
	srv := startFake(t, f)
	obs, res, logs, err := discover(t, jobConfig(srv.URL, nil))
	if err != nil {
		t.Fatalf("Discover: %v\n%s", err, logs)
	}
	for _, o := range obs {
		if err := o.Validate(); err != nil {
			t.Errorf("observation %s: %v", o.InstanceID, err)
		}
	}
	golden(t, "observations.golden.json", obs)

	got := byID(obs)
	if len(got) != 4 {
		t.Fatalf("got instances %v, want four (the terminated one has no address and is left out)", slices.Collect(maps.Keys(got)))
	}
	if len(res.Scope.Prefixes) != 0 || len(res.Warnings) != 0 {
		t.Errorf("result %+v: want no scope and no warnings", res)
	}

	tests := []struct {
		name      string
		id        string
		status    string
		hostnames []string
		addresses []string
		facts     map[string]string
		labels    map[string]string
	}{
		{
			name: "a running instance with two ENIs reports every address, the union of its groups' ports and its tags",
			id:   "aws:i-0a1b2c3d4e5f60001", status: sdk.StatusUp, hostnames: []string{"web-1"},
			addresses: []string{"198.18.1.10", "198.19.1.10", "2001:db8:1::10", "198.18.1.11", "198.18.2.10", "0e:12:34:56:00:11", "0e:12:34:56:00:12"},
			facts: map[string]string{
				"provider": "aws", "region": "us-east-1", "availability_zone": "us-east-1a", "instance_state": "running",
				"instance_type": "t3.medium", "image": "ami-0abcdef1234567890", "vpc": "vpc-0a00000000000001", "subnet": "subnet-0aa0000000000001",
				"security_groups":   "monitoring,ssh-admin,web",
				"expected_tcp":      "22,80,443,9100",
				"expected_udp":      "161",
				"expected_tcp_from": "monitoring,ssh-admin,web",
				"expected_udp_from": "monitoring",
				"owner":             "123456789012", "created": "2024-03-04T09:15:00Z",
				"eni.0.id": "eni-0a00000000000011", "eni.0.mac": "0e:12:34:56:00:11", "eni.0.private_ips": "198.18.1.10,198.18.1.11",
				"eni.0.public_ips": "198.19.1.10", "eni.0.ipv6": "2001:db8:1::10", "eni.0.security_groups": "ssh-admin,web",
				"eni.1.id": "eni-0a00000000000012", "eni.1.subnet": "subnet-0aa0000000000002", "eni.1.security_groups": "monitoring",
			},
			labels: map[string]string{"Name": "web-1", "env": "prod", "team": "web"},
		},
		{
			name: "a stopped instance is down and keeps its private address and MAC",
			id:   "aws:i-0a1b2c3d4e5f60002", status: sdk.StatusDown, hostnames: []string{"web-2"},
			addresses: []string{"198.18.1.20", "0e:12:34:56:00:21"},
			facts:     map[string]string{"instance_state": "stopped", "expected_tcp": "80,443", "expected_udp": "", "expected_tcp_from": "web", "architecture": "arm64"},
			labels:    map[string]string{"Name": "web-2", "env": "staging"},
		},
		{
			name: "a group's rules from a group reference and a numbered protocol count; a group with no inbound rule adds nothing",
			id:   "aws:i-0a1b2c3d4e5f60003", status: sdk.StatusUp, hostnames: []string{"db-1"},
			addresses: []string{"198.18.3.30", "2001:db8:3::30", "0e:12:34:56:00:31"},
			facts: map[string]string{"security_groups": "db,default", "expected_tcp": "5432-5440", "expected_udp": "8000-8100",
				"expected_tcp_from": "db", "lifecycle": "spot", "instance_type": "r6g.large"},
			labels: map[string]string{"Name": "db-1", "aws:autoscaling:groupName": "db-asg"},
		},
		{
			name: "protocol -1 opens every port; an instance without a Name tag has no hostname; a pending one is down",
			id:   "aws:i-0e1b2c3d4e5f60005", status: sdk.StatusDown,
			addresses: []string{"198.18.50.5", "06:aa:bb:cc:00:51"},
			facts: map[string]string{"region": "eu-central-1", "instance_state": "pending", "expected_tcp": "1-65535", "expected_udp": "1-65535",
				"expected_tcp_from": "allow-all", "owner": "210987654321"},
			labels: map[string]string{"project": "batch"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := got[tc.id]
			if !ok {
				t.Fatalf("no observation for %s", tc.id)
			}
			if o.Status != tc.status {
				t.Errorf("status %q, want %q", o.Status, tc.status)
			}
			if !slices.Equal(o.Hostnames, tc.hostnames) {
				t.Errorf("hostnames %v, want %v", o.Hostnames, tc.hostnames)
			}
			var addrs []string
			for _, a := range o.Addresses {
				addrs = append(addrs, a.Addr)
			}
			if !slices.Equal(addrs, tc.addresses) {
				t.Errorf("addresses %v, want %v", addrs, tc.addresses)
			}
			for k, want := range tc.facts {
				if v, ok := o.Facts[k]; !ok || v != want {
					t.Errorf("fact %s = %q (set: %v), want %q", k, v, ok, want)
				}
			}
			if !maps.Equal(o.Labels, tc.labels) {
				t.Errorf("labels %v, want %v", o.Labels, tc.labels)
			}
		})
	}

	// Every page of both calls, in both regions, signed for its region.
	var pages []string
	for _, c := range f.seen() {
		pages = append(pages, c.region+" "+c.action+" "+c.token)
		if c.keyID != testKeyID {
			t.Errorf("%s %s was signed with key %q, want the environment's %q", c.region, c.action, c.keyID, testKeyID)
		}
		if c.action == "DescribeInstances" && c.form.Get("MaxResults") != "1000" {
			t.Errorf("DescribeInstances asked for %q results per page, want 1000", c.form.Get("MaxResults"))
		}
	}
	sort.Strings(pages)
	want := []string{
		"eu-central-1 DescribeInstances ",
		"eu-central-1 DescribeSecurityGroups ",
		"us-east-1 DescribeInstances ",
		"us-east-1 DescribeInstances eyJ2IjoiMiIsInIiOiJ1cy1lYXN0LTEiLCJwIjoyfQ",
		"us-east-1 DescribeSecurityGroups ",
		"us-east-1 DescribeSecurityGroups sg-page-2",
	}
	if !slices.Equal(pages, want) {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(pages, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(logs, testSecret) {
		t.Error("the secret access key is in the log")
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	tests := []struct {
		name   string
		faults []fault
		calls  map[string]int // "region action token" -> requests
	}{
		{
			name:   "RequestLimitExceeded (503) twice on a later page, then the page",
			faults: []fault{{region: "us-east-1", action: "DescribeInstances", token: "eyJ2IjoiMiIsInIiOiJ1cy1lYXN0LTEiLCJwIjoyfQ", times: 2, status: 503, file: "RequestLimitExceeded.xml"}},
			calls:  map[string]int{"us-east-1 DescribeInstances eyJ2IjoiMiIsInIiOiJ1cy1lYXN0LTEiLCJwIjoyfQ": 3, "us-east-1 DescribeInstances ": 1},
		},
		{
			name:   "503 Unavailable on the first security group page, then the page",
			faults: []fault{{region: "eu-central-1", action: "DescribeSecurityGroups", token: "", times: 1, status: 503, file: "Unavailable.xml"}},
			calls:  map[string]int{"eu-central-1 DescribeSecurityGroups ": 2},
		},
		{
			name:   "500 InternalError once, then the page",
			faults: []fault{{region: "us-east-1", action: "DescribeInstances", token: "", times: 1, status: 500, file: "InternalError.xml"}},
			calls:  map[string]int{"us-east-1 DescribeInstances ": 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			awsEnv(t)
			f := &fakeEC2{dir: "testdata/ec2"}
			for _, fl := range tc.faults {
				f.addFault(fl)
			}
			srv := startFake(t, f)
			obs, _, logs, err := discover(t, jobConfig(srv.URL, nil))
			if err != nil {
				t.Fatalf("Discover: %v\n%s", err, logs)
			}
			if len(obs) != 4 {
				t.Errorf("got %d observations after the retries, want 4", len(obs))
			}
			counts := map[string]int{}
			for _, c := range f.seen() {
				counts[c.region+" "+c.action+" "+c.token]++
			}
			// At least the failures plus the success. Go's transport now and
			// then finds the connection it reuses after an error answer
			// closed, which the SDK retries too, so not exactly.
			for k, want := range tc.calls {
				if counts[k] < want || counts[k] > defaultMaxAttempts {
					t.Errorf("%s: %d requests, want %d to %d\n%s", k, counts[k], want, defaultMaxAttempts, logs)
				}
			}
		})
	}
}

func TestAFailedPageFailsTheRun(t *testing.T) {
	page2 := "eyJ2IjoiMiIsInIiOiJ1cy1lYXN0LTEiLCJwIjoyfQ"
	tests := []struct {
		name     string
		fault    fault
		extra    map[string]any
		want     []string // in the error
		attempts int      // requests of the failing page
	}{
		{
			name:  "throttling that does not stop exhausts the attempts",
			fault: fault{region: "us-east-1", action: "DescribeInstances", token: page2, times: -1, status: 503, file: "RequestLimitExceeded.xml"},
			extra: map[string]any{"max_attempts": 3},
			want:  []string{"region us-east-1", "describe instances, page 2", "RequestLimitExceeded", "maximum number of attempts"}, attempts: 3,
		},
		{
			name:  "a 500 in the middle of the pagination",
			fault: fault{region: "us-east-1", action: "DescribeInstances", token: page2, times: -1, status: 500, file: "InternalError.xml"},
			want:  []string{"region us-east-1", "page 2", "InternalError", "StatusCode: 500"}, attempts: 5,
		},
		{
			name:  "a 500 on the second page of security groups",
			fault: fault{region: "us-east-1", action: "DescribeSecurityGroups", token: "sg-page-2", times: -1, status: 500, file: "InternalError.xml"},
			extra: map[string]any{"max_attempts": 2},
			want:  []string{"describe security groups, page 2", "InternalError"}, attempts: 2,
		},
		{
			name:  "credentials that are not accepted are not retried",
			fault: fault{action: "DescribeSecurityGroups", token: "*", times: -1, status: 401, file: "AuthFailure.xml"},
			extra: map[string]any{"regions": []string{"us-east-1"}},
			want:  []string{"the credentials were not accepted", "AuthFailure", "StatusCode: 401"}, attempts: 1,
		},
		{
			name:  "expired credentials",
			fault: fault{region: "eu-central-1", action: "DescribeSecurityGroups", token: "*", times: -1, status: 400, file: "RequestExpired.xml"},
			extra: map[string]any{"regions": []string{"eu-central-1"}},
			want:  []string{"region eu-central-1", "expired", "RequestExpired"}, attempts: 1,
		},
		{
			name:  "a policy without ec2:DescribeSecurityGroups",
			fault: fault{region: "us-east-1", action: "DescribeSecurityGroups", token: "*", times: -1, status: 403, file: "UnauthorizedOperation.xml"},
			want:  []string{"lack permission", "ec2:DescribeSecurityGroups", "UnauthorizedOperation"}, attempts: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			awsEnv(t)
			f := &fakeEC2{dir: "testdata/ec2"}
			f.addFault(tc.fault)
			srv := startFake(t, f)
			_, res, logs, err := discover(t, jobConfig(srv.URL, tc.extra))
			if err == nil {
				t.Fatalf("Discover succeeded with %+v; want an error", res)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, leak := range []string{testSecret, srv.URL + "?"} {
				if strings.Contains(err.Error(), leak) || strings.Contains(logs, leak) {
					t.Errorf("%q leaked into the error or the log: %v", leak, err)
				}
			}
			n := 0
			for _, c := range f.seen() {
				if c.action == tc.fault.action && (tc.fault.token == "*" || c.token == tc.fault.token) &&
					(tc.fault.region == "" || c.region == tc.fault.region) {
					n++
				}
			}
			if n != tc.attempts {
				t.Errorf("the failing page was asked %d times, want %d", n, tc.attempts)
			}
		})
	}
}

func TestStaticKeysAndSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	awsEnv(t)
	const keyID, secret = "AKIAFAKESTATICKEY002", "static-secret-from-env-DO-NOT-PRINT"
	t.Setenv("SOLLWERT_AWS_SECRET", secret)
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []map[string]any{
		{"access_key_id": keyID, "secret_access_key_env": "SOLLWERT_AWS_SECRET"},
		{"access_key_id": keyID, "secret_access_key_file": secretFile},
	} {
		f := &fakeEC2{dir: "testdata/ec2"}
		srv := startFake(t, f)
		obs, _, logs, err := discover(t, jobConfig(srv.URL, cfg))
		if err != nil {
			t.Fatalf("Discover: %v", err)
		}
		if len(obs) != 4 {
			t.Errorf("got %d observations, want 4", len(obs))
		}
		for _, c := range f.seen() {
			if c.keyID != keyID {
				t.Fatalf("signed with %q, want the configured key %q", c.keyID, keyID)
			}
		}
		f.addFault(fault{action: "DescribeInstances", token: "*", times: -1, status: 401, file: "AuthFailure.xml"})
		_, _, logs2, err := discover(t, jobConfig(srv.URL, cfg))
		if err == nil {
			t.Fatal("Discover succeeded against a fake that refuses the credentials")
		}
		for _, text := range []string{err.Error(), logs, logs2} {
			if strings.Contains(text, secret) || strings.Contains(text, testSecret) {
				t.Errorf("a secret leaked: %s", text)
			}
		}
	}

	// A secret that cannot be read fails Validate and Discover, naming the
	// field and not the secret.
	t.Setenv("SOLLWERT_AWS_SECRET", secret)
	err := (&source{}).Validate(context.Background(), jobConfig("http://127.0.0.1:1", map[string]any{
		"access_key_id": keyID, "secret_access_key_env": "SOLLWERT_AWS_SECRET", "secret_access_key_file": secretFile}))
	var verr *sdk.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "secret_access_key_file") || strings.Contains(err.Error(), secret) {
		t.Errorf("Validate with both secret forms: %v", err)
	}
}

func TestAssumeRole(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{dir: "testdata/ec2"}
	srv := startFake(t, f)
	role := "arn:aws:iam::123456789012:role/sollwert-read"
	obs, _, logs, err := discover(t, jobConfig(srv.URL, map[string]any{"role_arn": role, "external_id": "tenant-7"}))
	if err != nil {
		t.Fatalf("Discover: %v\n%s", err, logs)
	}
	if len(obs) != 4 {
		t.Errorf("got %d observations, want 4", len(obs))
	}
	var assumed int
	for _, c := range f.seen() {
		switch c.service {
		case "sts":
			assumed++
			if c.keyID != testKeyID || c.form.Get("RoleArn") != role || c.form.Get("ExternalId") != "tenant-7" || c.form.Get("RoleSessionName") != "sollwert" {
				t.Errorf("AssumeRole signed by %q with %v", c.keyID, c.form)
			}
		case "ec2":
			if c.keyID != "ASIAFAKEASSUMEDROLE1" {
				t.Errorf("%s %s signed with %q, want the role's key", c.region, c.action, c.keyID)
			}
		}
	}
	if assumed != 1 {
		t.Errorf("AssumeRole called %d times, want once for the whole run", assumed)
	}
	if strings.Contains(logs, "assumed-role-secret") {
		t.Error("the role's secret is in the log")
	}
}

func TestRegionsArePulledWithBoundedConcurrency(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{dir: "testdata/ec2", delay: 30 * time.Millisecond}
	srv := startFake(t, f)
	regions := []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1"}
	obs, _, logs, err := discover(t, jobConfig(srv.URL, map[string]any{"regions": regions, "concurrency": 2}))
	if err != nil {
		t.Fatalf("Discover: %v\n%s", err, logs)
	}
	if len(obs) != 4 {
		t.Errorf("got %d observations, want 4 (the other regions are empty)", len(obs))
	}
	if m := f.maxInFlight(); m != 2 {
		t.Errorf("at most %d requests were in flight at once, want exactly 2", m)
	}
	seen := map[string]bool{}
	for _, c := range f.seen() {
		seen[c.region] = true
	}
	if len(seen) != len(regions) {
		t.Errorf("regions asked: %v, want all of %v", seen, regions)
	}
}

func TestAFailingRegionStopsTheOthers(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{dir: "testdata/ec2", delay: 20 * time.Millisecond}
	f.addFault(fault{region: "us-east-1", action: "DescribeSecurityGroups", token: "", times: -1, status: 401, file: "AuthFailure.xml"})
	srv := startFake(t, f)
	regions := []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1"}
	_, _, _, err := discover(t, jobConfig(srv.URL, map[string]any{"regions": regions, "concurrency": 1}))
	if err == nil || !strings.Contains(err.Error(), "region us-east-1") || !strings.Contains(err.Error(), "AuthFailure") {
		t.Fatalf("error %v, want the first region's AuthFailure", err)
	}
	for _, c := range f.seen() {
		if c.region != "us-east-1" {
			t.Errorf("region %s was still pulled after us-east-1 failed", c.region)
		}
	}
}

func TestFiltersReachTheAPI(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{dir: "testdata/ec2"}
	srv := startFake(t, f)
	_, _, _, err := discover(t, jobConfig(srv.URL, map[string]any{
		"regions": []string{"eu-central-1"},
		"filters": map[string][]string{"tag:env": {"prod", "staging"}, "instance-state-name": {"running"}}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.seen() {
		if c.action != "DescribeInstances" {
			continue
		}
		want := map[string]string{
			"Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "running",
			"Filter.2.Name": "tag:env", "Filter.2.Value.1": "prod", "Filter.2.Value.2": "staging",
		}
		for k, v := range want {
			if c.form.Get(k) != v {
				t.Errorf("form %s = %q, want %q (form %v)", k, c.form.Get(k), v, c.form)
			}
		}
	}
}

func TestCancellationEndsThePull(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{dir: "testdata/ec2", delay: 5 * time.Second}
	srv := startFake(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&source{}).Discover(ctx, sdk.DiscoverRequest{Config: jobConfig(srv.URL, nil)},
		sdk.EmitterFunc(func(context.Context, []sdk.Observation) error { return nil }))
	if err == nil {
		t.Fatal("Discover succeeded after its context ended")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
		t.Errorf("error %v does not say the deadline passed", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Discover took %v to notice the deadline", d)
	}
}

func TestAnEmitErrorEndsThePull(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{dir: "testdata/ec2"}
	srv := startFake(t, f)
	gone := errors.New("host gone")
	_, err := (&source{}).Discover(context.Background(), sdk.DiscoverRequest{Config: jobConfig(srv.URL, map[string]any{"regions": []string{"us-east-1"}})},
		sdk.EmitterFunc(func(context.Context, []sdk.Observation) error { return gone }))
	if !errors.Is(err, gone) {
		t.Fatalf("error %v, want the emitter's", err)
	}
	for _, c := range f.seen() {
		if c.token == "eyJ2IjoiMiIsInIiOiJ1cy1lYXN0LTEiLCJwIjoyfQ" {
			t.Error("the next page was still asked for after Emit failed")
		}
	}
}

func TestAnInstanceWithoutAddressIsAWarning(t *testing.T) {
	awsEnv(t)
	f := &fakeEC2{pages: map[string][]byte{
		"us-east-1/DescribeInstances/": []byte(`<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="` + ec2NS + `"><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId>
<instancesSet><item><instanceId>i-0000000000000abcd</instanceId><instanceState><code>0</code><name>pending</name></instanceState><instanceType>t3.nano</instanceType>
<networkInterfaceSet/><tagSet/></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`),
	}}
	srv := startFake(t, f)
	obs, res, _, err := discover(t, jobConfig(srv.URL, map[string]any{"regions": []string{"us-east-1"}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "i-0000000000000abcd") {
		t.Errorf("observations %v, warnings %q: want none and one warning naming the instance", obs, res.Warnings)
	}
}
