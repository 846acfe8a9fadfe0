package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/notifier"
	"github.com/sollwert/sollwert/plugins/webhook"
	"github.com/sollwert/sollwert/sdk"
)

// hookReceiver records the events a webhook sink posts, checking their
// signature.
type hookReceiver struct {
	t      *testing.T
	key    []byte
	mu     sync.Mutex
	events []sdk.Event
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if got := r.Header.Get(webhook.SignatureHeader); got != webhook.Sign(h.key, b) {
		h.t.Errorf("bad signature %q", got)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev sdk.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		h.t.Errorf("body %s: %v", b, err)
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// startHook runs a webhook receiver on loopback with a signing key in
// e's folder; it returns the receiver, its address and the key's file.
func startHook(t *testing.T, e *env) (*hookReceiver, string, string) {
	t.Helper()
	key := filepath.Join(e.dir, "hook.key")
	if err := os.WriteFile(key, []byte("k3y"), 0o600); err != nil {
		t.Fatal(err)
	}
	rcv := &hookReceiver{t: t, key: []byte("k3y")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rcv}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rcv, ln.Addr().String(), key
}

func (h *hookReceiver) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Kind+" "+e.Deviation.Host+fmt.Sprintf(" %s/%d", e.Deviation.Protocol, e.Deviation.Port))
	}
	return out
}

// TestEventsSurviveOutageAndKill9: a deviation opens while the webhook
// receiver is down, the daemon is killed with SIGKILL before it could
// deliver, the receiver comes up, the daemon restarts: the event arrives,
// once; the resolve follows.
func TestEventsSurviveOutageAndKill9(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, closeRogue := listen(t)
	e := newEnv(t)
	hookPort := freePort(t)
	key := filepath.Join(e.dir, "hook.key")
	if err := os.WriteFile(key, []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed) + fmt.Sprintf(`
sink "hook" {
  type        = "webhook"
  url         = "http://127.0.0.1:%d/events"
  secret_file = %q
  severities  = ["critical"]
}
`, hookPort, key))
	e.start()
	e.runJob("lo")
	if devs := e.deviations(""); len(devs) != 1 {
		t.Fatalf("deviations: %+v", devs)
	}
	waitFor(t, func() bool {
		var sts []notifier.Status
		e.get("/v1/sinks", &sts)
		return len(sts) == 1 && sts[0].Queued == 1 && sts[0].Failures > 0
	})
	e.stop(syscall.SIGKILL)

	rcv := &hookReceiver{t: t, key: []byte("k3y")}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", hookPort))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rcv}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	e.start()
	waitFor(t, func() bool { return len(rcv.kinds()) == 1 })
	if got := rcv.kinds(); got[0] != fmt.Sprintf("opened 127.0.0.1 tcp/%d", rogue) {
		t.Fatalf("events %v", got)
	}
	// Acknowledged from the command line: the sink hears of it.
	devID := e.deviations("")[0].ID
	out, err := exec.Command(binary, "ack", "--url", "http://"+e.api, devID, "--comment", "change 4711", "--for", "2h", "--author", "alice").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "acknowledged by alice until") {
		t.Fatalf("sollwert ack: %v\n%s", err, out)
	}
	waitFor(t, func() bool { return len(rcv.kinds()) == 2 })
	closeRogue()
	e.runJob("lo")
	waitFor(t, func() bool { return len(rcv.kinds()) == 3 })
	time.Sleep(300 * time.Millisecond) // nothing more may come
	got := rcv.kinds()
	if len(got) != 3 || got[1] != fmt.Sprintf("acknowledged 127.0.0.1 tcp/%d", rogue) || got[2] != fmt.Sprintf("resolved 127.0.0.1 tcp/%d", rogue) {
		t.Fatalf("events %v", got)
	}
	var sts []notifier.Status
	e.get("/v1/sinks", &sts)
	if sts[0].Queued != 0 || sts[0].Delivered != 3 || sts[0].DeadLetters != 0 {
		t.Fatalf("sink status %+v", sts[0])
	}
	var devs []model.Deviation
	e.get("/v1/deviations?state=all", &devs)
	if len(devs) != 1 || devs[0].State != model.StateResolved {
		t.Fatalf("deviations %+v", devs)
	}
}
