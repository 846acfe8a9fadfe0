package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sollwert/sollwert/internal/testnet"
	"github.com/sollwert/sollwert/model"
)

// managedSubnet is the /30 of TestManagedUnmanagedMissing's namespace:
// 198.18.214.1 on the test's side, 198.18.214.2 inside. The machines are
// addresses of 198.18.214.8/29, routed into the namespace. No other test
// uses 198.18.214.0/24.
var managedSubnet = netip.MustParseAddr("198.18.214.0")

const (
	managedScope = "198.18.214.8/29"
	// managedIP is droplet 101's address: it answers from the start.
	managedIP = "198.18.214.9"
	// missingIP is droplet 102's address: the cloud says the droplet is
	// active, but nothing answers there until the test adds the address.
	missingIP = "198.18.214.10"
	// unmanagedIP answers from the start, and no droplet has it until the
	// test adds droplet 103.
	unmanagedIP = "198.18.214.11"
	// splitIP is where droplet 103 moves at the end: nothing answers there.
	splitIP = "198.18.214.12"
)

// fakeDroplets is a DigitalOcean API, in fakeDigitalOcean's shapes, whose
// droplets (id to IPv4 address, all active) the test can change between
// pulls. It has no VPCs and no firewalls.
type fakeDroplets struct {
	mu       sync.Mutex
	droplets map[int]string
	url      string
}

func newFakeDroplets(t *testing.T, droplets map[int]string) *fakeDroplets {
	t.Helper()
	f := &fakeDroplets{droplets: droplets}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer do-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var body string
		switch r.URL.Path {
		case "/v2/droplets":
			body = f.dropletsPage()
		case "/v2/vpcs":
			body = `{"vpcs":[],"links":{},"meta":{"total":0}}`
		case "/v2/firewalls":
			body = `{"firewalls":[],"links":{},"meta":{"total":0}}`
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/"
	return f
}

// set adds or replaces droplet id at ip.
func (f *fakeDroplets) set(id int, ip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.droplets[id] = ip
}

func (f *fakeDroplets) dropletsPage() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]int, 0, len(f.droplets))
	for id := range f.droplets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var ds []string
	for _, id := range ids {
		ds = append(ds, fmt.Sprintf(`{"id":%d,"name":"vm-%d","memory":1024,"vcpus":1,"disk":25,"status":"active",
			"created_at":"2026-11-01T12:00:00Z","image":{"id":1,"slug":"debian-12-x64","name":"Debian 12"},"size_slug":"s-1vcpu-1gb",
			"networks":{"v4":[{"ip_address":%q,"netmask":"255.255.255.248","gateway":"198.18.214.14","type":"private"}],"v6":[]},
			"region":{"slug":"ams3","name":"Amsterdam 3"},"tags":[]}`, id, id, f.droplets[id]))
	}
	return fmt.Sprintf(`{"droplets":[%s],"links":{},"meta":{"total":%d}}`, strings.Join(ds, ","), len(ds))
}

// TestManagedUnmanagedMissing: with DigitalOcean as the source of truth
// (managed_by), a host the real nmap finds in a namespace of the test's
// that no droplet has is unmanaged, naming nmap, until a droplet with its
// address appears; an active droplet that nothing answers for is missing
// once missing_after scans in a row have covered it without finding it,
// and no longer once a scan finds it. When a droplet moves away from an
// address that still answers, what answers there is split off it.
func TestManagedUnmanagedMissing(t *testing.T) {
	requireNmap(t)
	testnet.Require(t)
	e := newEnv(t)
	plugins := filepath.Join(e.dir, "plugins")
	built := make(chan error, 1)
	go func() { built <- buildProviderPlugin(plugins, "digitalocean") }() // while the namespace is made

	n := testnet.New(t, managedSubnet)
	n.Route(t, netip.MustParsePrefix(managedScope))
	n.Exec(t, "ip", "addr", "add", managedIP+"/32", "dev", "lo")
	n.Exec(t, "ip", "addr", "add", unmanagedIP+"/32", "dev", "lo")
	// One listener on every address of the namespace, including the one
	// added later: each machine that answers has this port open.
	port := listenInNamespace(t, n, "0.0.0.0")

	api := newFakeDroplets(t, map[int]string{101: managedIP, 102: missingIP})
	t.Setenv("DO_TOKEN", "do-token")
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	e.writeConfig(fmt.Sprintf(`plugin_dir = %q
job "do" {
  source    = "digitalocean"
  schedule  = "@every 1h"
  timeout   = "60s"
  token_env = "DO_TOKEN"
  api_url   = %q
}
job "scan" {
  source    = "nmap"
  schedule  = "@every 1h"
  timeout   = "60s"
  targets   = [%q]
  ports     = "%d"
  scan_type = "syn"
}
expect "cloud" {
  cidrs         = [%q]
  managed_by    = ["digitalocean"]
  unmanaged     = "warning"
  missing       = "critical"
  missing_after = 2
}
`, plugins, api.url, managedScope, port, managedScope))
	e.start()

	run := func(job string, hosts int) {
		t.Helper()
		if r := e.runJob(job); r.Status != model.RunSucceeded || r.Hosts != hosts {
			t.Fatalf("job %s: want succeeded with %d hosts, got %+v", job, hosts, r)
		}
	}
	asset := func(ip string) model.Asset {
		t.Helper()
		var a model.Asset
		if code := e.get("/v1/assets/"+ip, &a); code != 200 {
			t.Fatalf("GET /v1/assets/%s: HTTP %d", ip, code)
		}
		return a
	}
	// want checks every deviation of rule "cloud" ever made, resolved
	// or not, against the expected ones, keyed "kind host".
	type dev struct {
		severity model.Severity
		state    model.State
		detail   string // a part of the detail
	}
	want := func(step string, expected map[string]dev) map[string]model.Deviation {
		t.Helper()
		got := map[string]model.Deviation{}
		for _, d := range e.deviations("state=all") {
			key := string(d.Kind) + " " + d.Host
			if _, dup := got[key]; dup {
				t.Fatalf("%s: two deviations %s: %s", step, key, dump(e.deviations("state=all")))
			}
			got[key] = d
		}
		for key, w := range expected {
			d, ok := got[key]
			switch {
			case !ok:
				t.Errorf("%s: no deviation %s", step, key)
			case d.Rule != "cloud" || d.Severity != w.severity || d.State != w.state || !strings.Contains(d.Detail, w.detail):
				t.Errorf("%s: deviation %s is rule %q %s %s %q, want rule \"cloud\" %s %s with %q",
					step, key, d.Rule, d.Severity, d.State, d.Detail, w.severity, w.state, w.detail)
			case (d.State == model.StateResolved) != (d.ResolvedAt != nil):
				t.Errorf("%s: deviation %s is %s with resolved_at %v", step, key, d.State, d.ResolvedAt)
			}
		}
		for key := range got {
			if _, ok := expected[key]; !ok {
				t.Errorf("%s: unexpected deviation %s", step, key)
			}
		}
		if t.Failed() {
			t.Fatalf("%s: deviations:\n%s", step, dump(got))
		}
		return got
	}
	unmanagedOpen := dev{model.SeverityWarning, model.StateOpen,
		fmt.Sprintf("host %s is seen by nmap but none of digitalocean knows it", unmanagedIP)}
	missingOpen := dev{model.SeverityCritical, model.StateOpen,
		fmt.Sprintf("host %s is active according to its provider, but 2 scans in a row did not find it", missingIP)}

	// The cloud alone: its machines are managed by definition, and no
	// scan has missed any yet.
	run("do", 2)
	want("after the pull", nil)

	// The first scan finds .9 (managed) and .11 (unmanaged) and misses
	// .10 once: fewer times than missing_after.
	run("scan", 2)
	want("after one scan", map[string]dev{"unmanaged " + unmanagedIP: unmanagedOpen})
	if a := asset(missingIP); a.Facts[model.FactScanMisses] != "1" {
		t.Fatalf("%s after one scan: scan_misses %q, want 1; facts %v", missingIP, a.Facts[model.FactScanMisses], a.Facts)
	}
	a := asset(managedIP)
	if a.Facts[model.FactInstancePrefix+"digitalocean"] != "digitalocean:101" || a.Facts[model.FactScanMisses] != "" ||
		!slices.Contains(a.Sources, "nmap") || !slices.Contains(a.Sources, "digitalocean") ||
		!slices.ContainsFunc(a.Services, func(s model.Service) bool {
			return s.Protocol == "tcp" && s.Port == uint16(port) && s.State == "open"
		}) {
		t.Fatalf("%s is not one asset of both sources with tcp/%d open: %s", managedIP, port, dump(a))
	}
	// Each fact says which source set it, and when.
	var facts []model.FactOrigin
	if code := e.get("/v1/assets/"+managedIP+"/facts", &facts); code != 200 {
		t.Fatalf("GET /v1/assets/%s/facts: HTTP %d", managedIP, code)
	}
	if i := slices.IndexFunc(facts, func(f model.FactOrigin) bool { return f.Name == model.FactInstancePrefix+"digitalocean" }); i < 0 ||
		facts[i].Value != "digitalocean:101" || facts[i].Source != "digitalocean" || facts[i].Job != "do" || facts[i].Time.IsZero() {
		t.Fatalf("facts of %s: %s", managedIP, dump(facts))
	}
	if a := asset(unmanagedIP); !slices.Equal(a.Sources, []string{"nmap"}) || a.Facts[model.FactInstancePrefix+"digitalocean"] != "" {
		t.Fatalf("%s: %s", unmanagedIP, dump(a))
	}

	// The second scan misses .10 again: now it is missing.
	run("scan", 2)
	devs := want("after two scans", map[string]dev{
		"unmanaged " + unmanagedIP: unmanagedOpen,
		"missing " + missingIP:     missingOpen,
	})
	missingID := devs["missing "+missingIP].ID
	if a := asset(missingIP); a.Facts[model.FactScanMisses] != "2" || a.Facts[model.FactInstancePrefix+"digitalocean"] != "digitalocean:102" {
		t.Fatalf("%s after two scans: scan_misses %q, want 2; facts %v", missingIP, a.Facts[model.FactScanMisses], a.Facts)
	}

	// A third scan that misses it counts no further (only up to what a
	// rule asks) and changes no deviation.
	hist := func(ip string) int {
		t.Helper()
		var h []model.Version
		if code := e.get("/v1/assets/"+ip+"/history", &h); code != 200 {
			t.Fatalf("history of %s: HTTP %d", ip, code)
		}
		return len(h)
	}
	versions := hist(missingIP)
	run("scan", 2)
	want("after three scans", map[string]dev{
		"unmanaged " + unmanagedIP: unmanagedOpen,
		"missing " + missingIP:     missingOpen,
	})
	if a := asset(missingIP); a.Facts[model.FactScanMisses] != "2" {
		t.Fatalf("%s after three scans: scan_misses %q, want 2", missingIP, a.Facts[model.FactScanMisses])
	}
	if v := hist(missingIP); v != versions {
		t.Fatalf("a machine that stays missing added history: %d versions, then %d", versions, v)
	}

	// The machine answers: the next scan finds it and the deviation
	// resolves; the count is gone.
	n.Exec(t, "ip", "addr", "add", missingIP+"/32", "dev", "lo")
	run("scan", 3)
	devs = want("after .10 answered", map[string]dev{
		"unmanaged " + unmanagedIP: unmanagedOpen,
		"missing " + missingIP:     {model.SeverityCritical, model.StateResolved, "2 scans in a row did not find it"},
	})
	if devs["missing "+missingIP].ID != missingID {
		t.Fatalf("the missing deviation changed its id: %s, then %s", missingID, devs["missing "+missingIP].ID)
	}
	if a := asset(missingIP); a.Facts[model.FactScanMisses] != "" || a.Status != "up" {
		t.Fatalf("%s after it answered: status %q, scan_misses %q", missingIP, a.Status, a.Facts[model.FactScanMisses])
	}

	// A droplet with .11's address appears: the next pull resolves the
	// unmanaged deviation.
	api.set(103, unmanagedIP)
	run("do", 3)
	want("after droplet 103 appeared", map[string]dev{
		"unmanaged " + unmanagedIP: {model.SeverityWarning, model.StateResolved, "is seen by nmap but none of digitalocean knows it"},
		"missing " + missingIP:     {model.SeverityCritical, model.StateResolved, "2 scans in a row did not find it"},
	})
	if a := asset(unmanagedIP); a.Facts[model.FactInstancePrefix+"digitalocean"] != "digitalocean:103" || !slices.Contains(a.Sources, "nmap") {
		t.Fatalf("%s after droplet 103 appeared: %s", unmanagedIP, dump(a))
	}
	var assets []model.Asset
	if e.get("/v1/assets", &assets); len(assets) != 3 {
		t.Fatalf("want 3 assets, one per machine, got %d:\n%s", len(assets), dump(assets))
	}
	if active := e.deviations(""); len(active) != 0 {
		t.Fatalf("active deviations after droplet 103 appeared: %s", dump(active))
	}

	// Droplet 103 moves to .12, where nothing answers, and .11 still
	// answers: .11 left the droplet with its port, and what answers
	// there is a machine split off it, unmanaged again.
	droplet := asset(unmanagedIP)
	api.set(103, splitIP)
	run("do", 3)
	if a := asset(splitIP); a.ID != droplet.ID || a.Facts["addresses:digitalocean"] != splitIP || len(a.Services) != 0 {
		t.Fatalf("droplet 103 after the move: %s", dump(a))
	}
	if code := e.get("/v1/assets/"+unmanagedIP, nil); code != http.StatusNotFound {
		t.Fatalf("GET /v1/assets/%s after droplet 103 left it: HTTP %d, want 404", unmanagedIP, code)
	}
	run("scan", 3)
	split := asset(unmanagedIP)
	if split.ID == droplet.ID || split.Facts[model.FactInstancePrefix+"digitalocean"] != "" || len(split.Services) != 1 {
		t.Fatalf("%s after droplet 103 left it: %s", unmanagedIP, dump(split))
	}
	active := e.deviations("")
	if len(active) != 1 || active[0].Kind != model.KindUnmanaged || active[0].AssetID != split.ID {
		t.Fatalf("after the split, want one unmanaged deviation on %s: %s", split.ID, dump(active))
	}
	out, err := exec.Command(binary, "history", "--url", "http://"+e.api, unmanagedIP).CombinedOutput()
	if want := "split: asset " + split.ID + " split off " + droplet.ID; err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("sollwert history %s: %v, no %q in\n%s", unmanagedIP, err, want, out)
	}
	for _, id := range []string{droplet.ID, split.ID} {
		var h []model.Version
		e.get("/v1/assets/"+id+"/history", &h)
		if !slices.ContainsFunc(h, func(v model.Version) bool {
			return slices.Contains(v.Changes, model.Change{Field: "split", From: droplet.ID, To: split.ID})
		}) {
			t.Fatalf("the history of %s does not record the split: %s", id, dump(h))
		}
	}
}
