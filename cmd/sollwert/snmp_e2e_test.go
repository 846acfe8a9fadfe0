package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/internal/testsnmpd"
	"github.com/sollwert/sollwert/model"
)

// TestSNMPFactsDriveDeviations runs the daemon against a real snmpd in a
// network namespace of the test's (in 198.18.0.0/15): the agent and its ARP
// neighbour land as assets, and a rule on sys_descr opens a deviation when
// the agent's sysDescr changes and resolves it when it changes back.
func TestSNMPFactsDriveDeviations(t *testing.T) {
	a := testsnmpd.Start(t, "sollwert test switch")
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf(`
job "switches" {
  source         = "snmp"
  schedule       = "@every 1h"
  timeout        = "30s"
  targets        = [%q]
  port           = %d
  community_file = %q
}

expect "switches" {
  cidrs         = ["198.18.0.0/15"]
  interfaces_up = ["lo"]
  unknown_hosts = "warning"
  severity      = "critical"
  fact "sys_descr" {
    match = "^sollwert test"
  }
}
`, a.Addr, a.Port, testsnmpd.SecretFile(t, e.dir, testsnmpd.Community)))
	e.start()

	if run := e.runJob("switches"); run.Status != model.RunSucceeded {
		t.Fatalf("run: %+v", run)
	}
	var sw, nb model.Asset
	if code := e.get("/v1/assets/"+a.Addr.String(), &sw); code != 200 || sw.Facts["sys_descr"] != "sollwert test switch" || sw.Facts["if.lo.oper_status"] != "up" {
		t.Fatalf("switch asset (HTTP %d): %+v", code, sw)
	}
	if code := e.get("/v1/assets/"+testsnmpd.NeighbourIP, &nb); code != 200 || len(nb.Sources) != 1 || nb.Sources[0] != "snmp-neighbour" {
		t.Fatalf("neighbour asset (HTTP %d): %+v", code, nb)
	}
	if devs := e.deviations(""); len(devs) != 0 {
		t.Fatalf("deviations before the change: %+v", devs)
	}

	a.Restart(t, "Cisco IOS Software, C2960 (replaced)")
	e.runJob("switches")
	devs := e.deviations("")
	if len(devs) != 1 || devs[0].Kind != model.KindFactMismatch || devs[0].SubjectName != "sys_descr" ||
		!strings.Contains(devs[0].Detail, `fact sys_descr is "Cisco IOS Software, C2960 (replaced)"`) {
		t.Fatalf("after the change: %+v", devs)
	}
	if code, out := e.check(); code != 2 || !strings.Contains(out, "sys_descr") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}

	a.Restart(t, "sollwert test switch")
	e.runJob("switches")
	if devs := e.deviations(""); len(devs) != 0 {
		t.Fatalf("after the change back: %+v", devs)
	}
	if code, _ := e.check(); code != 0 {
		t.Fatalf("check after the change back: exit %d", code)
	}
	// A host appears behind the switch: an unknown neighbour.
	a.Net.Exec(t, "ip", "neigh", "add", "198.18.77.11", "lladdr", "02:00:5e:00:53:0b", "dev", a.Net.PeerLink, "nud", "permanent")
	e.runJob("switches")
	devs = e.deviations("")
	if len(devs) != 1 || devs[0].Kind != model.KindUnknownHost || devs[0].Host != "198.18.77.11" {
		t.Fatalf("after a new neighbour: %+v", devs)
	}
	if strings.Contains(e.logs.String(), testsnmpd.Community) {
		t.Fatal("the daemon's log shows the community")
	}
}
