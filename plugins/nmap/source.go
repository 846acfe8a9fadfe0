// Package nmap is sollwert's built-in port scanner. It drives the nmap
// binary, reads its XML output host by host while nmap is still running,
// and reports open ports together with the exact scope it scanned. Any
// way a scan can end short of nmap's own "finished" (exit status, signal,
// timeout, cancellation, truncated or malformed XML, target errors) is an
// error, so the daemon never mistakes a broken scan for "all closed".
package nmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	nmaplib "github.com/Ullaakut/nmap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// Version is the version of this source (not of nmap).
const Version = "1.0.0"

// Source scans with nmap. It is safe for concurrent runs.
type Source struct {
	log hclog.Logger
}

// New returns the nmap source.
func New(logger hclog.Logger) *Source {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Source{log: logger}
}

// Describe implements sdk.Source.
func (s *Source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name: "nmap", Version: Version,
		Observes: []string{"services", "hostnames", "os", "mac"},
		Fields: []sdk.Field{
			{Name: "targets", Type: "list(string)", Required: true, Description: "IP addresses and CIDRs to scan"},
			{Name: "ports", Type: "string", Description: "TCP ports, e.g. \"1-1024,8000-9000\" (default 1-1024)"},
			{Name: "udp_ports", Type: "string", Description: "UDP ports to scan as well (needs privileges)"},
			{Name: "scan_type", Type: "string", Description: "auto (default), connect or syn"},
			{Name: "service_detection", Type: "bool", Description: "probe open ports for service and version (-sV)"},
			{Name: "skip_host_discovery", Type: "bool", Description: "scan every target address without pinging first (-Pn)"},
			{Name: "timing", Type: "number", Description: "timing template 0-5 (default 4)"},
			{Name: "nmap_path", Type: "string", Description: "path of the nmap binary (default: from PATH)"},
			{Name: "extra_args", Type: "list(string)", Description: "further nmap arguments"},
		},
	}, nil
}

// Validate implements sdk.Source.
func (s *Source) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := ParseConfig(raw)
	return err
}

// Discover implements sdk.Source. IPv4 and IPv6 targets are scanned by
// separate nmap runs, one after the other, since nmap scans one address
// family per process.
func (s *Source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	binary, err := findNmap(cfg.NmapPath)
	if err != nil {
		return sdk.Result{}, err
	}
	privileged := canRawScan()
	if cfg.ScanType == "syn" && !privileged {
		return sdk.Result{}, errors.New("nmap: scan_type \"syn\" needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities; use scan_type \"connect\" or \"auto\"")
	}
	var warnings []string
	v4, v6 := cfg.families()
	for _, family := range []struct {
		targets []string
		ipv6    bool
	}{{v4, false}, {v6, true}} {
		if len(family.targets) == 0 {
			continue
		}
		args, err := buildArgs(ctx, cfg, family.targets, family.ipv6, privileged)
		if err != nil {
			return sdk.Result{}, err
		}
		s.log.Debug("starting nmap", "binary", binary, "args", strings.Join(args, " "))
		w, err := run(ctx, binary, args, emit, s.log)
		warnings = append(warnings, w...)
		if err != nil {
			return sdk.Result{}, err
		}
	}
	return sdk.Result{Scope: cfg.Scope(), Warnings: warnings}, nil
}

func findNmap(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("nmap: nmap_path %s: %w", path, err)
		}
		return path, nil
	}
	p, err := exec.LookPath("nmap")
	if err != nil {
		return "", fmt.Errorf("nmap not found in PATH: install it (Debian/Ubuntu: apt-get install nmap): %w", nmaplib.ErrNmapNotInstalled)
	}
	return p, nil
}

// buildArgs uses the nmap library's option builders for everything it
// knows; the process itself is run by run(), which streams the output.
func buildArgs(ctx context.Context, cfg Config, targets []string, ipv6, privileged bool) ([]string, error) {
	opts := []nmaplib.Option{
		nmaplib.WithBinaryPath("/bin/true"), // the library only builds arguments here
		nmaplib.WithTargets(targets...),
		nmaplib.WithDisabledDNSResolution(),
		nmaplib.WithTimingTemplate(nmaplib.Timing(*cfg.Timing)),
	}
	ports := "T:" + cfg.tcp.String()
	if len(cfg.udp) > 0 {
		ports += ",U:" + cfg.udp.String()
		opts = append(opts, nmaplib.WithUDPScan())
	}
	opts = append(opts, nmaplib.WithPorts(ports))
	syn := cfg.ScanType == "syn" || (cfg.ScanType == "auto" && privileged)
	if syn {
		opts = append(opts, nmaplib.WithSYNScan())
		if os.Geteuid() != 0 {
			opts = append(opts, nmaplib.WithPrivileged())
		}
	} else {
		opts = append(opts, nmaplib.WithConnectScan())
	}
	if cfg.ServiceDetection {
		opts = append(opts, nmaplib.WithServiceInfo())
	}
	if cfg.SkipHostDiscovery {
		opts = append(opts, nmaplib.WithSkipHostDiscovery())
	}
	if ipv6 {
		opts = append(opts, nmaplib.WithIPv6Scanning())
	}
	sc, err := nmaplib.NewScanner(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("nmap: %w", err)
	}
	args := append(sc.Args(), cfg.ExtraArgs...)
	return append(args, "--stats-every", "2s", "-oX", "-"), nil
}

// canRawScan reports whether this process may send raw packets: root, or
// CAP_NET_RAW in the effective capability set.
func canRawScan() bool {
	if os.Geteuid() == 0 {
		return true
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			const capNetRaw, capNetAdmin = 13, 12
			return err == nil && caps&(1<<capNetRaw) != 0 && caps&(1<<capNetAdmin) != 0
		}
	}
	return false
}
