package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sollwert-plugin-libvirt")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestConformance runs the sdk's kit against the built binary, pulling
// from a real libvirtd.
func TestConformance(t *testing.T) {
	d := startLibvirtd(t)
	sdktest.Run(t, sdktest.Config{
		Binary:          buildPlugin(t),
		Valid:           json.RawMessage(d.config()),
		Invalid:         json.RawMessage(`{"uri": "qemu+tcp://hv1/system", "domains": ["["]}`),
		MinObservations: 4, // three domains, two networks
	})
}

// TestBuiltAgainstTheSDKAlone: the plugin pulls in nothing of the daemon.
func TestBuiltAgainstTheSDKAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 50 {
		t.Fatalf("go list printed only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		for _, banned := range []string{"badger", "nmap", "gosnmp"} {
			if strings.Contains(p, banned) {
				t.Errorf("the plugin depends on %s", p)
			}
		}
		if strings.HasPrefix(p, "github.com/sollwert/sollwert/") && !strings.HasPrefix(p, "github.com/sollwert/sollwert/sdk") &&
			!strings.HasPrefix(p, "github.com/sollwert/sollwert/plugins/libvirt") {
			t.Errorf("the plugin imports the daemon's %s", p)
		}
	}
}
