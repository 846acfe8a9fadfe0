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

	"github.com/sollwert/sollwert/internal/testproc"
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

// buildExamplePlugin builds examples/plugin-hostsfile, a module of its
// own, as `make examples` does.
func buildExamplePlugin(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "sollwert-plugin-hostsfile"), ".")
	cmd.Dir = "../../examples/plugin-hostsfile"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the example plugin: %v\n%s", err, b)
	}
}

func TestExamplePluginFeedsStoreAndRules(t *testing.T) {
	e := newEnv(t)
	buildExamplePlugin(t, filepath.Join(e.dir, "plugins"))
	inventory := filepath.Join(e.dir, "hosts.csv")
	writeInventory := func(hosts ...string) {
		t.Helper()
		body := "name,addresses,labels,tcp\n" + strings.Join(hosts, "\n") + "\n"
		if err := os.WriteFile(inventory, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeInventory("web-1,198.18.0.10,team=web,\"22,443\"", "db-1,198.18.0.20,team=data,22")
	e.writeConfig(fmt.Sprintf(`plugin_dir = %q
job "inventory" {
  source   = "hostsfile"
  schedule = "@every 1h"
  file     = %q
}
`, filepath.Join(e.dir, "plugins"), inventory) + inventoryRule)
	e.start()

	run := e.runJob("inventory")
	if run.Status != model.RunSucceeded || run.Hosts != 2 {
		t.Fatalf("first run: %+v", run)
	}
	var asset model.Asset
	if code := e.get("/v1/assets/198.18.0.10", &asset); code != 200 {
		t.Fatalf("GET asset: HTTP %d", code)
	}
	if asset.Labels["team"] != "web" || asset.Facts["expected_tcp"] != "22,443" || len(asset.Hostnames) != 1 ||
		asset.Hostnames[0] != "web-1" || len(asset.Sources) != 1 || asset.Sources[0] != "hostsfile" {
		t.Fatalf("asset: %+v", asset)
	}
	if devs := e.deviations("state=open"); len(devs) != 0 {
		t.Fatalf("the first run is the baseline, yet: %+v", devs)
	}
	// A host appears in the inventory: the rule judges plugin assets like
	// scanned ones.
	writeInventory("web-1,198.18.0.10,team=web,\"22,443\"", "db-1,198.18.0.20,team=data,22", "new-1,198.18.0.30,,22")
	if run := e.runJob("inventory"); run.Status != model.RunSucceeded {
		t.Fatalf("second run: %+v", run)
	}
	devs := e.deviations("state=open")
	if len(devs) != 1 || devs[0].Kind != model.KindUnknownHost || !strings.Contains(devs[0].Subject(), "198.18.0.30") {
		t.Fatalf("want an unknown_host deviation for 198.18.0.30, got %+v", devs)
	}
	if code, out := e.check(); code != 1 || !strings.Contains(out, "198.18.0.30") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	// A bad row fails the run and changes nothing.
	writeInventory("web-1,198.18.0.10,team=ops,\"22,443\"", "broken,300.1.1.1,,")
	if run := e.runJob("inventory"); run.Status != model.RunFailed || !strings.Contains(run.Error, `hosts.csv:3: address "300.1.1.1" is not an IP or MAC address`) {
		t.Fatalf("bad inventory: %+v", run)
	}
	e.get("/v1/assets/198.18.0.10", &asset)
	if asset.Labels["team"] != "web" {
		t.Fatalf("a failed run changed the asset: %+v", asset)
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

func TestReplacedPluginBinariesFailTheirRunOnly(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "plugins")
	bin := buildTestPlugin(t, dir)
	pinned, free := filepath.Join(dir, "sollwert-plugin-pinned"), filepath.Join(dir, "sollwert-plugin-free")
	for _, p := range []string{pinned, free} {
		if err := exec.Command("cp", bin, p).Run(); err != nil {
			t.Fatal(err)
		}
	}
	e.writeConfig(fmt.Sprintf("plugin_dir = %q\nplugin \"pinned\" {\n  sha256 = %q\n}\n", dir, sha256File(t, bin)) +
		strings.Replace(pluginJob("a", "hosts = 1"), `"testplugin"`, `"pinned"`, 1) +
		strings.Replace(pluginJob("b", "hosts = 1"), `"testplugin"`, `"free"`, 1))
	e.start()
	for _, job := range []string{"a", "b"} {
		if run := e.runJob(job); run.Status != model.RunSucceeded {
			t.Fatalf("%s before the swap: %+v", job, run)
		}
	}
	// Someone installs a build for another protocol version over both.
	future := filepath.Join(t.TempDir(), "future")
	if b, err := exec.Command("go", "build", "-ldflags", "-X main.protocol=2", "-o", future, "../../daemon/pluginhost/testdata/testplugin").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	for _, p := range []string{pinned, free} {
		if err := exec.Command("cp", future, p).Run(); err != nil {
			t.Fatal(err)
		}
	}
	for job, want := range map[string]string{
		"a": "but the config pins " + sha256File(t, bin) + "; not started",
		"b": "plugin free speaks sollwert plugin protocol version 2, this sollwert speaks version 1",
	} {
		run := e.runJob(job)
		if run.Status != model.RunFailed || !strings.Contains(run.Error, want) {
			t.Errorf("%s: status %s, error %q; want %q", job, run.Status, run.Error, want)
		}
		if code := e.get("/healthz", nil); code != 200 {
			t.Fatalf("the daemon does not serve: HTTP %d", code)
		}
		waitNoProcess(t, "sollwert-plugin-free")
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
			waitFor(t, func() bool { return len(testproc.Running("sollwert-plugin-testplugin")) > 0 })
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
	if exitCode(err) != 0 || len(fields) < 7 || fields[0] != "testplugin" || fields[1] != "1.2.3" || fields[2] != "source,sink" || fields[3] != "1" || fields[5] != "pinned" || fields[6] != "ok" {
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

func waitNoProcess(t *testing.T, name string) {
	t.Helper()
	testproc.WaitGone(t, name, 10*time.Second)
}
