package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as a user would and returns its path.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sollwert-plugin-hostsfile")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestConformance(t *testing.T) {
	hosts, err := filepath.Abs("testdata/hosts.csv")
	if err != nil {
		t.Fatal(err)
	}
	// A large inventory, so that cancelling Discover interrupts it.
	big := filepath.Join(t.TempDir(), "big.csv")
	var b strings.Builder
	b.WriteString("name,addresses,labels,tcp\n")
	for i := 0; i < 300_000; i++ {
		fmt.Fprintf(&b, "h%d,198.%d.%d.%d,team=t%d,22\n", i, 18+i>>16, (i>>8)&0xff, i&0xff, i%7)
	}
	if err := os.WriteFile(big, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	sdktest.Run(t, sdktest.Config{
		Binary:          buildPlugin(t),
		Valid:           json.RawMessage(fmt.Sprintf(`{"file": %q}`, hosts)),
		Invalid:         json.RawMessage(`{"file": ""}`),
		MinObservations: 3,
		Slow:            json.RawMessage(fmt.Sprintf(`{"file": %q}`, big)),
	})
}

// TestBuiltAgainstTheSDKAlone: a plugin pulls in nothing of the daemon.
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
	}
}
