package rules

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
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
		{"a port open on two addresses of the machine is one finding", func() *model.Asset {
			a := asset("127.0.0.1")
			a.Addresses = append(a.Addresses, sdk.Address{Addr: "127.0.0.2", Type: "ipv4"})
			a.Services = []model.Service{{Protocol: sdk.TCP, Port: 22, State: "open", Address: "127.0.0.1"},
				{Protocol: sdk.TCP, Port: 8443, State: "open", Address: "127.0.0.1"}, {Protocol: sdk.TCP, Port: 8443, State: "open", Address: "127.0.0.2"}}
			return a
		}(), "lan:unexpected_port:critical:tcp/8443"},
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

func TestFactsAndInterfaces(t *testing.T) {
	r := Rule{Name: "switches", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.77.0/24")}, Severity: model.SeverityCritical,
		Facts: []FactRule{
			{Name: "sys_descr", Match: regexp.MustCompile(`^sollwert test`)},
			{Name: "sys_object_id", Equals: ".1.3.6.1.4.1.8072.3.2.10"},
			{Name: "serial", Equals: "X1", Required: true},
		},
		InterfacesUp: []string{"eth*", "uplink"},
	}
	e, err := Compile([]Rule{r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := func(facts map[string]string) *model.Asset {
		return &model.Asset{ID: "a", Tenant: model.DefaultTenant, Status: sdk.StatusUp,
			Addresses: []sdk.Address{{Addr: "198.18.77.2", Type: "ipv4"}}, Facts: facts}
	}
	good := map[string]string{"sys_descr": "sollwert test switch", "sys_object_id": ".1.3.6.1.4.1.8072.3.2.10", "serial": "X1",
		"if.eth0.oper_status": "up", "if.uplink.oper_status": "up", "if.lo.oper_status": "down"}
	cases := []struct {
		name   string
		change func(map[string]string)
		want   []string // kind:subject
	}{
		{"everything holds; unnamed interfaces may be down", func(map[string]string) {}, nil},
		{"sys_descr does not match", func(f map[string]string) { f["sys_descr"] = "Cisco IOS" }, []string{"fact_mismatch:sys_descr"}},
		{"sys_object_id differs", func(f map[string]string) { f["sys_object_id"] = ".1.3.6.1.4.1.9" }, []string{"fact_mismatch:sys_object_id"}},
		{"an unreported fact is fine unless required", func(f map[string]string) { delete(f, "sys_descr"); delete(f, "serial") }, []string{"fact_mismatch:serial"}},
		{"an interface matching a pattern is down", func(f map[string]string) { f["if.eth0.oper_status"] = "lower_layer_down" }, []string{"interface_down:eth0"}},
		{"a named interface is down", func(f map[string]string) { f["if.uplink.oper_status"] = "down" }, []string{"interface_down:uplink"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			facts := maps.Clone(good)
			c.change(facts)
			var got []string
			for _, f := range e.Evaluate(base(facts), time.Now(), nil) {
				got = append(got, string(f.Kind)+":"+f.Subject)
				if f.Severity != model.SeverityCritical || f.Detail("198.18.77.2") == "" {
					t.Errorf("finding %+v", f)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("findings %v, want %v", got, c.want)
			}
		})
	}
	f := e.Evaluate(base(map[string]string{"sys_descr": "Cisco IOS", "sys_object_id": ".1.3.6.1.4.1.8072.3.2.10", "serial": "X1"}), time.Now(), nil)
	if len(f) != 1 || f[0].Detail("198.18.77.2") != `fact sys_descr is "Cisco IOS"; rule "switches" requires it to match "^sollwert test"` {
		t.Fatalf("detail: %+v", f)
	}
	other := model.Finding{Rule: "switches", Kind: model.KindFactMismatch, Subject: "serial"}
	if model.DeviationID(model.DefaultTenant, "a", f[0]) == model.DeviationID(model.DefaultTenant, "a", other) {
		t.Fatal("two facts of one rule share a deviation id")
	}
}

// TestPortsFromSecurityGroups: with tcp_from = "security_groups", a
// host's allowed ports are what its provider says its groups allow; a
// host no provider described is judged by the block's own list.
func TestPortsFromSecurityGroups(t *testing.T) {
	eng, err := Compile([]Rule{{Name: "cloud", Tenant: model.DefaultTenant, CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16")},
		Allowed:    map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 22, Last: 22}}},
		FromGroups: map[sdk.Protocol]bool{sdk.TCP: true}, Severity: model.SeverityCritical}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := func(ports ...uint16) []model.Service {
		var out []model.Service
		for _, p := range ports {
			out = append(out, model.Service{Protocol: sdk.TCP, Port: p, State: "open"})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		facts map[string]string
		open  []uint16
		want  []string
	}{
		{"a port its groups allow", map[string]string{"expected_tcp": "22,443", "security_groups": "ssh,web"}, []uint16{22, 443}, nil},
		{"a port no group allows", map[string]string{"expected_tcp": "22,443", "security_groups": "ssh,web", "expected_tcp_from": "web"}, []uint16{443, 8080},
			[]string{`tcp/8080 is open but its security groups (web) allow tcp 22,443 (rule "cloud")`}},
		{"groups that allow nothing", map[string]string{"expected_tcp": "", "security_groups": "locked"}, []uint16{22},
			[]string{`tcp/22 is open but its security groups (locked) allow nothing (rule "cloud")`}},
		{"no provider data: the block's own list", nil, []uint16{22, 443}, []string{`tcp/443 is open but not allowed by "cloud"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &model.Asset{ID: "a", Tenant: model.DefaultTenant, Status: sdk.StatusUp, Facts: tc.facts, Services: svc(tc.open...),
				Addresses: []sdk.Address{{Addr: "198.18.0.5", Type: "ipv4"}}}
			var got []string
			for _, f := range eng.Evaluate(a, time.Now(), nil) {
				got = append(got, f.Detail(a.Host()))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEachAddressByItsOwnRules: a machine with a public and a private
// address has each address's ports judged by the rules that select that
// address; the rules of its primary address judge the rest of it.
func TestEachAddressByItsOwnRules(t *testing.T) {
	e, err := Compile([]Rule{
		{Name: "public", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, UnknownHosts: model.SeverityWarning,
			Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("443")}, Required: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("443")}},
		{Name: "private", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/24")}, UnknownHosts: model.SeverityWarning,
			Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("22,5432")}, Required: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: ports("22")}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	machine := func(open ...string) *model.Asset {
		a := asset("198.18.0.10")
		a.Unknown = true
		a.Addresses = append(a.Addresses, sdk.Address{Addr: "198.19.0.10", Type: "ipv4"})
		for _, o := range open {
			addr, port, _ := strings.Cut(o, ":")
			p, _ := strconv.Atoi(port)
			a.Services = append(a.Services, model.Service{Protocol: sdk.TCP, Port: uint16(p), State: "open", Address: addr})
		}
		slices.SortFunc(a.Services, func(x, y model.Service) int {
			if x.Port != y.Port {
				return int(x.Port) - int(y.Port)
			}
			return strings.Compare(x.Address, y.Address)
		})
		return a
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		asset *model.Asset
		want  string
	}{
		{"each address serves what its rule allows", machine("198.18.0.10:443", "198.19.0.10:22", "198.19.0.10:5432"), "public:unknown_host:warning"},
		{"the database on the public address", machine("198.18.0.10:443", "198.18.0.10:5432", "198.19.0.10:22"),
			"public:unexpected_port:warning:tcp/5432 public:unknown_host:warning"},
		{"https only on the private address", machine("198.19.0.10:443", "198.19.0.10:22"),
			"public:missing_port:warning:tcp/443 public:unknown_host:warning private:unexpected_port:warning:tcp/443"},
		{"ports without an address are the primary's", func() *model.Asset {
			a := machine("198.19.0.10:22")
			a.Services = append([]model.Service{{Protocol: sdk.TCP, Port: 21, State: "open"}}, a.Services...)
			return a
		}(), "public:unexpected_port:warning:tcp/21 public:missing_port:warning:tcp/443 public:unknown_host:warning"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := describe(e.Evaluate(c.asset, now, nil)); got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
	fs := e.Evaluate(machine("198.18.0.10:443", "198.19.0.10:22", "198.19.0.10:8080"), now, nil)
	if d := fs[len(fs)-1].Detail("198.18.0.10"); d != `tcp/8080 is open on 198.19.0.10 but not allowed by "private"` {
		t.Fatalf("detail %q", d)
	}
}
