// Package scangen writes synthetic nmap XML, seeded and reproducible: scans
// of many hosts that look like `nmap -sV -O -v` output (open and closed
// ports, services with product, version and CPE, hosts down, hostnames,
// MAC addresses with vendors, OS matches, script output), and a second scan
// derived from the first with a seeded set of changes (hosts going up and
// down, disappearing and appearing, ports opening and closing, services
// changing version). It is for benchmarks and tests of readers and differs;
// the addresses are in 10.0.0.0/8 and nothing ever scans them.
//
// Each host is generated from the seed and its index alone, so a scan of
// any size is written in constant memory.
package scangen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Config says what to generate.
type Config struct {
	Hosts int    // hosts of the first scan (addresses 10.0.0.0 upwards)
	Seed  uint64 // the same seed gives the same scans
	// Changed selects the second scan: the first with changes applied.
	Changed bool
}

// scanned is how many TCP ports each host was scanned on (nmap's top
// 1000); those not listed are reported as one <extraports>.
const scanned = 1000

type service struct {
	port                              uint16
	name, product, version, extrainfo string
	tunnel, cpe                       string
	versions                          []string // what a version change picks from
}

// catalogue is what hosts run. Product names with '&' and '<' check the
// escaping of readers.
var catalogue = []service{
	{22, "ssh", "OpenSSH", "9.2p1 Debian 2+deb12u1", "protocol 2.0", "", "cpe:/a:openbsd:openssh:9.2p1", []string{"8.4p1 Debian 5+deb11u1", "9.2p1 Debian 2+deb12u2", "9.6p1 Ubuntu 3ubuntu13"}},
	{80, "http", "nginx", "1.22.1", "", "", "cpe:/a:igor_sysoev:nginx:1.22.1", []string{"1.18.0", "1.24.0", "1.26.2"}},
	{443, "http", "nginx", "1.22.1", "", "ssl", "cpe:/a:igor_sysoev:nginx:1.22.1", []string{"1.18.0", "1.24.0"}},
	{25, "smtp", "Postfix smtpd", "", "", "", "cpe:/a:postfix:postfix", nil},
	{3306, "mysql", "MySQL", "8.0.35", "", "", "cpe:/a:mysql:mysql:8.0.35", []string{"8.0.36", "8.4.0"}},
	{5432, "postgresql", "PostgreSQL DB", "15.5 - 15.7", "", "", "cpe:/a:postgresql:postgresql:15", []string{"16.1 - 16.3", "13.0 - 13.4"}},
	{53, "domain", "ISC BIND", "9.18.24-1", "Debian Linux", "", "cpe:/a:isc:bind:9.18.24-1", []string{"9.18.28-1", "9.16.50"}},
	{8080, "http", "Apache Tomcat", "9.0.70", "", "", "cpe:/a:apache:tomcat:9.0.70", []string{"9.0.85", "10.1.18"}},
	{6379, "redis", "Redis key-value store", "7.0.11", "", "", "", []string{"7.2.4", "6.2.14"}},
	{21, "ftp", "vsftpd", "3.0.3", "", "", "cpe:/a:beasts:vsftpd:3.0.3", nil},
	{111, "rpcbind", "", "2-4", "RPC #100000", "", "", nil},
	{3389, "ms-wbt-server", "Microsoft Terminal Services", "", "", "", "cpe:/o:microsoft:windows", nil},
	{445, "microsoft-ds", "Samba smbd", "4.6.2", "", "", "cpe:/a:samba:samba", []string{"4.17.12"}},
	{9100, "jetdirect", "", "", "", "", "", nil},
	{161, "snmp", "AT&T <embedded> agent", "1.0", "", "", "", []string{"1.1"}},
	{8443, "https-alt", "Jetty", "9.4.z-SNAPSHOT", "", "ssl", "cpe:/a:eclipse:jetty:9.4.z-snapshot", []string{"10.0.z-SNAPSHOT"}},
}

var vendors = []string{"Dell", "Hewlett Packard", "Super Micro Computer", "Cisco Systems", "VMware", "Intel Corporate", "Raspberry Pi Trading", "QEMU virtual NIC"}

var osNames = []string{"Linux 4.15 - 5.19", "Linux 5.0 - 5.14", "Microsoft Windows Server 2019", "FreeBSD 13.1-RELEASE", "OpenBSD 7.2"}

// host is one generated host.
type host struct {
	index    int
	up       bool
	mac      string
	vendor   string
	hostname string
	alias    string // a second host name
	ports    []port
	os       []string
	script   string // host script output ("" for none)
}

type port struct {
	svc     *service
	state   string // open, closed, filtered
	version string
	script  string
}

// gen is host i of the first scan, from the seed and i alone.
func gen(seed uint64, i int) host {
	rng := rand.New(rand.NewPCG(seed, uint64(i)*2+1))
	h := host{index: i, up: rng.IntN(4) != 0} // a quarter of the addresses are down
	if !h.up {
		return h
	}
	if rng.IntN(10) < 3 {
		h.mac = fmt.Sprintf("52:54:%02X:%02X:%02X:%02X", rng.IntN(256), (i>>16)&255, (i>>8)&255, i&255)
		h.vendor = vendors[rng.IntN(len(vendors))]
	}
	if rng.IntN(10) < 4 {
		h.hostname = fmt.Sprintf("host-%s.example.net", strings.ReplaceAll(addr(i), ".", "-"))
	}
	n := 1 // 40 % one port, 35 % two, 25 % three
	if r := rng.IntN(20); r >= 15 {
		n = 3
	} else if r >= 8 {
		n = 2
	}
	for _, k := range rng.Perm(len(catalogue))[:n] {
		p := port{svc: &catalogue[k], state: "open", version: catalogue[k].version}
		if rng.IntN(8) == 0 {
			p.state = "closed"
		} else if rng.IntN(12) == 0 {
			p.state = "filtered"
		}
		if p.svc.name == "ssh" && p.state == "open" && rng.IntN(8) == 0 {
			p.script = fmt.Sprintf("\n  256 %s (ECDSA)\n  256 %s (ED25519)", fingerprint(rng), fingerprint(rng))
		}
		h.ports = append(h.ports, p)
	}
	sortPorts(h.ports)
	if rng.IntN(10) == 0 {
		h.os = []string{osNames[rng.IntN(len(osNames))]}
	}
	if rng.IntN(20) == 0 {
		h.script = fmt.Sprintf("\n  OS: Windows Server 2019 Standard 17763\n  Computer name: WS%05d\n  Workgroup: WORKGROUP\x00", i)
		h.script = strings.TrimSuffix(h.script, "\x00")
	}
	return h
}

func fingerprint(rng *rand.Rand) string {
	const hexdigits = "0123456789abcdef"
	var b strings.Builder
	for k := range 16 {
		if k > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(hexdigits[rng.IntN(16)])
		b.WriteByte(hexdigits[rng.IntN(16)])
	}
	return b.String()
}

func sortPorts(ps []port) {
	for a := 1; a < len(ps); a++ {
		for b := a; b > 0 && ps[b].svc.port < ps[b-1].svc.port; b-- {
			ps[b], ps[b-1] = ps[b-1], ps[b]
		}
	}
}

// change applies the second scan's changes to h. It reports false when
// the host is not in the second scan at all.
func change(seed uint64, h *host) bool {
	rng := rand.New(rand.NewPCG(seed^0x5eed, uint64(h.index)*2+1))
	roll := rng.IntN(1000)
	switch {
	case roll < 10: // 1 %: gone from the scan
		return false
	case roll < 30: // 2 %: up -> down, or down -> up
		if h.up {
			*h = host{index: h.index}
			return true
		}
		*h = gen(seed^0xface, h.index)
		h.up = true
		if len(h.ports) == 0 {
			h.ports = []port{{svc: &catalogue[0], state: "open", version: catalogue[0].version}}
		}
		return true
	}
	if !h.up {
		return true
	}
	roll = rng.IntN(1000)
	switch {
	case roll < 30: // a port opens
		k := rng.IntN(len(catalogue))
		for _, p := range h.ports {
			if p.svc == &catalogue[k] {
				return true
			}
		}
		h.ports = append(h.ports, port{svc: &catalogue[k], state: "open", version: catalogue[k].version})
		sortPorts(h.ports)
	case roll < 60: // a port is no longer listed (closed, among the extraports)
		if len(h.ports) > 1 {
			k := rng.IntN(len(h.ports))
			h.ports = append(h.ports[:k], h.ports[k+1:]...)
		}
	case roll < 80: // a service changes version
		k := rng.IntN(len(h.ports))
		if vs := h.ports[k].svc.versions; len(vs) > 0 {
			h.ports[k].version = vs[rng.IntN(len(vs))]
		}
	case roll < 90: // open -> filtered
		h.ports[0].state = "filtered"
	case roll < 95: // a new host name: a second one, or a first (which
		// makes it another host to ndiff: its id includes the name)
		if h.hostname != "" {
			h.alias = fmt.Sprintf("zz-alias-%d.example.net", h.index)
		} else {
			h.hostname = fmt.Sprintf("renamed-%d.example.net", h.index)
		}
	case roll < 100: // host script output changes or appears
		if h.script != "" {
			h.script += "\n  Domain: corp.example"
		} else {
			h.script = "\n  OS: Windows 10 Pro 19045"
		}
	}
	return true
}

func addr(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
}

// Write writes the scan cfg selects.
func Write(w io.Writer, cfg Config) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	args := fmt.Sprintf("nmap -v -sV -O -T4 -oX scan.xml 10.0.0.0/%d", 32-bitsFor(cfg.Hosts))
	start := int64(1795000000)
	if cfg.Changed {
		start += 86400
	}
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>
<!-- Nmap 7.93 scan initiated synthetically (seed %d) as: %s -->
<nmaprun scanner="nmap" args="%s" start="%d" startstr="synthetic" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="1000" services="1,3-4,6-7,9,13,17,19-26"/>
<verbose level="1"/>
<debugging level="0"/>
`, cfg.Seed, args, args, start)
	up, down := 0, 0
	extra := 0
	if cfg.Changed {
		extra = cfg.Hosts / 100 // 1 % new hosts appear
	}
	for i := 0; i < cfg.Hosts+extra; i++ {
		var h host
		if i < cfg.Hosts {
			h = gen(cfg.Seed, i)
			if cfg.Changed && !change(cfg.Seed, &h) {
				continue
			}
		} else {
			h = gen(cfg.Seed^0xbeef, i)
			h.up = true
			if len(h.ports) == 0 {
				h.ports = []port{{svc: &catalogue[1], state: "open", version: catalogue[1].version}}
			}
		}
		if h.up {
			up++
		} else {
			down++
		}
		writeHost(bw, &h, start)
	}
	fmt.Fprintf(bw, `<runstats><finished time="%d" timestr="synthetic" summary="Nmap done; %d IP addresses (%d hosts up) scanned" elapsed="3600.00" exit="success"/><hosts up="%d" down="%d" total="%d"/>
</runstats>
</nmaprun>
`, start+3600, up+down, up, up, down, up+down)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("scangen: %w", err)
	}
	return nil
}

func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

func writeHost(w *bufio.Writer, h *host, start int64) {
	t := start + int64(h.index%3600)
	if !h.up {
		fmt.Fprintf(w, "<host><status state=\"down\" reason=\"no-response\" reason_ttl=\"0\"/>\n<address addr=\"%s\" addrtype=\"ipv4\"/>\n</host>\n", addr(h.index))
		return
	}
	fmt.Fprintf(w, "<host starttime=\"%d\" endtime=\"%d\"><status state=\"up\" reason=\"echo-reply\" reason_ttl=\"63\"/>\n<address addr=\"%s\" addrtype=\"ipv4\"/>\n", t, t+12, addr(h.index))
	if h.mac != "" {
		fmt.Fprintf(w, "<address addr=\"%s\" addrtype=\"mac\" vendor=\"%s\"/>\n", h.mac, esc(h.vendor))
	}
	w.WriteString("<hostnames>\n")
	if h.hostname != "" {
		fmt.Fprintf(w, "<hostname name=\"%s\" type=\"PTR\"/>\n", h.hostname)
	}
	if h.alias != "" {
		fmt.Fprintf(w, "<hostname name=\"%s\" type=\"PTR\"/>\n", h.alias)
	}
	w.WriteString("</hostnames>\n<ports>")
	closed := scanned - len(h.ports)
	fmt.Fprintf(w, "<extraports state=\"closed\" count=\"%d\">\n<extrareasons reason=\"reset\" count=\"%d\" proto=\"tcp\" ports=\"1,3-4,6-7,9,13,17,19-21\"/>\n</extraports>\n", closed, closed)
	for _, p := range h.ports {
		reason := "syn-ack"
		switch p.state {
		case "closed":
			reason = "reset"
		case "filtered":
			reason = "no-response"
		}
		fmt.Fprintf(w, "<port protocol=\"tcp\" portid=\"%d\"><state state=\"%s\" reason=\"%s\" reason_ttl=\"63\"/>", p.svc.port, p.state, reason)
		if p.state != "open" {
			fmt.Fprintf(w, "<service name=\"%s\" method=\"table\" conf=\"3\"/></port>\n", p.svc.name)
			continue
		}
		fmt.Fprintf(w, "<service name=\"%s\"", p.svc.name)
		if p.svc.product != "" {
			fmt.Fprintf(w, " product=\"%s\"", esc(p.svc.product))
		}
		if p.version != "" {
			fmt.Fprintf(w, " version=\"%s\"", esc(p.version))
		}
		if p.svc.extrainfo != "" {
			fmt.Fprintf(w, " extrainfo=\"%s\"", esc(p.svc.extrainfo))
		}
		if p.svc.tunnel != "" {
			fmt.Fprintf(w, " tunnel=\"%s\"", p.svc.tunnel)
		}
		w.WriteString(" method=\"probed\" conf=\"10\">")
		if p.svc.cpe != "" {
			fmt.Fprintf(w, "<cpe>%s</cpe>", p.svc.cpe)
		}
		w.WriteString("</service>")
		if p.script != "" {
			fmt.Fprintf(w, "<script id=\"ssh-hostkey\" output=\"%s\"><table>\n<elem key=\"type\">ecdsa-sha2-nistp256</elem>\n<elem key=\"bits\">256</elem>\n</table>\n</script>", esc(p.script))
		}
		w.WriteString("</port>\n")
	}
	w.WriteString("</ports>\n")
	if len(h.os) > 0 {
		w.WriteString("<os><portused state=\"open\" proto=\"tcp\" portid=\"22\"/>\n")
		for _, name := range h.os {
			fmt.Fprintf(w, "<osmatch name=\"%s\" accuracy=\"96\" line=\"67546\">\n<osclass type=\"general purpose\" vendor=\"Linux\" osfamily=\"Linux\" osgen=\"5.X\" accuracy=\"96\"><cpe>cpe:/o:linux:linux_kernel:5</cpe></osclass>\n</osmatch>\n", esc(name))
		}
		w.WriteString("</os>\n<uptime seconds=\"1987654\" lastboot=\"Thu Oct  8 09:12:01 2026\"/>\n<distance value=\"2\"/>\n")
	}
	if h.script != "" {
		fmt.Fprintf(w, "<hostscript><script id=\"smb-os-discovery\" output=\"%s\"><elem key=\"os\">Windows Server 2019 Standard 17763</elem>\n</script></hostscript>", esc(h.script))
	}
	fmt.Fprintf(w, "<times srtt=\"%d\" rttvar=\"%d\" to=\"100000\"/>\n</host>\n", 200+h.index%5000, 100+h.index%700)
}

// esc escapes an attribute value the way nmap does.
func esc(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		case '\n':
			b.WriteString("&#xa;")
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// WritePair writes old.xml and new.xml into dir.
func WritePair(dir string, hosts int, seed uint64) error {
	for _, c := range []struct {
		name    string
		changed bool
	}{{"old.xml", false}, {"new.xml", true}} {
		f, err := os.Create(filepath.Join(dir, c.name))
		if err != nil {
			return fmt.Errorf("scangen: %w", err)
		}
		err = Write(f, Config{Hosts: hosts, Seed: seed, Changed: c.changed})
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("scangen: %w", cerr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
