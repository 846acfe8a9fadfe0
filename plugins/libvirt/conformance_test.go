package main

import (
	"encoding/json"
	"testing"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string { return sdktest.Build(t, "libvirt") }

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
	sdktest.CheckDependencies(t, "github.com/sollwert/sollwert/plugins/libvirt")
}
