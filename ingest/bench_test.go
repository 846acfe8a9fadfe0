package ingest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkUpsert applies runs of 100,000 hosts with 20 open ports each to
// a store on disk: assets, history versions, address index and rule
// evaluation included. Each iteration is one run; every run after the
// first changes one port per host, so every asset gets a new version.
func BenchmarkUpsert(b *testing.B) {
	const nHosts, nPorts = 100_000, 20
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng, err := rules.Compile([]rules.Rule{{Name: "all", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 65535}}}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	app := &Applier{Store: st, Engine: func() *rules.Engine { return eng }}
	scope := sdk.Scope{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Ports: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 65535}}}}
	obs := make([]sdk.Observation, nHosts)
	for i := range obs {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		o := sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}}, Hostnames: []string{"host.example"}}
		for p := 0; p < nPorts; p++ {
			o.Services = append(o.Services, sdk.Service{Protocol: sdk.TCP, Port: uint16(100 + p), State: "open", Name: "svc", Product: "product", Version: "1.0"})
		}
		obs[i] = o
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range obs {
			obs[i].Services[0].Port = uint16(1000 + n) // one change per host per run
		}
		run := &model.Run{ID: "run", Tenant: model.DefaultTenant, Job: "scan", Source: "nmap", Start: time.Now()}
		sum, err := app.Apply(context.Background(), run, obs, scope)
		if err != nil {
			b.Fatal(err)
		}
		if sum.Changed != nHosts {
			b.Fatalf("changed %d of %d", sum.Changed, nHosts)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(nHosts)*float64(b.N)/b.Elapsed().Seconds(), "assets/s")
}
