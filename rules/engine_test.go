package rules

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

func ports(spec string) sdk.PortRanges {
	r, err := sdk.ParsePortRanges(spec)
	if err != nil {
		panic(err)
	}
	return r
}

func asset(ip string, open ...uint16) *model.Asset {
	a := &model.Asset{ID: "a", Tenant: model.DefaultTenant, Status: sdk.StatusUp,
		Addresses: []sdk.Address{{Addr: ip, Type: "ipv4"}},
		Scanned:   map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("1-1024")}}
	for _, p := range open {
		a.Services = append(a.Services, model.Service{Protocol: sdk.TCP, Port: p, State: "open"})
	}
	return a
}

func describe(fs []model.Finding) string {
	var out []string
	for _, f := range fs {
		s := fmt.Sprintf("%s:%s:%s", f.Rule, f.Kind, f.Severity)
		if f.Port != 0 {
			s += fmt.Sprintf(":%s/%d", f.Protocol, f.Port)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := []Rule{
		{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("22,8000-8100")}, Required: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("22")},
			Severity: model.SeverityCritical, UnknownHosts: model.SeverityWarning},
		{Name: "dmz", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.1.0.0/16"), netip.MustParsePrefix("::1/128")},
			Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: nil}},
		{Name: "other-tenant", Tenant: "acme", CIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")},
			Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: nil}},
	}
	e, err := Compile(base, map[string]time.Duration{"hourly": time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		asset *model.Asset
		want  string
	}{
		{"allowed ports only is clean", asset("127.0.0.1", 22, 8080), ""},
		{"an open port outside the allowed list", asset("127.0.0.1", 22, 8443), "lan:unexpected_port:critical:tcp/8443"},
		{"a required port that was scanned and is closed", asset("127.0.0.1", 8080), "lan:missing_port:critical:tcp/22"},
		{"an empty allow list forbids every port", asset("127.1.2.3", 22), "dmz:unexpected_port:warning:tcp/22"},
		{"outside every prefix", asset("10.0.0.1", 22, 23), ""},
		{"ipv6 prefix", func() *model.Asset { a := asset("::1", 80); return a }(), "dmz:unexpected_port:warning:tcp/80"},
		{"unknown host takes its own severity", func() *model.Asset { a := asset("127.0.0.1", 22); a.Unknown = true; return a }(), "lan:unknown_host:warning"},
		{"down hosts have no port findings", func() *model.Asset { a := asset("127.0.0.1", 23); a.Status = sdk.StatusDown; return a }(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := describe(e.Evaluate(c.asset, now, nil))
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestNestedRulesAllApply(t *testing.T) {
	e, err := Compile([]Rule{
		{Name: "wide", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("22")}},
		{Name: "narrow", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/24"), netip.MustParsePrefix("127.0.0.5/32")}, Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("80")}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := describe(e.Evaluate(asset("127.0.0.5", 22, 80), time.Now(), nil))
	want := "wide:unexpected_port:warning:tcp/80 narrow:unexpected_port:warning:tcp/22"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := e.Matching(model.DefaultTenant, netip.MustParseAddr("127.0.0.5")); len(n) != 2 {
		t.Fatalf("matching: %v", n)
	}
}

func TestStaleScan(t *testing.T) {
	e, _ := Compile([]Rule{{Name: "r", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, StaleAfter: 3}}, map[string]time.Duration{"j": time.Hour})
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	a := asset("127.0.0.1")
	a.LastScannedBy = "j"
	a.LastScanned = now.Add(-2 * time.Hour)
	if got := describe(e.Evaluate(a, now, nil)); got != "" {
		t.Fatalf("fresh asset: %q", got)
	}
	a.LastScanned = now.Add(-4 * time.Hour)
	if got := describe(e.Evaluate(a, now, nil)); got != "r:stale_scan:warning" {
		t.Fatalf("stale asset: %q", got)
	}
}

func TestCompileRejectsDuplicates(t *testing.T) {
	if _, err := Compile([]Rule{{Name: "x"}, {Name: "x"}}, nil); err == nil {
		t.Fatal("duplicate rule names compiled")
	}
}
