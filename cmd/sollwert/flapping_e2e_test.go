package main

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// TestFlappingPortIsAlertedOnce: a loopback listener that is open in one
// scan and closed in the next. Its deviation opens and resolves twice,
// then is flapping: the sink hears "flapping" once and nothing more while
// the port keeps toggling.
func TestFlappingPortIsAlertedOnce(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	toggled, closeFirst := listen(t)
	e := newEnv(t)
	rcv, hookAddr, key := startHook(t, e)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, toggled), "") + fmt.Sprintf(`
expect "loopback" {
  cidrs          = ["127.0.0.0/8"]
  tcp            = ["%d"]
  severity       = "critical"
  flap_threshold = 4
  flap_window    = "1h"
}
sink "hook" {
  type        = "webhook"
  url         = "http://%s/events"
  secret_file = %q
}
`, allowed, hookAddr, key))
	e.start()

	subject := fmt.Sprintf("127.0.0.1 tcp/%d", toggled)
	var ln net.Listener
	open := func() {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", toggled)); err != nil {
			t.Fatal(err)
		}
		go func(l net.Listener) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}(ln)
	}
	want := []string{"opened " + subject}
	e.runJob("lo") // open
	waitFor(t, func() bool { return len(rcv.kinds()) == 1 })
	closeFirst()
	e.runJob("lo") // resolved
	want = append(want, "resolved "+subject)
	waitFor(t, func() bool { return len(rcv.kinds()) == 2 })
	open()
	e.runJob("lo") // opened
	want = append(want, "opened "+subject)
	waitFor(t, func() bool { return len(rcv.kinds()) == 3 })
	ln.Close()
	e.runJob("lo") // the fourth change: flapping
	want = append(want, "flapping "+subject)
	waitFor(t, func() bool { return len(rcv.kinds()) == 4 })
	for range 3 { // it goes on toggling: quiet
		open()
		e.runJob("lo")
		ln.Close()
		e.runJob("lo")
	}
	time.Sleep(500 * time.Millisecond)
	if got := rcv.kinds(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	var devs []struct {
		State    string
		Flapping bool
	}
	e.get("/v1/deviations?state=all", &devs)
	if len(devs) != 1 || !devs[0].Flapping {
		t.Fatalf("deviations %+v", devs)
	}
}
