package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/internal/testproc"
)

func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (Debian package %s) is not installed: run `make test` as root", name, pkg)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// exportEnv runs a daemon with tokens that has scanned two loopback
// listeners for real, and returns it with a read token.
func exportEnv(t *testing.T) (*env, string, int) {
	t.Helper()
	requireNmap(t)
	a, _ := listen(t)
	b, _ := listen(t)
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", a, b), "") + expectBlock(a))
	cfg, _ := os.ReadFile(e.cfgPath)
	cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("api { listen = %q }", e.api)),
		[]byte(fmt.Sprintf("api {\n  listen = %q\n  tokens_file = %q\n}", e.api, filepath.Join(e.dir, "tokens.json"))), 1)
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	admin := e.token(t, "admin", "admin", "*")
	reader := e.token(t, "exports", "read", "default")
	e.start()
	if code := e.call(t, "POST", "/v1/jobs/lo/run", admin); code != 202 {
		t.Fatalf("run: HTTP %d", code)
	}
	waitFor(t, func() bool {
		var assets []struct{ ID string }
		return e.getAs(t, "/v1/assets", reader, &assets) == 200 && len(assets) == 1
	})
	return e, reader, b
}

// TestAnsibleInventoryScript: the real ansible-inventory runs `sollwert
// inventory` as an inventory script and lists the hosts and groups.
func TestAnsibleInventoryScript(t *testing.T) {
	bin := requireTool(t, "ansible-inventory", "ansible-core")
	e, token, port := exportEnv(t)
	script := filepath.Join(e.dir, "sollwert-inventory")
	testproc.WriteExecutable(t, script, []byte("#!/bin/sh\nexec "+binary+" inventory \"$@\"\n"))
	cmd := exec.Command(bin, "-i", script, "--list")
	cmd.Env = append(os.Environ(), "SOLLWERT_URL=http://"+e.api, "SOLLWERT_TOKEN="+token, "ANSIBLE_LOCAL_TEMP="+e.dir, "HOME="+e.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-inventory: %v\n%s", err, out)
	}
	var inv map[string]struct {
		Hosts    []string       `json:"hosts"`
		Children []string       `json:"children"`
		Hostvars map[string]any `json:"hostvars"`
	}
	if err := json.Unmarshal(out, &inv); err != nil {
		t.Fatalf("ansible-inventory output: %v\n%s", err, out)
	}
	group := fmt.Sprintf("tcp_%d", port)
	for _, g := range []string{group, "source_nmap", "tenant_default", "status_up"} {
		if !slices.Contains(inv[g].Hosts, "127.0.0.1") {
			t.Errorf("group %s lacks 127.0.0.1:\n%s", g, out)
		}
	}
	vars, ok := inv["_meta"].Hostvars["127.0.0.1"].(map[string]any)
	if !ok || vars["ansible_host"] != "127.0.0.1" || vars["sollwert_status"] != "up" {
		t.Fatalf("host vars:\n%s", out)
	}
	// Without a token the script fails, and ansible-inventory says so.
	cmd = exec.Command(bin, "-i", script, "--list")
	cmd.Env = append(os.Environ(), "SOLLWERT_URL=http://"+e.api, "SOLLWERT_TOKEN=", "ANSIBLE_LOCAL_TEMP="+e.dir, "HOME="+e.dir)
	out, _ = cmd.CombinedOutput()
	if strings.Contains(string(out), "127.0.0.1") {
		t.Fatalf("without a token the inventory lists hosts:\n%s", out)
	}
}

// TestPrometheusDiscoversTargets: the real Prometheus polls sollwert's
// HTTP service discovery with a token and shows the open port as a target.
func TestPrometheusDiscoversTargets(t *testing.T) {
	bin := requireTool(t, "prometheus", "prometheus")
	e, token, port := exportEnv(t)
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := filepath.Join(e.dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global:
  scrape_interval: 1h
scrape_configs:
  - job_name: sollwert
    http_sd_configs:
      - url: http://%s/v1/sd/prometheus?port=%d
        refresh_interval: 1s
        authorization:
          type: Bearer
          credentials: %s
`, e.api, port, token)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(e.dir, "tsdb"), "--web.listen-address="+promAddr)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	want := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var targets struct {
			Data struct {
				ActiveTargets []struct {
					DiscoveredLabels map[string]string `json:"discoveredLabels"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if resp, err := http.Get("http://" + promAddr + "/api/v1/targets"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		for _, tg := range targets.Data.ActiveTargets {
			if tg.DiscoveredLabels["__address__"] == want && tg.DiscoveredLabels["__meta_sollwert_tenant"] == "default" &&
				tg.DiscoveredLabels["__meta_sollwert_port"] == fmt.Sprint(port) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus shows no target %s: %+v\n%s", want, targets.Data.ActiveTargets, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
