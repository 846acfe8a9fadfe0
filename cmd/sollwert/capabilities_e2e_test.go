package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/internal/testproc"
)

// TestSYNScanWithOnlyTwoCapabilities: what the packaged unit grants
// (user nobody, ambient CAP_NET_RAW and CAP_NET_ADMIN, nothing else) is
// enough for a SYN scan through the real nmap with --privileged; without
// the capabilities the job fails up front, naming the capability.
func TestSYNScanWithOnlyTwoCapabilities(t *testing.T) {
	requireNmap(t)
	if _, err := exec.LookPath("setpriv"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("setpriv (util-linux) and root are needed: run `make test` as root")
		}
		t.Skip("needs root and setpriv")
	}
	// A folder nobody can use: the binary, the config, the store.
	dir, err := os.MkdirTemp("", "sollwert-caps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sollwert")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	testproc.WriteExecutable(t, bin, b)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	cfg := filepath.Join(dir, "sollwert.hcl")
	body := fmt.Sprintf("data_dir = %q\n", filepath.Join(dir, "data")) +
		loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), `  scan_type = "syn"`+"\n") + expectBlock(allowed)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	scan := func(caps ...string) (string, error) {
		args := append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups"}, caps...)
		args = append(args, bin, "scan", "--config", cfg, "--job", "lo", "--ephemeral", "--log-level", "debug")
		out, err := exec.Command("setpriv", args...).CombinedOutput()
		return string(out), err
	}

	out, err := scan("--inh-caps=+net_raw,+net_admin", "--ambient-caps=+net_raw,+net_admin")
	if err != nil {
		t.Fatalf("SYN scan with the capabilities: %v\n%s", err, out)
	}
	if !strings.Contains(out, "-sS") || !strings.Contains(out, "--privileged") || !strings.Contains(out, fmt.Sprintf("tcp/%d", rogue)) {
		t.Fatalf("want a privileged SYN scan that finds tcp/%d:\n%s", rogue, out)
	}

	out, err = scan()
	if err == nil || !strings.Contains(out, "CAP_NET_RAW") {
		t.Fatalf("SYN scan without capabilities: err %v\n%s", err, out)
	}
}
