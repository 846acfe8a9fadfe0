package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is a libvirtd the test started, all of its state in one folder.
type daemon struct {
	dir    string // holds node.xml and the daemon's home; readable by it
	socket string
	// logFile holds the daemon's stderr. A file rather than a buffer:
	// exec then copies nothing, and Wait cannot hang on a pipe held open.
	logFile string
}

// logText is what the daemon logged so far.
func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.logFile)
	return string(b)
}

// requireLibvirtd finds libvirtd, installing Debian's libvirt-daemon when
// run as root. Without it the test skips, except under CI=true, where a
// missing component is a failure.
func requireLibvirtd(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("libvirtd"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/libvirtd", "/sbin/libvirtd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Geteuid() == 0 {
		apt := func(args ...string) error {
			cmd := exec.Command("apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Logf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return err
		}
		install := []string{"install", "-y", "-qq", "--no-install-recommends", "libvirt-daemon"}
		if apt(install...) == nil || (apt("update", "-qq") == nil && apt(install...) == nil) {
			if _, err := os.Stat("/usr/sbin/libvirtd"); err == nil {
				return "/usr/sbin/libvirtd"
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("libvirtd is not installed (Debian package libvirt-daemon); CI must run this test")
	}
	t.Skip("libvirtd is not installed (Debian package libvirt-daemon)")
	return ""
}

// startLibvirtd runs a private libvirtd in session mode: as an
// unprivileged user (nobody, when the test runs as root) with HOME and
// XDG_RUNTIME_DIR in a fresh folder, so its socket, pid file, config and
// driver state all live there and nothing collides with a system daemon
// or another test. Session mode needs neither the libvirt-qemu user nor
// the kvm group that the system QEMU driver wants. The fixture
// testdata/node.xml is copied into the folder, which the daemon's test
// driver reads. conf, when given, is the daemon's libvirtd.conf (to
// listen on TLS); the daemon gets --listen with it.
func startLibvirtd(t *testing.T, conf ...string) *daemon {
	t.Helper()
	bin := requireLibvirtd(t)
	dir, err := os.MkdirTemp("", "sollwert-libvirtd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("run libvirtd unprivileged: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, sub := range []string{"home", "run"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	fixture, err := os.ReadFile("testdata/node.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node.xml"), fixture, 0o644); err != nil {
		t.Fatal(err)
	}
	owned := []string{dir, filepath.Join(dir, "home"), filepath.Join(dir, "run"), filepath.Join(dir, "node.xml")}
	args := []string{"--pid-file", filepath.Join(dir, "run", "libvirtd.pid")}
	if len(conf) > 0 {
		cf := filepath.Join(dir, "libvirtd.conf")
		if err := os.WriteFile(cf, []byte(strings.Join(conf, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		owned = append(owned, cf)
		args = append(args, "--listen", "--config", cf)
	}
	for _, p := range owned {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	run := filepath.Join(dir, "run")
	d := &daemon{dir: dir, socket: filepath.Join(run, "libvirt", "libvirt-sock"), logFile: filepath.Join(dir, "libvirtd.log")}
	logf, err := os.Create(d.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child holds its own copy
	// No --timeout: the daemon lives until the test stops it.
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_RUNTIME_DIR=" + run,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "home", ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "home", ".cache"),
		"LIBVIRT_LOG_OUTPUTS=3:stderr", // warnings and errors only
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Getuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start libvirtd: %v", err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("libvirtd exited during start-up (%v):\n%s", waitErr, d.logText())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd did not listen on %s within 15s:\n%s", d.socket, d.logText())
		}
	}
	return d
}

// uri is the test driver's URI for the fixture, through this daemon.
func (d *daemon) uri() string {
	return fmt.Sprintf("test+unix://%s?socket=%s", filepath.Join(d.dir, "node.xml"), d.socket)
}

// config is a job configuration for this daemon, with extra attributes.
func (d *daemon) config(extra ...string) []byte {
	parts := append([]string{fmt.Sprintf("%q: %q", "uri", d.uri())}, extra...)
	return []byte("{" + strings.Join(parts, ", ") + "}")
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
