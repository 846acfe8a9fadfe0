// Package nmap is sollwert's built-in port scanner. It drives the nmap
// binary, reads its XML output host by host while nmap is still running,
// and reports what it found together with the exact scope it scanned.
// Every way a scan can end short of nmap's own "finished" (exit status,
// signal, timeout, cancellation, truncated or malformed XML, a target nmap
// skipped) is an error, so the daemon never mistakes a broken scan for
// "everything is closed".
package nmap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"

	nmaplib "github.com/Ullaakut/nmap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// Version is the version of this source, not of the nmap binary.
const Version = "1.0.0"

// capNetRaw is CAP_NET_RAW's bit in the capability sets of
// /proc/self/status.
const capNetRaw = 13

// Source scans with nmap. It holds no per-run state and is safe for
// concurrent runs.
type Source struct {
	log hclog.Logger
	// rawAllowed reports whether this process may send raw packets; a
	// field so that tests can act unprivileged while running as root.
	rawAllowed func() bool
}

var _ sdk.Source = (*Source)(nil)

// New returns the nmap source. A nil logger discards the log.
func New(logger hclog.Logger) *Source {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Source{log: logger, rawAllowed: canSendRaw}
}

// Describe implements sdk.Source.
func (s *Source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:     "nmap",
		Version:  Version,
		Fields:   configFields(),
		Observes: []string{"services", "hostnames", "os", "mac"},
	}, nil
}

func configFields() []sdk.Field {
	return []sdk.Field{
		{Name: "targets", Type: "list(string)", Required: true, Description: "IP addresses and CIDRs to scan (no hostnames, no nmap ranges)"},
		{Name: "ports", Type: "string", Description: `TCP ports, e.g. "1-1024,8000-9000" (default "1-1024")`},
		{Name: "udp_ports", Type: "string", Description: "UDP ports to scan as well (-sU; needs root or CAP_NET_RAW)"},
		{Name: "scan_type", Type: "string", Description: `"auto" (default: SYN when privileged, else connect), "connect" or "syn"`},
		{Name: "service_detection", Type: "bool", Description: "probe open ports for service and version (-sV)"},
		{Name: "skip_host_discovery", Type: "bool", Description: "treat every target address as up and scan it (-Pn)"},
		{Name: "timing", Type: "number", Description: "timing template 0-5 (-T, default 4)"},
		{Name: "nmap_path", Type: "string", Description: "path of the nmap binary (default: nmap from PATH)"},
		{Name: "extra_args", Type: "list(string)", Description: "further nmap options, passed as they are (output, input and scope options are refused)"},
		{Name: "max_rate", Type: "number", Description: "packets per second at most (--max-rate)"},
		{Name: "scan_delay", Type: "duration", Description: "pause between probes to one host (--scan-delay), at most 1m"},
		{Name: "max_parallel_hosts", Type: "number", Description: "hosts scanned at once (--max-hostgroup)"},
		{Name: "chunk_size", Type: "number", Description: "split runs over more addresses into nmap processes of this many (power of two, 16-65536), applied as each finishes"},
		{Name: "parallel_chunks", Type: "number", Description: "chunks scanned at once (default 2, at most 8)"},
		{Name: "profile", Type: "string", Description: `"ot_safe": connect scan, 10 packets/s, one host and one probe at a time, no version probes, a short port list`},
	}
}

// Validate implements sdk.Source. It touches neither the network nor the
// nmap binary.
func (s *Source) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := ParseConfig(raw)
	return err
}

// Discover implements sdk.Source. IPv4 and IPv6 targets are scanned by
// separate nmap runs, one after the other, since one nmap process scans
// one address family. A run that fails leaves earlier emitted batches
// behind; the host discards them together with the failed run.
func (s *Source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	cfg, err := ParseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	binary, err := findNmap(cfg.NmapPath)
	if err != nil {
		return sdk.Result{}, err
	}
	raw := s.rawAllowed()
	syn := cfg.ScanType == "syn" || (cfg.ScanType == "auto" && raw)
	if !raw && cfg.ScanType == "syn" {
		return sdk.Result{}, errors.New(`nmap: scan_type "syn" needs root or CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW); use scan_type "connect" or "auto"`)
	}
	if !raw && len(cfg.udp) > 0 {
		return sdk.Result{}, errors.New("nmap: udp_ports needs root or CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW); remove udp_ports or grant the capability")
	}
	// --privileged tells nmap to try raw sockets although it is not root:
	// the capability is what makes them work.
	privileged := (syn || len(cfg.udp) > 0) && os.Geteuid() != 0

	log := s.log.With("job", req.Job, "run_id", req.RunID)
	var warnings []string
	// Chunks were handed over with their own scopes: the result's scope
	// is only what ran in one piece.
	var unchunked []netip.Prefix
	chunked := false
	v4, v6 := cfg.families()
	for _, fam := range []scanPlan{
		{binary: binary, targets: v4, syn: syn, privileged: privileged},
		{binary: binary, targets: v6, ipv6: true, syn: syn, privileged: privileged},
	} {
		if len(fam.targets) == 0 {
			continue
		}
		if parts, ok := emit.(sdk.PartEmitter); ok && cfg.ChunkSize > 0 && addressCount(fam.targets) > uint64(cfg.ChunkSize) {
			w, err := runChunks(ctx, cfg, fam, cfg.ParallelChunks, parts, log)
			warnings = append(warnings, w...)
			if err != nil {
				return sdk.Result{}, err
			}
			chunked = true
			continue
		}
		unchunked = append(unchunked, fam.targets...)
		args, err := buildArgs(ctx, cfg, fam)
		if err != nil {
			return sdk.Result{}, err
		}
		log.Debug("starting nmap", "binary", binary, "args", strings.Join(args, " "))
		w, err := runNmap(ctx, runSpec{binary: binary, args: args, expectHosts: addressCount(fam.targets)}, emit, log)
		warnings = append(warnings, w...)
		if err != nil {
			return sdk.Result{}, err
		}
	}
	scope := cfg.Scope()
	if chunked {
		scope.Prefixes = unchunked
	}
	return sdk.Result{Scope: scope, Warnings: warnings}, nil
}

// findNmap resolves the binary. The library's NewScanner would find a
// missing nmap too, but the process is run here, so the path is needed.
func findNmap(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("nmap: nmap_path %q is not an executable: %w: %w", path, nmaplib.ErrNmapNotInstalled, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("nmap")
	if err != nil {
		return "", fmt.Errorf("nmap not found in PATH: install it (Debian/Ubuntu: apt-get install nmap): %w", nmaplib.ErrNmapNotInstalled)
	}
	return p, nil
}

// canSendRaw reports whether this process may open raw sockets, which SYN
// and UDP scans need. The effective capability set decides: root usually
// holds CAP_NET_RAW, a root inside a container that dropped it does not,
// and a service user may hold it alone. Without /proc, root is assumed to
// be able to.
func canSendRaw() bool {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return os.Geteuid() == 0
	}
	caps, ok := effectiveCaps(string(status))
	if !ok {
		return os.Geteuid() == 0
	}
	return caps&(1<<capNetRaw) != 0
}

// effectiveCaps reads the CapEff line of a /proc/PID/status text.
func effectiveCaps(status string) (uint64, bool) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return caps, err == nil
		}
	}
	return 0, false
}
