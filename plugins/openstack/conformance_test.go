package main

import (
	"encoding/json"
	"fmt"
	"net/http"
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
	bin := filepath.Join(t.TempDir(), "sollwert-plugin-openstack")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestConformance runs the sdk's kit against the built binary, pulling
// from the fake cloud; Slow is a cloud whose Nova takes 400 ms a page.
func TestConformance(t *testing.T) {
	f := newFakeCloud(t)
	slow := newFakeCloud(t)
	slow.fault = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
		if kind == "servers" {
			select {
			case <-time.After(400 * time.Millisecond):
			case <-r.Context().Done():
			}
		}
		return false
	}
	slowConfig := passwordConfig(t, slow, "")
	slowConfig = []byte(strings.Replace(string(slowConfig), `"page_size": 2`, `"page_size": 1`, 1))
	sdktest.Run(t, sdktest.Config{
		Binary:          buildPlugin(t),
		Valid:           json.RawMessage(passwordConfig(t, f, "")),
		Invalid:         json.RawMessage(fmt.Sprintf(`{"auth_url": %q, "username": "u", "interface": "admin"}`, f.authURL())),
		Slow:            json.RawMessage(slowConfig),
		MinObservations: 5,
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
			!strings.HasPrefix(p, "github.com/sollwert/sollwert/plugins/openstack") {
			t.Errorf("the plugin imports the daemon's %s", p)
		}
	}
}
