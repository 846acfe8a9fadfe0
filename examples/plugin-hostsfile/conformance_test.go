package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string { return sdktest.Build(t, "hostsfile") }

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

// TestBuiltAgainstTheSDKAlone: the plugin pulls in nothing of the daemon.
func TestBuiltAgainstTheSDKAlone(t *testing.T) {
	sdktest.CheckDependencies(t, "github.com/sollwert/sollwert/examples/plugin-hostsfile")
}
