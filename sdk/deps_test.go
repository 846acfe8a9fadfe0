package sdk

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependsOnNothingOfTheDaemon keeps the promise of docs/plugins.md: a
// plugin built against this module pulls in no store, no scanner and no
// daemon package.
func TestDependsOnNothingOfTheDaemon(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 50 {
		t.Fatalf("go list printed %d packages; expected the sdk's full dependency list", len(pkgs))
	}
	for _, p := range pkgs {
		for _, banned := range []string{"badger", "Ullaakut/nmap", "gosnmp", "hashicorp/hcl", "robfig/cron"} {
			if strings.Contains(p, banned) {
				t.Errorf("the sdk depends on %s", p)
			}
		}
		if strings.HasPrefix(p, "github.com/sollwert/sollwert/") && !strings.HasPrefix(p, "github.com/sollwert/sollwert/sdk") {
			t.Errorf("the sdk depends on the daemon's package %s", p)
		}
	}
}
