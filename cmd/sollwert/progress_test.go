package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestProgressBarLine(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := newProgressBar(&out, "dmz")
	p.start, p.now = clock, func() time.Time { return clock }
	clock = clock.Add(42 * time.Second)
	sinkAt{p, hclog.Info}.Accept("sollwert.job.nmap", hclog.Info, "nmap progress", "job", "dmz", "task", "SYN Stealth Scan",
		"percent", 45.5, "remaining", 12*time.Second)
	p.Hosts(300)
	p.Done()
	want := "dmz [=========           ]  45.5% 300 hosts, 42s, ETA 12s (SYN Stealth Scan)\n"
	if got := out.String(); !strings.HasPrefix(got, "\r\x1b[K") || !strings.HasSuffix(got, want) {
		t.Fatalf("got %q, want it to end with %q", got, want)
	}
	// Other lines, and lines below the level, are not progress.
	before := p.line()
	sinkAt{p, hclog.Info}.Accept("x", hclog.Debug, "nmap progress", "percent", 99.0)
	sinkAt{p, hclog.Info}.Accept("x", hclog.Info, "run started", "percent", 99.0)
	if p.line() != before {
		t.Fatalf("the bar moved: %q", p.line())
	}
}

// TestScanShowsProgressOnATerminal runs `sollwert scan` under a real
// pseudo-terminal (util-linux script): the bar draws there, and plain log
// lines go to a pipe.
func TestScanShowsProgressOnATerminal(t *testing.T) {
	requireNmap(t)
	script := requireTool(t, "script", "bsdutils")
	allowed, _ := listen(t)
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprint(allowed), "") + expectBlock(allowed))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qefc", binary+" scan --ephemeral --config "+e.cfgPath+" --job lo", "/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scan on a terminal: %v\n%q", err, out)
	}
	if !strings.Contains(string(out), "\r\x1b[Klo [") || !strings.Contains(string(out), "1 hosts") || strings.Contains(string(out), "run started") {
		t.Fatalf("no progress bar on the terminal:\n%q", out)
	}
	out, err = exec.CommandContext(ctx, binary, "scan", "--ephemeral", "--config", e.cfgPath, "--job", "lo").CombinedOutput()
	if err != nil || strings.Contains(string(out), "\x1b[K") || !strings.Contains(string(out), "run started") {
		t.Fatalf("not a terminal: want plain lines:\n%q", out)
	}
}
