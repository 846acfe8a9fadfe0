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

const benchHosts, benchPorts = 100_000, 20

func benchObservations() []sdk.Observation {
	obs := make([]sdk.Observation, benchHosts)
	for i := range obs {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		o := sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}}, Hostnames: []string{"host.example"}}
		for p := 0; p < benchPorts; p++ {
			o.Services = append(o.Services, sdk.Service{Protocol: sdk.TCP, Port: uint16(1000 + p), State: "open", Name: "svc", Product: "product", Version: "1.0"})
		}
		obs[i] = o
	}
	return obs
}

func benchApplier(b *testing.B) *Applier {
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	eng, err := rules.Compile([]rules.Rule{{Name: "all", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 65535}}}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return &Applier{Store: st, Engine: func() *rules.Engine { return eng }}
}

var benchScope = sdk.Scope{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Ports: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 65535}}}}

func applyRun(b *testing.B, app *Applier, obs []sdk.Observation, wantChanged int) {
	run := &model.Run{ID: "run", Tenant: model.DefaultTenant, Job: "scan", Source: "nmap", Start: time.Now()}
	sum, err := app.Apply(context.Background(), run, obs, benchScope)
	if err != nil {
		b.Fatal(err)
	}
	if sum.Changed != wantChanged {
		b.Fatalf("changed %d, want %d", sum.Changed, wantChanged)
	}
}

// BenchmarkUpsert applies runs of 100,000 hosts with 20 open ports each to
// a store on disk, with assets, history versions, the address index and
// rule evaluation, in three cases:
//   - insert: every host is new (an empty store per iteration);
//   - changed: every host changes one port per run, so every asset gets a
//     new history version (the worst case of a rescan);
//   - unchanged: a rescan that finds the same (the common case).
//
// Every case measures a daemon that has ingested before: the first run in
// a fresh process also pays for growing the Go heap (about a quarter more
// time on the benchmark machine), which a long-running daemon pays once.
func BenchmarkUpsert(b *testing.B) {
	obs := benchObservations()
	runs := 0 // the changed case must change something on every call, across b.N rounds
	b.Run("insert", func(b *testing.B) {
		applyRun(b, benchApplier(b), obs, benchHosts) // warm-up, see above
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			b.StopTimer()
			app := benchApplier(b)
			b.StartTimer()
			applyRun(b, app, obs, benchHosts)
		}
		b.ReportMetric(float64(benchHosts)*float64(b.N)/b.Elapsed().Seconds(), "assets/s")
	})
	b.Run("changed", func(b *testing.B) {
		app := benchApplier(b)
		applyRun(b, app, obs, benchHosts)
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			runs++
			for i := range obs {
				obs[i].Services[benchPorts-1].Port = uint16(2000 + runs)
			}
			applyRun(b, app, obs, benchHosts)
		}
		b.ReportMetric(float64(benchHosts)*float64(b.N)/b.Elapsed().Seconds(), "assets/s")
	})
	b.Run("unchanged", func(b *testing.B) {
		obs := benchObservations()
		app := benchApplier(b)
		applyRun(b, app, obs, benchHosts)
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			applyRun(b, app, obs, 0)
		}
		b.ReportMetric(float64(benchHosts)*float64(b.N)/b.Elapsed().Seconds(), "assets/s")
	})
}
