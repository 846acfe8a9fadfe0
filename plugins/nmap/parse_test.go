package nmap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// collector is an sdk.Emitter that keeps every batch.
type collector struct {
	mu      sync.Mutex
	batches [][]sdk.Observation
	fail    error // returned from every Emit when set
}

func (c *collector) Emit(_ context.Context, b []sdk.Observation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, append([]sdk.Observation(nil), b...))
	return c.fail
}

func (c *collector) all() []sdk.Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sdk.Observation
	for _, b := range c.batches {
		out = append(out, b...)
	}
	return out
}

func (c *collector) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, b := range c.batches {
		out = append(out, len(b))
	}
	return out
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openOf lists a host's open ports with their service names.
func openOf(o sdk.Observation) map[uint16]string {
	out := map[uint16]string{}
	for _, s := range o.Services {
		if s.Open() {
			out[s.Port] = s.Name
		}
	}
	return out
}

func TestParseRealOutput(t *testing.T) {
	cases := []struct {
		fixture string
		total   uint64
		// open ports by address, with the service name where it matters
		open    map[string]map[uint16]string
		product string // of the first open service, if checked
	}{
		{"loopback-connect.xml", 2, map[string]map[uint16]string{
			"127.0.0.1": {49937: "", 56865: ""},
			"127.0.0.3": {39397: ""},
		}, ""},
		{"loopback-http-version.xml", 1, map[string]map[uint16]string{"127.0.0.1": {34015: "http"}}, "SimpleHTTPServer"},
		{"loopback-progress.xml", 1, map[string]map[uint16]string{"127.0.0.1": {}}, ""},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			out, err := parseOutput(t.Context(), bytes.NewReader(readFixture(t, c.fixture)), &collector{}, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			if !out.complete || !out.finished || out.exit != "success" || !out.hostsSeen || out.total != c.total || len(out.skipped) != 0 {
				t.Fatalf("run summary %+v", out)
			}
			if len(out.pending) != len(c.open) {
				t.Fatalf("%d hosts, want %d", len(out.pending), len(c.open))
			}
			for _, o := range out.pending {
				ip, _ := o.IP()
				want, ok := c.open[ip.String()]
				if !ok || o.Status != sdk.StatusUp || o.Addresses[0].Type != "ipv4" {
					t.Fatalf("unexpected host %+v", o)
				}
				got := openOf(o)
				if len(got) != len(want) {
					t.Fatalf("%s open %v, want %v", ip, got, want)
				}
				for port, name := range want {
					if _, ok := got[port]; !ok || (name != "" && got[port] != name) {
						t.Fatalf("%s open %v, want %v", ip, got, want)
					}
				}
				if c.product != "" && o.Services[0].Product != c.product {
					t.Fatalf("product %q, want %q", o.Services[0].Product, c.product)
				}
			}
		})
	}
}

// Every proper prefix of a real nmap output must be refused, wherever
// the cut falls: between hosts, inside a tag, after <finished>.
func TestEveryTruncationIsAnError(t *testing.T) {
	for _, fixture := range []string{"loopback-connect.xml", "loopback-progress.xml"} {
		data := readFixture(t, fixture)
		end := bytes.LastIndex(data, []byte("</nmaprun>")) + len("</nmaprun>")
		for n := 0; n < end; n++ {
			out, err := parseOutput(t.Context(), bytes.NewReader(data[:n]), &collector{}, hclog.NewNullLogger())
			var oe *outputError
			if !errors.As(err, &oe) {
				t.Fatalf("%s cut at byte %d: error %v, complete=%v", fixture, n, err, out.complete)
			}
			if n > 0 && oe.offset == 0 {
				t.Fatalf("%s cut at byte %d: error names no offset: %v", fixture, n, err)
			}
		}
	}
}

func TestParseRecordsSkippedTargets(t *testing.T) {
	out, err := parseOutput(t.Context(), bytes.NewReader(readFixture(t, "invalid-target.xml")), &collector{}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.skipped) != 1 || !strings.Contains(out.skipped[0], `"127.0.0.1/"`) || out.total != 0 {
		t.Fatalf("run summary %+v", out)
	}
}

func TestParseMalformed(t *testing.T) {
	for _, doc := range []string{
		``,
		`not xml at all`,
		`<?xml version="1.0"?><html></html>`,
		`<nmaprun><host><status state="up"></nmaprun>`,
		`<nmaprun><host><address addr="127.0.0.1" addrtype="ipv4"/><ports><port protocol="tcp" portid="99999"/></ports></host></nmaprun>`,
	} {
		_, err := parseOutput(t.Context(), strings.NewReader(doc), &collector{}, hclog.NewNullLogger())
		var oe *outputError
		if !errors.As(err, &oe) {
			t.Errorf("%q: error %v, want an output error", doc, err)
		}
	}
}

// hostXML is one host in nmap's format; the tests that need fields
// loopback cannot produce (MAC, vendor, OS, distance) write them by hand.
func hostXML(ip, state string) string {
	return fmt.Sprintf(`<host><status state=%q reason="user-set"/><address addr=%q addrtype="ipv4"/><hostnames></hostnames><ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh"/></port></ports></host>`, state, ip)
}

func TestObservationFields(t *testing.T) {
	doc := `<nmaprun><host><status state="up"/>
<address addr="192.0.2.7" addrtype="ipv4"/><address addr="00:16:3E:11:22:33" addrtype="mac" vendor="Xensource"/>
<hostnames><hostname name="gw.example" type="user"/><hostname name="" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh" product="OpenSSH" version="9.2p1"/></port>
<port protocol="udp" portid="161"><state state="open|filtered"/><service name="snmp"/></port>
<port protocol="tcp" portid="23"><state state="closed"/></port></ports>
<os><osmatch name="Linux 4.15" accuracy="90"/><osmatch name="Linux 5.4" accuracy="97"/></os>
<distance value="1"/></host>` + hostXML("192.0.2.8", "down") + `<runstats><finished exit="success"/><hosts up="1" down="1" total="2"/></runstats></nmaprun>`
	out, err := parseOutput(t.Context(), strings.NewReader(doc), &collector{}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.pending) != 1 {
		t.Fatalf("hosts %+v: the down host must be left out", out.pending)
	}
	o := out.pending[0]
	want := sdk.Observation{
		Addresses: []sdk.Address{{Addr: "192.0.2.7", Type: "ipv4"}, {Addr: "00:16:3E:11:22:33", Type: "mac", Vendor: "Xensource"}},
		Hostnames: []string{"gw.example"},
		Status:    sdk.StatusUp,
		OS:        "Linux 5.4",
		Services: []sdk.Service{
			{Protocol: sdk.TCP, Port: 22, State: "open", Name: "ssh", Product: "OpenSSH", Version: "9.2p1"},
			{Protocol: sdk.UDP, Port: 161, State: "open|filtered", Name: "snmp"},
			{Protocol: sdk.TCP, Port: 23, State: "closed"},
		},
		Facts: map[string]string{"nmap.distance": "1"},
	}
	if fmt.Sprintf("%+v", o) != fmt.Sprintf("%+v", want) {
		t.Fatalf("observation\n got %+v\nwant %+v", o, want)
	}
}

func TestParseEmitsFullBatchesAndKeepsTheRest(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<nmaprun>`)
	for i := range 600 {
		b.WriteString(hostXML(fmt.Sprintf("127.0.%d.%d", i/256, i%256), "up"))
	}
	b.WriteString(`<runstats><finished exit="success"/><hosts up="600" down="0" total="600"/></runstats></nmaprun>`)
	c := &collector{}
	out, err := parseOutput(t.Context(), strings.NewReader(b.String()), c, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.sizes()) != "[256 256]" || len(out.pending) != 88 {
		t.Fatalf("batches %v, pending %d", c.sizes(), len(out.pending))
	}
	c.fail = errors.New("host is shutting down")
	if _, err := parseOutput(t.Context(), strings.NewReader(b.String()), c, hclog.NewNullLogger()); !errors.Is(err, c.fail) {
		t.Fatalf("emit error: got %v", err)
	}
}

func TestProgressIsLogged(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	if _, err := parseOutput(t.Context(), bytes.NewReader(readFixture(t, "loopback-progress.xml")), &collector{}, log); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	if strings.Count(got, "nmap progress") != 4 || !strings.Contains(got, "percent=22.25") || !strings.Contains(got, "remaining=4s") || !strings.Contains(got, `task="Connect Scan"`) {
		t.Fatalf("log:\n%s", got)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 64}
	for i := range 100 {
		fmt.Fprintf(tb, "line %d\n", i)
	}
	lines := tb.lines()
	if len(lines) == 0 || lines[len(lines)-1] != "line 99" || len(strings.Join(lines, "\n")) > 64 {
		t.Fatalf("lines %q", lines)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "line ") {
			t.Fatalf("partial line kept: %q", l)
		}
	}
}

func TestEffectiveCaps(t *testing.T) {
	cases := []struct {
		status string
		raw    bool
		ok     bool
	}{
		{"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n", true, true},
		{"CapEff:\t0000000000002000\n", true, true},
		{"CapEff:\t0000000000001000\n", false, true}, // CAP_NET_ADMIN alone
		{"CapEff:\t0000000000000000\n", false, true},
		{"Name:\tx\n", false, false},
		{"CapEff:\tzz\n", false, false},
	}
	for _, c := range cases {
		caps, ok := effectiveCaps(c.status)
		if ok != c.ok || (caps&(1<<capNetRaw) != 0) != c.raw {
			t.Errorf("%q: caps %x ok %v", c.status, caps, ok)
		}
	}
}
