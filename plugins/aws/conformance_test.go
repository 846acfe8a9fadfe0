package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildPlugin builds this plugin as make does and returns its path.
func buildPlugin(t *testing.T) string { return sdktest.Build(t, "aws") }

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
	sdktest.CheckDependencies(t, "github.com/sollwert/sollwert/plugins/aws")
}
