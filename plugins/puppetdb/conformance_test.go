package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string { return sdktest.Build(t, "puppetdb") }

// TestConformance runs the sdk's kit against the built binary, pulling
// from the real PuppetDB; Slow points at a server that answers nothing
// until the client gives up, so the cancellation check interrupts a pull
// midway.
func TestConformance(t *testing.T) {
	bin := buildPlugin(t)
	p := requirePuppetDB(t)
	hung := newFakePDB(t)
	hung.hold = func(ctx context.Context) { <-ctx.Done() }
	sdktest.Run(t, sdktest.Config{
		Binary:          bin,
		Valid:           json.RawMessage(p.config(`"page_size": 2`)),
		Invalid:         json.RawMessage(`{"url": "puppetdb.example.com:8081", "page_size": 0, "cert_file": "/nonexistent/client.pem"}`),
		Slow:            json.RawMessage(hung.config()),
		MinObservations: len(wantInstanceIDs(true)),
	})
}

// TestBuiltAgainstTheSDKAlone: the plugin pulls in nothing of the daemon.
func TestBuiltAgainstTheSDKAlone(t *testing.T) {
	sdktest.CheckDependencies(t, "github.com/sollwert/sollwert/plugins/puppetdb")
}
