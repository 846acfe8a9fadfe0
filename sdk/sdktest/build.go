package sdktest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build builds the plugin in the test's own directory (its main package)
// as `make` does, static and with trimmed paths, into a temporary
// sollwert-plugin-NAME, and returns its path.
func Build(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sollwert-plugin-"+name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	return bin
}

// CheckDependencies fails the test if the package in the test's directory
// depends on the daemon: a plugin is built against the sdk alone, so none
// of Badger, nmap, gosnmp or a sollwert package outside the sdk and the
// plugin's own module (own) may be among its dependencies.
func CheckDependencies(t testing.TB, own string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 20 {
		t.Fatalf("go list printed only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		for _, banned := range []string{"dgraph-io/badger", "Ullaakut/nmap", "gosnmp"} {
			if strings.Contains(p, banned) {
				t.Errorf("the plugin depends on %s", p)
			}
		}
		if strings.HasPrefix(p, "github.com/sollwert/sollwert/") && !strings.HasPrefix(p, "github.com/sollwert/sollwert/sdk") &&
			!strings.HasPrefix(p, own) {
			t.Errorf("the plugin imports the daemon's %s", p)
		}
	}
}
