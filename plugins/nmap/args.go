package nmap

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	nmaplib "github.com/Ullaakut/nmap/v3"
)

// scanPlan is one nmap process: the targets of one address family.
type scanPlan struct {
	binary  string
	targets []netip.Prefix
	ipv6    bool
	syn     bool // SYN scan rather than connect scan
	// privileged adds --privileged: raw sockets by capability, not root.
	privileged bool
}

// buildArgs uses the library's option builders for the command line; the
// process itself is run by runNmap, which streams the XML.
func buildArgs(ctx context.Context, cfg Config, plan scanPlan) ([]string, error) {
	targets := make([]string, len(plan.targets))
	for i, p := range plan.targets {
		if p.IsSingleIP() {
			targets[i] = p.Addr().String()
		} else {
			targets[i] = p.String()
		}
	}
	ports := "T:" + cfg.tcp.String()
	opts := []nmaplib.Option{
		nmaplib.WithBinaryPath(plan.binary),
		nmaplib.WithDisabledDNSResolution(), // -n: reverse lookups would contact a DNS server
		nmaplib.WithTimingTemplate(nmaplib.Timing(cfg.Timing)),
	}
	if plan.syn {
		opts = append(opts, nmaplib.WithSYNScan())
	} else {
		opts = append(opts, nmaplib.WithConnectScan())
	}
	if len(cfg.udp) > 0 {
		ports += ",U:" + cfg.udp.String()
		opts = append(opts, nmaplib.WithUDPScan())
	}
	if plan.privileged {
		opts = append(opts, nmaplib.WithPrivileged())
	}
	if cfg.MaxRate > 0 {
		opts = append(opts, nmaplib.WithMaxRate(cfg.MaxRate))
	}
	if cfg.scanDelay > 0 {
		opts = append(opts, nmaplib.WithScanDelay(cfg.scanDelay))
	}
	if cfg.MaxParallelHosts > 0 {
		opts = append(opts, nmaplib.WithMaxHostgroup(cfg.MaxParallelHosts))
	}
	if cfg.maxProbes > 0 {
		opts = append(opts, nmaplib.WithMaxParallelism(cfg.maxProbes))
	}
	if cfg.singleRetry {
		opts = append(opts, nmaplib.WithMaxRetries(1))
	}
	opts = append(opts, nmaplib.WithPorts(ports))
	if cfg.ServiceDetection {
		opts = append(opts, nmaplib.WithServiceInfo())
	}
	if cfg.SkipHostDiscovery {
		opts = append(opts, nmaplib.WithSkipHostDiscovery())
	}
	if plan.ipv6 {
		opts = append(opts, nmaplib.WithIPv6Scanning())
	}
	if len(cfg.ExtraArgs) > 0 {
		opts = append(opts, nmaplib.WithCustomArguments(cfg.ExtraArgs...))
	}
	opts = append(opts, nmaplib.WithTargets(targets...))
	sc, err := nmaplib.NewScanner(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("nmap: build arguments: %w", err)
	}
	return append([]string(nil), sc.Args()...), nil
}

// nmap parses its options with getopt_long_only: "-name" and "--name" are
// the same long option, a long option may be abbreviated, "--name=value"
// carries a value, and "-xVALUE" is the short option x with an attached
// value whenever no long option starts with "xVALUE". The checks below
// follow those rules, so "-oX", "--oX=f", "-oxf" and "-ofile" are all
// recognised as output options.

// shortFamilies are short options whose attached value would redirect
// the output, read targets from elsewhere or replace the port list. A
// name starting with the letter is only let through when it is an
// abbreviation of one of the harmless long options listed.
var shortFamilies = []struct {
	letter  string
	allowed []string
	why     string
}{
	{"o", []string{"open", "osscan-limit", "osscan-guess"}, "output options are managed by sollwert, which reads nmap's XML from stdout"},
	{"i", []string{"iflist", "ip-options"}, "targets come from the targets attribute only (-iL/-iR would scan outside the scope)"},
	{"p", []string{"privileged", "proxies", "proxy", "packet-trace"}, "ports come from the ports and udp_ports attributes (the scope must match what was scanned)"},
	{"s", []string{
		"script", "script-args", "script-args-file", "script-trace", "script-timeout", "script-help",
		"scan-delay", "scanflags", "send-eth", "send-ip", "servicedb", "spoof-mac", "source-port",
		"stylesheet", "stats-every", "sV", "sC", "sVC", "sCV",
	}, "the scan technique comes from scan_type and udp_ports; -sn/-sL would scan no port, and every port in scope would read as closed"},
}

// deniedOptions change what is scanned (so the scope would lie), resume
// another scan, or turn DNS back on. Abbreviations are caught too.
var deniedOptions = []struct {
	names []string
	why   string
}{
	{[]string{"resume"}, "resuming another scan is not supported"},
	{[]string{"exclude", "excludefile", "exclude-ports", "top-ports", "port-ratio"}, "the scope must be exactly targets x ports; narrow the targets or ports attributes instead"},
	{[]string{"F"}, "ports come from the ports attribute"},
	{[]string{"4", "6"}, "the address family follows the targets"},
	{[]string{"R"}, "DNS stays off (-n)"},
	{[]string{"b"}, "FTP bounce scans are not supported"},
}

// extraArgError says why arg may not be passed to nmap, or "" if it may.
// Only what would break the scan's contract is refused: output and input
// redirection, scope changes and bare words (which nmap takes as targets).
func extraArgError(arg string) string {
	if arg == "-" || arg == "--" {
		return "would turn the following arguments into scan targets"
	}
	if !strings.HasPrefix(arg, "-") {
		return "nmap takes a word without a leading '-' as a scan target; attach option values with '=' or directly (\"--max-retries=2\", \"-T3\")"
	}
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	norm := strings.ReplaceAll(name, "_", "-")
	for _, fam := range shortFamilies {
		if !strings.HasPrefix(norm, fam.letter) {
			continue
		}
		if len(norm) >= 2 && abbreviates(norm, fam.allowed) {
			break
		}
		return fam.why
	}
	for _, d := range deniedOptions {
		for _, n := range d.names {
			// One-letter options must match exactly; longer ones also
			// as abbreviations of at least three letters.
			if norm == n || (len(n) > 1 && len(norm) >= 3 && strings.HasPrefix(n, norm)) {
				return d.why
			}
		}
	}
	return ""
}

// abbreviates reports whether name is one of options or a prefix of one.
func abbreviates(name string, options []string) bool {
	for _, o := range options {
		if strings.HasPrefix(o, name) {
			return true
		}
	}
	return false
}
