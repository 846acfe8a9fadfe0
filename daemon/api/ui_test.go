package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

func getPage(t *testing.T, srv string, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWebPages(t *testing.T) {
	srv, _, _ := newServer(t, false)
	for _, c := range []struct {
		path     string
		code     int
		contains []string
	}{
		{"/ui/", 200, []string{"2 deviations: 1 critical, 1 warning", `href="/ui/assets/a0"`, "Acknowledge", `<time datetime="2026-01-01T12:00:00Z">`}},
		{"/ui/?state=resolved", 200, []string{"1 deviations", "resolved"}},
		{"/ui/?severity=critical", 200, []string{"1 deviations: 1 critical"}},
		{"/ui/?state=bogus", 400, []string{"state must be"}},
		{"/ui/assets", 200, []string{"2 assets", "127.0.0.1", "127.0.0.2"}},
		{"/ui/assets?host=127.0.0.2", 200, []string{"1 assets", "127.0.0.2"}},
		{"/ui/assets/a1", 200, []string{"<h1>127.0.0.2", "unknown_host", "Deviations"}},
		{"/ui/assets/127.0.0.1", 200, []string{"<h1>127.0.0.1"}},
		{"/ui/assets/nope", 404, []string{"no asset"}},
		{"/ui/jobs", 200, []string{`href="/ui/jobs/lo"`, "never run"}},
		{"/ui/jobs/lo", 200, []string{"Not run yet"}},
		{"/ui/jobs/nope", 404, []string{"no job"}},
		{"/ui/status", 200, []string{"Last successful scan", "none yet", "2 assets"}},
		{"/ui/static/style.css", 200, []string{"--crit"}},
	} {
		t.Run(c.path, func(t *testing.T) {
			code, body := getPage(t, srv.URL, c.path)
			if code != c.code {
				t.Fatalf("HTTP %d, want %d:\n%s", code, c.code, body)
			}
			for _, want := range c.contains {
				if !strings.Contains(body, want) {
					t.Errorf("no %q in:\n%s", want, body)
				}
			}
		})
	}
}

// TestWebViewEscapesWhatSourcesSay: names and facts come from scans and
// plugins, that is from whoever controls the network.
func TestWebViewEscapesWhatSourcesSay(t *testing.T) {
	srv, st, now := newServer(t, false)
	const evil = `<script>alert("x")</script>`
	err := st.Update(context.Background(), func(tx *store.Txn) error {
		a := &model.Asset{ID: "evil", Tenant: model.DefaultTenant, Status: "up", Hostnames: []string{evil},
			Addresses: []sdk.Address{{Addr: "127.0.0.9", Type: "ipv4"}}, Facts: map[string]string{"sys_descr": `<img src=x onerror=alert(1)>`},
			Services: []model.Service{{Protocol: "tcp", Port: 80, State: "open", Product: evil, Address: "127.0.0.9"}}}
		if err := tx.PutAsset(a, nil); err != nil {
			return err
		}
		return tx.PutDeviation(&model.Deviation{ID: "devil", Tenant: model.DefaultTenant, Rule: evil, Kind: model.KindUnexpectedPort,
			Severity: model.SeverityCritical, State: model.StateOpen, AssetID: "evil", Host: "127.0.0.9", Detail: evil, OpenedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/ui/", "/ui/assets", "/ui/assets/evil"} {
		_, body := getPage(t, srv.URL, path)
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s renders markup from a source:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%s does not show the name as text:\n%s", path, body)
		}
	}
	if _, body := getPage(t, srv.URL, "/ui/assets/evil"); !strings.Contains(body, "<td>127.0.0.9</td><td>tcp/80</td>") {
		t.Errorf("the asset page does not say which address a port is open on:\n%s", body)
	}
}

func TestWebAcknowledge(t *testing.T) {
	srv, _, _ := newServer(t, false)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	form := url.Values{"author": {"alice"}, "comment": {"change 4711"}, "for": {"24h"}, "back": {"/ui/?severity=critical"}}

	if resp := post("/ui/deviations/d1/ack", form, "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin post: HTTP %d", resp.StatusCode)
	}
	resp := post("/ui/deviations/d1/ack", form, srv.URL)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/?") || !strings.Contains(loc, "flash=acknowledged") {
		t.Fatalf("ack: HTTP %d to %q", resp.StatusCode, loc)
	}
	_, body := getPage(t, srv.URL, "/v1/deviations/d1")
	if !strings.Contains(body, `"state":"acknowledged"`) || !strings.Contains(body, `"by":"alice"`) || !strings.Contains(body, `"until"`) {
		t.Fatalf("after the button: %s", body)
	}
	// No author: the page says why, nothing changes.
	resp = post("/ui/deviations/d2/ack", url.Values{"comment": {"x"}}, srv.URL)
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=author+and+comment") {
		t.Fatalf("missing author: %q", loc)
	}
	// A back link elsewhere is not followed.
	resp = post("/ui/deviations/d1/unack", url.Values{"back": {"https://evil.example/"}}, srv.URL)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/ui/?flash=") {
		t.Fatalf("unack redirect %q", loc)
	}
	_, body = getPage(t, srv.URL, "/v1/deviations/d1")
	if !strings.Contains(body, `"state":"open"`) {
		t.Fatalf("after unack: %s", body)
	}
}

func TestWebPagination(t *testing.T) {
	srv, st, now := newServer(t, false)
	err := st.Update(context.Background(), func(tx *store.Txn) error {
		for i := range 120 {
			if err := tx.PutDeviation(&model.Deviation{ID: fmt.Sprintf("p%03d", i), Tenant: model.DefaultTenant, Rule: "r", Kind: model.KindUnexpectedPort,
				Severity: model.SeverityInfo, State: model.StateOpen, AssetID: "a0", Host: "127.0.0.1", Protocol: "tcp", Port: uint16(1000 + i),
				Detail: fmt.Sprintf("port-%d", 1000+i), OpenedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, first := getPage(t, srv.URL, "/ui/?severity=info")
	_, third := getPage(t, srv.URL, "/ui/?severity=info&page=3")
	if !strings.Contains(first, "page 1 of 3") || !strings.Contains(first, `rel="next"`) || strings.Count(first, `class="sev-info"`) != pageSize {
		t.Fatalf("first page:\n%s", first)
	}
	if !strings.Contains(third, "page 3 of 3") || strings.Count(third, `class="sev-info"`) != 20 || strings.Contains(third, `rel="next"`) {
		t.Fatalf("third page:\n%s", third)
	}
}

// TestWebFactsSayWhereTheyCameFrom: the asset page names, beside each
// fact, the source and job of the run that set it.
func TestWebFactsSayWhereTheyCameFrom(t *testing.T) {
	srv, st, now := newServer(t, false)
	err := st.Update(context.Background(), func(tx *store.Txn) error {
		a := model.Asset{ID: "sw1", Tenant: model.DefaultTenant, Status: "up", Version: 1,
			Addresses: []sdk.Address{{Addr: "127.0.0.8", Type: "ipv4"}}, Facts: map[string]string{"sys_name": "core-sw1"}}
		return tx.PutVersion(nil, &model.Version{AssetID: "sw1", Version: 1, Time: now, Source: "snmp", Job: "switches",
			Changes: []model.Change{{Field: "asset", To: "discovered"}, {Field: "fact", Key: "sys_name", To: "core-sw1"}}, Asset: a})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, body := getPage(t, srv.URL, "/ui/assets/sw1")
	if !strings.Contains(body, `<th>sys_name</th><td>core-sw1</td><td class="origin">snmp, job <a href="/ui/jobs/switches">switches</a>, <time`) {
		t.Fatalf("the fact does not say where it came from:\n%s", body)
	}
}
