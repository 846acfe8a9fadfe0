package scandiff_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml/scangen"
	"github.com/sollwert/sollwert/plugins/nmap/scandiff"
)

// requireTool skips a test that needs a real tool, except in CI
// (CI=true), where a missing tool fails it.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed but CI=true: install it (Debian/Ubuntu: apt-get install %s)", name, pkg)
		}
		t.Skipf("%s is not installed (Debian/Ubuntu: apt-get install %s); set CI=true to fail instead", name, pkg)
	}
	return p
}

// ndiff runs the real ndiff --xml and returns its findings in
// scandiff's vocabulary, and whether it found differences (exit 1).
func ndiff(t *testing.T, bin, a, b string) ([]string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--xml", a, b)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	differs := errors.As(err, &ee) && ee.ExitCode() == 1
	if err != nil && !differs {
		t.Fatalf("ndiff: %v: %s", err, stderr.String())
	}
	var doc node
	if err := xml.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("ndiff's XML: %v", err)
	}
	return ndiffFindings(&doc), differs
}

// node is any element of ndiff's XML.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *node) all(name string) []*node {
	var out []*node
	for i := range n.Children {
		if n.Children[i].XMLName.Local == name {
			out = append(out, &n.Children[i])
		}
	}
	return out
}

func (n *node) one(name string) *node {
	if c := n.all(name); len(c) > 0 {
		return c[0]
	}
	return nil
}

// under returns the children called name of n's <a> (side "a"), <b>
// (side "b") or of n itself (side "").
func (n *node) under(side, name string) []*node {
	if side == "" {
		return n.all(name)
	}
	var out []*node
	for _, w := range n.all(side) {
		out = append(out, w.all(name)...)
	}
	return out
}

func hostKeyOf(h *node) string {
	var addrs, names []string
	for _, a := range h.all("address") {
		addrs = append(addrs, a.attr("addr"))
	}
	if hn := h.one("hostnames"); hn != nil {
		for _, n := range hn.all("hostname") {
			names = append(names, n.attr("name"))
		}
	}
	return scandiff.FormatHostKey(addrs, names)
}

func serviceOf(p *node) string {
	s := p.one("service")
	if s == nil {
		return scandiff.ServiceKey(scandiff.Service{})
	}
	return scandiff.ServiceKey(scandiff.Service{Name: s.attr("name"), Product: s.attr("product"), Version: s.attr("version"), ExtraInfo: s.attr("extrainfo")})
}

func stateOf(p *node) string {
	if s := p.one("state"); s != nil {
		return s.attr("state")
	}
	return "none"
}

func scriptIDs(side []*node) map[string]string {
	m := map[string]string{}
	for _, s := range side {
		m[s.attr("id")] = s.attr("output")
	}
	return m
}

func ndiffFindings(doc *node) []string {
	var out []string
	sd := doc.one("scandiff")
	if sd == nil {
		return nil
	}
	for _, hd := range sd.all("hostdiff") {
		if h := hd.under("a", "host"); len(h) == 1 {
			out = append(out, hostKeyOf(h[0])+" disappeared")
			continue
		}
		if h := hd.under("b", "host"); len(h) == 1 {
			out = append(out, hostKeyOf(h[0])+" appeared")
			continue
		}
		h := hd.one("host")
		// The old host's key: common addresses and names plus <a>'s.
		var addrs, names []string
		for _, side := range []string{"", "a"} {
			for _, a := range h.under(side, "address") {
				addrs = append(addrs, a.attr("addr"))
			}
		}
		hn := h.one("hostnames")
		if hn != nil {
			for _, side := range []string{"", "a"} {
				for _, n := range hn.under(side, "hostname") {
					names = append(names, n.attr("name"))
				}
			}
		}
		key := scandiff.FormatHostKey(addrs, names)
		if sa, sb := h.under("a", "status"), h.under("b", "status"); len(sa)+len(sb) > 0 {
			state := func(s []*node) string {
				if len(s) == 0 {
					return "none"
				}
				return s[0].attr("state")
			}
			out = append(out, fmt.Sprintf("%s state %s -> %s", key, state(sa), state(sb)))
		}
		for _, a := range h.under("b", "address") {
			out = append(out, key+" address +"+a.attr("addr"))
		}
		for _, a := range h.under("a", "address") {
			out = append(out, key+" address -"+a.attr("addr"))
		}
		if hn != nil {
			for _, n := range hn.under("b", "hostname") {
				out = append(out, key+" hostname +"+n.attr("name"))
			}
			for _, n := range hn.under("a", "hostname") {
				out = append(out, key+" hostname -"+n.attr("name"))
			}
		}
		if ports := h.one("ports"); ports != nil {
			if len(ports.all("a")) > 0 || len(ports.all("b")) > 0 {
				out = append(out, key+" extraports")
			}
			for _, pd := range ports.all("portdiff") {
				var pa, pb *node
				if p := pd.one("port"); p != nil {
					// Same state: the service or scripts changed.
					spec := fmt.Sprintf("%s port %s/%s", key, p.attr("portid"), p.attr("protocol"))
					if sa, sb := p.under("a", "service"), p.under("b", "service"); len(p.all("a")) > 0 {
						svc := func(s []*node) string {
							if len(s) == 0 {
								return scandiff.ServiceKey(scandiff.Service{})
							}
							return serviceOf(&node{Children: []node{*s[0]}})
						}
						out = append(out, fmt.Sprintf("%s service %s -> %s", spec, svc(sa), svc(sb)))
					}
					for id := range scriptIDs(append(p.under("a", "script"), p.under("b", "script")...)) {
						out = append(out, spec+" script "+id)
					}
					for _, s := range p.all("script") {
						_ = s // unchanged scripts are listed without <a>/<b>
					}
					continue
				}
				pa, pb = pd.under("a", "port")[0], pd.under("b", "port")[0]
				spec := fmt.Sprintf("%s port %s/%s", key, pa.attr("portid"), pa.attr("protocol"))
				if sa, sb := stateOf(pa), stateOf(pb); sa != sb {
					out = append(out, fmt.Sprintf("%s state %s -> %s", spec, sa, sb))
				}
				if sa, sb := serviceOf(pa), serviceOf(pb); sa != sb {
					out = append(out, fmt.Sprintf("%s service %s -> %s", spec, sa, sb))
				}
				ia, ib := scriptIDs(pa.all("script")), scriptIDs(pb.all("script"))
				for id, o := range ia {
					if ob, ok := ib[id]; !ok || ob != o {
						out = append(out, spec+" script "+id)
					}
				}
				for id := range ib {
					if _, ok := ia[id]; !ok {
						out = append(out, spec+" script "+id)
					}
				}
			}
		}
		if h.one("os") != nil {
			out = append(out, key+" os")
		}
		if hs := h.under("", "hostscript"); len(hs) > 0 {
			for id := range scriptIDs(append(hs[0].under("a", "script"), hs[0].under("b", "script")...)) {
				out = append(out, key+" script "+id)
			}
		}
		for _, side := range []string{"a", "b"} {
			for _, hs := range h.under(side, "hostscript") {
				for _, s := range hs.all("script") {
					out = append(out, key+" script "+s.attr("id"))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func writePair(t *testing.T, hosts int, seed uint64) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := scangen.WritePair(dir, hosts, seed); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "old.xml"), filepath.Join(dir, "new.xml")
}

func compareWithNdiff(t *testing.T, bin, a, b string) int {
	t.Helper()
	want, differs := ndiff(t, bin, a, b)
	d, err := scandiff.Files(t.Context(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Findings()
	if differs != (d.Cost() > 0) {
		t.Fatalf("ndiff says differs=%v, scandiff's cost is %d", differs, d.Cost())
	}
	missing, extra := setDiff(want, got), setDiff(got, want)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("%d findings; ndiff's but not scandiff's:\n  %s\nscandiff's but not ndiff's:\n  %s",
			len(want), strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
	}
	return len(got)
}

func setDiff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// On generated scan pairs, scandiff finds exactly what ndiff finds.
func TestFindingsEqualNdiffsOnGeneratedScans(t *testing.T) {
	bin := requireTool(t, "ndiff", "ndiff")
	t.Parallel()
	kinds := map[string]bool{}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			a, b := writePair(t, 400, seed)
			want, _ := ndiff(t, bin, a, b)
			if n := compareWithNdiff(t, bin, a, b); n < 10 {
				t.Fatalf("only %d findings: the generator changes too little", n)
			}
			for _, f := range want {
				for _, k := range []string{"appeared", "disappeared", "state up -> down", "state down -> up", "hostname +", "extraports",
					"state open -> filtered", "state none -> open", "state open -> none", "service ", "script "} {
					if strings.Contains(f, k) {
						kinds[k] = true
					}
				}
			}
		})
	}
	if len(kinds) < 10 {
		t.Fatalf("the pairs exercise only %v", kinds)
	}
}

func TestIdenticalScansHaveNoFindings(t *testing.T) {
	bin := requireTool(t, "ndiff", "ndiff")
	t.Parallel()
	a, _ := writePair(t, 100, 7)
	if n := compareWithNdiff(t, bin, a, a); n != 0 {
		t.Fatalf("%d findings", n)
	}
}

// The hand-written pair covers what the generator does not: IPv6, a MAC
// change, a second host name, OS matches, port and host scripts, two
// extraports states, a port that is filtered on one side.
func TestHandWrittenPairAgreesWithNdiff(t *testing.T) {
	bin := requireTool(t, "ndiff", "ndiff")
	t.Parallel()
	a, b := "testdata/old.xml", "testdata/new.xml"
	compareWithNdiff(t, bin, a, b)
	d, err := scandiff.Files(t.Context(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	const gw = "192.0.2.1,52:54:00:00:00:01|gw.example.net"
	for _, want := range []string{
		gw + " address +52:54:00:00:00:99", gw + " address -52:54:00:00:00:01", gw + " hostname +router.example.net",
		gw + " extraports", gw + " os", gw + " script clock-skew",
		gw + " port 22/tcp state open -> filtered", gw + " port 22/tcp script ssh-hostkey",
		gw + " port 53/tcp service domain|ISC BIND|9.18.24| -> domain|ISC BIND|9.18.28|",
		gw + " port 8080/tcp state none -> open",
		"2001:db8::5| state up -> down", "2001:db8::9| appeared", "192.0.2.7| disappeared",
	} {
		if !slices.Contains(d.Findings(), want) {
			t.Errorf("no finding %q in\n  %s", want, strings.Join(d.Findings(), "\n  "))
		}
	}
	// And the text is ndiff's.
	var want bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, a, b)
	cmd.Stdout = &want
	_ = cmd.Run()
	var got bytes.Buffer
	if err := d.WriteText(&got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("text differs from ndiff's:\n--- scandiff\n%s--- ndiff\n%s", got.String(), want.String())
	}
}

func TestMalformedInputIsAnErrorNamingTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xml")
	if err := os.WriteFile(bad, []byte(`<nmaprun><host><address addr="1" addrtype="ipx"/></host></nmaprun>`), 0o644); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.xml")
	if err := os.WriteFile(cut, []byte(`<nmaprun><host>`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{bad, `bad.xml: host 1: unknown address type "ipx"`},
		{cut, "cut.xml: nmap XML: at byte 15: input ends, expected </host>"},
	} {
		_, err := scandiff.Files(t.Context(), "testdata/old.xml", c.file)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := scandiff.Files(ctx, "testdata/old.xml", "testdata/new.xml"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
