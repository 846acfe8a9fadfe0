package rules

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// BenchmarkEvaluate judges 1,000,000 (host, port) observations, 50,000
// assets with 20 open ports each, against 10,000 expect blocks: one /24
// per block plus a few wide blocks, as a site-per-rule setup would have.
// The addresses are data only; nothing is contacted.
func BenchmarkEvaluate(b *testing.B) {
	const nRules, nAssets, nPorts = 10_000, 50_000, 20
	rs := make([]Rule, 0, nRules)
	for i := 0; i < nRules-3; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		rs = append(rs, Rule{Name: fmt.Sprintf("site-%d", i), CIDRs: []netip.Prefix{p},
			Allowed:  map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("22,80,443,8000-8100")},
			Required: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("22")}, Severity: model.SeverityCritical})
	}
	rs = append(rs,
		Rule{Name: "all", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("1-1024,8000-9000")}},
		Rule{Name: "half", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/9")}, UnknownHosts: model.SeverityWarning},
		Rule{Name: "stale", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}, StaleAfter: 3},
	)
	e, err := Compile(rs, map[string]time.Duration{"scan": time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	assets := make([]model.Asset, nAssets)
	for i := range assets {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		a := model.Asset{ID: "x", Tenant: model.DefaultTenant, Status: sdk.StatusUp, LastScannedBy: "scan", LastScanned: now,
			Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}},
			Scanned:   map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("1-65535")}}
		for p := 0; p < nPorts; p++ {
			port := uint16(20 + p*7) // a mix of allowed and forbidden ports
			if p == 0 {
				port = 22
			}
			a.Services = append(a.Services, model.Service{Protocol: sdk.TCP, Port: port, State: "open"})
		}
		assets[i] = a
	}
	b.ReportAllocs()
	b.ResetTimer()
	findings := 0
	var out []model.Finding
	for n := 0; n < b.N; n++ {
		for i := range assets {
			out = e.Evaluate(&assets[i], now, out[:0])
			findings += len(out)
		}
	}
	b.StopTimer()
	obs := float64(nAssets*nPorts) * float64(b.N)
	b.ReportMetric(obs/b.Elapsed().Seconds(), "observations/s")
	b.ReportMetric(float64(findings)/float64(b.N), "findings/op")
}
