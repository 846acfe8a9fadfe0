package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/sollwert/sollwert/internal/testproc"
	"github.com/sollwert/sollwert/model"
)

// These tests run the real binary against the real nmap, scanning only
// listeners they open on 127.0.0.1.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sollwert-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sollwert")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func requireNmap(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nmap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nmap is not installed: run `make test` as root or apt-get install nmap")
		}
		t.Skip("nmap not installed")
	}
}

// listen opens a TCP listener on 127.0.0.1 that accepts and drops
// connections until closed.
func listen(t *testing.T) (port int, closeFn func()) {
	t.Helper()
	return listenOn(t, "127.0.0.1")
}

// listenOnPort listens on 127.0.0.1:port again, after it was closed.
func listenOnPort(t *testing.T, port int) (int, func()) {
	t.Helper()
	return listenOn(t, fmt.Sprintf("127.0.0.1:%d", port))
}

// listenOn is listen on another loopback address (ADDR or ADDR:PORT).
func listenOn(t *testing.T, addr string) (port int, closeFn func()) {
	t.Helper()
	if !strings.Contains(addr, ":") {
		addr += ":0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	once := false
	closeFn = func() {
		if !once {
			once = true
			ln.Close()
		}
	}
	t.Cleanup(closeFn)
	return ln.Addr().(*net.TCPAddr).Port, closeFn
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type env struct {
	t       *testing.T
	dir     string
	cfgPath string
	api     string
	cmd     *exec.Cmd
	logs    *syncBuffer
}

// syncBuffer collects a daemon's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{t: t, dir: dir, cfgPath: filepath.Join(dir, "sollwert.hcl"), api: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
}

func (e *env) writeConfig(body string) {
	e.t.Helper()
	cfg := fmt.Sprintf("data_dir = %q\napi { listen = %q }\n", filepath.Join(e.dir, "data"), e.api) + body
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) start() {
	e.t.Helper()
	e.logs = &syncBuffer{}
	cmd := exec.Command(binary, "daemon", "--config", e.cfgPath, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.cmd = cmd
	e.t.Cleanup(func() {
		if e.cmd != nil && e.cmd.ProcessState == nil {
			e.cmd.Process.Kill()
			e.cmd.Wait()
		}
		if e.t.Failed() {
			e.t.Logf("daemon log:\n%s", e.logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + e.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("daemon did not become healthy:\n%s", e.logs.String())
}

func (e *env) stop(sig syscall.Signal) {
	e.t.Helper()
	e.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		e.t.Fatalf("daemon did not stop on %v", sig)
	}
}

func (e *env) get(path string, into any) int {
	e.t.Helper()
	resp, err := http.Get("http://" + e.api + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			e.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// runJob starts a run through the API and waits for it to end.
func (e *env) runJob(job string) model.Run {
	e.t.Helper()
	var before []model.Run
	e.get("/v1/jobs/"+job+"/runs", &before)
	resp, err := http.Post("http://"+e.api+"/v1/jobs/"+job+"/run", "application/json", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("run now: HTTP %d", resp.StatusCode)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var runs []model.Run
		e.get("/v1/jobs/"+job+"/runs", &runs)
		if len(runs) > len(before) && runs[0].Status != model.RunRunning {
			return runs[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("job %s did not finish", job)
	return model.Run{}
}

func (e *env) deviations(query string) []model.Deviation {
	e.t.Helper()
	var devs []model.Deviation
	if code := e.get("/v1/deviations?"+query, &devs); code != 200 {
		e.t.Fatalf("deviations: HTTP %d", code)
	}
	return devs
}

func (e *env) check(args ...string) (int, string) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"check", "--url", "http://" + e.api}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			e.t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func loopbackJob(name, ports, extra string) string {
	return fmt.Sprintf(`
job %q {
  source   = "nmap"
  schedule = "@every 1h"
  timeout  = "60s"
  targets  = ["127.0.0.1"]
  ports    = %q
  skip_host_discovery = true
%s}
`, name, ports, extra)
}

func expectBlock(allowed int) string {
	return fmt.Sprintf(`
expect "loopback" {
  cidrs         = ["127.0.0.0/8"]
  tcp           = ["%d"]
  unknown_hosts = "warning"
  severity      = "critical"
}
`, allowed)
}

func TestDeviationOpensAndResolvesWithRealNmap(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, closeRogue := listen(t)
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed))
	e.start()

	if code, out := e.check(); code != 0 {
		t.Fatalf("before any scan: check exit %d: %s", code, out)
	}
	run := e.runJob("lo")
	if run.Status != model.RunSucceeded {
		t.Fatalf("run: %+v", run)
	}
	devs := e.deviations("")
	if len(devs) != 1 || devs[0].Kind != model.KindUnexpectedPort || devs[0].Port != uint16(rogue) || devs[0].State != model.StateOpen {
		t.Fatalf("deviations after first scan: %+v", devs)
	}
	code, out := e.check()
	if code != 2 || !strings.Contains(out, fmt.Sprintf("127.0.0.1 tcp/%d", rogue)) {
		t.Fatalf("check: exit %d, output:\n%s", code, out)
	}
	if code, _ := e.check("--host", "127.0.0.2"); code != 0 {
		t.Fatalf("check for another host: exit %d", code)
	}
	var resp *http.Response
	resp, err := http.Get("http://" + e.api + "/v1/check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Sollwert-Check-Status") != "2" {
		t.Fatalf("/v1/check: HTTP %d status header %q", resp.StatusCode, resp.Header.Get("X-Sollwert-Check-Status"))
	}

	closeRogue()
	if run := e.runJob("lo"); run.Status != model.RunSucceeded {
		t.Fatalf("second run: %+v", run)
	}
	if devs := e.deviations(""); len(devs) != 0 {
		t.Fatalf("still active after the port closed: %+v", devs)
	}
	resolved := e.deviations("state=resolved")
	if len(resolved) != 1 || resolved[0].ResolvedAt == nil {
		t.Fatalf("resolved deviations: %+v", resolved)
	}
	if code, out := e.check(); code != 0 {
		t.Fatalf("check after resolve: exit %d: %s", code, out)
	}
	var hist []model.Version
	e.get("/v1/assets/127.0.0.1/history", &hist)
	if len(hist) != 2 {
		t.Fatalf("want 2 history versions (discovered, port closed), got %d", len(hist))
	}
	var metrics bytes.Buffer
	mr, err := http.Get("http://" + e.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics.ReadFrom(mr.Body)
	mr.Body.Close()
	for _, want := range []string{`sollwert_job_runs_total{job="lo",status="succeeded"} 2`, `sollwert_assets{tenant="default"} 1`} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	e.stop(syscall.SIGTERM)
	if e.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("daemon exit %d after SIGTERM", e.cmd.ProcessState.ExitCode())
	}
}

// fakeNmap writes a script that stands in for nmap to produce faults the
// real one cannot be made to produce on demand.
func fakeNmap(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	testproc.WriteExecutable(t, p, []byte("#!/bin/sh\n"+body+"\n"))
	return p
}

func TestFailedScansChangeNothing(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, closeRogue := listen(t)
	e := newEnv(t)
	ports := fmt.Sprintf("%d,%d", allowed, rogue)
	e.writeConfig(loopbackJob("lo", ports, "") + expectBlock(allowed))
	e.start()
	if run := e.runJob("lo"); run.Status != model.RunSucceeded {
		t.Fatalf("run: %+v", run)
	}
	before := e.deviations("state=all")
	var assetBefore model.Asset
	e.get("/v1/assets/127.0.0.1", &assetBefore)
	closeRogue() // a finished scan now would resolve the deviation

	failing := fakeNmap(t, e.dir, "nmap-fails", `echo "nmap: something broke" >&2; exit 1`)
	killed := fakeNmap(t, e.dir, "nmap-killed", `echo '<?xml version="1.0"?><nmaprun><host><status state="up"/>'; kill -9 $$`)
	hangs := fakeNmap(t, e.dir, "nmap-hangs", `exec sleep 30`)
	cases := []struct {
		name, extra string
		want        model.RunStatus
	}{
		{"nmap exits with an error", fmt.Sprintf("  nmap_path = %q\n", failing), model.RunFailed},
		{"nmap is killed mid-scan", fmt.Sprintf("  nmap_path = %q\n", killed), model.RunFailed},
		{"nmap outlives the timeout", fmt.Sprintf("  nmap_path = %q\n", hangs), model.RunTimedOut},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := loopbackJob("lo", ports, c.extra)
			if c.name == "nmap outlives the timeout" {
				job = strings.Replace(job, `timeout  = "60s"`, `timeout  = "2s"`, 1)
			}
			e.reload(job + expectBlock(allowed))
			run := e.runJob("lo")
			if run.Status != c.want {
				t.Fatalf("run status %s (%s), want %s", run.Status, run.Error, c.want)
			}
			after := e.deviations("state=all")
			if fmt.Sprint(ids(after)) != fmt.Sprint(ids(before)) || after[0].State != model.StateOpen || !after[0].LastSeen.Equal(before[0].LastSeen) {
				t.Fatalf("deviations changed by a failed run:\nbefore %+v\nafter  %+v", before, after)
			}
			var assetAfter model.Asset
			e.get("/v1/assets/127.0.0.1", &assetAfter)
			if assetAfter.Version != assetBefore.Version || len(assetAfter.Services) != len(assetBefore.Services) {
				t.Fatalf("asset changed by a failed run: before v%d %d services, after v%d %d services",
					assetBefore.Version, len(assetBefore.Services), assetAfter.Version, len(assetAfter.Services))
			}
		})
	}
}

// reload writes a new configuration, sends SIGHUP and waits until the
// daemon says it reloaded.
func (e *env) reload(body string) {
	e.t.Helper()
	before := strings.Count(e.logs.String(), "configuration reloaded")
	e.writeConfig(body)
	e.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(e.t, func() bool { return strings.Count(e.logs.String(), "configuration reloaded") > before })
}

func ids(devs []model.Deviation) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.ID)
	}
	return out
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not reached in time")
}

func TestBadReloadKeepsRunningConfig(t *testing.T) {
	requireNmap(t)
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", "1", ""))
	e.start()
	e.writeConfig(loopbackJob("lo", "1", "") + "\nexpect \"broken\" {\n  cidrs = [\"not-a-cidr\"]\n}\n")
	e.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(e.logs.String(), "reload refused") })
	if !strings.Contains(e.logs.String(), "sollwert.hcl:") {
		t.Fatalf("reload error does not name the file position:\n%s", e.logs.String())
	}
	var jobs []map[string]any
	if code := e.get("/v1/jobs", &jobs); code != 200 || len(jobs) != 1 {
		t.Fatalf("jobs after bad reload: HTTP %d %v", code, jobs)
	}
}

func TestStateSurvivesRestartAndKill9(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	e := newEnv(t)
	ports := fmt.Sprintf("%d,%d", allowed, rogue)
	e.writeConfig(loopbackJob("lo", ports, "") + expectBlock(allowed))
	e.start()
	e.runJob("lo")
	before := e.deviations("")
	if len(before) != 1 {
		t.Fatalf("deviations: %+v", before)
	}

	// Clean restart.
	e.stop(syscall.SIGTERM)
	e.start()
	if got := e.deviations(""); fmt.Sprint(ids(got)) != fmt.Sprint(ids(before)) {
		t.Fatalf("after restart: %+v", got)
	}

	// kill -9 in the middle of a scan.
	hangs := fakeNmap(t, e.dir, "nmap-hangs", `exec sleep 30`)
	e.writeConfig(loopbackJob("lo", ports, fmt.Sprintf("  nmap_path = %q\n", hangs)) + expectBlock(allowed))
	e.stop(syscall.SIGTERM)
	e.start()
	resp, err := http.Post("http://"+e.api+"/v1/jobs/lo/run", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, func() bool {
		var runs []model.Run
		e.get("/v1/jobs/lo/runs", &runs)
		return len(runs) > 0 && runs[0].Status == model.RunRunning
	})
	e.stop(syscall.SIGKILL)
	e.writeConfig(loopbackJob("lo", ports, "") + expectBlock(allowed))
	e.start()
	if got := e.deviations(""); fmt.Sprint(ids(got)) != fmt.Sprint(ids(before)) || got[0].State != model.StateOpen {
		t.Fatalf("after kill -9: %+v", got)
	}
	var hist []model.Version
	e.get("/v1/assets/127.0.0.1/history", &hist)
	if len(hist) != 1 {
		t.Fatalf("history after kill -9: %d versions", len(hist))
	}
	var runs []model.Run
	e.get("/v1/jobs/lo/runs", &runs)
	if len(runs) == 0 || runs[0].Status != model.RunInterrupted {
		t.Fatalf("the killed run is not marked interrupted: %+v", runs)
	}
}

func TestRulesValidateNamesThePosition(t *testing.T) {
	dir := t.TempDir()
	head := "data_dir = \"./data\"\n"
	cases := []struct {
		name, body, want string
	}{
		{"syntax error", head + "job \"x\" {\n  source = \n}\n", "bad.hcl:3:"},
		{"unknown block", head + "jobs \"x\" {\n}\n", "bad.hcl:2:1"},
		{"bad cidr", head + "expect \"e\" {\n  cidrs = [\"127.0.0.300/8\"]\n}\n", "bad.hcl:3:"},
		{"bad port range", head + "expect \"e\" {\n  cidrs = [\"127.0.0.0/8\"]\n  tcp = [\"10-5\"]\n}\n", "bad.hcl:4:"},
		{"bad cron", head + "job \"x\" {\n  source = \"nmap\"\n  schedule = \"61 * * * *\"\n  targets = [\"127.0.0.1\"]\n}\n", "bad.hcl:4:"},
		{"bad source attribute", head + "job \"x\" {\n  source = \"nmap\"\n  schedule = \"@every 1m\"\n  targets = [\"127.0.0.1\"]\n  ports = \"99999\"\n}\n", "bad.hcl:6:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.hcl")
			os.WriteFile(p, []byte(c.body), 0o600)
			cmd := exec.Command(binary, "rules", "validate", "--config", p)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Run()
			if cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", cmd.ProcessState.ExitCode(), stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("stderr %q does not name %s", stderr.String(), c.want)
			}
		})
	}
	good := filepath.Join(dir, "good.hcl")
	os.WriteFile(good, []byte(head+loopbackJob("lo", "22", "")+expectBlock(22)), 0o600)
	out, err := exec.Command(binary, "rules", "validate", "--config", good).CombinedOutput()
	if err != nil {
		t.Fatalf("valid config refused: %v\n%s", err, out)
	}
}

func TestCheckUnreachableIsUnknown(t *testing.T) {
	e := newEnv(t)
	code, out := e.check()
	if code != 3 || !strings.HasPrefix(out, "SOLLWERT UNKNOWN") {
		t.Fatalf("exit %d output %q", code, out)
	}
}

func TestScanCommandRunsOneJob(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	e := newEnv(t)
	e.writeConfig(loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "scan", "--config", e.cfgPath, "--job", "lo")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scan: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "succeeded") || !strings.Contains(stdout.String(), fmt.Sprintf("tcp/%d", rogue)) {
		t.Fatalf("summary:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "run started") {
		t.Fatalf("no progress on stderr:\n%s", stderr.String())
	}
}

func TestOverrunningJobIsSkippedAndRecorded(t *testing.T) {
	e := newEnv(t)
	slow := fakeNmap(t, e.dir, "nmap-slow", `exec sleep 3`)
	job := strings.Replace(loopbackJob("lo", "1", fmt.Sprintf("  nmap_path = %q\n", slow)), `schedule = "@every 1h"`, `schedule = "@every 1s"`, 1)
	e.writeConfig(job)
	e.start()
	waitFor(t, func() bool {
		var runs []model.Run
		e.get("/v1/jobs/lo/runs", &runs)
		for _, r := range runs {
			if r.Status == model.RunSkipped && strings.Contains(r.Error, "still running") {
				return true
			}
		}
		return false
	})
}
