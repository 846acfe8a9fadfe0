package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	key := filepath.Join(e.dir, "hook.key")
	if err := os.WriteFile(key, []byte("k3y"), 0o600); err != nil {
		t.Fatal(err)
	}
	rcv := &hookReceiver{t: t, key: []byte("k3y")}
	hook, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rcv}
	go srv.Serve(hook)
	t.Cleanup(func() { srv.Close() })
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
`, hook.Addr(), key)
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
