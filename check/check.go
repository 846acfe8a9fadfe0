// Package check turns deviations into a verdict in the Monitoring Plugins
// format: one status line with performance data, long output after it,
// and an exit status 0-3. The HTTP check endpoint and `sollwert check`
// both print what this package writes, so they can never disagree.
package check

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sollwert/sollwert/model"
)

// Status is a Monitoring Plugins exit status.
type Status int

// Exit statuses.
const (
	OK       Status = 0
	Warning  Status = 1
	Critical Status = 2
	Unknown  Status = 3
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warning:
		return "WARNING"
	case Critical:
		return "CRITICAL"
	}
	return "UNKNOWN"
}

// ParseStatus reads a status by name or number.
func ParseStatus(s string) (Status, bool) {
	for st := OK; st <= Unknown; st++ {
		if s == st.String() || s == fmt.Sprint(int(st)) {
			return st, true
		}
	}
	return Unknown, false
}

// Input is what a verdict is made from.
type Input struct {
	// Deviations are the active deviations in the check's selection.
	Deviations []model.Deviation
	Assets     int
	// LastScan is the newest successful scan in the selection (zero: none).
	LastScan time.Time
	// MaxAge, if set, makes data older than this CRITICAL: a scanner that
	// silently stopped is a security hole, not an unknown.
	MaxAge time.Duration
	// StaleStatus is the verdict for stale data (default Critical).
	StaleStatus Status
	// Warn and Crit, when set, judge the counts instead of the default
	// (any critical deviation is CRITICAL, any warning one WARNING).
	Warn, Crit Thresholds
	Now        time.Time
	// Counts, when set, count the whole selection, of which Deviations
	// is only the start: a selection of thousands is judged by its counts
	// and listed only in part (monitoring shows a few hundred lines).
	Counts *Counts
}

// Counts are the active deviations of a selection: the open ones by
// severity, and the acknowledged ones.
type Counts struct {
	Open  map[model.Severity]int
	Acked int
}

// Result is a verdict.
type Result struct {
	Status  Status
	Summary string
	Perf    []Perf
	Long    []string
}

// Perf is one performance data item.
type Perf struct {
	Label      string
	Value      string // number with unit of measure
	Warn, Crit string
	Min        string
}

func (p Perf) String() string {
	return fmt.Sprintf("'%s'=%s;%s;%s;%s", p.Label, p.Value, p.Warn, p.Crit, p.Min)
}

// Evaluate makes the verdict.
func Evaluate(in Input) Result {
	devs := append([]model.Deviation(nil), in.Deviations...)
	sort.SliceStable(devs, func(i, j int) bool {
		if a, b := devs[i].Severity.Rank(), devs[j].Severity.Rank(); a != b {
			return a > b
		}
		if devs[i].Host != devs[j].Host {
			return devs[i].Host < devs[j].Host
		}
		return devs[i].Port < devs[j].Port
	})
	counts := map[model.Severity]int{}
	acked := 0
	var alerting []model.Deviation
	for _, d := range devs {
		if d.State == model.StateAcknowledged {
			acked++
			continue
		}
		counts[d.Severity]++
		if d.Severity.Rank() >= model.SeverityWarning.Rank() {
			alerting = append(alerting, d)
		}
	}
	listed := len(devs)
	if in.Counts != nil {
		counts, acked = in.Counts.Open, in.Counts.Acked
	}
	total := acked
	for _, n := range counts {
		total += n
	}

	r := Result{Status: OK}
	values := map[string]int{
		"critical": counts[model.SeverityCritical], "warning": counts[model.SeverityWarning],
		"info": counts[model.SeverityInfo], "total": counts[model.SeverityCritical] + counts[model.SeverityWarning],
	}
	if len(in.Warn)+len(in.Crit) > 0 {
		for key, v := range values {
			if rg, ok := in.Crit[key]; ok && rg.Alert(float64(v)) {
				r.Status = Critical
			} else if rg, ok := in.Warn[key]; ok && rg.Alert(float64(v)) && r.Status < Warning {
				r.Status = Warning
			}
		}
	} else {
		switch {
		case counts[model.SeverityCritical] > 0:
			r.Status = Critical
		case counts[model.SeverityWarning] > 0:
			r.Status = Warning
		}
	}
	stale := in.StaleStatus
	if stale == OK {
		stale = Critical
	}
	var parts []string
	if len(alerting) > 0 {
		parts = append(parts, fmt.Sprintf("%d critical, %d warning deviations: %s", counts[model.SeverityCritical], counts[model.SeverityWarning],
			headline(alerting, 3, counts[model.SeverityCritical]+counts[model.SeverityWarning])))
	} else {
		parts = append(parts, fmt.Sprintf("no open deviations on %d assets", in.Assets))
	}

	ageValue := "U" // Monitoring Plugins: U means the value could not be determined
	if !in.LastScan.IsZero() {
		age := in.Now.Sub(in.LastScan)
		ageValue = fmt.Sprintf("%ds", int(age.Seconds()))
		if in.MaxAge > 0 && age > in.MaxAge {
			r.Status = stale
			parts = append([]string{fmt.Sprintf("last successful scan %s ago is older than %s", age.Round(time.Second), in.MaxAge)}, parts...)
		}
	} else if in.MaxAge > 0 {
		r.Status = stale
		parts = append([]string{"no successful scan yet"}, parts...)
	}
	r.Summary = strings.Join(parts, "; ")
	perf := func(key string) Perf {
		p := Perf{Label: key, Value: fmt.Sprint(values[key]), Min: "0"}
		if rg, ok := in.Warn[key]; ok {
			p.Warn = rg.String()
		}
		if rg, ok := in.Crit[key]; ok {
			p.Crit = rg.String()
		}
		return p
	}
	r.Perf = []Perf{perf("critical"), perf("warning"), perf("info")}
	if _, ok := in.Warn["total"]; ok {
		r.Perf = append(r.Perf, perf("total"))
	} else if _, ok := in.Crit["total"]; ok {
		r.Perf = append(r.Perf, perf("total"))
	}
	r.Perf = append(r.Perf, []Perf{
		{Label: "acknowledged", Value: fmt.Sprint(acked), Min: "0"},
		{Label: "assets", Value: fmt.Sprint(in.Assets), Min: "0"},
		{Label: "last_scan_age", Value: ageValue, Min: "0"},
	}...)
	for _, d := range devs {
		r.Long = append(r.Long, fmt.Sprintf("[%s] %s: %s (%s, %s since %s, id %s)",
			strings.ToUpper(string(d.Severity)), d.Host, d.Detail, d.Kind, d.State,
			d.OpenedAt.UTC().Format(time.RFC3339), d.ID))
	}
	if total > listed {
		r.Long = append(r.Long, fmt.Sprintf("... and %d more deviations (sollwert deviations or GET /v1/deviations lists them all)", total-listed))
	}
	return r
}

// headline names the first n of the alerting deviations, of total.
func headline(devs []model.Deviation, n, total int) string {
	var items []string
	for i, d := range devs {
		if i == n {
			break
		}
		items = append(items, fmt.Sprintf("%s %s (%s)", d.Kind, d.Subject(), d.Rule))
	}
	if total > len(items) {
		items = append(items, fmt.Sprintf("and %d more", total-len(items)))
	}
	return strings.Join(items, ", ")
}

// String renders the plugin output: status line with perfdata, then the
// long output.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SOLLWERT %s - %s |", r.Status, sanitize(r.Summary))
	for _, p := range r.Perf {
		b.WriteString(" " + p.String())
	}
	b.WriteByte('\n')
	for _, l := range r.Long {
		b.WriteString(sanitize(l))
		b.WriteByte('\n')
	}
	return b.String()
}

// sanitize keeps asset-supplied text from breaking the plugin format: a
// pipe would start perfdata, a newline would end the status line.
func sanitize(s string) string {
	return strings.NewReplacer("|", "/", "\n", " ", "\r", " ").Replace(s)
}
