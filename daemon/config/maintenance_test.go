package config

import (
	"strings"
	"testing"
	"time"
)

func TestMaintenanceWindows(t *testing.T) {
	src := head + `job "plant" {
  source   = "nmap"
  schedule = "@hourly"
  targets  = ["198.18.5.0/24", "198.18.9.1"]
  maintenance {
    schedule = "0 2 * * SUN"
    duration = "2h"
  }
}
`
	cfg, err := Parse([]byte(src), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Jobs[0]
	sunday := time.Date(2026, 11, 29, 0, 0, 0, 0, time.Local) // a Sunday
	for _, tc := range []struct {
		at    time.Duration
		in    bool
		until time.Duration
	}{
		{time.Hour + 59*time.Minute, false, 0},
		{2 * time.Hour, true, 4 * time.Hour},
		{3*time.Hour + 59*time.Minute, true, 4 * time.Hour},
		{4 * time.Hour, false, 0},
		{26 * time.Hour, false, 0},
	} {
		until, in := j.InMaintenance(sunday.Add(tc.at))
		if in != tc.in || (in && !until.Equal(sunday.Add(tc.until))) {
			t.Errorf("at +%s: in=%v until %v", tc.at, in, until)
		}
	}
	// Windows that overlap (one every minute, for five) leave no gap at
	// a minute's turn: the window that started last holds.
	every, err := Parse([]byte(strings.Replace(src, `"0 2 * * SUN"`, `"* * * * *"`, 1)), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, 100 * time.Millisecond, 999 * time.Millisecond, time.Second, 59*time.Second + 900*time.Millisecond} {
		now := sunday.Add(10*time.Minute + at)
		until, in := every.Jobs[0].InMaintenance(now)
		if want := sunday.Add(10*time.Minute + 2*time.Hour); !in || !until.Equal(want) {
			t.Errorf("every minute, at +10m%s: in=%v until %v, want until %v", at, in, until, want)
		}
	}
	if got := j.Targets(); len(got) != 2 || got[0].String() != "198.18.5.0/24" || got[1].String() != "198.18.9.1/32" {
		t.Fatalf("targets %v", got)
	}
	for name, bad := range map[string]string{
		"every":        `schedule = "@every 1h"` + "\n    duration = \"1h\"",
		"too long":     `schedule = "0 2 * * *"` + "\n    duration = \"200h\"",
		"bad schedule": `schedule = "0 25 * * *"` + "\n    duration = \"1h\"",
	} {
		_, err := Parse([]byte(strings.Replace(src, "schedule = \"0 2 * * SUN\"\n    duration = \"2h\"", bad, 1)), "c.hcl")
		if err == nil || !strings.Contains(err.Error(), "Invalid maintenance") || !strings.Contains(err.Error(), "c.hcl:") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
