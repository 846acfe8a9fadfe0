package main

import (
	"encoding/json"
	"testing"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string { return sdktest.Build(t, "digitalocean") }

// TestConformance runs the sdk's kit against the built binary, pulling
// from the fake API; Slow points at one that answers nothing until the
// client gives up, so the cancellation check interrupts a pull midway.
func TestConformance(t *testing.T) {
	api := newFakeAPI(t)
	hung := newFakeAPI(t)
	hung.hold = holdUntilCancelled
	sdktest.Run(t, sdktest.Config{
		Binary:          buildPlugin(t),
		Valid:           json.RawMessage(api.config(t, "")),
		Invalid:         json.RawMessage(`{"per_page": 500, "tag": "no spaces", "api_url": "http://api.digitalocean.com"}`),
		Slow:            json.RawMessage(hung.config(t, "")),
		MinObservations: 4,
	})
}

// TestBuiltAgainstTheSDKAlone: the plugin pulls in nothing of the daemon.
func TestBuiltAgainstTheSDKAlone(t *testing.T) {
	sdktest.CheckDependencies(t, "github.com/sollwert/sollwert/plugins/digitalocean")
}
