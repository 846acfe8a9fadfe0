package icinga2

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/internal/testicinga2"
	"github.com/sollwert/sollwert/sdk"
)

const detail = `tcp/23 (telnet) is open but not allowed by rule "dmz"`

func config(t testing.TB, ic *testicinga2.Icinga, extra map[string]any) json.RawMessage {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "icinga.pass")
	if err := os.WriteFile(pw, []byte(testicinga2.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"url": ic.URL, "user": testicinga2.User, "password_file": pw, "ca_file": ic.CAFile,
		"server_name": testicinga2.NodeName}
	for k, v := range extra {
		c[k] = v
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func event(kind, host string, active int, worst string) sdk.Event {
	state := "open"
	switch kind {
	case sdk.EventAcknowledged:
		state = "acknowledged"
	case sdk.EventResolved:
		state = "resolved"
	}
	return sdk.Event{ID: kind + host, Kind: kind, Time: time.Now(), Tenant: "default", Deviation: sdk.DeviationEvent{
		ID: "d1", Rule: "dmz", Kind: "unexpected_port", Host: host, Detail: detail, Severity: "critical", State: state,
		AckedBy: "alice", AckComment: "change 4711", RuleActive: active, RuleWorst: worst, HostActive: active, HostWorst: worst,
	}}
}

func deliver(t *testing.T, s *Sink, cfg json.RawMessage, evs ...sdk.Event) []sdk.Ack {
	t.Helper()
	acks, err := s.Deliver(context.Background(), sdk.DeliverRequest{Config: cfg, Events: evs})
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if len(acks) != len(evs) {
		t.Fatalf("%d acks for %d events", len(acks), len(evs))
	}
	return acks
}

func mustDeliver(t *testing.T, s *Sink, cfg json.RawMessage, evs ...sdk.Event) {
	t.Helper()
	for i, a := range deliver(t, s, cfg, evs...) {
		if !a.Delivered || a.EventID != evs[i].ID {
			t.Fatalf("event %s: %+v", evs[i].ID, a)
		}
	}
}

// TestIcingaShowsTheDeviationsLifecycle: against the real Icinga 2, the
// sink creates the objects, the service turns CRITICAL with sollwert's
// output, shows the acknowledgement, and goes OK on resolve.
func TestIcingaShowsTheDeviationsLifecycle(t *testing.T) {
	ic := testicinga2.Start(t, "")
	s := New(nil)
	cfg := config(t, ic, map[string]any{"create_objects": true})
	const host, svc = "198.18.0.5", "sollwert dmz"

	mustDeliver(t, s, cfg, event(sdk.EventOpened, host, 1, "critical"))
	got, ok := ic.Service(t, host, svc)
	if !ok || got.State != 2 || got.LastCheckResult == nil || got.LastCheckResult.Output != "CRITICAL: "+detail ||
		got.LastCheckResult.CheckSource != "sollwert" || strings.Join(got.LastCheckResult.PerformanceData, " ") != "'active'=1;;;0" {
		t.Fatalf("after open: %v %+v %+v", ok, got, got.LastCheckResult)
	}

	mustDeliver(t, s, cfg, event(sdk.EventAcknowledged, host, 1, "critical"))
	if got, _ := ic.Service(t, host, svc); got.Acknowledgement == 0 || got.State != 2 {
		t.Fatalf("after ack: %+v", got)
	}
	// Delivered twice (a retry after a lost answer): still fine.
	mustDeliver(t, s, cfg, event(sdk.EventAcknowledged, host, 1, "critical"))

	mustDeliver(t, s, cfg, event(sdk.EventResolved, host, 0, ""))
	got, _ = ic.Service(t, host, svc)
	if got.State != 0 || got.Acknowledgement != 0 || !strings.HasPrefix(got.LastCheckResult.Output, "OK: no active deviations") {
		t.Fatalf("after resolve: %+v %+v", got, got.LastCheckResult)
	}
}

// TestServicePerHostFoundByAddress: an Icinga host named by its FQDN
// whose address is the deviation's gets the one service "sollwert", which
// stays red while any deviation of the host is active.
func TestServicePerHostFoundByAddress(t *testing.T) {
	ic := testicinga2.Start(t, `object Host "web01.example.org" {
  address = "198.18.0.9"
  check_command = "dummy"
  enable_active_checks = false
}`)
	s := New(nil)
	cfg := config(t, ic, map[string]any{"create_objects": true, "services": "per_host", "host_lookup": "address"})
	second := event(sdk.EventOpened, "198.18.0.9", 2, "critical")
	second.ID, second.Deviation.Rule, second.Deviation.Severity = "second", "other", "warning"
	mustDeliver(t, s, cfg, event(sdk.EventOpened, "198.18.0.9", 1, "critical"), second)
	got, ok := ic.Service(t, "web01.example.org", "sollwert")
	if !ok || got.State != 2 || !strings.HasPrefix(got.LastCheckResult.Output, "CRITICAL: 2 active deviations (host 198.18.0.9)") {
		t.Fatalf("per host: %v %+v %+v", ok, got, got.LastCheckResult)
	}
	if _, ok := ic.Service(t, "198.18.0.9", "sollwert"); ok {
		t.Fatal("a host named by the address was created although one with that address exists")
	}
	resolved := event(sdk.EventResolved, "198.18.0.9", 1, "warning")
	mustDeliver(t, s, cfg, resolved)
	if got, _ := ic.Service(t, "web01.example.org", "sollwert"); got.State != 1 {
		t.Fatalf("one of two resolved: %+v", got)
	}
}

// TestMissingObjectsAndBadPasswordAreRetried: neither is the event's
// fault, so neither is a dead letter; the password never shows.
func TestMissingObjectsAndBadPasswordAreRetried(t *testing.T) {
	ic := testicinga2.Start(t, "")
	s := New(nil)
	acks := deliver(t, s, config(t, ic, nil), event(sdk.EventOpened, "198.18.0.7", 1, "critical"))
	if acks[0].Delivered || acks[0].Permanent || !strings.Contains(acks[0].Error, `no service "198.18.0.7!sollwert dmz"`) {
		t.Fatalf("missing object: %+v", acks[0])
	}
	t.Setenv("ICINGA_PW", "wrong-password-xyz")
	bad := config(t, ic, map[string]any{"password_file": "", "password_env": "ICINGA_PW"})
	acks = deliver(t, s, bad, event(sdk.EventOpened, "198.18.0.7", 1, "critical"))
	if acks[0].Delivered || acks[0].Permanent || !strings.Contains(acks[0].Error, "HTTP 401") || strings.Contains(acks[0].Error, "wrong-password-xyz") {
		t.Fatalf("bad password: %+v", acks[0])
	}
	// A CA that did not sign Icinga's certificate: refused, not trusted.
	other := testicinga2.Start(t, "")
	acks = deliver(t, s, config(t, ic, map[string]any{"ca_file": other.CAFile}), event(sdk.EventOpened, "198.18.0.7", 1, "critical"))
	if acks[0].Delivered || !strings.Contains(acks[0].Error, "certificate") {
		t.Fatalf("foreign CA: %+v", acks[0])
	}
}

// TestLaterEventsWaitForEarlierOnes: when the first event of a service
// fails, the next of the same service is not sent ahead of it.
func TestLaterEventsWaitForEarlierOnes(t *testing.T) {
	ic := testicinga2.Start(t, "")
	s := New(nil)
	cfg := config(t, ic, nil)
	acks := deliver(t, s, cfg, event(sdk.EventOpened, "198.18.0.7", 1, "critical"), event(sdk.EventResolved, "198.18.0.7", 0, ""))
	if acks[1].Delivered || !strings.Contains(acks[1].Error, "an earlier event of this service was not delivered") {
		t.Fatalf("second ack %+v", acks[1])
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]any{"url": "https://127.0.0.1:5665", "user": "u", "password_file": pw}
	for _, tc := range []struct {
		name  string
		set   map[string]any
		field string
	}{
		{"plain http is refused", map[string]any{"url": "http://127.0.0.1:5665"}, "url"},
		{"the user is required", map[string]any{"user": ""}, "user"},
		{"a password is required", map[string]any{"password_file": ""}, "password_file"},
		{"a missing password file", map[string]any{"password_file": "/nonexistent/pw"}, "password_file"},
		{"file and env together", map[string]any{"password_env": "HOME"}, "password_file"},
		{"an unknown service scope", map[string]any{"services": "per_port"}, "services"},
		{"a prefix with a bang", map[string]any{"service_prefix": "a!b"}, "service_prefix"},
		{"an unknown host lookup", map[string]any{"host_lookup": "dns"}, "host_lookup"},
		{"a bad resend", map[string]any{"resend": "often"}, "resend"},
		{"a zero timeout", map[string]any{"timeout": "0s"}, "timeout"},
		{"an unknown attribute", map[string]any{"pasword_file": pw}, "pasword_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := map[string]any{}
			for k, v := range base {
				c[k] = v
			}
			for k, v := range tc.set {
				c[k] = v
			}
			raw, _ := json.Marshal(c)
			err := New(nil).Validate(context.Background(), raw)
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			for _, f := range verr.Fields {
				if f.Field == tc.field {
					return
				}
			}
			t.Fatalf("no error on %q: %v", tc.field, err)
		})
	}
	raw, _ := json.Marshal(base)
	if err := New(nil).Validate(context.Background(), raw); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
