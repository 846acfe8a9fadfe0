package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func event(id, kind string) sdk.Event {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	return sdk.Event{ID: id, Kind: kind, Time: t0, Tenant: "default", Deviation: sdk.DeviationEvent{
		ID: "dev1", Rule: "dmz", Kind: "unexpected_port", Severity: "critical", State: "open", Host: "198.18.0.5",
		Protocol: sdk.TCP, Port: 23, Detail: "tcp/23 (telnet) is open but not allowed by rule \"dmz\"", FirstSeen: t0,
	}}
}

type receiver struct {
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	statuses map[string]int // by event id: the answer to give
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.headers = append(r.headers, req.Header.Clone())
	code := r.statuses[req.Header.Get(EventHeader)]
	r.mu.Unlock()
	if code == 0 {
		code = http.StatusNoContent
	}
	w.WriteHeader(code)
}

func TestJSONIsSignedAndAckedPerEvent(t *testing.T) {
	rcv := &receiver{statuses: map[string]int{"e-busy": 503, "e-bad": 400, "e-slow": 429}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	secret := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(secret, []byte("hmac-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"url": srv.URL + "/hook", "secret_file": secret})
	events := []sdk.Event{event("e-ok", sdk.EventOpened), event("e-busy", sdk.EventOpened), event("e-bad", sdk.EventOpened), event("e-slow", sdk.EventResolved)}
	acks, err := New(nil).Deliver(context.Background(), sdk.DeliverRequest{Config: cfg, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sdk.Ack{
		"e-ok":   {EventID: "e-ok", Delivered: true},
		"e-busy": {EventID: "e-busy", Error: "HTTP 503"},
		"e-bad":  {EventID: "e-bad", Error: "HTTP 400", Permanent: true},
		"e-slow": {EventID: "e-slow", Error: "HTTP 429"},
	}
	for _, a := range acks {
		w := want[a.EventID]
		if a.Delivered != w.Delivered || a.Permanent != w.Permanent || a.Error != w.Error {
			t.Errorf("ack %+v, want %+v", a, w)
		}
	}
	if len(rcv.bodies) != 4 {
		t.Fatalf("%d requests", len(rcv.bodies))
	}
	for i, b := range rcv.bodies {
		if got := rcv.headers[i].Get(SignatureHeader); got != Sign([]byte("hmac-key"), b) {
			t.Errorf("signature %q does not sign the body", got)
		}
		var ev sdk.Event
		if err := json.Unmarshal(b, &ev); err != nil || ev.ID != rcv.headers[i].Get(EventHeader) || ev.Deviation.Port != 23 {
			t.Errorf("body %s: %v", b, err)
		}
	}
}

func TestMattermostText(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	cfg, _ := json.Marshal(map[string]any{"url": srv.URL + "/hooks/xyz-token", "format": "mattermost", "api_url": "http://127.0.0.1:7400"})
	if _, err := New(nil).Deliver(context.Background(), sdk.DeliverRequest{Config: cfg, Events: []sdk.Event{event("e1", sdk.EventOpened)}}); err != nil {
		t.Fatal(err)
	}
	var msg map[string]string
	if err := json.Unmarshal(rcv.bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	want := ":red_circle: **CRITICAL** opened `198.18.0.5 tcp/23` — tcp/23 (telnet) is open but not allowed by rule \"dmz\" (rule `dmz`, unexpected_port, since 2026-11-24T12:00:00Z) [details](http://127.0.0.1:7400/v1/deviations/dev1)"
	if msg["text"] != want {
		t.Fatalf("text\n got %s\nwant %s", msg["text"], want)
	}
}

func TestUnreachableIsRetriedAndHidesTheURLPath(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hooks/secret-token"
	srv.Close()
	cfg, _ := json.Marshal(map[string]any{"url": url, "timeout": "2s"})
	acks, err := New(nil).Deliver(context.Background(), sdk.DeliverRequest{Config: cfg, Events: []sdk.Event{event("e1", sdk.EventOpened)}})
	if err != nil || len(acks) != 1 || acks[0].Delivered || acks[0].Permanent || acks[0].Error == "" {
		t.Fatalf("acks %+v, %v", acks, err)
	}
	if strings.Contains(acks[0].Error, "secret-token") {
		t.Fatalf("the error shows the webhook's token: %s", acks[0].Error)
	}
}

func TestValidate(t *testing.T) {
	for cfg, field := range map[string]string{
		`{}`:                 "url",
		`{"url": "ftp://x"}`: "url",
		`{"url": "http://127.0.0.1", "format": "xml"}`:                    "format",
		`{"url": "http://127.0.0.1", "secret_env": "SOLLWERT_UNSET_VAR"}`: "secret_env",
		`{"url": "http://127.0.0.1", "token": "x"}`:                       "token",
	} {
		err := New(nil).Validate(context.Background(), json.RawMessage(cfg))
		verr, ok := err.(*sdk.ValidationError)
		if !ok || verr.Fields[0].Field != field {
			t.Errorf("%s: %v, want a field error on %s", cfg, err, field)
		}
	}
}
