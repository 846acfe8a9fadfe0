package icinga2

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sollwert/sollwert/internal/testicinga2"
	"github.com/sollwert/sollwert/sdk"
)

// BenchmarkDeliver sends 10,000 events (one opening per host, 1,000
// hosts with ten rules each: 10,000 services) to the real Icinga 2 on
// loopback in batches of 100, as the notifier does; the services exist
// already, so it measures the check results themselves.
func BenchmarkDeliver(b *testing.B) {
	const hosts, rules = 1000, 10
	var objects []byte
	for h := range hosts {
		objects = fmt.Appendf(objects, "object Host \"198.18.%d.%d\" { check_command = \"dummy\"; enable_active_checks = false }\n", h/250, h%250+1)
	}
	objects = fmt.Appendf(objects, `apply Service for (r in %s) {
  name = "sollwert " + r
  check_command = "passive"
  enable_active_checks = false
  assign where true
}
`, rulesList(rules))
	ic := testicinga2.Start(b, string(objects))
	s := New(nil)
	cfg := config(b, ic, nil)
	var events []sdk.Event
	for h := range hosts {
		for r := range rules {
			ev := event(sdk.EventOpened, fmt.Sprintf("198.18.%d.%d", h/250, h%250+1), 1, "critical")
			ev.ID, ev.Deviation.Rule = fmt.Sprintf("%d-%d", h, r), fmt.Sprintf("r%d", r)
			events = append(events, ev)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for i := 0; i < len(events); i += 100 {
			acks, err := s.Deliver(context.Background(), sdk.DeliverRequest{Config: cfg, Events: events[i : i+100]})
			if err != nil {
				b.Fatal(err)
			}
			for _, a := range acks {
				if !a.Delivered {
					b.Fatalf("not delivered: %+v", a)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*len(events))/time.Since(start).Seconds(), "events/s")
}

func rulesList(n int) string {
	out := "["
	for i := range n {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", fmt.Sprintf("r%d", i))
	}
	return out + "]"
}
