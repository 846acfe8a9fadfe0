package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakePDB answers PuppetDB's root query endpoint in PuppetDB's shape, for
// the faults the real one cannot produce on demand (429, a 500 on page 2,
// a broken body, a refused token) and for the benchmark. It serves the
// two queries the plugin sends: the node pages (PQL, with limit, offset,
// order_by and include_total) and the inventory of a page's certnames
// (AST). It does not evaluate PQL: every node matches.
type fakePDB struct {
	srv *httptest.Server

	mu    sync.Mutex
	nodes []fakeNode // sorted by certname
	// fault, when set, answers a request instead of the fake, or returns
	// nil to let it answer.
	fault func(r *fakeRequest) *fakeAnswer
	// token, when set, is what X-Authentication must carry.
	token string
	// noTotal leaves X-Records out.
	noTotal bool
	// hold, when set, runs before each answer (to hang or slow it).
	hold func(ctx context.Context)

	requests    []fakeRequest
	inflight    int
	maxInflight int
}

type fakeNode struct {
	certname  string
	row       []byte // the nodes entity's row
	inventory []byte // the inventory entity's row
}

// fakeRequest is one request as the fake understood it.
type fakeRequest struct {
	seq       int    // 1-based, over all requests
	kind      string // "nodes" or "inventory"
	page      int    // nodes: offset/limit+1
	attempt   int    // how often this kind and page was asked, 1-based
	query     string // nodes: the PQL
	certnames []string
	token     string
}

type fakeAnswer struct {
	status int
	header map[string]string
	body   string
}

func newFakePDB(t testing.TB, nodes ...fakeNode) *fakePDB {
	f := &fakePDB{}
	f.setNodes(nodes)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePDB) setNodes(nodes []fakeNode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes = append([]fakeNode(nil), nodes...)
	sort.Slice(f.nodes, func(i, j int) bool { return f.nodes[i].certname < f.nodes[j].certname })
}

// config is a job configuration for the fake, with extra attributes.
func (f *fakePDB) config(extra ...string) []byte {
	return []byte("{" + strings.Join(append([]string{fmt.Sprintf("%q: %q", "url", f.srv.URL)}, extra...), ", ") + "}")
}

func (f *fakePDB) log() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func (f *fakePDB) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	hold := f.hold
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inflight--; f.mu.Unlock() }()
	// The body is read first: only then does the server notice a client
	// that went away, and cancel r.Context() for hold.
	raw, _ := io.ReadAll(r.Body)
	if hold != nil {
		hold(r.Context())
	}
	if r.Method != http.MethodPost || r.URL.Path != "/pdb/query/v4" {
		http.Error(w, "not PuppetDB's query endpoint: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var body struct {
		Query        json.RawMessage `json:"query"`
		Limit        int             `json:"limit"`
		Offset       int             `json:"offset"`
		OrderBy      []orderField    `json:"order_by"`
		IncludeTotal bool            `json:"include_total"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "Unable to parse the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	req := fakeRequest{token: r.Header.Get("X-Authentication")}
	var pql string
	if json.Unmarshal(body.Query, &pql) == nil {
		if !strings.HasPrefix(pql, "nodes[") || body.Limit <= 0 || len(body.OrderBy) != 1 || body.OrderBy[0].Field != "certname" {
			http.Error(w, "the fake serves node pages ordered by certname only", http.StatusBadRequest)
			return
		}
		req.kind, req.query, req.page = "nodes", pql, body.Offset/body.Limit+1
	} else {
		names, ok := inventoryCertnames(body.Query)
		if !ok {
			http.Error(w, "the fake serves inventory[...] { certname in [...] } only", http.StatusBadRequest)
			return
		}
		req.kind, req.certnames = "inventory", names
	}

	f.mu.Lock()
	req.seq = len(f.requests) + 1
	for _, p := range f.requests {
		if p.kind == req.kind && p.page == req.page && (req.kind == "nodes" || strings.Join(p.certnames, ",") == strings.Join(req.certnames, ",")) {
			req.attempt++
		}
	}
	req.attempt++
	f.requests = append(f.requests, req)
	fault, token, noTotal := f.fault, f.token, f.noTotal
	nodes := f.nodes
	f.mu.Unlock()

	if token != "" && req.token != token {
		// PE's RBAC answers a bad token like this (and may well echo it).
		writeAnswer(w, &fakeAnswer{status: http.StatusUnauthorized, body: "Authentication failed: the token " + req.token + " is invalid or expired"})
		return
	}
	if fault != nil {
		if a := fault(&req); a != nil {
			writeAnswer(w, a)
			return
		}
	}
	var out bytes.Buffer
	out.WriteByte('[')
	first := true
	add := func(b []byte) {
		if !first {
			out.WriteByte(',')
		}
		first = false
		out.Write(b)
	}
	if req.kind == "nodes" {
		if body.IncludeTotal && !noTotal {
			w.Header().Set("X-Records", strconv.Itoa(len(nodes)))
		}
		for i := body.Offset; i < len(nodes) && i < body.Offset+body.Limit; i++ {
			add(nodes[i].row)
		}
	} else {
		want := map[string]bool{}
		for _, n := range req.certnames {
			want[n] = true
		}
		for _, n := range nodes {
			if want[n.certname] && n.inventory != nil {
				add(n.inventory)
			}
		}
	}
	out.WriteByte(']')
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Write(out.Bytes())
}

func writeAnswer(w http.ResponseWriter, a *fakeAnswer) {
	ct := "text/plain;charset=utf-8" // PuppetDB's errors are plain text
	if strings.HasPrefix(a.body, "[") || strings.HasPrefix(a.body, "{") {
		ct = "application/json;charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// inventoryCertnames reads the certnames out of the plugin's AST query
// ["from", "inventory", ["extract", [...], ["and", ..., ["in", "certname", ["array", [...]]]]]].
func inventoryCertnames(raw json.RawMessage) ([]string, bool) {
	var q []any
	if json.Unmarshal(raw, &q) != nil || len(q) != 3 || q[0] != "from" || q[1] != "inventory" {
		return nil, false
	}
	var names []string
	var walk func(v any) bool
	walk = func(v any) bool {
		l, ok := v.([]any)
		if !ok {
			return false
		}
		if len(l) == 3 && l[0] == "in" && l[1] == "certname" {
			arr, ok := l[2].([]any)
			if !ok || len(arr) != 2 || arr[0] != "array" {
				return false
			}
			list, ok := arr[1].([]any)
			if !ok {
				return false
			}
			for _, n := range list {
				s, ok := n.(string)
				if !ok {
					return false
				}
				names = append(names, s)
			}
			return true
		}
		for _, e := range l {
			if walk(e) {
				return true
			}
		}
		return false
	}
	return names, walk(q[2])
}

// fakeNodeOf builds a node from its nodes row and facts (nil: no facts).
func fakeNodeOf(row nodeRow, facts map[string]any) fakeNode {
	// PuppetDB sends every projected field, null when unset.
	m := map[string]any{}
	for _, f := range []struct {
		k, v string
	}{{"deactivated", row.Deactivated}, {"expired", row.Expired}, {"report_timestamp", row.ReportTimestamp},
		{"latest_report_status", row.LatestReportStatus}, {"report_environment", row.ReportEnvironment}, {"facts_environment", row.FactsEnvironment}} {
		if f.v == "" {
			m[f.k] = nil
		} else {
			m[f.k] = f.v
		}
	}
	m["certname"] = row.Certname
	n := fakeNode{certname: row.Certname, row: mustJSON(m)}
	if facts != nil {
		inv := map[string]any{"certname": row.Certname}
		for _, k := range []string{"networking", "os", "dmi", "serialnumber", "fqdn"} {
			if v, ok := facts[k]; ok {
				inv["facts."+k] = v
			}
		}
		n.inventory = mustJSON(inv)
	}
	return n
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// genNodes makes n active machines named node-00000.example.test on,
// each with two interfaces, a report and dmi facts.
func genNodes(n int) []fakeNode {
	nodes := make([]fakeNode, n)
	for i := range n {
		c := fmt.Sprintf("node-%05d.example.test", i)
		facts := machineFacts(c, c, i%250+1, nil)
		net := facts["networking"].(map[string]any)
		ip := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
		ip2 := fmt.Sprintf("198.19.%d.%d", i/250, i%250+1)
		ip6 := fmt.Sprintf("2001:db8:%x::%x", i/250, i%250+1)
		mac0 := fmt.Sprintf("52:54:00:0a:%02x:%02x", i/256, i%256)
		mac1 := fmt.Sprintf("52:54:00:0b:%02x:%02x", i/256, i%256)
		net["ip"], net["ip6"], net["mac"] = ip, ip6, mac0
		ifs := net["interfaces"].(map[string]any)
		ifs["ens3"] = ifaceFact(mac0, []string{ip + "/255.255.255.0"}, []string{ip6 + "/ffff:ffff:ffff:ffff::"})
		ifs["ens4"] = ifaceFact(mac1, []string{ip2 + "/255.255.0.0"}, nil)
		nodes[i] = fakeNodeOf(nodeRow{
			Certname: c, ReportTimestamp: "2026-12-01T10:00:00.000Z", LatestReportStatus: "unchanged",
			ReportEnvironment: "production", FactsEnvironment: "production",
		}, facts)
	}
	return nodes
}
