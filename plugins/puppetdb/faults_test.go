package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// Faults the real PuppetDB cannot produce on demand, against fakePDB.

// fiveNodes are five active machines, three pages of two.
func fiveNodes() []fakeNode { return genNodes(5) }

// pageFault answers the given kind and page (1-based; for inventory the
// page whose nodes it asks for) with a, on the attempts listed (all when
// none are).
func pageFault(kind string, page int, a fakeAnswer, attempts ...int) func(*fakeRequest) *fakeAnswer {
	return func(r *fakeRequest) *fakeAnswer {
		p := r.page
		if r.kind == "inventory" && len(r.certnames) > 0 {
			fmt.Sscanf(r.certnames[0], "node-%d", &p)
			p = p/2 + 1 // pages of two
		}
		if r.kind != kind || p != page || (len(attempts) > 0 && !slices.Contains(attempts, r.attempt)) {
			return nil
		}
		return &a
	}
}

func countKind(reqs []fakeRequest, kind string, page int) int {
	n := 0
	for _, r := range reqs {
		if r.kind == kind && (page == 0 || r.page == page) {
			n++
		}
	}
	return n
}

func TestFaults(t *testing.T) {
	t.Run("a 429 on page 2 waits for Retry-After and then succeeds", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 2, fakeAnswer{status: 429, header: map[string]string{"Retry-After": "1"}, body: "Too Many Requests"}, 1)
		start := time.Now()
		obs, _, log, err := discoverLog(testContext(t), f.config(`"page_size": 2`))
		if err != nil {
			t.Fatal(err)
		}
		if len(obs) != 5 {
			t.Errorf("%d observations, want 5", len(obs))
		}
		if took := time.Since(start); took < time.Second {
			t.Errorf("the pull took %s: it did not wait the second Retry-After asks for", took)
		}
		if !strings.Contains(log, "retrying") || !strings.Contains(log, "wait=1s") || !strings.Contains(log, "429 Too Many Requests") {
			t.Errorf("the retry is not logged with its wait:\n%s", log)
		}
		if n := countKind(f.log(), "nodes", 2); n != 2 {
			t.Errorf("page 2 asked %d times, want 2", n)
		}
	})

	t.Run("a 429 asking to wait longer than max_retry_wait fails at once", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 1, fakeAnswer{status: 429, header: map[string]string{"Retry-After": "3600"}, body: "Too Many Requests"})
		_, res, err := discover(testContext(t), f.config(`"page_size": 2`, `"max_retry_wait": "30s"`))
		if err == nil || !strings.Contains(err.Error(), "asks to wait 1h0m0s, longer than max_retry_wait 30s") {
			t.Fatalf("error %v", err)
		}
		if len(res.Warnings) != 0 || len(f.log()) != 1 {
			t.Errorf("result %+v after %d requests, want nothing after one", res, len(f.log()))
		}
	})

	t.Run("a 503 while PuppetDB is in maintenance mode is retried", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 1, fakeAnswer{status: 503, body: "PuppetDB is currently down. Try again later."}, 1, 2)
		obs, _, err := discover(testContext(t), f.config(`"page_size": 2`))
		if err != nil || len(obs) != 5 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
	})

	t.Run("a 500 on page 2 fails the run with no result", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 2, fakeAnswer{status: 500, body: "Internal Server Error: org.postgresql.util.PSQLException: ERROR: canceling statement due to statement timeout"})
		emitted := 0
		ctx := hclog.WithContext(testContext(t), hclog.NewNullLogger())
		res, err := (&source{tuning: fastTuning}).Discover(ctx, sdk.DiscoverRequest{Config: f.config(`"page_size": 2`, `"max_retries": 2`, `"concurrency": 1`)},
			sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error { emitted += len(b); return nil }))
		if err == nil {
			t.Fatal("Discover succeeded although page 2 failed")
		}
		for _, want := range []string{"nodes page 2", "POST /pdb/query/v4", "500 Internal Server Error", "statement timeout", "gave up after 3 attempts"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		// What was emitted before the failure stays incomplete: the host
		// applies nothing of a run whose Discover returned an error.
		if len(res.Warnings) != 0 || len(res.Scope.Prefixes) != 0 || emitted >= 5 {
			t.Errorf("result %+v, %d emitted; want an empty result and the pull stopped", res, emitted)
		}
		if n := countKind(f.log(), "nodes", 3); n != 0 {
			t.Errorf("page 3 was asked for %d times after page 2 failed for good (concurrency 1)", n)
		}
	})

	t.Run("a 500 on the facts of page 2 fails the run", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("inventory", 2, fakeAnswer{status: 500, body: "Server Error"})
		_, _, err := discover(testContext(t), f.config(`"page_size": 2`, `"max_retries": 1`))
		if err == nil || !strings.Contains(err.Error(), "facts of nodes page 2") {
			t.Fatalf("error %v, want one naming the facts of page 2", err)
		}
	})

	t.Run("a malformed JSON page fails the run without retrying", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 2, fakeAnswer{status: 200, body: `[{"certname": "node-00002.example.test", "deactivated": nul}]`})
		_, _, err := discover(testContext(t), f.config(`"page_size": 2`))
		if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), "nodes page 2") {
			t.Fatalf("error %v, want a malformed answer on page 2", err)
		}
		if n := countKind(f.log(), "nodes", 2); n != 1 {
			t.Errorf("the malformed page was asked %d times, want once", n)
		}
	})

	t.Run("a page of the wrong shape fails the run", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 1, fakeAnswer{status: 200, body: `{"error": "not a list"}`})
		if _, _, err := discover(testContext(t), f.config(`"page_size": 2`)); !errors.Is(err, errMalformed) {
			t.Fatalf("error %v, want a malformed answer", err)
		}
	})

	t.Run("a node without certname fails the run", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 1, fakeAnswer{status: 200, body: `[{"certname": null}]`})
		if _, _, err := discover(testContext(t), f.config(`"page_size": 2`)); !errors.Is(err, errMalformed) {
			t.Fatalf("error %v, want a malformed answer", err)
		}
	})

	t.Run("an answer cut short is retried", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 2, fakeAnswer{status: 200, body: `[{"certname": "node-00002.exa`}, 1)
		obs, _, err := discover(testContext(t), f.config(`"page_size": 2`))
		if err != nil || len(obs) != 5 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
	})

	t.Run("a refused token fails at once and the token is in no error or log line", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.token = "0VRQZ8rbJGbbT0-right-token"
		const wrong = "0VRQZ8rbJGbbT0-wrong-token"
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(wrong+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, log, err := discoverLog(testContext(t), f.config(fmt.Sprintf(`"token_file": %q`, tokenFile)))
		if !errors.Is(err, errAuth) || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "check token_file or token_env") {
			t.Fatalf("error %v, want a refused token", err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(log, wrong) {
			t.Errorf("the token leaked:\nerror: %v\nlog: %s", err, log)
		}
		if !strings.Contains(err.Error(), "[token]") {
			t.Errorf("error %v: PuppetDB's echo of the token is not marked as taken out", err)
		}
		if reqs := f.log(); len(reqs) != 1 || reqs[0].token != wrong {
			t.Errorf("%d requests, want one carrying the token in X-Authentication", len(reqs))
		}
	})

	t.Run("the token goes in X-Authentication on every request and never into a log line", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.token = "0VRQZ8rbJGbbT0-right-token"
		t.Setenv("PUPPETDB_TEST_TOKEN", f.token)
		// A 429 whose body echoes the token: the retry is logged.
		f.fault = pageFault("nodes", 2, fakeAnswer{status: 429, header: map[string]string{"Retry-After": "0"}, body: "slow down, " + f.token}, 1)
		obs, _, log, err := discoverLog(testContext(t), f.config(`"token_env": "PUPPETDB_TEST_TOKEN"`, `"page_size": 2`))
		if err != nil || len(obs) != 5 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
		for _, r := range f.log() {
			if r.token != f.token {
				t.Errorf("request %d (%s page %d) without the token", r.seq, r.kind, r.page)
			}
		}
		if strings.Contains(log, f.token) || !strings.Contains(log, "[token]") {
			t.Errorf("log:\n%s", log)
		}
	})

	t.Run("a redirect is not followed", func(t *testing.T) {
		var followed atomic.Int32
		elsewhere := newFakePDB(t, fiveNodes()...)
		elsewhere.fault = func(*fakeRequest) *fakeAnswer { followed.Add(1); return nil }
		f := newFakePDB(t)
		f.fault = func(*fakeRequest) *fakeAnswer {
			return &fakeAnswer{status: http.StatusFound, header: map[string]string{"Location": elsewhere.srv.URL + "/pdb/query/v4"}}
		}
		_, _, err := discover(testContext(t), f.config())
		if err == nil || !strings.Contains(err.Error(), "redirected to") || followed.Load() != 0 {
			t.Fatalf("error %v, %d requests followed the redirect", err, followed.Load())
		}
	})

	t.Run("a 404 names the path", func(t *testing.T) {
		f := newFakePDB(t)
		_, _, err := discover(testContext(t), []byte(fmt.Sprintf(`{"url": %q}`, f.srv.URL+"/puppetdb")))
		if err == nil || !strings.Contains(err.Error(), "POST /puppetdb/pdb/query/v4: 404 Not Found") {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("no more than concurrency requests at once", func(t *testing.T) {
		f := newFakePDB(t, genNodes(60)...)
		f.hold = func(context.Context) { time.Sleep(5 * time.Millisecond) }
		obs, _, err := discover(testContext(t), f.config(`"page_size": 5`, `"concurrency": 3`))
		if err != nil || len(obs) != 60 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
		f.mu.Lock()
		peak := f.maxInflight
		f.mu.Unlock()
		if peak > 3 || peak < 2 {
			t.Errorf("%d requests at once, want 2-3", peak)
		}
	})

	t.Run("a node list that changes during the pull reports each node once, with a warning", func(t *testing.T) {
		nodes := genNodes(6)
		f := newFakePDB(t, nodes...)
		// Page 1 served, a node sorts in before all others: page 2 then
		// repeats page 1's last node.
		var added atomic.Bool
		f.fault = func(r *fakeRequest) *fakeAnswer {
			if r.kind == "nodes" && r.page == 2 && !added.Swap(true) {
				extra := genNodes(1)[0]
				extra.certname = "aaa.example.test"
				extra.row = []byte(strings.ReplaceAll(string(extra.row), "node-00000.example.test", "aaa.example.test"))
				extra.inventory = []byte(strings.ReplaceAll(string(extra.inventory), "node-00000.example.test", "aaa.example.test"))
				f.setNodes(append(slices.Clone(nodes), extra))
			}
			return nil
		}
		obs, res, err := discover(testContext(t), f.config(`"page_size": 2`, `"concurrency": 1`))
		if err != nil {
			t.Fatal(err)
		}
		ids := instanceIDs(obs)
		if len(slices.Compact(slices.Clone(ids))) != len(ids) || len(ids) != 6 {
			t.Errorf("instance ids %v: want the six first nodes, each once", ids)
		}
		if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "changed during the pull") }) {
			t.Errorf("warnings %q", res.Warnings)
		}
	})

	t.Run("without X-Records the pages are followed to a short one", func(t *testing.T) {
		f := newFakePDB(t, genNodes(7)...)
		f.noTotal = true
		obs, _, err := discover(testContext(t), f.config(`"page_size": 2`))
		if err != nil || len(obs) != 7 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
		if n := countKind(f.log(), "nodes", 0); n != 4 {
			t.Errorf("%d node pages asked for, want 4", n)
		}
	})

	t.Run("a full last page is followed by one that says there is no more", func(t *testing.T) {
		f := newFakePDB(t, genNodes(6)...)
		obs, _, err := discover(testContext(t), f.config(`"page_size": 2`))
		if err != nil || len(obs) != 6 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
		if n := countKind(f.log(), "nodes", 0); n != 4 {
			t.Errorf("%d node pages asked for, want 4", n)
		}
		if n := countKind(f.log(), "inventory", 0); n != 3 {
			t.Errorf("%d inventory queries, want 3 (none for the empty page)", n)
		}
	})

	t.Run("an empty PuppetDB is an empty run", func(t *testing.T) {
		f := newFakePDB(t)
		obs, res, err := discover(testContext(t), f.config())
		if err != nil || len(obs) != 0 || len(res.Warnings) != 0 {
			t.Fatalf("%d observations, %q, %v", len(obs), res.Warnings, err)
		}
	})

	t.Run("facts not in facter's shape are a warning, the node is still reported", func(t *testing.T) {
		good := genNodes(1)[0]
		odd := fakeNodeOf(nodeRow{Certname: "odd.example.test"}, map[string]any{
			"networking": map[string]any{"ip": "198.18.9.9", "interfaces": map[string]any{"eth0": "not an object", "eth1": map[string]any{"mac": "52:54:00:09:09:09"}}},
			"os":         "Debian",
			"dmi":        map[string]any{"product": map[string]any{"uuid": 42}},
		})
		f := newFakePDB(t, good, odd)
		obs, res, err := discover(testContext(t), f.config())
		if err != nil || len(obs) != 2 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
		o := byCertname(obs)["odd.example.test"]
		if got := addrs(o); !slices.Equal(got, []string{"ipv4:198.18.9.9", "mac:52:54:00:09:09:09"}) {
			t.Errorf("addresses %v", got)
		}
		if len(res.Warnings) != 1 {
			t.Fatalf("warnings %q, want one", res.Warnings)
		}
		for _, want := range []string{"odd.example.test", "networking.interfaces.eth0", "fact os", "fact dmi"} {
			if !strings.Contains(res.Warnings[0], want) {
				t.Errorf("warning %q does not name %s", res.Warnings[0], want)
			}
		}
	})

	t.Run("cancelling stops a pull that hangs", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.hold = func(ctx context.Context) { <-ctx.Done() }
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, _, err := discover(ctx, f.config())
		if !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
			t.Fatalf("error %v after %s, want a prompt cancellation", err, time.Since(start))
		}
	})

	t.Run("the job's deadline ends the retries", func(t *testing.T) {
		f := newFakePDB(t, fiveNodes()...)
		f.fault = pageFault("nodes", 1, fakeAnswer{status: 503, header: map[string]string{"Retry-After": "20"}, body: "maintenance"})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, _, err := discover(ctx, f.config())
		if err == nil || !strings.Contains(err.Error(), "would pass the job's timeout") || time.Since(start) > time.Second {
			t.Fatalf("error %v after %s", err, time.Since(start))
		}
	})
}
