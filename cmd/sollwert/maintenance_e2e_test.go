package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMaintenanceWindowHoldsRunsAndAlerts: a job in its maintenance
// window does not run (run-now answers 409), and the events of
// deviations on its targets wait in the sink's queue; when the window is
// gone (here: removed by a reload), they are delivered.
func TestMaintenanceWindowHoldsRunsAndAlerts(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	e := newEnv(t)
	rcv, hookAddr, key := startHook(t, e)
	window := `  maintenance {
    schedule = "* * * * *"
    duration = "5m"
  }
`
	body := func(maintenance string) string {
		return loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") +
			loopbackJob("plant", fmt.Sprint(allowed), maintenance) + expectBlock(allowed) + fmt.Sprintf(`
sink "hook" {
  type        = "webhook"
  url         = "http://%s/events"
  secret_file = %q
}
`, hookAddr, key)
	}
	e.writeConfig(body(window))
	e.start()
	if code := e.call(t, "POST", "/v1/jobs/plant/run", ""); code != http.StatusConflict {
		t.Fatalf("run-now in a window: HTTP %d", code)
	}
	e.runJob("lo")
	if devs := e.deviations(""); len(devs) != 1 {
		t.Fatalf("deviations %+v", devs)
	}
	time.Sleep(time.Second)
	if got := rcv.kinds(); len(got) != 0 {
		t.Fatalf("alerted during the window: %v", got)
	}
	e.reload(body(""))
	waitFor(t, func() bool { return len(rcv.kinds()) == 1 })
	if got := rcv.kinds()[0]; !strings.HasPrefix(got, "opened 127.0.0.1") {
		t.Fatalf("event %q", got)
	}
	if code := e.call(t, "POST", "/v1/jobs/plant/run", ""); code != http.StatusAccepted {
		t.Fatalf("run-now after the window: HTTP %d", code)
	}
}
