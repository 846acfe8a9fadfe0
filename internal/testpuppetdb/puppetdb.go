// Package testpuppetdb runs a real PuppetDB (Debian's puppetdb 7.12) on a
// throwaway PostgreSQL cluster for tests of the root module. It is the
// harness of plugins/puppetdb/puppetdb_test.go cut down to what the
// daemon's end-to-end tests need: plain http on 127.0.0.1, no TLS, no
// seed. Start takes ~30 s and ~470 MB; the test's cleanup stops both
// processes and removes their folder.
package testpuppetdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	jar       = "/usr/share/puppetdb/puppetdb.jar"
	bootstrap = "/etc/puppetdb/bootstrap.cfg"
	confDir   = "/etc/puppetdb/conf.d"
)

// PuppetDB is a running server.
type PuppetDB struct {
	dir   string // database, config, vardir, logs
	url   string // http://127.0.0.1:PORT
	procs []*proc
	// sent is the producer_timestamp of the last facts submitted per
	// certname, which WaitForNode waits for.
	sent map[string]time.Time
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

// Start runs PuppetDB and PostgreSQL, both children of the test process
// listening on 127.0.0.1 only, and stops them when the test ends. Without
// puppetdb, PostgreSQL or java the test skips, except under CI=true,
// where that is a failure.
func Start(t testing.TB) *PuppetDB {
	t.Helper()
	pgbin := postgresBin()
	java, _ := exec.LookPath("java")
	switch {
	case pgbin == "":
		missing(t, "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
	case fileMissing(jar) || fileMissing(bootstrap):
		missing(t, "puppetdb is not installed (no "+jar+")")
	case java == "":
		missing(t, "java is not installed (puppetdb's default-jre-headless)")
	}
	dir, err := os.MkdirTemp("", "sollwert-testpuppetdb-")
	if err != nil {
		t.Fatal(err)
	}
	p := &PuppetDB{dir: dir, sent: map[string]time.Time{}}
	t.Cleanup(p.stop)
	if err := p.start(pgbin, java); err != nil {
		t.Fatalf("start PuppetDB: %v", err)
	}
	return p
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must run this test (make test-deps installs puppetdb postgresql dbconfig-no-thanks default-jre-headless)", why)
	}
	t.Skipf("%s (apt-get install puppetdb postgresql dbconfig-no-thanks default-jre-headless)", why)
}

// URL is PuppetDB's base URL, plain http.
func (p *PuppetDB) URL() string { return p.url }

// postgresBin finds PostgreSQL's server binaries (Debian keeps them out
// of PATH), preferring 15.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return strings.Contains(dirs[i], "/15/") && !strings.Contains(dirs[j], "/15/") })
	for _, d := range dirs {
		if !fileMissing(filepath.Join(d, "initdb")) {
			return d
		}
	}
	return ""
}

func fileMissing(p string) bool { _, err := os.Stat(p); return err != nil }

// start makes a cluster with initdb -A trust as user postgres, runs
// postgres in the foreground as the harness's child (so that it dies with
// the test process however that ends) with its socket in the run's
// folder, creates the database puppetdb with pg_trgm, writes a config dir
// from the package's config.ini, auth.conf and repl.ini with jetty.ini and
// database.ini of its own, and starts PuppetDB's services with java.
func (p *PuppetDB) start(pgbin, java string) error {
	// initdb refuses to run as root: the cluster belongs to postgres, in
	// a folder it may write.
	if err := os.Chmod(p.dir, 0o755); err != nil {
		return err
	}
	pgDir := filepath.Join(p.dir, "pg")
	if err := os.Mkdir(pgDir, 0o700); err != nil {
		return err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("the user postgres does not exist (Debian's postgresql package makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		if err := os.Chown(pgDir, uid, gid); err != nil {
			return err
		}
	}
	data := filepath.Join(pgDir, "data")
	initdb := exec.Command(filepath.Join(pgbin, "initdb"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D", data)
	initdb.Dir = pgDir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	pgPort, err := freePort()
	if err != nil {
		return err
	}
	// fsync and friends off: a throwaway cluster has nothing to keep.
	pg, err := p.spawn("postgres", cred, pgDir, filepath.Join(pgbin, "postgres"), "-D", data, "-p", strconv.Itoa(pgPort),
		"-k", pgDir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	if err != nil {
		return err
	}
	psql := func(db string, sql ...string) error {
		args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", strconv.Itoa(pgPort), "-U", "postgres", "-d", db}
		for _, s := range sql {
			args = append(args, "-c", s)
		}
		if out, err := exec.Command(filepath.Join(pgbin, "psql"), args...).CombinedOutput(); err != nil {
			return fmt.Errorf("psql %s: %v: %s", strings.Join(sql, "; "), err, out)
		}
		return nil
	}
	if err := waitReady(15*time.Second, pg, func() error { return psql("postgres", "select 1") }); err != nil {
		return err
	}
	if err := psql("postgres", "create user puppetdb password 'puppetdb'", "create database puppetdb owner puppetdb"); err != nil {
		return err
	}
	if err := psql("puppetdb", "create extension pg_trgm"); err != nil {
		return err
	}

	httpPort, err := freePort()
	if err != nil {
		return err
	}
	conf := filepath.Join(p.dir, "conf.d")
	vardir := filepath.Join(p.dir, "var")
	for _, d := range []string{conf, vardir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	for _, name := range []string{"auth.conf", "repl.ini"} {
		b, err := os.ReadFile(filepath.Join(confDir, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(conf, name), b, 0o644); err != nil {
			return err
		}
	}
	// The package's config.ini with the vardir changed, and a logback
	// configuration writing to stdout (the package's writes to
	// /var/log/puppetdb).
	ini, err := os.ReadFile(filepath.Join(confDir, "config.ini"))
	if err != nil {
		return err
	}
	logback := filepath.Join(p.dir, "logback.xml")
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
		// Plain http only; the plugin's own tests cover TLS.
		filepath.Join(conf, "jetty.ini"): fmt.Sprintf("[jetty]\nhost = 127.0.0.1\nport = %d\n", httpPort),
		// gc-interval 0: PuppetDB expires and purges nothing on its own
		// while a test runs.
		filepath.Join(conf, "database.ini"): fmt.Sprintf("[database]\nsubname = //127.0.0.1:%d/puppetdb\nusername = puppetdb\npassword = puppetdb\ngc-interval = 0\n", pgPort),
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return err
		}
	}
	pdb, err := p.spawn("puppetdb", nil, p.dir, java, "-Xmx256m", "-cp", jar, "clojure.main", "-m", "puppetlabs.puppetdb.core",
		"services", "--config", conf, "--bootstrap-config", bootstrap)
	if err != nil {
		return err
	}
	p.url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	// Ready once a query answers: before that PuppetDB refuses
	// connections, then answers 503 while it migrates its schema.
	return waitReady(120*time.Second, pdb, func() error {
		_, err := p.query(`nodes[count()] {}`)
		return err
	})
}

// spawn starts a child that dies with the test process (Pdeathsig), in
// its own process group, its output in DIR/NAME.log.
func (p *PuppetDB) spawn(name string, cred *syscall.Credential, wd, bin string, args ...string) (*proc, error) {
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

// stop kills PuppetDB (a throwaway server needs no clean shutdown, and
// java takes seconds over one), then shuts PostgreSQL down fast, so that
// the postmaster reaps its backends, and removes the folder. Each child
// leads a process group of its own: whatever is left of one is killed.
func (p *PuppetDB) stop() {
	for i := len(p.procs) - 1; i >= 0; i-- {
		pr := p.procs[i]
		if pr.name == "postgres" {
			_ = pr.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-pr.exited:
			case <-time.After(5 * time.Second):
			}
		}
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
		<-pr.exited
	}
	p.procs = nil
	_ = os.RemoveAll(p.dir)
}

// waitReady polls ready until it succeeds, the process exits or time is
// up.
func waitReady(limit time.Duration, pr *proc, ready func() error) error {
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

var client = &http.Client{Timeout: 10 * time.Second}

func (p *PuppetDB) post(path string, payload any) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	resp, err := client.Post(p.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, b)
	}
	return b, nil
}

// query runs a PQL query and returns the raw answer.
func (p *PuppetDB) query(pql string) ([]byte, error) {
	return p.post("/pdb/query/v4", map[string]string{"query": pql})
}

// ReplaceFacts submits a node's facts (replace_facts, version 5), as a
// Puppet agent's run does. PuppetDB processes commands asynchronously:
// WaitForNode waits until the facts are there.
func (p *PuppetDB) ReplaceFacts(t testing.TB, certname string, values map[string]any) {
	t.Helper()
	// Each submission for a node later than the last: PuppetDB keeps
	// facts with the newest producer_timestamp, and WaitForNode tells them
	// apart by it.
	ts := time.Now().UTC().Truncate(time.Millisecond)
	if last := p.sent[certname]; !ts.After(last) {
		ts = last.Add(time.Millisecond)
	}
	_, err := p.post(fmt.Sprintf("/pdb/cmd/v1?command=replace_facts&version=5&certname=%s", certname), map[string]any{
		"certname": certname, "environment": "production", "producer_timestamp": ts.Format("2006-01-02T15:04:05.000Z"),
		"producer": "puppet.example.test", "values": values,
	})
	if err != nil {
		t.Fatalf("replace_facts for %s: %v", certname, err)
	}
	p.sent[certname] = ts
}

// WaitForNode waits until PuppetDB answers queries with the facts last
// submitted for certname.
func (p *PuppetDB) WaitForNode(t testing.TB, certname string) {
	t.Helper()
	want, ok := p.sent[certname]
	if !ok {
		t.Fatalf("WaitForNode(%s): no facts were submitted for it", certname)
	}
	pql := fmt.Sprintf(`factsets[producer_timestamp] { certname = %q }`, certname)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := p.query(pql)
		if err == nil {
			var rows []struct {
				ProducerTimestamp time.Time `json:"producer_timestamp"`
			}
			if err = json.Unmarshal(b, &rows); err == nil {
				if len(rows) == 1 && !rows[0].ProducerTimestamp.Before(want) {
					return
				}
				err = fmt.Errorf("factsets: %s", b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("PuppetDB did not store the facts of %s submitted at %s: %v", certname, want.Format(time.RFC3339Nano), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
