package model

import (
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// BenchmarkMergeNew merges the observation of a host never seen, as a
// provider pull reports it (the end-to-end plugin benchmark's shape) and
// as a scan does (20 open ports).
func BenchmarkMergeNew(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pull := sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{{Addr: "198.18.3.4", Type: "ipv4"}},
		Hostnames: []string{"host-1.test"}, Labels: map[string]string{"team": "test"}}
	scan := obs()
	for p := 0; p < 20; p++ {
		scan.Services = append(scan.Services, sdk.Service{Protocol: sdk.TCP, Port: uint16(1000 + p), State: "open", Name: "svc", Product: "product", Version: "1.0"})
	}
	scan.Hostnames = []string{"host.example"}
	for _, c := range []struct {
		name  string
		obs   sdk.Observation
		scope sdk.Scope
	}{{"pull", pull, sdk.Scope{}}, {"scan", scan, scopeOf("1-65535")}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Merge(nil, DefaultTenant, "0123456789abcdef", c.obs, c.scope, RunRef{Source: "src", Job: "job"}, now)
			}
		})
	}
}
