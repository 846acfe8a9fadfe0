package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

type fakeJobs struct{ running map[string]bool }

func (f fakeJobs) Jobs() []JobInfo {
	return []JobInfo{{Name: "lo", Source: "nmap", Schedule: "@every 1m", Tenant: model.DefaultTenant}}
}

func (f fakeJobs) RunNow(_ context.Context, name string) error {
	if name != "lo" {
		return fmt.Errorf("%w %q", ErrUnknownJob, name)
	}
	if f.running[name] {
		return ErrAlreadyRunning
	}
	return nil
}

func (f fakeJobs) Import(context.Context, string, io.Reader) (model.Run, error) {
	return model.Run{}, ErrNotImportable
}

func newServer(t *testing.T, running bool) (*httptest.Server, *store.Store, time.Time) {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	err = st.Update(context.Background(), func(tx *store.Txn) error {
		for i, ip := range []string{"127.0.0.1", "127.0.0.2"} {
			a := &model.Asset{ID: fmt.Sprintf("a%d", i), Tenant: model.DefaultTenant, Status: "up", LastScanned: now.Add(-time.Minute),
				Addresses: []sdk.Address{{Addr: ip, Type: "ipv4"}}}
			if err := tx.PutAsset(a, nil); err != nil {
				return err
			}
		}
		for _, d := range []model.Deviation{
			{ID: "d1", Tenant: model.DefaultTenant, Rule: "r", Kind: model.KindUnexpectedPort, Severity: model.SeverityCritical, State: model.StateOpen, AssetID: "a0", Host: "127.0.0.1", Protocol: "tcp", Port: 8080, OpenedAt: now},
			{ID: "d2", Tenant: model.DefaultTenant, Rule: "r", Kind: model.KindUnknownHost, Severity: model.SeverityWarning, State: model.StateOpen, AssetID: "a1", Host: "127.0.0.2", OpenedAt: now},
			{ID: "d3", Tenant: model.DefaultTenant, Rule: "r", Kind: model.KindUnexpectedPort, Severity: model.SeverityCritical, State: model.StateResolved, AssetID: "a1", Host: "127.0.0.2", Port: 9, OpenedAt: now},
		} {
			if err := tx.PutDeviation(&d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	acks := &ingest.Applier{Store: st, Now: func() time.Time { return now },
		Route: func(*sdk.Event) []string { return []string{"hook"} }}
	h, err := New(Options{Store: st, Jobs: fakeJobs{running: map[string]bool{"lo": running}}, Acks: acks,
		ChatToken: "chat-t0ken", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, st, now
}

func TestRoutes(t *testing.T) {
	srv, _, _ := newServer(t, false)
	cases := []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/healthz", 200, `"status":"ok"`},
		{"GET", "/v1/assets", 200, `"127.0.0.2"`},
		{"GET", "/v1/assets?host=127.0.0.2", 200, `"a1"`},
		{"GET", "/v1/assets?host=bogus", 400, "host must be"},
		{"GET", "/v1/assets/127.0.0.1", 200, `"a0"`},
		{"GET", "/v1/assets/a1", 200, `"127.0.0.2"`},
		{"GET", "/v1/assets/nope", 404, "not found"},
		{"GET", "/v1/assets/a0/history", 200, `[]`},
		{"GET", "/v1/deviations", 200, `"d2"`},
		{"GET", "/v1/deviations?severity=critical", 200, `"d1"`},
		{"GET", "/v1/deviations?state=resolved", 200, `"d3"`},
		{"GET", "/v1/deviations?state=bogus", 400, "state must be"},
		{"GET", "/v1/deviations?host=127.0.0.2&kind=unknown_host", 200, `"d2"`},
		{"GET", "/v1/deviations/d1", 200, `"tcp"`},
		{"GET", "/v1/jobs", 200, `"lo"`},
		{"GET", "/v1/jobs/lo/runs", 200, `[]`},
		{"GET", "/v1/jobs/nope/runs", 404, "unknown job"},
		{"POST", "/v1/jobs/lo/run", 202, "started"},
		{"POST", "/v1/jobs/nope/run", 404, "unknown job"},
		{"GET", "/v1/check", 503, "SOLLWERT CRITICAL - 1 critical, 1 warning deviations"},
		{"GET", "/v1/check?host=127.0.0.2", 200, "SOLLWERT WARNING"},
		{"GET", "/v1/check?host=127.0.0.3", 200, "SOLLWERT OK"},
		{"GET", "/v1/check?max_age=bogus", 400, "SOLLWERT UNKNOWN"},
		{"GET", "/v1/check?critical=critical=1", 200, "SOLLWERT OK"},
		{"GET", "/v1/check?warning=total=1&critical=critical=1", 200, "SOLLWERT WARNING"},
		{"GET", "/v1/check?critical=severe=1", 400, "is not one of"},
		{"GET", "/v1/check?max_age=1s&stale_status=unknown", 503, "SOLLWERT UNKNOWN - no successful scan yet"},
		{"DELETE", "/v1/deviations/d1", 405, ""},
		{"DELETE", "/v1/deviations/d2/ack", 409, "not acknowledged"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 4096)
			for {
				n, err := resp.Body.Read(buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if resp.StatusCode != c.code || !strings.Contains(b.String(), c.contains) {
				t.Fatalf("HTTP %d (want %d), body:\n%s\nwant it to contain %q", resp.StatusCode, c.code, b.String(), c.contains)
			}
		})
	}
}

func TestRunNowWhileRunningConflicts(t *testing.T) {
	srv, _, _ := newServer(t, true)
	resp, err := http.Post(srv.URL+"/v1/jobs/lo/run", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
}

func TestCheckHeadersCarryTheVerdict(t *testing.T) {
	srv, _, _ := newServer(t, false)
	resp, err := http.Get(srv.URL + "/v1/check?rule=r&host=127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get(HeaderCheckStatus) != "2" || resp.Header.Get(HeaderCheckState) != "CRITICAL" {
		t.Fatalf("headers %v", resp.Header)
	}
	var devs []model.Deviation
	r2, _ := http.Get(srv.URL + "/v1/deviations?state=all")
	json.NewDecoder(r2.Body).Decode(&devs)
	r2.Body.Close()
	if len(devs) != 3 {
		t.Fatalf("state=all: %d deviations", len(devs))
	}
}

func TestAcknowledge(t *testing.T) {
	srv, st, now := newServer(t, false)
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, path, body string
		code             int
		contains         string
	}{
		{"no comment", "/v1/deviations/d1/ack", `{"author": "ops"}`, 400, "author and comment are required"},
		{"bad duration", "/v1/deviations/d1/ack", `{"author": "ops", "comment": "x", "for": "a while"}`, 400, "is not a duration"},
		{"in the past", "/v1/deviations/d1/ack", `{"author": "ops", "comment": "x", "until": "2020-01-01T00:00:00Z"}`, 400, "already have ended"},
		{"unknown field", "/v1/deviations/d1/ack", `{"author": "ops", "comment": "x", "by": "y"}`, 400, "unknown field"},
		{"unknown deviation", "/v1/deviations/nope/ack", `{"author": "ops", "comment": "x"}`, 404, "not found"},
		{"resolved", "/v1/deviations/d3/ack", `{"author": "ops", "comment": "x"}`, 409, "resolved"},
		{"acknowledged for a day", "/v1/deviations/d1/ack", `{"author": "ops", "comment": "change 4711", "for": "24h"}`, 200, `"state":"acknowledged"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := post(c.path, c.body)
			if code != c.code || !strings.Contains(body, c.contains) {
				t.Fatalf("HTTP %d %s; want %d containing %q", code, body, c.code, c.contains)
			}
		})
	}
	var d *model.Deviation
	var queued []store.Queued
	if err := st.View(context.Background(), func(tx *store.Txn) error {
		var err error
		if d, err = tx.Deviation(model.DefaultTenant, "d1"); err != nil {
			return err
		}
		queued, err = tx.Queue("hook", 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if d.Ack == nil || d.Ack.By != "ops" || d.Ack.Until == nil || !d.Ack.Until.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("ack %+v", d.Ack)
	}
	if len(queued) != 1 || queued[0].Event.Kind != sdk.EventAcknowledged || queued[0].Event.Deviation.AckedBy != "ops" {
		t.Fatalf("queued %+v", queued)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/deviations/d1/ack", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("un-acknowledge: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestSlashCommand(t *testing.T) {
	srv, _, _ := newServer(t, false)
	cmd := func(token, text string) (int, map[string]string) {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/v1/chat/command", url.Values{"token": {token}, "text": {text}, "user_name": {"bob"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	cases := []struct {
		name, token, text string
		code              int
		kind, contains    string
	}{
		{"missing token", "", "status", 401, "", "invalid slash-command token"},
		{"forged token", "chat-t0keN", "status", 401, "", "invalid slash-command token"},
		{"status", "chat-t0ken", "status", 200, "in_channel", "1 critical, 1 warning, 0 info open; 0 acknowledged"},
		{"list", "chat-t0ken", "list", 200, "ephemeral", "`d1` **CRITICAL** 127.0.0.1 tcp/8080"},
		{"list a host", "chat-t0ken", "list 127.0.0.2", 200, "ephemeral", "`d2`"},
		{"ack", "chat-t0ken", "ack d2 4h planned rollout", 200, "in_channel", "bob acknowledged `d2` 127.0.0.2 until 2026-01-01T16:00:00Z: planned rollout"},
		{"ack a resolved one", "chat-t0ken", "ack d3", 200, "ephemeral", "Cannot acknowledge `d3`: the deviation is resolved"},
		{"unknown", "chat-t0ken", "reboot", 200, "ephemeral", "Unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := cmd(c.token, c.text)
			text := out["text"] + out["error"]
			if code != c.code || out["response_type"] != c.kind || !strings.Contains(text, c.contains) {
				t.Fatalf("HTTP %d %v; want %d %s containing %q", code, out, c.code, c.kind, c.contains)
			}
		})
	}
}

// TestWriteAssetsJoinsItsParts: a list encoded in parts reads back as
// the one list encoding/json writes, whatever the number of parts.
func TestWriteAssetsJoinsItsParts(t *testing.T) {
	for _, n := range []int{0, 1, 2047, 4096, 10001} {
		as := make([]model.Asset, n)
		for i := range as {
			as[i] = model.Asset{ID: fmt.Sprintf("a%d", i), Status: "up", Version: uint64(i)}
		}
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		rec := httptest.NewRecorder()
		writeAssets(rec, as, order)
		want := httptest.NewRecorder()
		writeJSON(want, http.StatusOK, as)
		if rec.Body.String() != want.Body.String() {
			t.Fatalf("%d assets: the parts differ from encoding/json's list\n%.300s\n%.300s", n, rec.Body.String(), want.Body.String())
		}
	}
}
