package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A real PuppetDB (Debian's puppetdb 7.12 on a throwaway PostgreSQL 15
// cluster) serves the tests that need one. It takes ~30 s to start and
// ~470 MB, so the package starts it once: TestMain begins in the
// background when the run will need it, the first test that does waits
// for it, and TestMain stops both processes and removes their folder at
// the end. Everything listens on 127.0.0.1 only.

// puppetDB is the running server, seeded with testNodes.
type puppetDB struct {
	dir      string // everything: database, config, vardir, PKI, logs
	httpURL  string // http://127.0.0.1:PORT
	httpsURL string // https://127.0.0.1:PORT, client certificate required
	pki      string // tlsFiles: ca.pem, client.pem, client-key.pem, other-*
	procs    []*proc
}

// proc is a child process the harness owns.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	log    string
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

var shared struct {
	once    sync.Once
	pdb     *puppetDB
	err     error
	missing string // what is not installed, when that is why there is none
	took    string // how long start-up and seeding took
}

// testsNeedingPuppetDB lets TestMain start PuppetDB early only when the
// run includes one of them. A test missing from the list still gets one
// (the first call starts it), only later.
var testsNeedingPuppetDB = []string{"TestConformance", "TestPuppetDB", "TestTLS"}

func TestMain(m *testing.M) {
	flag.Parse()
	if wantPuppetDB() {
		go shared.once.Do(bootPuppetDB)
	}
	code := m.Run()
	shared.once.Do(func() {}) // wait for a start still under way
	if shared.pdb != nil {
		shared.pdb.stop()
	}
	os.Exit(code)
}

func wantPuppetDB() bool {
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return false
	}
	pattern := ""
	if f := flag.Lookup("test.run"); f != nil {
		pattern = f.Value.String()
	}
	if pattern == "" {
		return true
	}
	top, _, _ := strings.Cut(pattern, "/")
	re, err := regexp.Compile(top)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(testsNeedingPuppetDB, re.MatchString)
}

// requirePuppetDB returns the shared PuppetDB, starting it if need be.
// Without puppetdb or PostgreSQL installed the test skips, except under
// CI=true, where a missing component is a failure.
func requirePuppetDB(t testing.TB) *puppetDB {
	t.Helper()
	shared.once.Do(bootPuppetDB)
	switch {
	case shared.missing != "" && os.Getenv("CI") == "true":
		t.Fatalf("%s; CI must run this test (make test-deps installs puppetdb postgresql dbconfig-no-thanks default-jre-headless)", shared.missing)
	case shared.missing != "":
		t.Skipf("%s (apt-get install puppetdb postgresql dbconfig-no-thanks default-jre-headless)", shared.missing)
	case shared.err != nil:
		t.Fatalf("start PuppetDB: %v", shared.err)
	}
	return shared.pdb
}

func bootPuppetDB() {
	start := time.Now()
	shared.pdb, shared.missing, shared.err = startPuppetDB()
	started := time.Now()
	if shared.err == nil && shared.pdb != nil {
		if err := seed(shared.pdb); err != nil {
			shared.err = fmt.Errorf("seed: %w", err)
		}
	}
	shared.took = fmt.Sprintf("started in %s, seeded in %s", started.Sub(start).Round(100*time.Millisecond), time.Since(started).Round(100*time.Millisecond))
	if shared.err != nil && shared.pdb != nil {
		for _, p := range shared.pdb.procs {
			shared.err = fmt.Errorf("%w\n--- %s log:\n%s", shared.err, p.name, p.logTail())
		}
		shared.pdb.stop()
		shared.pdb = nil
	}
}

const (
	puppetDBJar       = "/usr/share/puppetdb/puppetdb.jar"
	puppetDBBootstrap = "/etc/puppetdb/bootstrap.cfg"
	puppetDBConfDir   = "/etc/puppetdb/conf.d"
)

// postgresBin finds PostgreSQL's server binaries (Debian keeps them out
// of PATH), preferring 15.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return strings.Contains(dirs[i], "/15/") && !strings.Contains(dirs[j], "/15/") })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// startPuppetDB follows the field notes: a PostgreSQL cluster made with
// initdb -A trust as user postgres, a database puppetdb owned by its user
// with pg_trgm, a config dir from copies of the package's config.ini,
// auth.conf and repl.ini with jetty.ini and database.ini of its own, and
// PuppetDB's services started with java. Two deviations, both for
// cleanup: postgres runs in the foreground as the harness's child (what
// pg_ctl would start in the background) so that it dies with the test
// process however that ends, and its socket lives in the run's folder
// rather than /tmp.
func startPuppetDB() (_ *puppetDB, missing string, err error) {
	pgbin := postgresBin()
	java, _ := exec.LookPath("java")
	switch {
	case pgbin == "":
		return nil, "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)", nil
	case fileMissing(puppetDBJar) || fileMissing(puppetDBBootstrap):
		return nil, "puppetdb is not installed (no " + puppetDBJar + ")", nil
	case java == "":
		return nil, "java is not installed (puppetdb's default-jre-headless)", nil
	}
	dir, err := os.MkdirTemp("", "sollwert-puppetdb-")
	if err != nil {
		return nil, "", err
	}
	p := &puppetDB{dir: dir}
	defer func() {
		if err != nil && len(p.procs) == 0 {
			os.RemoveAll(dir)
		}
	}()
	// initdb refuses to run as root: the cluster belongs to postgres, in
	// a folder it may write.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, "", err
	}
	var cred *syscall.Credential
	pgDir := filepath.Join(dir, "pg")
	if err := os.Mkdir(pgDir, 0o700); err != nil {
		return nil, "", err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "the user postgres does not exist (Debian's postgresql package makes it)", nil
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		if err := os.Chown(pgDir, uid, gid); err != nil {
			return nil, "", err
		}
	}
	data := filepath.Join(pgDir, "data")
	initdb := exec.Command(filepath.Join(pgbin, "initdb"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D", data)
	initdb.Dir = pgDir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("initdb: %v\n%s", err, out)
	}

	pgPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	// fsync and friends off: a throwaway cluster has nothing to keep.
	pg, err := p.spawn("postgres", cred, pgDir, filepath.Join(pgbin, "postgres"), "-D", data, "-p", strconv.Itoa(pgPort),
		"-k", pgDir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	if err != nil {
		return p, "", err
	}
	psql := func(db string, sql ...string) error {
		args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", strconv.Itoa(pgPort), "-U", "postgres", "-d", db}
		for _, s := range sql {
			args = append(args, "-c", s)
		}
		out, err := exec.Command(filepath.Join(pgbin, "psql"), args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("psql %s: %v: %s", strings.Join(sql, "; "), err, out)
		}
		return nil
	}
	if err := waitFor(15*time.Second, pg, func() error { return psql("postgres", "select 1") }); err != nil {
		return p, "", err
	}
	if err := psql("postgres", "create user puppetdb password 'puppetdb'", "create database puppetdb owner puppetdb"); err != nil {
		return p, "", err
	}
	if err := psql("puppetdb", "create extension pg_trgm"); err != nil {
		return p, "", err
	}

	// TLS: a CA of the test's own signs PuppetDB's certificate and the
	// client's; Jetty asks for and checks client certificates.
	pki := filepath.Join(dir, "pki")
	if err := tlsFiles(pki); err != nil {
		return p, "", err
	}
	p.pki = pki
	httpPort, err := freePort()
	if err != nil {
		return p, "", err
	}
	httpsPort, err := freePort()
	if err != nil {
		return p, "", err
	}
	conf := filepath.Join(dir, "conf.d")
	vardir := filepath.Join(dir, "var")
	for _, d := range []string{conf, vardir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return p, "", err
		}
	}
	for _, name := range []string{"auth.conf", "repl.ini"} {
		b, err := os.ReadFile(filepath.Join(puppetDBConfDir, name))
		if err != nil {
			return p, "", err
		}
		if err := os.WriteFile(filepath.Join(conf, name), b, 0o644); err != nil {
			return p, "", err
		}
	}
	// The package's config.ini with the vardir changed, and a logback
	// configuration writing to stdout (the package's writes to
	// /var/log/puppetdb).
	ini, err := os.ReadFile(filepath.Join(puppetDBConfDir, "config.ini"))
	if err != nil {
		return p, "", err
	}
	logback := filepath.Join(dir, "logback.xml")
	ini = regexp.MustCompile(`(?m)^\s*vardir\s*=.*$`).ReplaceAll(ini, []byte("vardir = "+vardir))
	ini = regexp.MustCompile(`(?m)^\s*logging-config\s*=.*$`).ReplaceAll(ini, []byte("logging-config = "+logback))
	files := map[string]string{
		filepath.Join(conf, "config.ini"): string(ini),
		logback: `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d %-5p [%c{2}] %m%n</pattern></encoder>
  </appender>
  <root level="warn"><appender-ref ref="STDOUT"/></root>
</configuration>
`,
		filepath.Join(conf, "jetty.ini"): fmt.Sprintf(`[jetty]
host = 127.0.0.1
port = %d
ssl-host = 127.0.0.1
ssl-port = %d
ssl-key = %s
ssl-cert = %s
ssl-ca-cert = %s
`, httpPort, httpsPort, filepath.Join(pki, "server-key.pem"), filepath.Join(pki, "server.pem"), filepath.Join(pki, "ca.pem")),
		// node-ttl makes a node expire on the "clean" admin command the
		// seed sends; gc-interval 0 keeps PuppetDB from expiring (or
		// purging) anything on its own while the tests run.
		filepath.Join(conf, "database.ini"): fmt.Sprintf(`[database]
subname = //127.0.0.1:%d/puppetdb
username = puppetdb
password = puppetdb
node-ttl = %s
gc-interval = 0
`, pgPort, nodeTTL),
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return p, "", err
		}
	}
	pdb, err := p.spawn("puppetdb", nil, dir, java, "-Xmx256m", "-cp", puppetDBJar, "clojure.main", "-m", "puppetlabs.puppetdb.core",
		"services", "--config", conf, "--bootstrap-config", puppetDBBootstrap)
	if err != nil {
		return p, "", err
	}
	p.httpURL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	p.httpsURL = fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	// Ready once a query answers: before that PuppetDB refuses
	// connections, then answers 503 while it migrates its schema.
	err = waitFor(120*time.Second, pdb, func() error {
		_, err := p.query(`nodes[count()] {}`)
		return err
	})
	return p, "", err
}

// nodeTTL is PuppetDB's node-ttl in the tests: gone-1 is seeded, left
// alone this long, and expired by a "clean" command while the others are
// fresh.
const nodeTTL = "3s"

func fileMissing(p string) bool { _, err := os.Stat(p); return err != nil }

// spawn starts a child that dies with the test process (Pdeathsig), in
// its own process group, its output in DIR/NAME.log.
func (p *puppetDB) spawn(name string, cred *syscall.Credential, wd, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(p.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(bin, args...)
	cmd.Dir = wd
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { pr.err = cmd.Wait(); close(pr.exited) }()
	p.procs = append(p.procs, pr)
	return pr, nil
}

// stop ends PuppetDB, then PostgreSQL (fast shutdown), and removes the
// folder.
func (p *puppetDB) stop() {
	for i := len(p.procs) - 1; i >= 0; i-- {
		pr := p.procs[i]
		sig := syscall.SIGTERM
		if pr.name == "postgres" {
			sig = syscall.SIGINT
		}
		pr.cmd.Process.Signal(sig)
		select {
		case <-pr.exited:
		case <-time.After(10 * time.Second):
			pr.cmd.Process.Kill()
			<-pr.exited
		}
	}
	os.RemoveAll(p.dir)
}

// waitFor polls ready until it succeeds, the process exits or time is up.
func waitFor(limit time.Duration, pr *proc, ready func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-pr.exited:
			return fmt.Errorf("%s exited during start-up (%v):\n%s", pr.name, pr.err, pr.logTail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %v\n%s", pr.name, limit, err, pr.logTail())
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var plainHTTP = &http.Client{Timeout: 10 * time.Second}

// query runs a PQL query over plain http and returns the raw answer.
func (p *puppetDB) query(pql string) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"query": pql})
	resp, err := plainHTTP.Post(p.httpURL+"/pdb/query/v4", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, nil
}

// command submits a command through PuppetDB's command API.
func (p *puppetDB) command(name string, version int, certname string, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	u := fmt.Sprintf("%s/pdb/cmd/v1?command=%s&version=%d&certname=%s", p.httpURL, name, version, certname)
	resp, err := plainHTTP.Post(u, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("command %s for %s: %s: %s", name, certname, resp.Status, b)
	}
	return nil
}

// admin sends an admin command ("clean").
func (p *puppetDB) admin(payload any) error {
	body, _ := json.Marshal(payload)
	resp, err := plainHTTP.Post(p.httpURL+"/pdb/admin/v1/cmd", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin command: %s: %s", resp.Status, b)
	}
	return nil
}

// testNode is one node the seed submits, and what the tests expect of it.
type testNode struct {
	certname string
	env      string
	facts    map[string]any
	report   string // status of a report to store, "" for none
	state    string // active, deactivated, expired
}

// iface builds an interface of facter's networking fact.
func ifaceFact(mac string, v4 []string, v6 []string) map[string]any {
	f := map[string]any{"mtu": 1500}
	if mac != "" {
		f["mac"] = mac
	}
	var b4, b6 []map[string]any
	for _, a := range v4 {
		ip, mask, _ := strings.Cut(a, "/")
		b4 = append(b4, map[string]any{"address": ip, "netmask": mask, "network": "0.0.0.0"})
	}
	for _, a := range v6 {
		ip, mask, _ := strings.Cut(a, "/")
		b6 = append(b6, map[string]any{"address": ip, "netmask": mask, "network": "::", "scope6": "global"})
	}
	if b4 != nil {
		f["bindings"] = b4
		f["ip"] = b4[0]["address"]
	}
	if b6 != nil {
		f["bindings6"] = b6
		f["ip6"] = b6[0]["address"]
	}
	return f
}

// machineFacts are the facts facter 4 sends for a Linux machine with
// two interfaces (and loopback), as far as the plugin reads them, plus
// some it does not.
func machineFacts(certname, fqdn string, n int, extra map[string]any) map[string]any {
	mac0 := fmt.Sprintf("52:54:00:0a:00:%02x", n)
	mac1 := fmt.Sprintf("52:54:00:0b:00:%02x", n)
	ip0 := fmt.Sprintf("198.18.1.%d", n)
	ip6 := fmt.Sprintf("2001:db8:1::%x", n)
	f := map[string]any{
		"fqdn":     fqdn,
		"hostname": strings.SplitN(fqdn, ".", 2)[0],
		"kernel":   "Linux",
		"networking": map[string]any{
			"fqdn": fqdn, "hostname": strings.SplitN(fqdn, ".", 2)[0], "domain": "example.test",
			"ip": ip0, "ip6": ip6, "mac": mac0, "mtu": 1500, "netmask": "255.255.255.0", "network": "198.18.1.0",
			"primary": "ens3",
			"interfaces": map[string]any{
				"lo":   ifaceFact("", []string{"127.0.0.1/255.0.0.0"}, []string{"::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}),
				"ens3": ifaceFact(mac0, []string{ip0 + "/255.255.255.0"}, []string{ip6 + "/ffff:ffff:ffff:ffff::", fmt.Sprintf("fe80::5054:ff:fe0a:%x/ffff:ffff:ffff:ffff::", n)}),
				"ens4": ifaceFact(mac1, []string{fmt.Sprintf("198.19.2.%d/255.255.0.0", n)}, nil),
			},
		},
		"os": map[string]any{"name": "Debian", "family": "Debian", "release": map[string]any{"full": "12.5", "major": "12", "minor": "5"}},
		"dmi": map[string]any{
			"product": map[string]any{"name": "KVM", "uuid": fmt.Sprintf("8F3D2C1A-0000-4000-8000-0000000000%02X", n), "serial_number": fmt.Sprintf("SN-%04d", n)},
			"bios":    map[string]any{"vendor": "SeaBIOS"},
		},
		"processors": map[string]any{"count": 2},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// testNodes is what the seed puts into the real PuppetDB: six nodes,
// three pages of two in certname order, covering each node state, with
// and without a report, and one without a networking fact.
var testNodes = func() []testNode {
	web1 := machineFacts("web-1.example.test", "web-1.prod.example.test", 21, nil)
	// A Docker host: docker0's address is every Docker host's.
	web1["networking"].(map[string]any)["interfaces"].(map[string]any)["docker0"] = ifaceFact("02:42:ac:11:00:01", []string{"172.17.0.1/255.255.0.0"}, nil)
	db1 := machineFacts("db-1.example.test", "db-1.example.test", 11, nil)
	// An older machine: no serial number in dmi, the legacy fact instead.
	delete(db1["dmi"].(map[string]any)["product"].(map[string]any), "serial_number")
	db1["serialnumber"] = "LEGACY-0011"
	return []testNode{
		{certname: "db-1.example.test", env: "production", facts: db1, state: stateActive},
		{certname: "gone-1.example.test", env: "production", facts: machineFacts("gone-1.example.test", "gone-1.example.test", 31, nil), state: stateExpired},
		{certname: "lonely-1.example.test", env: "production", facts: map[string]any{"os": map[string]any{"name": "Debian", "family": "Debian"}, "kernel": "Linux"}, state: stateActive},
		{certname: "old-1.example.test", env: "production", facts: machineFacts("old-1.example.test", "old-1.example.test", 41, nil), report: "unchanged", state: stateDeactivated},
		{certname: "web-1.example.test", env: "production", facts: web1, report: "changed", state: stateActive},
		{certname: "web-2.example.test", env: "staging", facts: machineFacts("web-2.example.test", "web-2.example.test", 22, nil), report: "failed", state: stateActive},
	}
}()

func pdbTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// seed submits testNodes: gone-1 first, which is left to age past
// node-ttl and then expired; the others' facts and reports; then old-1 is
// deactivated. Commands are processed asynchronously, so each step
// waits until PuppetDB answers queries with its result.
func seed(p *puppetDB) error {
	facts := func(n testNode) error {
		return p.command("replace_facts", 5, n.certname, map[string]any{
			"certname": n.certname, "environment": n.env, "producer_timestamp": pdbTime(time.Now()),
			"producer": "puppet.example.test", "values": n.facts,
		})
	}
	ttl, _ := time.ParseDuration(nodeTTL)
	var gone testNode
	for _, n := range testNodes {
		if n.state == stateExpired {
			gone = n
		}
	}
	first := time.Now()
	if err := facts(gone); err != nil {
		return err
	}
	if err := p.waitNodes(func(m map[string]nodeRow) bool { _, ok := m[gone.certname]; return ok }); err != nil {
		return err
	}
	time.Sleep(time.Until(first.Add(ttl + 300*time.Millisecond)))
	for _, n := range testNodes {
		if n.state == stateExpired {
			continue
		}
		if err := facts(n); err != nil {
			return err
		}
		if n.report == "" {
			continue
		}
		now := pdbTime(time.Now())
		if err := p.command("store_report", 8, n.certname, map[string]any{
			"certname": n.certname, "environment": n.env, "puppet_version": "7.23.0", "report_format": 12,
			"configuration_version": "1733000000", "start_time": now, "end_time": now, "producer_timestamp": now,
			"producer": "puppet.example.test", "resources": []any{}, "metrics": []any{}, "logs": []any{},
			"transaction_uuid": "6f1c2b4a-0000-4000-8000-000000000001", "catalog_uuid": "6f1c2b4a-0000-4000-8000-000000000002",
			"code_id": nil, "job_id": nil, "cached_catalog_status": "not_used", "status": n.report,
			"noop": false, "corrective_change": false, "noop_pending": false, "type": "agent",
		}); err != nil {
			return err
		}
	}
	if err := p.waitNodes(func(m map[string]nodeRow) bool {
		for _, n := range testNodes {
			if r, ok := m[n.certname]; !ok || r.LatestReportStatus != n.report {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	if err := p.admin(map[string]any{"command": "clean", "version": 1, "payload": []string{"expire_nodes"}}); err != nil {
		return err
	}
	// On a slow machine a node seeded above may have aged past node-ttl
	// too; new facts reactivate it.
	var expired []string
	if err := p.waitNodes(func(m map[string]nodeRow) bool {
		expired = expired[:0]
		for _, r := range m {
			if r.Expired != "" {
				expired = append(expired, r.Certname)
			}
		}
		return slices.Contains(expired, gone.certname)
	}); err != nil {
		return err
	}
	for _, n := range testNodes {
		if n.state != stateExpired && slices.Contains(expired, n.certname) {
			if err := facts(n); err != nil {
				return err
			}
		}
	}
	for _, n := range testNodes {
		if n.state == stateDeactivated {
			if err := p.command("deactivate_node", 3, n.certname, map[string]any{"certname": n.certname, "producer_timestamp": pdbTime(time.Now())}); err != nil {
				return err
			}
		}
	}
	var last map[string]nodeRow
	err := p.waitNodes(func(m map[string]nodeRow) bool {
		last = m
		for _, n := range testNodes {
			r := m[n.certname]
			if (r.Deactivated != "") != (n.state == stateDeactivated) || (r.Expired != "") != (n.state == stateExpired) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w (node states now: %+v; a node other than gone-1 expires if seeding the others took longer than node-ttl %s)", err, last, nodeTTL)
	}
	return nil
}

// waitNodes polls every node's row until done says they are as wanted.
func (p *puppetDB) waitNodes(done func(map[string]nodeRow) bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := p.query(`nodes[` + strings.Join(nodeFields, ", ") + `] { node_state = "any" }`)
		if err == nil {
			var rows []nodeRow
			if err = json.Unmarshal(b, &rows); err == nil {
				m := map[string]nodeRow{}
				for _, r := range rows {
					m[r.Certname] = r
				}
				if done(m) {
					return nil
				}
				err = errors.New("PuppetDB has not processed the commands yet")
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for PuppetDB: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// config is a job configuration for the plain http port, with extra
// attributes as "name": value pairs.
func (p *puppetDB) config(extra ...string) []byte {
	return []byte("{" + strings.Join(append([]string{fmt.Sprintf("%q: %q", "url", p.httpURL)}, extra...), ", ") + "}")
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
