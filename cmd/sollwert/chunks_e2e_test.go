package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/model"
)

// TestFailedChunkLeavesOnlyItsPart: a job over a /27 of loopback in
// chunks of 16. The nmap of the second chunk fails (a wrapper around the
// real nmap); the first chunk's hosts are applied (its rogue port opens a
// deviation), the second's part of the scope is left as it was, and the
// run says it was partial.
func TestFailedChunkLeavesOnlyItsPart(t *testing.T) {
	real := requireNmapPath(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	rogue2, _ := listenOn(t, "127.0.0.17")
	e := newEnv(t)
	wrapper := fakeNmap(t, e.dir, "nmap-second-chunk-fails",
		`case "$*" in *127.0.0.16/28*) echo "nmap: this chunk broke" >&2; exit 1;; esac; exec `+real+` "$@"`)
	job := strings.Replace(loopbackJob("lo", fmt.Sprintf("%d,%d,%d", allowed, rogue, rogue2),
		fmt.Sprintf("  nmap_path = %q\n  chunk_size = 16\n  scan_type = \"connect\"\n", wrapper)), `["127.0.0.1"]`, `["127.0.0.0/27"]`, 1)
	e.writeConfig(job + expectBlock(allowed))
	e.start()
	run := e.runJob("lo")
	if run.Status != model.RunPartial || !strings.Contains(run.Error, "1 of 2 chunks failed") {
		t.Fatalf("run %s: %s", run.Status, run.Error)
	}
	devs := e.deviations("")
	if len(devs) != 1 || devs[0].Host != "127.0.0.1" || devs[0].Port != uint16(rogue) {
		t.Fatalf("deviations %+v", devs)
	}
	if code := e.get("/v1/assets/127.0.0.17", nil); code != 404 {
		t.Fatalf("the failed chunk's host is in the store: HTTP %d", code)
	}
}

func requireNmapPath(t *testing.T) string {
	t.Helper()
	requireNmap(t)
	p, err := exec.LookPath("nmap")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
