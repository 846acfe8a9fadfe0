package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string { return sdktest.Build(t, "openstack") }

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
	sdktest.CheckDependencies(t, "github.com/sollwert/sollwert/plugins/openstack")
}
