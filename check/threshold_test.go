package check

import (
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
)

func TestRanges(t *testing.T) {
	cases := []struct {
		spec   string
		alerts []float64
		quiet  []float64
	}{
		{"10", []float64{-1, 11}, []float64{0, 10}},
		{"10:", []float64{9}, []float64{10, 1e9}},
		{"~:10", []float64{11}, []float64{-1e9, 10}},
		{"10:20", []float64{9, 21}, []float64{10, 20}},
		{"@10:20", []float64{10, 15, 20}, []float64{9, 21}},
		{"0", []float64{1}, []float64{0}},
	}
	for _, c := range cases {
		r, err := ParseRange(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		for _, v := range c.alerts {
			if !r.Alert(v) {
				t.Errorf("%s: %v should alert", c.spec, v)
			}
		}
		for _, v := range c.quiet {
			if r.Alert(v) {
				t.Errorf("%s: %v should not alert", c.spec, v)
			}
		}
	}
	for _, bad := range []string{"", "abc", "20:10", "1:x", "@"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseThresholds("severe=1"); err == nil || !strings.Contains(err.Error(), "is not one of") {
		t.Errorf("unknown count: %v", err)
	}
}

func TestThresholdsJudgeCounts(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	devs := func(crit, warn int) []model.Deviation {
		var out []model.Deviation
		for i := 0; i < crit; i++ {
			out = append(out, model.Deviation{ID: "c", Severity: model.SeverityCritical, State: model.StateOpen, Host: "198.18.0.1"})
		}
		for i := 0; i < warn; i++ {
			out = append(out, model.Deviation{ID: "w", Severity: model.SeverityWarning, State: model.StateOpen, Host: "198.18.0.1"})
		}
		return out
	}
	th := func(s string) Thresholds {
		x, err := ParseThresholds(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	cases := []struct {
		name       string
		crit, warn int
		w, c       string
		want       Status
	}{
		{"default: any critical", 1, 0, "", "", Critical},
		{"tolerate two criticals", 2, 0, "critical=1", "critical=2", Warning},
		{"three criticals", 3, 0, "critical=1", "critical=2", Critical},
		{"total over five", 0, 6, "5", "10", Warning},
		{"total over ten", 4, 7, "5", "10", Critical},
		{"warnings do not count when only criticals are judged", 0, 50, "critical=0", "critical=0", OK},
	}
	for _, c := range cases {
		r := Evaluate(Input{Deviations: devs(c.crit, c.warn), Warn: th(c.w), Crit: th(c.c), Now: now})
		if r.Status != c.want {
			t.Errorf("%s: %s, want %s (%s)", c.name, r.Status, c.want, r)
		}
	}
	r := Evaluate(Input{Deviations: devs(1, 0), Warn: th("critical=1,5"), Crit: th("critical=2"), Now: now})
	if !strings.Contains(r.String(), "'critical'=1;1;2;0") || !strings.Contains(r.String(), "'total'=1;5;;0") {
		t.Errorf("perfdata: %s", r)
	}
	r = Evaluate(Input{MaxAge: time.Hour, StaleStatus: Unknown, LastScan: now.Add(-2 * time.Hour), Now: now})
	if r.Status != Unknown {
		t.Errorf("stale as unknown: %s", r)
	}
}
