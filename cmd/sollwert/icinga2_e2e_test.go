package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sollwert/sollwert/internal/testicinga2"
	"github.com/sollwert/sollwert/notifier"
)

func icingaSink(t *testing.T, e *env, ic *testicinga2.Icinga) string {
	t.Helper()
	pw := filepath.Join(e.dir, "icinga.pass")
	if err := os.WriteFile(pw, []byte(testicinga2.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
sink "icinga" {
  type           = "icinga2"
  url            = %q
  user           = %q
  password_file  = %q
  ca_file        = %q
  server_name    = %q
  create_objects = true
}
`, ic.URL, testicinga2.User, pw, ic.CAFile, testicinga2.NodeName)
}

// TestIcingaFollowsDeviations: the daemon scans with the real nmap and
// the real Icinga 2 shows the deviation: CRITICAL with sollwert's output,
// then acknowledged, then OK when the port closes.
func TestIcingaFollowsDeviations(t *testing.T) {
	requireNmap(t)
	ic := testicinga2.Start(t, "")
	allowed, _ := listen(t)
	rogue, closeRogue := listen(t)
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed) + icingaSink(t, e, ic))
	e.start()
	e.runJob("lo")
	const host, svc = "127.0.0.1", "sollwert loopback"
	var got testicinga2.Service
	waitFor(t, func() bool { got, _ = ic.Service(t, host, svc); return got.State == 2 })
	if out := got.LastCheckResult.Output; !strings.HasPrefix(out, "CRITICAL: ") || !strings.Contains(out, fmt.Sprintf("tcp/%d", rogue)) {
		t.Fatalf("output %q", out)
	}

	devID := e.deviations("")[0].ID
	body, _ := json.Marshal(map[string]string{"author": "alice", "comment": "change 4711"})
	resp, err := http.Post("http://"+e.api+"/v1/deviations/"+devID+"/ack", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ack: HTTP %d", resp.StatusCode)
	}
	waitFor(t, func() bool { got, _ = ic.Service(t, host, svc); return got.Acknowledgement != 0 })

	closeRogue()
	e.runJob("lo")
	waitFor(t, func() bool { got, _ = ic.Service(t, host, svc); return got.State == 0 })
	if got.Acknowledgement != 0 || !strings.HasPrefix(got.LastCheckResult.Output, "OK: no active deviations") {
		t.Fatalf("after resolve: %+v %+v", got, got.LastCheckResult)
	}
}

// TestIcingaOutageLosesNothing: Icinga is down while three deviations
// open; when it is back, all three results arrive, each once.
func TestIcingaOutageLosesNothing(t *testing.T) {
	requireNmap(t)
	ic := testicinga2.Start(t, "")
	allowed, _ := listen(t)
	var rogues []string
	for range 3 {
		p, _ := listen(t)
		rogues = append(rogues, fmt.Sprint(p))
	}
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%s", allowed, strings.Join(rogues, ",")), "") + expectBlock(allowed) + icingaSink(t, e, ic))
	e.start()
	ic.Stop()
	e.runJob("lo")
	if devs := e.deviations(""); len(devs) != 3 {
		t.Fatalf("deviations: %+v", devs)
	}
	waitFor(t, func() bool {
		var sts []notifier.Status
		e.get("/v1/sinks", &sts)
		return len(sts) == 1 && sts[0].Queued == 3 && sts[0].Failures > 0
	})

	// The daemon is frozen while Icinga comes back and the test starts
	// counting, so that no retry lands before the count begins.
	if err := e.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ic.Resume(t)
	results := ic.WatchCheckResults(t)
	if err := e.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	const host, svc = "127.0.0.1", "sollwert loopback"
	waitFor(t, func() bool {
		var sts []notifier.Status
		e.get("/v1/sinks", &sts)
		return sts[0].Queued == 0 && sts[0].Delivered == 3
	})
	// Icinga's event stream runs a little behind its API answers.
	waitFor(t, func() bool { return results.Count(host, svc) >= 3 })
	time.Sleep(time.Second) // nothing more may come
	if n := results.Count(host, svc); n != 3 {
		t.Fatalf("Icinga processed %d check results, want 3", n)
	}
	got, _ := ic.Service(t, host, svc)
	if got.State != 2 || !strings.Contains(got.LastCheckResult.Output, "3 active deviations") {
		t.Fatalf("service %+v %+v", got, got.LastCheckResult)
	}
}
