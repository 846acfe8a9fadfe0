package nmap

// Tests against the real nmap scan only 127.0.0.0/8, always with -n. The
// fakes stand in for nmap where a fault cannot be produced on demand.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	nmaplib "github.com/Ullaakut/nmap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/internal/testproc"
	"github.com/sollwert/sollwert/sdk"
)

// requireNmap skips a test that needs the real nmap, except in CI
// (CI=true), where a missing nmap fails it.
func requireNmap(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nmap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nmap is not installed but CI=true: install it (Debian/Ubuntu: apt-get install nmap)")
		}
		t.Skip("nmap is not installed (Debian/Ubuntu: apt-get install nmap); set CI=true to fail instead")
	}
	return p
}

// listen accepts and closes connections on addr until the test ends.
func listen(t *testing.T, addr string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// closedPort returns a port nothing listens on at 127.0.0.1 and
// 127.0.0.3, for as long as nobody else grabs it.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if other, err := net.Listen("tcp", fmt.Sprintf("127.0.0.3:%d", port)); err == nil {
			other.Close()
			return uint16(port)
		}
	}
	t.Fatal("no free port")
	return 0
}

func discover(ctx context.Context, src *Source, cfg string) (*collector, sdk.Result, error) {
	c := &collector{}
	res, err := src.Discover(ctx, sdk.DiscoverRequest{Config: json.RawMessage(cfg), Job: "test", RunID: "r1"}, c)
	return c, res, err
}

func TestRealScanOfLoopbackListeners(t *testing.T) {
	requireNmap(t)
	t.Parallel()
	a, b := listen(t, "127.0.0.1"), listen(t, "127.0.0.1")
	c := listen(t, "127.0.0.3")
	closed := closedPort(t)
	ports := fmt.Sprintf("%d,%d,%d,%d", a, b, c, closed)
	want := map[string][]uint16{"127.0.0.1": {a, b}, "127.0.0.3": {c}}

	unprivileged := New(nil)
	unprivileged.rawAllowed = func() bool { return false }
	cases := []struct {
		name  string
		src   *Source
		extra string
	}{
		{"auto as this process may", New(nil), `,"skip_host_discovery":true`},
		{"connect with host discovery", New(nil), `,"scan_type":"connect"`},
		{"auto without raw sockets falls back to connect", unprivileged, `,"skip_host_discovery":true,"timing":5`},
	}
	if canSendRaw() {
		cases = append(cases, struct {
			name  string
			src   *Source
			extra string
		}{"syn", New(nil), `,"scan_type":"syn","skip_host_discovery":true`})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fmt.Sprintf(`{"targets":["127.0.0.1","127.0.0.3"],"ports":%q%s}`, ports, tc.extra)
			col, res, err := discover(t.Context(), tc.src, cfg)
			if err != nil {
				t.Fatal(err)
			}
			obs := col.all()
			if len(obs) != 2 {
				t.Fatalf("%d observations, want 2: %+v", len(obs), obs)
			}
			for _, o := range obs {
				ip, _ := o.IP()
				if len(o.Addresses) != 1 || o.Addresses[0].Type != "ipv4" || o.Status != sdk.StatusUp {
					t.Fatalf("host %+v", o)
				}
				open := openOf(o)
				wantOpen := want[ip.String()]
				if len(open) != len(wantOpen) {
					t.Fatalf("%s open ports %v, want %v", ip, open, wantOpen)
				}
				for _, p := range wantOpen {
					if _, ok := open[p]; !ok {
						t.Fatalf("%s open ports %v, want %v", ip, open, wantOpen)
					}
				}
				if _, ok := open[closed]; ok {
					t.Fatalf("closed port %d reported open on %s", closed, ip)
				}
			}
			if fmt.Sprint(res.Scope.Prefixes) != "[127.0.0.1/32 127.0.0.3/32]" {
				t.Fatalf("scope prefixes %v", res.Scope.Prefixes)
			}
			wantPorts, _ := sdk.ParsePortRanges(ports)
			if res.Scope.Ports[sdk.TCP].String() != wantPorts.String() || len(res.Scope.Ports) != 1 {
				t.Fatalf("scope ports %v, want tcp %v", res.Scope.Ports, wantPorts)
			}
		})
	}
}

func TestRealServiceDetectionOfHTTP(t *testing.T) {
	requireNmap(t)
	t.Parallel()
	// nmap waits ~6 s for a banner before it sends an HTTP probe: one
	// port only keeps this the slowest test, but not slow. nmap 7.93 has
	// no match for a bare Go server's answer (it probes for 90 s and says
	// "unknown"); a Server header that its nginx rule knows matches on
	// the first HTTP probe, whatever order Go writes the headers in.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Server", "nginx/1.22.1")
		fmt.Fprintln(w, "hello")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	col, _, err := discover(t.Context(), New(nil), fmt.Sprintf(`{"targets":["127.0.0.1"],"ports":"%d","service_detection":true,"skip_host_discovery":true}`, port))
	if err != nil {
		t.Fatal(err)
	}
	obs := col.all()
	if len(obs) != 1 || len(obs[0].Services) != 1 {
		t.Fatalf("observations %+v", obs)
	}
	if s := obs[0].Services[0]; s.Name != "http" || !s.Open() || s.Port != uint16(port) || s.Product != "nginx" || s.Version != "1.22.1" {
		t.Fatalf("service %+v, want open http, nginx 1.22.1", s)
	}
}

func TestRealIPv6LoopbackGetsItsOwnRun(t *testing.T) {
	requireNmap(t)
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback here:", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	col, res, err := discover(t.Context(), New(nil), fmt.Sprintf(`{"targets":["127.0.0.1","::1"],"ports":"%d","skip_host_discovery":true,"scan_type":"connect"}`, port))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, o := range col.all() {
		if ip, _ := o.IP(); ip.String() == "::1" {
			_, found = openOf(o)[uint16(port)]
			if o.Addresses[0].Type != "ipv6" {
				t.Fatalf("address %+v", o.Addresses)
			}
		}
	}
	if !found || fmt.Sprint(res.Scope.Prefixes) != "[127.0.0.1/32 ::1/128]" {
		t.Fatalf("::1 port %d not found (%+v) or scope %v", port, col.all(), res.Scope.Prefixes)
	}
}

// nmap takes these target expressions without error and exits 0 having
// scanned less than it was asked to. Validation refuses them, so runNmap
// is called directly. Both were checked with strace to send nothing but
// loopback traffic: nmap's own parser handles them, with no DNS lookup.
func TestRealNmapRefusingATargetIsAnError(t *testing.T) {
	bin := requireNmap(t)
	t.Parallel()
	for _, tc := range []struct{ target, want string }{
		{"127.0.0.1/", "skipped targets"},                                  // "Unable to split netmask": nothing scanned
		{"127.0.0.1/33", "a target could not be scanned: Illegal netmask"}, // scans 127.0.0.1 as a /32
	} {
		_, err := runNmap(t.Context(), runSpec{binary: bin, args: []string{"-n", "-sT", "-Pn", "-p", "1", tc.target}}, &collector{}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.target, err, tc.want)
		}
	}
}

func TestMissingNmapSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, err := discover(t.Context(), New(nil), `{"targets":["127.0.0.1"]}`)
	if err == nil || !strings.Contains(err.Error(), "nmap not found in PATH: install it (Debian/Ubuntu: apt-get install nmap)") || !errors.Is(err, nmaplib.ErrNmapNotInstalled) {
		t.Fatalf("error %v", err)
	}
	_, _, err = discover(t.Context(), New(nil), `{"targets":["127.0.0.1"],"nmap_path":"/nonexistent/nmap"}`)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/nmap") {
		t.Fatalf("error %v", err)
	}
}

// fakeNmap writes a shell script standing in for nmap and returns its
// path. The script runs in its own directory, which it may write to.
func fakeNmap(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "nmap")
	script := "#!/bin/sh\ncd " + dir + "\nFIXTURES=" + fixtureDir(t) + "\n" + body + "\n"
	testproc.WriteExecutable(t, p, []byte(script))
	return p
}

func fixtureDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// alive reports whether pid is a running process; a zombie is not.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that closes the command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the fake never wrote %s: %v", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// Faults nmap shows in real life, each of which must fail the run.
func TestFaultsAreErrors(t *testing.T) {
	t.Parallel()
	partial := `head -c 700 "$FIXTURES/loopback-connect.xml"`
	cases := []struct {
		name, script string
		targets      string
		want         []string
	}{
		{"non-zero exit", `echo "nmap: something broke" >&2; echo "second line" >&2; exit 1`, "",
			[]string{"exited with status 1", "nmap: something broke / second line"}},
		{"exit 0 without output", `exit 0`, "", []string{"wrote no <nmaprun>", "at byte 0"}},
		{"truncated XML", partial, "", []string{"truncated XML", "at byte 700"}},
		{"truncated after finished", `head -c 2260 "$FIXTURES/loopback-connect.xml"`, "", []string{"truncated XML"}},
		{"killed by a signal", partial + `; kill -9 $$`, "", []string{"killed by signal killed", "truncated XML"}},
		{"malformed XML", `echo '<nmaprun><host><status state="up"></nmaprun>'`, "", []string{"malformed XML"}},
		{"finished exit=error", `sed 's/exit="success"/exit="error" errormsg="out of cheese"/' "$FIXTURES/loopback-connect.xml"`, "",
			[]string{"scan failed: out of cheese"}},
		{"no finished element", `echo '<nmaprun><runstats><hosts up="0" down="2" total="2"/></runstats></nmaprun>'`, "", []string{"no <runstats><finished>"}},
		{"target failure on stderr", `echo 'Failed to resolve "bogus".' >&2; cat "$FIXTURES/loopback-connect.xml"`, "",
			[]string{`could not be scanned: Failed to resolve "bogus"`}},
		{"QUITTING on stderr", `echo 'QUITTING!' >&2; cat "$FIXTURES/loopback-connect.xml"`, "", []string{"QUITTING"}},
		{"skipped target in the XML", `cat "$FIXTURES/invalid-target.xml"`, `["127.0.0.1"]`, []string{`skipped targets "127.0.0.1/" (invalid)`}},
		{"fewer addresses scanned than targeted", `cat "$FIXTURES/loopback-connect.xml"`, `["127.0.0.0/30"]`, []string{"scanned 2 addresses, but the targets hold 4"}},
		{"raw socket refused", `echo "Couldn't open a raw socket. Error: Operation not permitted (1)" >&2; exit 1`, "",
			[]string{"raw socket", "AmbientCapabilities=CAP_NET_RAW"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			targets := c.targets
			if targets == "" {
				targets = `["127.0.0.1","127.0.0.3"]`
			}
			start := time.Now()
			col, _, err := discover(t.Context(), New(nil), fmt.Sprintf(`{"targets":%s,"ports":"22","scan_type":"connect","nmap_path":%q}`, targets, fakeNmap(t, c.script)))
			if err == nil {
				t.Fatalf("no error; observations %+v", col.all())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
			// The last batch goes out only after a run is known good.
			if len(col.all()) != 0 {
				t.Fatalf("emitted %+v for a failed run", col.all())
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

// The fake itself must pass when it plays a good nmap, or the fault tests
// above would prove nothing.
func TestFakeWithRealOutputSucceeds(t *testing.T) {
	t.Parallel()
	bin := fakeNmap(t, `printf '%s\n' "$*" > args; echo "Warning: 127.0.0.3 giving up on port because retransmission cap hit (6)." >&2; cat "$FIXTURES/loopback-connect.xml"`)
	col, res, err := discover(t.Context(), New(nil), fmt.Sprintf(`{"targets":["127.0.0.1","127.0.0.3"],"ports":"22,80","scan_type":"connect","timing":3,"extra_args":["--max-retries=2"],"nmap_path":%q}`, bin))
	if err != nil {
		t.Fatal(err)
	}
	if len(col.all()) != 2 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "giving up on port") {
		t.Fatalf("observations %+v, warnings %q", col.all(), res.Warnings)
	}
	args, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "args"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-n", "-sT", "-T3", "-p T:22,80", "--max-retries=2", "127.0.0.1 127.0.0.3", "-oX - --stats-every 2s"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("nmap arguments %q lack %q", args, want)
		}
	}
}

// A job that runs out of time or is cancelled must stop nmap and every
// process of its group promptly, and say why.
func TestDeadlineAndCancelStopNmap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		wantIs error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 500*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(500*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A child in the background holds stdout open as well: only
			// killing the whole group ends it.
			bin := fakeNmap(t, `head -c 700 "$FIXTURES/loopback-connect.xml"; sleep 30 & echo $! > child.pid; echo $$ > pid; exec sleep 30`)
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, _, err := discover(ctx, New(nil), fmt.Sprintf(`{"targets":["127.0.0.1"],"scan_type":"connect","nmap_path":%q}`, bin))
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %s", d)
			}
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), "stopped before it finished") {
				t.Fatalf("error %v, want one wrapping %v", err, tc.wantIs)
			}
			dir := filepath.Dir(bin)
			for _, f := range []string{"pid", "child.pid"} {
				pid := readPid(t, filepath.Join(dir, f))
				deadline := time.Now().Add(time.Second) // SIGKILL is delivered asynchronously
				for alive(pid) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if alive(pid) {
					t.Fatalf("process %d (%s) outlived the run", pid, f)
				}
			}
		})
	}
}

func TestEmitterErrorStopsNmap(t *testing.T) {
	t.Parallel()
	// 300 hosts fill one batch while the fake still runs.
	// The pid goes first: the run may be stopped before the loop ends.
	bin := fakeNmap(t, `echo $$ > pid; echo '<nmaprun>'; i=0; while [ $i -lt 300 ]; do echo "<host><status state=\"up\"/><address addr=\"127.0.1.$((i % 250))\" addrtype=\"ipv4\"/></host>"; i=$((i+1)); done; exec sleep 30`)
	c := &collector{fail: errors.New("store is full")}
	start := time.Now()
	_, err := New(nil).Discover(t.Context(), sdk.DiscoverRequest{Config: json.RawMessage(fmt.Sprintf(`{"targets":["127.0.1.0/24"],"scan_type":"connect","nmap_path":%q}`, bin))}, c)
	if !errors.Is(err, c.fail) || time.Since(start) > 2*time.Second {
		t.Fatalf("error %v after %s", err, time.Since(start))
	}
	if pid := readPid(t, filepath.Join(filepath.Dir(bin), "pid")); alive(pid) {
		t.Fatalf("fake nmap %d still runs", pid)
	}
}

func TestBatchesOfAFinishedRun(t *testing.T) {
	t.Parallel()
	bin := fakeNmap(t, `echo '<nmaprun>'; i=0; while [ $i -lt 600 ]; do echo "<host><status state=\"up\"/><address addr=\"127.0.$((i / 256)).$((i % 256))\" addrtype=\"ipv4\"/></host>"; i=$((i+1)); done; echo '<runstats><finished exit="success"/><hosts up="600" down="424" total="1024"/></runstats></nmaprun>'`)
	col, _, err := discover(t.Context(), New(nil), fmt.Sprintf(`{"targets":["127.0.0.0/22"],"scan_type":"connect","nmap_path":%q}`, bin))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(col.sizes()) != "[256 256 88]" {
		t.Fatalf("batch sizes %v", col.sizes())
	}
}

func TestPrivilegeChecksComeBeforeNmapStarts(t *testing.T) {
	t.Parallel()
	src := New(nil)
	src.rawAllowed = func() bool { return false }
	for _, tc := range []struct{ cfg, want string }{
		{`"scan_type":"syn"`, `scan_type "syn" needs root or CAP_NET_RAW`},
		{`"scan_type":"connect","udp_ports":"53"`, "udp_ports needs root or CAP_NET_RAW"},
	} {
		bin := fakeNmap(t, `touch started; exit 1`)
		_, _, err := discover(t.Context(), src, fmt.Sprintf(`{"targets":["127.0.0.1"],%s,"nmap_path":%q}`, tc.cfg, bin))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("error %v, want %q", err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "started")); err == nil {
			t.Fatal("nmap was started")
		}
	}
}

func TestBuildArgs(t *testing.T) {
	cases := []struct {
		name, cfg string
		plan      scanPlan
		want      []string
		not       []string
	}{
		{"connect defaults", `{"targets":["127.0.0.1","127.0.0.0/30"]}`, scanPlan{},
			[]string{"-n", "-sT", "-T4", "-p T:1-1024", "127.0.0.1 127.0.0.0/30"}, []string{"-sS", "-sU", "--privileged", "-6", "-Pn", "-sV"}},
		{"syn as root", `{"targets":["127.0.0.1"],"service_detection":true,"skip_host_discovery":true,"timing":0}`, scanPlan{syn: true},
			[]string{"-sS", "-sV", "-Pn", "-T0"}, []string{"-sT", "--privileged"}},
		{"syn by capability with udp", `{"targets":["127.0.0.1"],"ports":"22","udp_ports":"53,161"}`, scanPlan{syn: true, privileged: true},
			[]string{"-sS", "-sU", "--privileged", "-p T:22,U:53,161"}, nil},
		{"ipv6", `{"targets":["::1"],"extra_args":["--max-retries=1"]}`, scanPlan{ipv6: true},
			[]string{"-6", "--max-retries=1 ::1"}, nil},
		{"polite", `{"targets":["127.0.0.1"],"max_rate":200,"scan_delay":"50ms","max_parallel_hosts":4}`, scanPlan{},
			[]string{"--max-rate 200", "--scan-delay 50ms", "--max-hostgroup 4"}, []string{"--max-parallelism", "--max-retries"}},
		{"ot_safe even when syn is possible", `{"targets":["127.0.0.0/29"],"profile":"ot_safe"}`, scanPlan{syn: false},
			[]string{"-sT", "-T2", "--max-rate 10", "--scan-delay 100ms", "--max-hostgroup 1", "--max-parallelism 1", "--max-retries 1",
				"-p T:21-23,80,102,443,502,20000,44818,47808"}, []string{"-sS", "-sV", "-sU", "-O", "-T4"}},
		{"ot_safe with its own ports and rate", `{"targets":["127.0.0.1"],"profile":"ot_safe","ports":"502","max_rate":5,"timing":1}`, scanPlan{},
			[]string{"-sT", "-T1", "--max-rate 5", "-p T:502"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig(json.RawMessage(c.cfg))
			if err != nil {
				t.Fatal(err)
			}
			c.plan.binary = "/usr/bin/nmap"
			v4, v6 := cfg.families()
			c.plan.targets = slices.Concat(v4, v6)
			args, err := buildArgs(t.Context(), cfg, c.plan)
			if err != nil {
				t.Fatal(err)
			}
			line := " " + strings.Join(args, " ") + " "
			for _, w := range c.want {
				if !strings.Contains(line, " "+w+" ") {
					t.Errorf("%q lacks %q", line, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(line, " "+n+" ") {
					t.Errorf("%q has %q", line, n)
				}
			}
		})
	}
}

func TestLogsCarryTheJob(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info}) // hclog serialises writes
	bin := fakeNmap(t, `cat "$FIXTURES/loopback-progress.xml"`)
	src := New(log)
	if _, _, err := discover(t.Context(), src, fmt.Sprintf(`{"targets":["127.0.0.1"],"scan_type":"connect","nmap_path":%q}`, bin)); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.Contains(got, "nmap progress") || !strings.Contains(got, "job=test") || !strings.Contains(got, "percent=95.5") {
		t.Fatalf("log:\n%s", got)
	}
}

func TestOTSafeProfile(t *testing.T) {
	cfg, err := ParseConfig(json.RawMessage(`{"targets":["127.0.0.1"],"profile":"ot_safe"}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScanType != "connect" || cfg.MaxRate != otSafeRate || cfg.MaxParallelHosts != 1 || cfg.Timing != 2 || cfg.Ports != otSafePorts {
		t.Fatalf("ot_safe config %+v", cfg)
	}
	for _, tc := range []struct{ extra, field string }{
		{`"scan_type":"syn"`, "scan_type"},
		{`"service_detection":true`, "service_detection"},
		{`"udp_ports":"161"`, "udp_ports"},
		{`"max_rate":500`, "max_rate"},
		{`"max_parallel_hosts":8`, "max_parallel_hosts"},
		{`"timing":4`, "timing"},
		{`"ports":"1-1024"`, "ports"},
		{`"profile":"stealthy"`, "profile"},
	} {
		src := `{"targets":["127.0.0.1"],"profile":"ot_safe",` + tc.extra + `}`
		if strings.Contains(tc.extra, "profile") {
			src = `{"targets":["127.0.0.1"],` + tc.extra + `}`
		}
		_, err := ParseConfig(json.RawMessage(src))
		var verr *sdk.ValidationError
		if !errors.As(err, &verr) || !slices.ContainsFunc(verr.Fields, func(f sdk.FieldError) bool { return f.Field == tc.field }) {
			t.Errorf("%s: %v", tc.extra, err)
		}
	}
}

// TestRealOTSafeScanFindsListeners: the gentle profile still finds what
// listens, with the real nmap against loopback.
func TestRealOTSafeScanFindsListeners(t *testing.T) {
	requireNmap(t)
	a, b := listen(t, "127.0.0.1"), listen(t, "127.0.0.1")
	closed := closedPort(t)
	col, _, err := discover(t.Context(), New(nil), fmt.Sprintf(`{"targets":["127.0.0.1"],"profile":"ot_safe","ports":"%d,%d,%d","skip_host_discovery":true}`, a, b, closed))
	if err != nil {
		t.Fatal(err)
	}
	obs := col.all()
	if len(obs) != 1 {
		t.Fatalf("observations %+v", obs)
	}
	open := openOf(obs[0])
	if _, ok := open[a]; !ok || len(open) != 2 {
		t.Fatalf("open %v, want %d and %d", open, a, b)
	}
}
