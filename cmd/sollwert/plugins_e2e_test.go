package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
)

// These tests run the daemon with the host's test plugin
// (daemon/pluginhost/testdata/testplugin) in its plugin_dir. The plugin
// reports addresses in 198.18.0.0/15 as data; nothing is contacted.

func buildTestPlugin(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "sollwert-plugin-testplugin")
	b, err := exec.Command("go", "build", "-o", out, "../../daemon/pluginhost/testdata/testplugin").CombinedOutput()
	if err != nil {
		t.Fatalf("build test plugin: %v\n%s", err, b)
	}
	return out
}

func pluginJob(name, config string) string {
	return fmt.Sprintf(`
job %q {
  source   = "testplugin"
  schedule = "@every 1h"
  timeout  = "3s"
  %s
}
`, name, config)
}

const inventoryRule = `
expect "inventory" {
  cidrs         = ["198.18.0.0/15"]
  unknown_hosts = "warning"
}
`

func (e *env) pluginConfig(jobs string) {
	e.writeConfig(fmt.Sprintf("plugin_dir = %q\n", filepath.Join(e.dir, "plugins")) + jobs + inventoryRule)
}

func TestPluginSourceFeedsStoreAndRules(t *testing.T) {
	e := newEnv(t)
	buildTestPlugin(t, filepath.Join(e.dir, "plugins"))
	e.pluginConfig(pluginJob("inv", "hosts = 3"))
	e.start()

	run := e.runJob("inv")
	if run.Status != model.RunSucceeded || run.Hosts != 3 {
		t.Fatalf("first run: %+v", run)
	}
	var asset model.Asset
	if code := e.get("/v1/assets/198.18.0.2", &asset); code != 200 {
		t.Fatalf("GET asset: HTTP %d", code)
	}
	if asset.Labels["team"] != "test" || len(asset.Hostnames) != 1 || asset.Hostnames[0] != "host-2.test" || asset.Sources[0] != "testplugin" {
		t.Fatalf("asset: %+v", asset)
	}
	if devs := e.deviations("state=open"); len(devs) != 0 {
		t.Fatalf("the first run is the baseline, yet: %+v", devs)
	}

	// The inventory grows: the rule judges plugin assets like scanned ones.
	e.reload(fmt.Sprintf("plugin_dir = %q\n", filepath.Join(e.dir, "plugins")) + pluginJob("inv", "hosts = 5") + inventoryRule)
	if run := e.runJob("inv"); run.Status != model.RunSucceeded {
		t.Fatalf("second run: %+v", run)
	}
	devs := e.deviations("state=open")
	if len(devs) != 2 || devs[0].Kind != model.KindUnknownHost || devs[1].Kind != model.KindUnknownHost {
		t.Fatalf("want two unknown_host deviations, got %+v", devs)
	}
	if code, out := e.check(); code != 1 || !strings.Contains(out, "198.18.0.") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
}

func TestFailingPluginsFailTheirRunOnly(t *testing.T) {
	e := newEnv(t)
	buildTestPlugin(t, filepath.Join(e.dir, "plugins"))
	jobs := pluginJob("good", "hosts = 2") +
		pluginJob("panics", `hosts = 2
  fault = "panic"`) +
		pluginJob("hangs", `hosts = 2
  fault = "hang"`) +
		pluginJob("malformed", `hosts = 3
  fault = "malformed"`)
	e.pluginConfig(jobs)
	e.start()
	if run := e.runJob("good"); run.Status != model.RunSucceeded {
		t.Fatalf("good: %+v", run)
	}
	var before []model.Asset
	e.get("/v1/assets", &before)

	cases := []struct {
		job    string
		status model.RunStatus
		want   string
	}{
		{"panics", model.RunFailed, "exit status 2"},
		{"hangs", model.RunTimedOut, "deadline exceeded"},
		{"malformed", model.RunFailed, `"999.1.1.1" is not an IP address`},
	}
	for _, c := range cases {
		run := e.runJob(c.job)
		if run.Status != c.status || !strings.Contains(run.Error, c.want) {
			t.Errorf("%s: status %s, error %q; want %s and %q", c.job, run.Status, run.Error, c.status, c.want)
		}
		if code := e.get("/healthz", nil); code != 200 {
			t.Fatalf("after %s the daemon does not serve: HTTP %d", c.job, code)
		}
		waitNoProcess(t, "sollwert-plugin-testplugin")
	}
	var after []model.Asset
	e.get("/v1/assets", &after)
	if len(after) != len(before) {
		t.Fatalf("failed runs changed the assets: %d before, %d after", len(before), len(after))
	}
	// A crash does not poison the next run.
	if run := e.runJob("good"); run.Status != model.RunSucceeded {
		t.Fatalf("good after the faults: %+v", run)
	}
}

func TestNoPluginOutlivesTheDaemon(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			buildTestPlugin(t, filepath.Join(e.dir, "plugins"))
			e.pluginConfig(strings.Replace(pluginJob("hangs", `hosts = 2
  fault = "hang"`), `"3s"`, `"10m"`, 1))
			e.start()
			resp, err := http.Post("http://"+e.api+"/v1/jobs/hangs/run", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			waitFor(t, func() bool { return len(processes("sollwert-plugin-testplugin")) > 0 })
			e.stop(sig)
			waitNoProcess(t, "sollwert-plugin-testplugin")
		})
	}
}

func TestPluginsList(t *testing.T) {
	e := newEnv(t)
	bin := buildTestPlugin(t, filepath.Join(e.dir, "plugins"))
	e.writeConfig(fmt.Sprintf("plugin_dir = %q\nplugin \"testplugin\" {\n  sha256 = %q\n}\n", filepath.Join(e.dir, "plugins"), strings.Repeat("0", 64)))
	out, err := exec.Command(binary, "plugins", "list", "--config", e.cfgPath).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "MISMATCH") {
		t.Fatalf("a mismatching pin: exit %d\n%s", code, out)
	}
	sum := sha256File(t, bin)
	e.writeConfig(fmt.Sprintf("plugin_dir = %q\nplugin \"testplugin\" {\n  sha256 = %q\n}\n", filepath.Join(e.dir, "plugins"), sum))
	out, err = exec.Command(binary, "plugins", "list", "--config", e.cfgPath).CombinedOutput()
	fields := strings.Fields(strings.Split(string(out), "\n")[1])
	if exitCode(err) != 0 || len(fields) < 7 || fields[0] != "testplugin" || fields[1] != "1.2.3" || fields[2] != "source" || fields[3] != "1" || fields[5] != "pinned" || fields[6] != "ok" {
		t.Fatalf("plugins list:\n%s", out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// processes lists the pids of running processes whose program is name.
func processes(name string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		if filepath.Base(strings.SplitN(string(b), "\x00", 2)[0]) == name {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

func waitNoProcess(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(processes(name)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still running: pids %v", name, processes(name))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
