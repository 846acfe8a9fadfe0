package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sollwert-plugin-aws")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestConformance runs the sdk's kit against the built binary, pulling
// from the fake EC2 endpoint with credentials from the environment the
// plugin inherits.
func TestConformance(t *testing.T) {
	awsEnv(t)
	srv := startFake(t, &fakeEC2{dir: "testdata/ec2"})
	slow := startFake(t, &fakeEC2{dir: "testdata/ec2", delay: 3 * time.Second})
	sdktest.Run(t, sdktest.Config{
		Binary:          buildPlugin(t),
		Valid:           jobConfig(srv.URL, nil),
		Invalid:         json.RawMessage(`{"regions": ["Frankfurt"], "max_attempts": 0}`),
		Slow:            jobConfig(slow.URL, nil),
		MinObservations: 4,
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
			!strings.HasPrefix(p, "github.com/sollwert/sollwert/plugins/aws") {
			t.Errorf("the plugin imports the daemon's %s", p)
		}
	}
}
