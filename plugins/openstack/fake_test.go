package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeCloud is Keystone v3, Nova and Neutron on one local server, answering
// in the shape of their documented APIs from the fixtures in testdata/:
// POST /v3/auth/tokens (token in X-Subject-Token, a catalog pointing back
// here), GET /compute/v2.1/servers/detail (limit, marker, servers_links),
// GET /network/v2.0/ports (device_id filters, limit, marker, ports_links)
// and GET /network/v2.0/security-groups with their rules. The catalog also
// has internal endpoints (/internal/...) and a second region (/r2/...),
// which serve the same data.
type fakeCloud struct {
	srv *httptest.Server

	// The credentials it accepts.
	username, password, project, domain string
	appCredID, appCredSecret            string

	servers, ports, groups []item
	portsByDevice          map[string][]item
	token                  []byte // keystone-token.json with BASE still in it

	mu       sync.Mutex
	tokens   map[string]bool
	auths    int
	requests map[string]int // by kind: servers, ports, groups
	paths    []string
	// fault, when set, may answer a request itself: kind is "servers",
	// "ports" or "groups" and n counts that kind's requests from 1.
	fault func(w http.ResponseWriter, r *http.Request, kind string, n int) bool
	// refuseTokens makes Nova and Neutron refuse every token.
	refuseTokens bool
	// linkBase, when set, replaces the server's own URL in next links, as
	// a Nova behind a proxy that does not know its public name does.
	linkBase string
}

// item is one resource of a list: its id, what filters match, its JSON.
type item struct {
	id, deviceID string
	raw          json.RawMessage
}

const (
	fakeUser      = "sollwert"
	fakePassword  = "correct horse battery staple 7f3a"
	fakeProject   = "webshop"
	fakeAppCredID = "2b7e5c0d9f8a4e3b8c1d6f5e4a3b2c1d"
	fakeAppSecret = "app-secret-5d1f0e9c8b7a6f5e4d3c2b1a"
)

func newFakeCloud(t testing.TB) *fakeCloud {
	t.Helper()
	f := &fakeCloud{
		username: fakeUser, password: fakePassword, project: fakeProject, domain: "Default",
		appCredID: fakeAppCredID, appCredSecret: fakeAppSecret,
		tokens: map[string]bool{}, requests: map[string]int{},
	}
	f.servers = loadItems(t, "nova-servers.json", "servers", "")
	f.ports = loadItems(t, "neutron-ports.json", "ports", "device_id")
	f.groups = loadItems(t, "neutron-security-groups.json", "security_groups", "")
	f.index()
	var err error
	if f.token, err = os.ReadFile(filepath.Join("testdata", "keystone-token.json")); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	return f
}

// index groups the ports by device, as Neutron's device_id filter does.
func (f *fakeCloud) index() {
	f.portsByDevice = map[string][]item{}
	for _, p := range f.ports {
		f.portsByDevice[p.deviceID] = append(f.portsByDevice[p.deviceID], p)
	}
}

func (f *fakeCloud) start(t testing.TB) {
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
}

func loadItems(t testing.TB, file, key, deviceKey string) []item {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []item
	for _, raw := range doc[key] {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		it := item{id: m["id"].(string), raw: raw}
		if deviceKey != "" {
			it.deviceID, _ = m[deviceKey].(string)
		}
		out = append(out, it)
	}
	return out
}

// authURL is what a job's auth_url names.
func (f *fakeCloud) authURL() string { return f.srv.URL + "/v3" }

// expireTokens makes every token issued so far invalid.
func (f *fakeCloud) expireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

func (f *fakeCloud) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[kind]
}

func (f *fakeCloud) authCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auths
}

func (f *fakeCloud) seenPaths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.paths)
}

func (f *fakeCloud) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	f.mu.Lock()
	f.paths = append(f.paths, path)
	f.mu.Unlock()
	if path == "/v3/auth/tokens" && r.Method == http.MethodPost {
		f.issueToken(w, r)
		return
	}
	// The internal endpoints and the second region serve the same data.
	for _, prefix := range []string{"/internal", "/r2"} {
		path = strings.TrimPrefix(path, prefix)
	}
	var kind, collection string
	var items []item
	switch path {
	case "/network/", "/network":
		// Neutron's version document, which gophercloud reads to check
		// that an unversioned endpoint serves v2.0. Neutron answers it
		// without a token.
		b, _ := os.ReadFile(filepath.Join("testdata", "neutron-versions.json"))
		w.Header().Set("Content-Type", "application/json")
		w.Write(bytes.ReplaceAll(b, []byte("BASE"), []byte(f.srv.URL)))
		return
	case "/compute/v2.1/servers/detail":
		kind, collection, items = "servers", "servers", f.servers
	case "/network/v2.0/ports":
		kind, collection, items = "ports", "ports", f.ports
	case "/network/v2.0/security-groups":
		kind, collection, items = "groups", "security_groups", f.groups
	default:
		http.Error(w, `{"itemNotFound": {"code": 404, "message": "not here"}}`, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, `{"error": "method not allowed"}`, http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	f.requests[kind]++
	n := f.requests[kind]
	valid := f.tokens[r.Header.Get("X-Auth-Token")] && !f.refuseTokens
	fault := f.fault
	f.mu.Unlock()
	if !valid {
		writeFixture(w, http.StatusUnauthorized, "nova-401.json")
		return
	}
	if fault != nil && fault(w, r, kind, n) {
		return
	}
	if kind == "servers" && r.Header.Get("X-OpenStack-Nova-API-Version") != novaMicroversion {
		http.Error(w, `{"badRequest": {"code": 400, "message": "this fake needs microversion 2.47"}}`, http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	if ids := q["device_id"]; len(ids) > 0 {
		// Neutron answers a repeated filter as a list: ports of any of them.
		var match []item
		for _, id := range ids {
			match = append(match, f.portsByDevice[id]...)
		}
		items = match
	}
	f.writePage(w, r, collection, items)
}

// writePage answers one page the way Nova and Neutron do: limit items
// after the marker, and a next link whenever the page is full (so the
// last full page is followed by an empty one).
func (f *fakeCloud) writePage(w http.ResponseWriter, r *http.Request, collection string, items []item) {
	q := r.URL.Query()
	start := 0
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(items, func(it item) bool { return it.id == m })
		if i < 0 {
			http.Error(w, fmt.Sprintf(`{"badRequest": {"code": 400, "message": "marker [%s] not found"}}`, m), http.StatusBadRequest)
			return
		}
		start = i + 1
	}
	limit := len(items)
	if l := q.Get("limit"); l != "" {
		var err error
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 {
			http.Error(w, `{"badRequest": {"code": 400, "message": "limit must be a positive integer"}}`, http.StatusBadRequest)
			return
		}
	}
	page := items[start:min(start+limit, len(items))]
	var buf bytes.Buffer
	buf.WriteString(`{"` + collection + `": [`)
	for i, it := range page {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(it.raw)
	}
	buf.WriteString("]")
	if q.Get("limit") != "" && len(page) == limit {
		next := *r.URL
		nq := next.Query()
		nq.Set("marker", page[len(page)-1].id)
		next.RawQuery = nq.Encode()
		base := f.srv.URL
		if f.linkBase != "" {
			base = f.linkBase
		}
		href := base + next.String()
		fmt.Fprintf(&buf, `, "%s_links": [{"href": %q, "rel": "next"}]`, collection, href)
	}
	buf.WriteString("}")
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf.Bytes())
}

// issueToken checks a Keystone v3 password or application credential
// request and answers with a token and the catalog.
func (f *fakeCloud) issueToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
				AppCred struct {
					ID     string `json:"id"`
					Secret string `json:"secret"`
				} `json:"application_credential"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name   string `json:"name"`
					Domain struct {
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.auths++
	f.mu.Unlock()
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"error": {"code": 400, "message": "malformed request", "title": "Bad Request"}}`, http.StatusBadRequest)
		return
	}
	id := req.Auth.Identity
	ok := false
	switch {
	case slices.Equal(id.Methods, []string{"password"}):
		u := id.Password.User
		p := req.Auth.Scope.Project
		ok = u.Name == f.username && u.Password == f.password && u.Domain.Name == f.domain &&
			p.Name == f.project && p.Domain.Name == f.domain
	case slices.Equal(id.Methods, []string{"application_credential"}):
		ok = id.AppCred.ID == f.appCredID && id.AppCred.Secret == f.appCredSecret
	}
	if !ok {
		writeFixture(w, http.StatusUnauthorized, "keystone-401.json")
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := "gAAAAAB" + hex.EncodeToString(b)
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
	w.Header().Set("X-Subject-Token", tok)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(bytes.ReplaceAll(f.token, []byte("BASE"), []byte(f.srv.URL)))
}

func writeFixture(w http.ResponseWriter, code int, file string) {
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		b = []byte(`{"error": "fixture missing"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// passwordConfig is the explicit password form for f, with the password
// in a file.
func passwordConfig(t testing.TB, f *fakeCloud, extra string) []byte {
	t.Helper()
	pw := writeSecret(t, "password", f.password)
	return []byte(fmt.Sprintf(`{"auth_url": %q, "username": %q, "password_file": %q, "project_name": %q, "page_size": 2%s}`,
		f.authURL(), f.username, pw, f.project, extra))
}

func writeSecret(t testing.TB, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
