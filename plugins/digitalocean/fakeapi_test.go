package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testToken is the token the fake API accepts. It is long and odd so a
// leak is easy to find.
const testToken = "dop_v1_7e57c0ffee5ecre7000000000000000000000000000000000000000000abcd"

// fault is one answer the fake API gives instead of the fixture.
type fault struct {
	status int
	file   string // testdata/api/NAME
	header map[string]string
	// always repeats the fault for every request to its key.
	always bool
	// body, when set, is served instead of file.
	body string
}

// fakeAPI replays testdata/api in the shape of DigitalOcean's API v2:
// GET /v2/droplets, /v2/droplets?tag_name=T, /v2/firewalls and /v2/vpcs,
// from files RESOURCE[-tag-T].pageN.json, with the per_page the fixtures
// were cut at. Faults are keyed "droplets 2" (resource and page).
type fakeAPI struct {
	t       testing.TB
	srv     *httptest.Server
	perPage int
	// pages serves generated pages instead of files (the benchmark).
	pages map[string][]byte
	// hold, when set, is called before answering (slow and hung APIs).
	hold func(*http.Request)

	mu       sync.Mutex
	faults   map[string][]fault
	requests []string
}

func newFakeAPI(t testing.TB) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, perPage: 2, faults: map[string][]fault{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) URL() string { return f.srv.URL }

// fail makes the next requests to key answer with faults, in order.
func (f *fakeAPI) fail(key string, fs ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[key] = append(f.faults[key], fs...)
}

// log returns the requests so far as "droplets 2" keys.
func (f *fakeAPI) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeAPI) count(key string) int {
	n := 0
	for _, r := range f.log() {
		if r == key {
			n++
		}
	}
	return n
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	if f.hold != nil {
		f.hold(r)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Ratelimit-Limit", "5000")
	w.Header().Set("Ratelimit-Remaining", "4999")
	w.Header().Set("X-Request-Id", "5b7c3f1e-0000-4000-8000-000000000001")
	resource := strings.TrimPrefix(r.URL.Path, "/v2/")
	q := r.URL.Query()
	page := q.Get("page")
	if page == "" {
		page = "1"
	}
	key := resource + " " + page
	if tag := q.Get("tag_name"); tag != "" {
		resource += "-tag-" + tag
		key = resource + " " + page
	}
	f.mu.Lock()
	f.requests = append(f.requests, key)
	var flt *fault
	if fs := f.faults[key]; len(fs) > 0 {
		flt = &fs[0]
		if !flt.always {
			f.faults[key] = fs[1:]
		}
	}
	f.mu.Unlock()

	if r.Method != http.MethodGet {
		f.answer(w, http.StatusMethodNotAllowed, "", `{"id":"method_not_allowed","message":"read only"}`)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		f.answer(w, http.StatusUnauthorized, "error-401.json", "")
		return
	}
	if flt != nil {
		for k, v := range flt.header {
			w.Header().Set(k, v)
		}
		f.answer(w, flt.status, flt.file, flt.body)
		return
	}
	if pp, _ := strconv.Atoi(q.Get("per_page")); pp != f.perPage {
		f.answer(w, http.StatusBadRequest, "", fmt.Sprintf(`{"id":"bad_request","message":"the fixtures are cut at per_page=%d, not %q"}`, f.perPage, q.Get("per_page")))
		return
	}
	if f.pages != nil {
		b, ok := f.pages[key]
		if !ok {
			f.answer(w, http.StatusNotFound, "", `{"id":"not_found","message":"The resource you were accessing could not be found."}`)
			return
		}
		w.Write(b)
		return
	}
	name := resource + ".page" + page + ".json"
	if _, err := os.Stat(filepath.Join("testdata", "api", name)); err != nil {
		f.answer(w, http.StatusNotFound, "", `{"id":"not_found","message":"The resource you were accessing could not be found."}`)
		return
	}
	f.answer(w, http.StatusOK, name, "")
}

func (f *fakeAPI) answer(w http.ResponseWriter, status int, file, body string) {
	if file != "" {
		b, err := os.ReadFile(filepath.Join("testdata", "api", file))
		if err != nil {
			f.t.Errorf("fake API: %v", err)
			status, b = http.StatusInternalServerError, nil
		}
		// The fixtures' links name the real API, as it answers; point
		// them here so nothing could ever follow them elsewhere.
		body = strings.ReplaceAll(string(b), "https://api.digitalocean.com", f.srv.URL)
	}
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// config is a job configuration for this fake API, with the token in a
// file; extra is more JSON attributes ("tag": "web").
func (f *fakeAPI) config(t testing.TB, extra string) []byte {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf(`{"api_url": %q, "token_file": %q, "per_page": %d`, f.URL(), tok, f.perPage)
	if extra != "" {
		s += ", " + extra
	}
	return []byte(s + "}")
}

// holdUntilCancelled makes every answer wait until the client gives up.
func holdUntilCancelled(r *http.Request) { <-r.Context().Done() }
