// Package packaging holds what `make package` turns into the .deb and the
// .rpm (nfpm.yaml, the systemd unit, the default configuration and the
// maintainer scripts); its test builds both packages and installs the .deb
// on this machine for real.
package packaging

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// requireRoot: installing a package needs root and dpkg; under CI=true
// their absence fails the test.
func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	missing := ""
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing += " " + tool
		}
	}
	if os.Geteuid() == 0 && missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the package test needs root and%s: run `make test` as root", missing)
	}
	t.Skipf("needs root and%s", missing)
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildPackages runs `make package` in the repository and returns the
// .deb and the .rpm it made.
func buildPackages(t *testing.T) (deb, rpm string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	// A dist folder of the test's own, so a developer's dist/ stays.
	run(t, nil, "make", "-C", root, "--no-print-directory", "package", "DIST="+dist)
	debs, _ := filepath.Glob(filepath.Join(dist, "sollwert_*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dist, "sollwert-*.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("make package made %v and %v", debs, rpms)
	}
	return debs[0], rpms[0]
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestDebInstallsRunsAndPurges(t *testing.T) {
	requireRoot(t, "dpkg", "rpm", "systemd-analyze", "make")
	deb, rpm := buildPackages(t)
	purge := func(env ...string) { run(t, env, "dpkg", "--purge", "sollwert") }
	if exec.Command("dpkg", "-s", "sollwert").Run() == nil {
		purge()
	}
	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", "sollwert").Run() })

	run(t, nil, "dpkg", "-i", deb)
	for _, p := range []string{"/usr/bin/sollwert", "/etc/sollwert/sollwert.hcl", "/lib/systemd/system/sollwert.service",
		"/var/lib/sollwert", "/usr/lib/sollwert/plugins", "/usr/share/doc/sollwert/operations.md"} {
		if !exists(p) {
			t.Errorf("%s not installed", p)
		}
	}
	u, err := user.Lookup("sollwert")
	if err != nil {
		t.Fatalf("no sollwert user: %v", err)
	}
	if u.HomeDir != "/var/lib/sollwert" {
		t.Errorf("sollwert's home is %s", u.HomeDir)
	}
	if out := run(t, nil, "stat", "-c", "%U:%G %a", "/var/lib/sollwert"); strings.TrimSpace(out) != "sollwert:sollwert 750" {
		t.Errorf("/var/lib/sollwert is %s", out)
	}
	if b, _ := os.ReadFile("/var/lib/dpkg/info/sollwert.conffiles"); strings.TrimSpace(string(b)) != "/etc/sollwert/sollwert.hcl" {
		t.Errorf("conffiles: %q", b)
	}
	if out := run(t, nil, "/usr/bin/sollwert", "version"); !strings.HasPrefix(out, "sollwert 0.1.0") && !strings.HasPrefix(out, "sollwert 1") {
		t.Errorf("sollwert version: %q", out)
	}
	// The packaged configuration is valid, read as the daemon's own user.
	run(t, nil, "setpriv", "--reuid=sollwert", "--regid=sollwert", "--init-groups",
		"/usr/bin/sollwert", "rules", "validate", "--config", "/etc/sollwert/sollwert.hcl")
	run(t, nil, "systemd-analyze", "verify", "/lib/systemd/system/sollwert.service")
	unit, _ := os.ReadFile("/lib/systemd/system/sollwert.service")
	for _, want := range []string{"User=sollwert", "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN", "NoNewPrivileges=yes", "ProtectSystem=strict", "RuntimeDirectory=sollwert"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}

	// An upgrade (the same package again) keeps an edited configuration.
	const edit = "\n# edited by the admin\n"
	f, err := os.OpenFile("/etc/sollwert/sollwert.hcl", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(edit)
	f.Close()
	run(t, nil, "dpkg", "-i", "--force-confold", deb)
	if b, _ := os.ReadFile("/etc/sollwert/sollwert.hcl"); !strings.HasSuffix(string(b), edit) {
		t.Error("reinstalling overwrote the edited configuration")
	}

	// Purge asked to keep the data keeps only the data.
	if err := os.WriteFile("/var/lib/sollwert/MANIFEST", []byte("store"), 0o600); err != nil {
		t.Fatal(err)
	}
	purge("SOLLWERT_KEEP_DATA=1")
	if !exists("/var/lib/sollwert/MANIFEST") {
		t.Error("SOLLWERT_KEEP_DATA=1 purge removed the data")
	}
	for _, p := range []string{"/usr/bin/sollwert", "/etc/sollwert", "/lib/systemd/system/sollwert.service"} {
		if exists(p) {
			t.Errorf("%s left after purge", p)
		}
	}
	if _, err := user.Lookup("sollwert"); err == nil {
		t.Error("the sollwert user is left after purge")
	}
	// A plain purge removes the data too.
	run(t, nil, "dpkg", "-i", deb)
	purge()
	if exists("/var/lib/sollwert") {
		t.Error("/var/lib/sollwert left after purge")
	}

	// The .rpm, read with rpm itself.
	files := run(t, nil, "rpm", "-qpl", rpm)
	for _, want := range []string{"/usr/bin/sollwert", "/etc/sollwert/sollwert.hcl", "/lib/systemd/system/sollwert.service"} {
		if !strings.Contains(files, want+"\n") {
			t.Errorf("rpm -qpl lacks %s:\n%s", want, files)
		}
	}
	if cfg := run(t, nil, "rpm", "-qp", "--configfiles", rpm); strings.TrimSpace(cfg) != "/etc/sollwert/sollwert.hcl" {
		t.Errorf("rpm config files: %q", cfg)
	}
	if info := run(t, nil, "rpm", "-qpi", rpm); !strings.Contains(info, "Name        : sollwert") {
		t.Errorf("rpm -qpi:\n%s", info)
	}
	if scripts := run(t, nil, "rpm", "-qp", "--scripts", rpm); !strings.Contains(scripts, "useradd --system") {
		t.Errorf("rpm scripts lack the user:\n%s", scripts)
	}
}
