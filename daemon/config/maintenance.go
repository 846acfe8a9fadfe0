package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/robfig/cron/v3"
)

// Window is a maintenance window of a job: it starts on its cron schedule
// and lasts Duration. Within it the job does not run, and events of
// deviations on its targets wait in the sinks' queues until it ends.
type Window struct {
	Schedule string
	Duration time.Duration
	sched    cron.Schedule
}

var windowSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "schedule", Required: true}, {Name: "duration", Required: true}},
}

func (d *decoder) decodeWindow(b *hcl.Block) (Window, bool) {
	var w Window
	content, diags := b.Body.Content(windowSchema)
	if diags.HasErrors() {
		d.add(diags...)
		return w, false
	}
	before := len(d.diags)
	if a := content.Attributes["schedule"]; a != nil {
		if s, ok := d.str(a); ok {
			sched, err := cronParser.Parse(s)
			if err != nil || strings.HasPrefix(s, "@every") {
				d.add(errorAt(a.Expr.Range(), "Invalid maintenance schedule",
					fmt.Sprintf("%q: give when a window starts in five cron fields, such as \"0 2 * * SUN\"", s)))
			}
			w.Schedule, w.sched = s, sched
		}
	}
	if a := content.Attributes["duration"]; a != nil {
		if dur, ok := d.duration(a); ok {
			if dur <= 0 || dur > 7*24*time.Hour {
				d.add(errorAt(a.Expr.Range(), "Invalid maintenance duration", "must be between 1s and 168h"))
			}
			w.Duration = dur
		}
	}
	return w, len(d.diags) == before
}

// Until reports whether now falls in the window, and when that window
// ends. Windows may overlap (every minute for five minutes): the one
// that ends last is the one that started last, so it finds the latest
// start at or before now, looking back no further than Duration, in
// steps that double (a cron schedule can only be asked what comes
// next).
func (w Window) Until(now time.Time) (time.Time, bool) {
	if w.sched == nil {
		return time.Time{}, false
	}
	limit := w.Duration + time.Second
	var start time.Time
	for back := time.Second; ; back *= 2 {
		back = min(back, limit)
		if s := w.sched.Next(now.Add(-back)); !s.After(now) {
			start = s
			break
		}
		if back == limit {
			return time.Time{}, false
		}
	}
	for s := w.sched.Next(start); !s.After(now); s = w.sched.Next(s) {
		start = s
	}
	end := start.Add(w.Duration)
	return end, now.Before(end)
}

// InMaintenance reports whether one of the job's windows is open at now,
// and until when.
func (j Job) InMaintenance(now time.Time) (time.Time, bool) {
	var until time.Time
	in := false
	for _, w := range j.Maintenance {
		if end, ok := w.Until(now); ok {
			in = true
			if end.After(until) {
				until = end
			}
		}
	}
	return until, in
}

// Targets are the addresses the job's source config names in "targets",
// as prefixes; nil for sources that have none.
func (j Job) Targets() []netip.Prefix {
	var c struct {
		Targets []string `json:"targets"`
	}
	if json.Unmarshal(j.SourceConfig, &c) != nil {
		return nil
	}
	var out []netip.Prefix
	for _, t := range c.Targets {
		if p, err := netip.ParsePrefix(t); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(t); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out
}
