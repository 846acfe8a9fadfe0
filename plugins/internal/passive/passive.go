// Package passive turns a deviation event into the passive check result
// that Icinga 2 and Nagios show for it: one state, one line of output and
// performance data, for a service per (host, rule) or per host. The
// icinga2 and nagios sinks word results alike because both use it.
package passive

import (
	"fmt"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// Scope says what one monitoring service stands for.
type Scope string

const (
	// PerRule is a service per (host, rule).
	PerRule Scope = "per_rule"
	// PerHost is one service per host over all its rules.
	PerHost Scope = "per_host"
)

// Monitoring Plugins states.
const (
	OK       = 0
	Warning  = 1
	Critical = 2
)

var labels = [...]string{OK: "OK", Warning: "WARNING", Critical: "CRITICAL"}

// Result is one passive check result.
type Result struct {
	State  int
	Output string
	// Perf holds performance data items, 'label'=value;warn;crit;min.
	Perf []string
}

// Service names the service that shows ev: "PREFIX RULE" per rule,
// "PREFIX" per host.
func Service(ev *sdk.Event, scope Scope, prefix string) string {
	if scope == PerHost {
		return prefix
	}
	return prefix + " " + ev.Deviation.Rule
}

// Of is what the service shows after ev: the worst severity of the
// deviations still active in its scope (info counts as OK, to be read,
// not alerted), so resolving one deviation of two keeps it red.
func Of(ev *sdk.Event, scope Scope) Result {
	d := &ev.Deviation
	active, worst, what := d.RuleActive, d.RuleWorst, "rule "+d.Rule
	if scope == PerHost {
		active, worst, what = d.HostActive, d.HostWorst, "host "+d.Host
	}
	r := Result{State: OK, Perf: []string{fmt.Sprintf("'active'=%d;;;0", active)}}
	switch {
	case active == 0:
		r.Output = fmt.Sprintf("OK: no active deviations (%s)", what)
		if ev.Kind == sdk.EventResolved {
			r.Output += "; resolved: " + d.Detail
		}
		return r
	case worst == "critical":
		r.State = Critical
	case worst == "warning":
		r.State = Warning
	}
	label := labels[r.State]
	switch {
	case ev.Kind == sdk.EventResolved:
		r.Output = fmt.Sprintf("%s: %s (%s); resolved: %s", label, deviations(active), what, d.Detail)
	case active == 1:
		r.Output = fmt.Sprintf("%s: %s", label, d.Detail)
	default:
		r.Output = fmt.Sprintf("%s: %s (%s); latest: %s", label, deviations(active), what, d.Detail)
	}
	if d.AckedBy != "" && d.State == "acknowledged" {
		r.Output += fmt.Sprintf(" [acknowledged by %s: %s]", d.AckedBy, d.AckComment)
	}
	return r
}

func deviations(n int) string {
	if n == 1 {
		return "1 active deviation"
	}
	return fmt.Sprintf("%d active deviations", n)
}

// OneLine keeps s on one line, without the characters that end a
// command-file field (;) or start performance data (|), and at most max
// bytes long.
func OneLine(s string, max int) string {
	s = strings.NewReplacer("\n", " ", "\r", " ", "|", "/", ";", ",").Replace(s)
	if len(s) > max {
		s = s[:max]
	}
	return s
}
