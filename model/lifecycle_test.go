package model

import (
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func TestEventKind(t *testing.T) {
	open := Deviation{ID: "d", State: StateOpen, Severity: SeverityWarning}
	acked := open
	acked.State = StateAcknowledged
	resolved := open
	resolved.State = StateResolved
	louder := open
	louder.Severity = SeverityCritical
	moved := open
	moved.LastSeen = time.Now()
	cases := []struct {
		name       string
		prev, next *Deviation
		want       string
	}{
		{"new", nil, &open, sdk.EventOpened},
		{"reopened", &resolved, &open, sdk.EventOpened},
		{"resolved", &open, &resolved, sdk.EventResolved},
		{"acknowledged deviation resolved", &acked, &resolved, sdk.EventResolved},
		{"acknowledged", &open, &acked, sdk.EventAcknowledged},
		{"ack expired", &acked, &open, sdk.EventUnacknowledged},
		{"severity", &open, &louder, sdk.EventSeverityChanged},
		{"only seen again", &open, &moved, ""},
		{"resolved stays resolved", &resolved, &resolved, ""},
	}
	for _, c := range cases {
		if got := EventKind(c.prev, c.next); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	now := time.Now()
	a, b := NewEvent(&open, sdk.EventOpened, now), NewEvent(&open, sdk.EventOpened, now.Add(time.Second))
	if a.ID == b.ID || a.ID != NewEvent(&open, sdk.EventOpened, now).ID {
		t.Error("event ids must be unique per change and fixed for one")
	}
}
