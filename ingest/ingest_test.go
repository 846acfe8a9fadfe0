package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

type fixture struct {
	t      *testing.T
	st     *store.Store
	app    *Applier
	now    time.Time
	runs   int
	engine *rules.Engine
}

func newFixture(t *testing.T, rs ...rules.Rule) *fixture {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := rules.Compile(rs, map[string]time.Duration{"scan": time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, engine: eng, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.app = &Applier{Store: st, Engine: func() *rules.Engine { return f.engine }, Now: func() time.Time { return f.now }}
	return f
}

func scope(prefix, tcp string) sdk.Scope {
	r, err := sdk.ParsePortRanges(tcp)
	if err != nil {
		panic(err)
	}
	return sdk.Scope{Prefixes: []netip.Prefix{netip.MustParsePrefix(prefix)}, Ports: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: r}}
}

func host(ip string, tcpOpen ...uint16) sdk.Observation {
	o := sdk.Observation{Addresses: []sdk.Address{{Addr: ip, Type: "ipv4"}}, Status: sdk.StatusUp}
	for _, p := range tcpOpen {
		o.Services = append(o.Services, sdk.Service{Protocol: sdk.TCP, Port: p, State: "open"})
	}
	return o
}

// run applies one successful run and marks the job as having succeeded,
// as the daemon's executor does.
func (f *fixture) run(sc sdk.Scope, obs ...sdk.Observation) Summary {
	f.t.Helper()
	return f.runOf("scan", "nmap", sc, obs...)
}

// runOf is run for a job of another source.
func (f *fixture) runOf(job, source string, sc sdk.Scope, obs ...sdk.Observation) Summary {
	f.t.Helper()
	f.runs++
	f.now = f.now.Add(time.Minute)
	r := &model.Run{ID: "r" + string(rune('0'+f.runs)), Tenant: model.DefaultTenant, Job: job, Source: source}
	sum, err := f.app.Apply(context.Background(), r, obs, sc)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.Update(context.Background(), func(t *store.Txn) error {
		s, _ := t.JobState(r.Tenant, r.Job)
		s.SucceededCount++
		return t.PutJobState(r.Tenant, r.Job, s)
	}); err != nil {
		f.t.Fatal(err)
	}
	return sum
}

// active lists active deviations as "kind host proto/port rule severity state".
func (f *fixture) active() []string {
	f.t.Helper()
	var out []string
	if err := f.st.View(context.Background(), func(t *store.Txn) error {
		return t.ForEachDeviation(model.DefaultTenant, func(d *model.Deviation) error {
			if d.Active() {
				out = append(out, strings.Join([]string{string(d.Kind), d.Subject(), d.Rule, string(d.Severity)}, " "))
			}
			return nil
		})
	}); err != nil {
		f.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func expectActive(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("active deviations:\n got: %q\nwant: %q", got, want)
	}
}

var webRule = rules.Rule{
	Name: "web", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	Allowed:      map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 22, Last: 22}, {First: 443, Last: 443}}},
	Required:     map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 22, Last: 22}}},
	UnknownHosts: model.SeverityWarning,
	Severity:     model.SeverityCritical,
}

func TestAbsentHostOutsideScopeIsUntouched(t *testing.T) {
	f := newFixture(t, webRule)
	f.run(scope("127.0.0.0/24", "1-1024"), host("127.0.0.1", 22, 80), host("127.0.1.1", 22, 81))
	expectActive(t, f.active(), "unexpected_port 127.0.0.1 tcp/80 web critical", "unexpected_port 127.0.1.1 tcp/81 web critical")
	// Only 127.0.0.0/24 scanned this time, and nothing answered there.
	sum := f.run(scope("127.0.0.0/24", "1-1024"))
	if sum.Down != 1 {
		t.Fatalf("summary %+v", sum)
	}
	expectActive(t, f.active(), "unexpected_port 127.0.1.1 tcp/81 web critical")
}

func TestHistoryRecordsEveryChangeAndNothingElse(t *testing.T) {
	f := newFixture(t, webRule)
	f.run(scope("127.0.0.0/24", "1-1024"), host("127.0.0.1", 22))
	f.run(scope("127.0.0.0/24", "1-1024"), host("127.0.0.1", 22)) // no change
	f.run(scope("127.0.0.0/24", "1-1024"), host("127.0.0.1", 22, 80))
	hist := f.history(AssetID(model.DefaultTenant, netip.MustParseAddr("127.0.0.1")))
	if len(hist) != 2 {
		t.Fatalf("want 2 versions, got %d: %+v", len(hist), hist)
	}
	last := hist[1]
	if last.Version != 2 || len(last.Changes) != 1 || last.Changes[0].Key != "tcp/80" || last.Changes[0].To != "open" {
		t.Fatalf("second version: %+v", last)
	}
}

func TestReopenKeepsStableID(t *testing.T) {
	f := newFixture(t, webRule)
	f.run(scope("127.0.0.0/24", "1-1024"), host("127.0.0.1", 22, 80))
	f.run(scope("127.0.0.0/24", "1-1024"), host("127.0.0.1", 22))
	f.run(scope("127.0.0.0/24", "1-1024"), host("127.0.0.1", 22, 80))
	var devs []model.Deviation
	f.st.View(context.Background(), func(t *store.Txn) error {
		return t.ForEachDeviation(model.DefaultTenant, func(d *model.Deviation) error { devs = append(devs, *d); return nil })
	})
	if len(devs) != 1 || devs[0].Occurrences != 2 || devs[0].State != model.StateOpen {
		t.Fatalf("deviations: %+v", devs)
	}
}

// TestSourcesMergeIntoOneAsset: what SNMP says about an address lands on
// the asset nmap made for it, and an SNMP run marks nothing absent.
func TestSourcesMergeIntoOneAsset(t *testing.T) {
	f := newFixture(t)
	f.run(scope("198.18.77.0/24", "1-1024"), host("198.18.77.2", 22), host("198.18.77.3", 80))
	snmpRun := &model.Run{ID: "s1", Tenant: model.DefaultTenant, Job: "switches", Source: "snmp"}
	sw := sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{{Addr: "198.18.77.2", Type: "ipv4"}},
		Hostnames: []string{"switch-1"}, Facts: map[string]string{"sys_descr": "switch OS"}}
	nb := sdk.Observation{Source: "snmp-neighbour", Addresses: []sdk.Address{{Addr: "198.18.77.10", Type: "ipv4"}, {Addr: "02:00:5e:00:53:0a", Type: "mac"}}}
	sum, err := f.app.Apply(context.Background(), snmpRun, []sdk.Observation{sw, nb}, sdk.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Hosts != 2 || sum.Down != 0 {
		t.Fatalf("summary %+v", sum)
	}
	var a, other, n *model.Asset
	if err := f.st.View(context.Background(), func(tx *store.Txn) error {
		for ip, into := range map[string]**model.Asset{"198.18.77.2": &a, "198.18.77.3": &other, "198.18.77.10": &n} {
			id, err := tx.AssetIDByIP(model.DefaultTenant, netip.MustParseAddr(ip))
			if err != nil {
				return err
			}
			if *into, err = tx.Asset(model.DefaultTenant, id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(a.Services) != 1 || a.Facts["sys_descr"] != "switch OS" || strings.Join(a.Sources, ",") != "nmap,snmp" {
		t.Fatalf("merged asset: %+v", a)
	}
	if other.Status != sdk.StatusUp {
		t.Fatalf("an SNMP run marked a host it did not ask %s", other.Status)
	}
	if strings.Join(n.Sources, ",") != "snmp-neighbour" || len(n.Addresses) != 2 {
		t.Fatalf("neighbour: %+v", n)
	}
}

// TestEventsCarryTheStateOfTheirHostAndRule: resolving one of two
// deviations of a host under one rule says one is still active, so a
// monitoring service per (host, rule) stays red.
func TestEventsCarryTheStateOfTheirHostAndRule(t *testing.T) {
	rule := rules.Rule{Name: "lo", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, Severity: model.SeverityCritical,
		Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 22, Last: 22}}}}
	f := newFixture(t, rule)
	f.app.Route = func(*sdk.Event) []string { return []string{"mon"} }
	f.run(scope("198.18.0.0/24", "1-1024"), host("198.18.0.1", 22))
	f.run(scope("198.18.0.0/24", "1-1024"), host("198.18.0.1", 22, 80, 443))
	f.run(scope("198.18.0.0/24", "1-1024"), host("198.18.0.1", 22, 443))
	var q []store.Queued
	if err := f.st.View(context.Background(), func(tx *store.Txn) error {
		var err error
		q, err = tx.Queue("mon", 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range q {
		got = append(got, fmt.Sprintf("%s %d %d %s", e.Event.Kind, e.Event.Deviation.Port, e.Event.Deviation.RuleActive, e.Event.Deviation.RuleWorst))
	}
	sort.Strings(got)
	want := []string{"opened 443 2 critical", "opened 80 2 critical", "resolved 80 1 critical"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// An in-memory store (tests, `scan --ephemeral`) once refused records
// above Badger's value threshold, so a host with many services failed.
func TestInMemoryStoreTakesABigHost(t *testing.T) {
	f := newFixture(t, webRule)
	o := host("127.0.0.1", 22)
	for p := range 200 {
		o.Services = append(o.Services, sdk.Service{Protocol: sdk.TCP, Port: uint16(1000 + p), State: "open", Name: "svc", Product: "product", Version: "1.0"})
	}
	if sum := f.run(scope("127.0.0.0/24", "1-65535"), o); sum.Changed != 1 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestIDSetTellsIDsApart(t *testing.T) {
	s := newIDSet(0)
	ids := []string{AssetID("t", netip.MustParseAddr("127.0.0.1")), AssetID("t", netip.MustParseAddr("127.0.0.2")),
		"a1", "0123456789ABCDEF", "0123456789abcdef", "0123456789abcde", ""}
	for _, id := range ids {
		if !s.add(id) {
			t.Errorf("%q seen before it was added", id)
		}
	}
	for _, id := range ids {
		if s.add(id) {
			t.Errorf("%q not seen after it was added", id)
		}
	}
	// Ids only noted (as the batches of a run note them) are seen too,
	// duplicates or not, and so are ids noted after the first add.
	s = newIDSet(0)
	for _, id := range append(ids, ids...) {
		s.note(id)
	}
	late := AssetID("t", netip.MustParseAddr("127.0.0.3"))
	if !s.add(late) {
		t.Errorf("%q seen before it was added", late)
	}
	s.note(AssetID("t", netip.MustParseAddr("127.0.0.4")))
	for _, id := range append(ids, late, AssetID("t", netip.MustParseAddr("127.0.0.4"))) {
		if s.add(id) {
			t.Errorf("%q not seen after it was noted", id)
		}
	}
}

// A version's snapshot is the asset as that run left it, however many
// rescans that changed nothing came after it.
func TestHistorySnapshotsAreTheAssetAtTheirVersion(t *testing.T) {
	f := newFixture(t, webRule)
	sc := scope("127.0.0.0/24", "1-1024")
	f.run(sc, host("127.0.0.1", 22))
	first := f.now
	f.run(sc, host("127.0.0.1", 22)) // no change
	f.run(sc, host("127.0.0.1", 22)) // no change
	afterRescans := f.now
	id := AssetID(model.DefaultTenant, netip.MustParseAddr("127.0.0.1"))
	history := func() []model.Version {
		var hist []model.Version
		if err := f.st.View(context.Background(), func(t *store.Txn) error {
			var err error
			hist, err = t.History(model.DefaultTenant, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return hist
	}
	hist := history()
	if len(hist) != 1 || !hist[0].Time.Equal(first) || !hist[0].Asset.LastScanned.Equal(first) || !hist[0].Asset.LastSeen.Equal(first) {
		t.Fatalf("after two rescans that changed nothing: %+v", hist)
	}
	f.run(sc, host("127.0.0.1", 22, 80))
	f.run(sc) // the host is gone: down, its ports closed
	hist = history()
	if len(hist) != 3 {
		t.Fatalf("want 3 versions, got %+v", hist)
	}
	if !hist[0].Asset.LastScanned.Equal(first) || len(hist[0].Asset.Services) != 1 {
		t.Fatalf("first version: %+v", hist[0])
	}
	second := hist[1]
	if second.Version != 2 || !second.Asset.LastScanned.Equal(afterRescans.Add(time.Minute)) || len(second.Asset.Services) != 2 {
		t.Fatalf("second version: %+v", second)
	}
	third := hist[2]
	if third.Version != 3 || third.Asset.Status != sdk.StatusDown || len(third.Asset.Services) != 0 ||
		!third.Asset.LastSeen.Equal(second.Asset.LastSeen) || !third.Asset.LastScanned.Equal(f.now) {
		t.Fatalf("third version: %+v", third)
	}
}

// TestAssetIDFormula holds AssetID to the formula ids are derived by,
// which data dirs depend on: for an IPv4 address the address and a
// CRC-32C of tenant and address, for others (and legacyAssetID) the
// first 8 bytes of a SHA-256.
func TestAssetIDFormula(t *testing.T) {
	for _, tenant := range []string{"", model.DefaultTenant, "a-tenant-name-longer-than-the-stack-buffer-AssetID-hashes-from-" + strings.Repeat("x", 64)} {
		for _, s := range []string{"", "127.0.0.1", "198.18.255.1", "::1", "2001:db8::42", "::ffff:10.0.0.1", "fe80::1%eth0"} {
			var ip netip.Addr
			if s != "" {
				ip = netip.MustParseAddr(s)
			}
			sum := sha256.Sum256([]byte(tenant + "\x00" + ip.String()))
			if got, want := legacyAssetID(tenant, ip), hex.EncodeToString(sum[:8]); got != want {
				t.Errorf("legacyAssetID(%q, %q) = %s, want %s", tenant, s, got, want)
			}
			want := hex.EncodeToString(sum[:8])
			if ip.Is4() {
				a := ip.As4()
				crc := crc32.Checksum([]byte(tenant+"\x00"+ip.String()), crc32.MakeTable(crc32.Castagnoli))
				want = hex.EncodeToString(binary.BigEndian.AppendUint32(a[:], crc))
			}
			if got := AssetID(tenant, ip); got != want {
				t.Errorf("AssetID(%q, %q) = %s, want %s", tenant, s, got, want)
			}
		}
	}
}

func BenchmarkAssetID(b *testing.B) {
	ip := netip.MustParseAddr("198.18.3.4")
	b.ReportAllocs()
	for b.Loop() {
		AssetID(model.DefaultTenant, ip)
	}
}
