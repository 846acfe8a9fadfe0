package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startAlertmanager runs the real Alertmanager (Debian package
// prometheus-alertmanager) on a loopback port, clustering off.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus-alertmanager is not installed: run `make test` as root")
		}
		t.Skip("prometheus-alertmanager not installed")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.path="+dir, "--web.listen-address="+addr, "--cluster.listen-address=")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not start:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func activeAlerts(t *testing.T, base string) []amAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?active=true&silenced=false&inhibited=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAlertmanagerAlertComesAndGoes(t *testing.T) {
	requireNmap(t)
	am := startAlertmanager(t)
	allowed, _ := listen(t)
	rogue, closeRogue := listen(t)
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed) + fmt.Sprintf(`
sink "am" {
  type   = "alertmanager"
  url    = %q
  labels = { team = "netsec" }
}
`, am))
	e.start()
	e.runJob("lo")
	var alerts []amAlert
	waitFor(t, func() bool { alerts = activeAlerts(t, am); return len(alerts) == 1 })
	a := alerts[0]
	if a.Labels["alertname"] != "SollwertDeviation" || a.Labels["port"] != fmt.Sprint(rogue) || a.Labels["team"] != "netsec" ||
		a.Labels["severity"] != "critical" || !strings.Contains(a.Annotations["summary"], fmt.Sprintf("tcp/%d", rogue)) {
		t.Fatalf("alert %+v", a)
	}
	closeRogue()
	e.runJob("lo")
	waitFor(t, func() bool { return len(activeAlerts(t, am)) == 0 })
}
