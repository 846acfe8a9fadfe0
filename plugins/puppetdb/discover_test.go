package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// discover runs one pull as the host would, checking every observation
// as the host does, and returns what was emitted.
func discover(ctx context.Context, config []byte) ([]sdk.Observation, sdk.Result, error) {
	obs, res, _, err := discoverLog(ctx, config)
	return obs, res, err
}

// discoverLog is discover with the plugin's log lines.
func discoverLog(ctx context.Context, config []byte) ([]sdk.Observation, sdk.Result, string, error) {
	var (
		mu  sync.Mutex
		log bytes.Buffer
		obs []sdk.Observation
	)
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &lockedWriter{mu: &mu, w: &log}})
	ctx = hclog.WithContext(ctx, logger)
	res, err := (&source{tuning: fastTuning}).Discover(ctx, sdk.DiscoverRequest{Config: config, Job: "test", Tenant: "default", RunID: "run-1"},
		sdk.EmitterFunc(func(_ context.Context, batch []sdk.Observation) error {
			for _, o := range batch {
				if err := o.Validate(); err != nil {
					return fmt.Errorf("observation %s: %w", o.InstanceID, err)
				}
			}
			obs = append(obs, batch...)
			return nil
		}))
	mu.Lock()
	defer mu.Unlock()
	return obs, res, log.String(), err
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// fastTuning keeps backoffs short in tests.
var fastTuning = tuning{backoff: 10 * time.Millisecond, backoffMax: 50 * time.Millisecond}

func instanceIDs(obs []sdk.Observation) []string {
	ids := make([]string, len(obs))
	for i, o := range obs {
		ids[i] = o.InstanceID
	}
	sort.Strings(ids)
	return ids
}

// wantInstanceIDs is what a pull of testNodes reports: every node with
// an address (lonely-1 has none), the inactive ones only when asked.
func wantInstanceIDs(inactive bool) []string {
	var ids []string
	for _, n := range testNodes {
		if n.certname == "lonely-1.example.test" || (!inactive && n.state != stateActive) {
			continue
		}
		ids = append(ids, "puppetdb:"+n.certname)
	}
	sort.Strings(ids)
	return ids
}

func byCertname(obs []sdk.Observation) map[string]sdk.Observation {
	m := map[string]sdk.Observation{}
	for _, o := range obs {
		m[strings.TrimPrefix(o.InstanceID, "puppetdb:")] = o
	}
	return m
}

func addrs(o sdk.Observation) []string {
	var l []string
	for _, a := range o.Addresses {
		l = append(l, a.Type+":"+a.Addr)
	}
	return l
}

// TestPuppetDB pulls the seeded nodes from the real PuppetDB.
func TestPuppetDB(t *testing.T) {
	p := requirePuppetDB(t)
	t.Logf("PuppetDB %s", shared.took)

	t.Run("reports every node over pages of two, inactive ones down with their state", func(t *testing.T) {
		obs, res, log, err := discoverLog(testContext(t), p.config(`"page_size": 2`))
		if err != nil {
			t.Fatalf("Discover: %v\n%s", err, log)
		}
		if got, want := instanceIDs(obs), wantInstanceIDs(true); !slices.Equal(got, want) {
			t.Fatalf("instance ids %v, want %v", got, want)
		}
		// Six nodes in pages of two: three full pages and an empty one
		// that says there is no more.
		if !strings.Contains(log, "pages=4") {
			t.Errorf("the pull did not take four pages:\n%s", log)
		}
		if len(res.Scope.Prefixes) != 0 {
			t.Errorf("a PuppetDB pull claims no address range, got %v", res.Scope.Prefixes)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "lonely-1.example.test") || !strings.Contains(res.Warnings[0], "no usable address") {
			t.Errorf("warnings %q, want one naming lonely-1 as without an address", res.Warnings)
		}
		m := byCertname(obs)

		web1 := m["web-1.example.test"]
		wantAddrs := []string{"ipv4:198.18.1.21", "ipv6:2001:db8:1::15", "ipv4:198.19.2.21", "mac:52:54:00:0a:00:15", "mac:52:54:00:0b:00:15"}
		if got := addrs(web1); !slices.Equal(got, wantAddrs) {
			t.Errorf("web-1 addresses %v, want %v (no loopback, link-local or docker0)", got, wantAddrs)
		}
		if !slices.Equal(web1.Hostnames, []string{"web-1.example.test", "web-1.prod.example.test"}) {
			t.Errorf("web-1 hostnames %v, want certname and fqdn", web1.Hostnames)
		}
		if web1.Status != sdk.StatusUp || web1.OS != "Debian 12.5" {
			t.Errorf("web-1 status %q, os %q", web1.Status, web1.OS)
		}
		for k, want := range map[string]string{
			"provider": "puppetdb", "certname": "web-1.example.test", "fqdn": "web-1.prod.example.test",
			"instance_state": "active", "deactivated_time": "", "expired_time": "",
			"dmi_uuid": "8f3d2c1a-0000-4000-8000-000000000015", "serial_number": "SN-0021", "os_family": "Debian",
			"last_report_status": "changed", "report_environment": "production", "facts_environment": "production",
			"if.ens3.mac": "52:54:00:0a:00:15", "if.ens3.addresses": "198.18.1.21/24,2001:db8:1::15/64",
			"if.ens4.mac": "52:54:00:0b:00:15", "if.ens4.addresses": "198.19.2.21/16",
		} {
			if got, ok := web1.Facts[k]; !ok || got != want {
				t.Errorf("web-1 fact %s = %q, want %q", k, got, want)
			}
		}
		if _, err := time.Parse(time.RFC3339, web1.Facts["last_report_time"]); err != nil {
			t.Errorf("web-1 last_report_time %q: %v", web1.Facts["last_report_time"], err)
		}
		for k := range web1.Facts {
			if strings.HasPrefix(k, "if.docker0.") || strings.HasPrefix(k, "if.lo.") {
				t.Errorf("web-1 has fact %s of an excluded interface", k)
			}
		}

		db1 := m["db-1.example.test"]
		if db1.Facts["serial_number"] != "LEGACY-0011" || db1.Facts["last_report_status"] != "" || db1.Facts["last_report_time"] != "" {
			t.Errorf("db-1: serial %q (want the legacy fact), last report %q at %q (want none)",
				db1.Facts["serial_number"], db1.Facts["last_report_status"], db1.Facts["last_report_time"])
		}
		if len(db1.Hostnames) != 1 {
			t.Errorf("db-1 hostnames %v: its fqdn is its certname", db1.Hostnames)
		}
		web2 := m["web-2.example.test"]
		if web2.Facts["last_report_status"] != "failed" || web2.Facts["report_environment"] != "staging" {
			t.Errorf("web-2 report %q in %q", web2.Facts["last_report_status"], web2.Facts["report_environment"])
		}

		old := m["old-1.example.test"]
		if old.Status != sdk.StatusDown || old.Facts["instance_state"] != "deactivated" || old.Facts["expired_time"] != "" {
			t.Errorf("old-1: status %q, state %q, expired %q; want down, deactivated", old.Status, old.Facts["instance_state"], old.Facts["expired_time"])
		}
		if _, err := time.Parse(time.RFC3339, old.Facts["deactivated_time"]); err != nil {
			t.Errorf("old-1 deactivated_time %q: %v", old.Facts["deactivated_time"], err)
		}
		if old.Facts["last_report_status"] != "unchanged" || len(old.Addresses) != 5 {
			t.Errorf("old-1 keeps its report and addresses: %q, %v", old.Facts["last_report_status"], addrs(old))
		}
		gone := m["gone-1.example.test"]
		if gone.Status != sdk.StatusDown || gone.Facts["instance_state"] != "expired" || gone.Facts["deactivated_time"] != "" {
			t.Errorf("gone-1: status %q, state %q; want down, expired", gone.Status, gone.Facts["instance_state"])
		}
		if _, err := time.Parse(time.RFC3339, gone.Facts["expired_time"]); err != nil {
			t.Errorf("gone-1 expired_time %q: %v", gone.Facts["expired_time"], err)
		}
	})

	t.Run("reports the same with one page", func(t *testing.T) {
		small, _, err := discover(testContext(t), p.config(`"page_size": 2`))
		if err != nil {
			t.Fatal(err)
		}
		big, _, err := discover(testContext(t), p.config(`"page_size": 500`, `"concurrency": 1`))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := canonical(t, small), canonical(t, big); a != b {
			t.Errorf("pages of 2 and of 500 differ:\n%s\n%s", a, b)
		}
	})

	t.Run("include_deactivated false leaves inactive nodes out", func(t *testing.T) {
		obs, _, err := discover(testContext(t), p.config(`"page_size": 2`, `"include_deactivated": false`))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := instanceIDs(obs), wantInstanceIDs(false); !slices.Equal(got, want) {
			t.Errorf("instance ids %v, want %v", got, want)
		}
	})

	for _, tc := range []struct{ name, query, want string }{
		{"query on a node field", `report_environment = "staging"`, "puppetdb:web-2.example.test"},
		{"query with an inventory subquery", `certname in inventory[certname] { facts.dmi.product.serial_number = "SN-0021" }`, "puppetdb:web-1.example.test"},
		{"query matching an inactive node", `certname ~ "^old"`, "puppetdb:old-1.example.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := json.Marshal(tc.query)
			obs, _, err := discover(testContext(t), p.config(`"page_size": 2`, `"query": `+string(q)))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(instanceIDs(obs), ","); got != tc.want {
				t.Errorf("query %s: %s, want %s", tc.query, got, tc.want)
			}
		})
	}

	t.Run("a query PuppetDB rejects fails the run naming PuppetDB's answer", func(t *testing.T) {
		obs, _, err := discover(testContext(t), p.config(`"query": "bogus = 1"`))
		if err == nil || len(obs) != 0 {
			t.Fatalf("Discover: %d observations, %v; want an error", len(obs), err)
		}
		for _, want := range []string{"nodes page 1", "POST /pdb/query/v4", "400 Bad Request", "'bogus' is not a queryable object", "check the job's query"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	})

	t.Run("a PuppetDB that is not there fails the run", func(t *testing.T) {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = discover(testContext(t), []byte(fmt.Sprintf(`{"url": "http://127.0.0.1:%d", "max_retries": 1}`, port)))
		if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "gave up after 2 attempts") {
			t.Errorf("error %v, want a refused connection, retried once", err)
		}
	})
}

// canonical is a stable text of a pull's observations, to compare two.
func canonical(t *testing.T, obs []sdk.Observation) string {
	t.Helper()
	obs = slices.Clone(obs)
	sort.Slice(obs, func(i, j int) bool { return obs[i].InstanceID < obs[j].InstanceID })
	b, err := json.MarshalIndent(obs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
