package main

import (
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
)

// TestAssetsAsTheyWere: after a second scan found a new port, the assets
// at a time between the scans are as the first found them, and the
// history between two times holds only what changed then.
func TestAssetsAsTheyWere(t *testing.T) {
	requireNmap(t)
	a, _ := listen(t)
	b, closeB := listen(t)
	closeB() // not open at first
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", a, b), "") + expectBlock(a))
	e.start()
	e.runJob("lo")
	between := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	listenOnPort(t, b)
	e.runJob("lo")

	var now, then []model.Asset
	e.get("/v1/assets", &now)
	e.get("/v1/assets?at="+url.QueryEscape(between.Format(time.RFC3339Nano)), &then)
	if len(now) != 1 || len(now[0].Services) != 2 || len(then) != 1 || len(then[0].Services) != 1 || then[0].Services[0].Port != uint16(a) {
		t.Fatalf("now %+v\nthen %+v", now, then)
	}
	var before []model.Asset
	e.get("/v1/assets?at="+url.QueryEscape(between.Add(-time.Hour).Format(time.RFC3339Nano)), &before)
	if len(before) != 0 {
		t.Fatalf("an hour before the first scan: %+v", before)
	}
	var hist []model.Version
	e.get("/v1/assets/127.0.0.1/history?from="+url.QueryEscape(between.Format(time.RFC3339Nano)), &hist)
	if len(hist) != 1 || hist[0].Version != 2 {
		t.Fatalf("history since the first scan: %+v", hist)
	}
	if code := e.get("/v1/assets?at=yesterday", nil); code != 400 {
		t.Fatalf("a bad time: HTTP %d", code)
	}

	// What changed since then, in sollwert diff's forms.
	var d struct {
		Hosts []struct {
			Host   string
			Change string
			Ports  []struct {
				Port     uint16
				OldState string `json:"old_state"`
				NewState string `json:"new_state"`
			}
		}
	}
	e.get("/v1/changes?from="+url.QueryEscape(between.Format(time.RFC3339Nano)), &d)
	if len(d.Hosts) != 1 || d.Hosts[0].Change != "changed" || len(d.Hosts[0].Ports) != 1 || d.Hosts[0].Ports[0].Port != uint16(b) ||
		d.Hosts[0].Ports[0].NewState != "open" || d.Hosts[0].Ports[0].OldState != "" {
		t.Fatalf("changes %+v", d)
	}
	out, err := exec.Command(binary, "changes", "--url", "http://"+e.api, "--from", between.Format(time.RFC3339Nano)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("+%d/tcp open", b)) || !strings.Contains(string(out), "127.0.0.1") {
		t.Fatalf("sollwert changes: %v\n%s", err, out)
	}
	out, _ = exec.Command(binary, "changes", "--url", "http://"+e.api, "--from", "1h").CombinedOutput()
	if !strings.Contains(string(out), "+127.0.0.1") {
		t.Fatalf("changes over the last hour show the host appearing:\n%s", out)
	}
}
