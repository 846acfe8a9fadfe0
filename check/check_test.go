package check

import (
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
)

func dev(sev model.Severity, state model.State, port uint16) model.Deviation {
	return model.Deviation{ID: "id", Rule: "r", Kind: model.KindUnexpectedPort, Severity: sev, State: state, Host: "127.0.0.1", Protocol: "tcp", Port: port, Detail: "x|y"}
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name       string
		in         Input
		want       Status
		wantInLine []string
	}{
		{"no deviations is OK", Input{Assets: 3, LastScan: now.Add(-time.Minute), Now: now}, OK,
			[]string{"SOLLWERT OK - no open deviations on 3 assets", "'assets'=3;;;0", "'last_scan_age'=60s;;;0"}},
		{"a critical deviation is CRITICAL and named", Input{Deviations: []model.Deviation{dev(model.SeverityCritical, model.StateOpen, 8081)}, Now: now}, Critical,
			[]string{"1 critical, 0 warning deviations: unexpected_port 127.0.0.1 tcp/8081 (r)", "'critical'=1;;;0"}},
		{"a warning is WARNING", Input{Deviations: []model.Deviation{dev(model.SeverityWarning, model.StateOpen, 1)}, Now: now}, Warning,
			[]string{"0 critical, 1 warning"}},
		{"info alone stays OK", Input{Deviations: []model.Deviation{dev(model.SeverityInfo, model.StateOpen, 1)}, Now: now}, OK,
			[]string{"'info'=1;;;0"}},
		{"acknowledged does not alert", Input{Deviations: []model.Deviation{dev(model.SeverityCritical, model.StateAcknowledged, 1)}, Now: now}, OK,
			[]string{"'acknowledged'=1;;;0"}},
		{"stale data is CRITICAL", Input{LastScan: now.Add(-2 * time.Hour), MaxAge: time.Hour, Now: now}, Critical,
			[]string{"last successful scan 2h0m0s ago is older than 1h0m0s"}},
		{"no scan with max age is CRITICAL", Input{MaxAge: time.Hour, Now: now}, Critical,
			[]string{"no successful scan yet", "'last_scan_age'=U;;;0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Evaluate(c.in)
			out := r.String()
			if r.Status != c.want {
				t.Fatalf("status %s, want %s\n%s", r.Status, c.want, out)
			}
			first := strings.SplitN(out, "\n", 2)[0]
			for _, w := range c.wantInLine {
				if !strings.Contains(first, w) {
					t.Errorf("status line %q lacks %q", first, w)
				}
			}
			if strings.Count(first, "|") != 1 {
				t.Errorf("status line must hold exactly one '|': %q", first)
			}
		})
	}
}

// TestCountsJudgeALargeSelection: counted from an index, listed in part.
func TestCountsJudgeALargeSelection(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	listed := []model.Deviation{
		{ID: "a", Rule: "dmz", Kind: model.KindUnexpectedPort, Severity: model.SeverityCritical, State: model.StateOpen, Host: "198.18.0.1", Protocol: "tcp", Port: 23, Detail: "telnet", OpenedAt: now},
		{ID: "b", Rule: "dmz", Kind: model.KindUnexpectedPort, Severity: model.SeverityCritical, State: model.StateOpen, Host: "198.18.0.2", Protocol: "tcp", Port: 23, Detail: "telnet", OpenedAt: now},
	}
	r := Evaluate(Input{Deviations: listed, Now: now, Assets: 100000,
		Counts: &Counts{Open: map[model.Severity]int{model.SeverityCritical: 5000, model.SeverityWarning: 7}, Acked: 3}})
	out := r.String()
	for _, want := range []string{"SOLLWERT CRITICAL - 5000 critical, 7 warning deviations: unexpected_port 198.18.0.1 tcp/23 (dmz), unexpected_port 198.18.0.2 tcp/23 (dmz), and 5005 more",
		"'critical'=5000;;;0", "'acknowledged'=3;;;0", "... and 5008 more deviations"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if r.Status != Critical {
		t.Fatalf("status %v", r.Status)
	}
}
