package nmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// Defaults of the optional attributes.
const (
	DefaultPorts    = "1-1024"
	DefaultScanType = "auto"
	DefaultTiming   = 4
)

// The ot_safe profile, for networks of PLCs, RTUs and other devices that a
// burst of probes can upset: a connect scan (no half-open connections
// left behind), one host at a time, one probe at a time, at most
// otSafeMaxRate packets per second, no version or OS probes, and a short
// port list (otSafePorts unless the job names its own, at most
// otSafeMaxPorts).
const (
	ProfileOTSafe  = "ot_safe"
	otSafeRate     = 10
	otSafeMaxRate  = 50
	otSafeMaxPorts = 100
	// otSafePorts are the usual services of industrial networks: FTP, SSH,
	// Telnet, HTTP(S), S7 (102), Modbus (502), DNP3 (20000), EtherNet/IP
	// (44818), BACnet (47808 is UDP; its TCP twin is rare but probed).
	otSafePorts = "21,22,23,80,102,443,502,20000,44818,47808"
)

// maxTargetBits bounds one target to 2^24 addresses (an IPv4 /8, an IPv6
// /104). nmap accepts an IPv6 /64 and would walk it for years; a job
// timeout would then fail every run instead of the file being refused.
const maxTargetBits = 24

// Config is the nmap source's part of a job block. The daemon hands the
// job's own HCL attributes over as one JSON object.
type Config struct {
	// Targets are IP addresses or CIDRs, IPv4 or IPv6. Hostnames and
	// nmap's range syntax are refused: the scope must be exact, and DNS
	// stays off.
	Targets []string `json:"targets"`
	// Ports are the TCP ports in nmap -p syntax, numbers and ranges only.
	Ports string `json:"ports"`
	// UDPPorts, when set, adds a UDP scan (-sU) of these ports.
	UDPPorts string `json:"udp_ports"`
	// ScanType is "auto" (SYN when this process may, else connect),
	// "connect" (-sT) or "syn" (-sS).
	ScanType          string `json:"scan_type"`
	ServiceDetection  bool   `json:"service_detection"`   // -sV
	SkipHostDiscovery bool   `json:"skip_host_discovery"` // -Pn
	// Timing is nmap's timing template 0-5 (-T).
	Timing int `json:"timing"`
	// NmapPath is the nmap binary; empty means "nmap" from PATH.
	NmapPath string `json:"nmap_path"`
	// ExtraArgs go to nmap as they are, after the checks in extraArgError.
	ExtraArgs []string `json:"extra_args"`
	// Politeness: packets per second at most (--max-rate), a pause
	// between probes to one host (--scan-delay), and how many hosts nmap
	// scans at once (--max-hostgroup). Profile "ot_safe" sets them all.
	MaxRate          int    `json:"max_rate"`
	ScanDelay        string `json:"scan_delay"`
	MaxParallelHosts int    `json:"max_parallel_hosts"`
	Profile          string `json:"profile"`
	// ChunkSize splits a run over more addresses than this into nmap
	// processes of at most ChunkSize addresses (a power of two, 16 to
	// 65536), ParallelChunks at a time (default 2), each applied as it
	// finishes. 0: one process per address family.
	ChunkSize      int `json:"chunk_size"`
	ParallelChunks int `json:"parallel_chunks"`

	// Filled in by ParseConfig.
	prefixes    []netip.Prefix
	tcp, udp    sdk.PortRanges
	scanDelay   time.Duration
	maxProbes   int // --max-parallelism; 0 = nmap's own
	singleRetry bool
}

// ParseConfig decodes and checks a job's nmap configuration. Every problem
// is reported as an *sdk.ValidationError whose fields carry the JSON (and
// so HCL) attribute names.
func ParseConfig(raw json.RawMessage) (Config, error) {
	// Defaults first: attributes absent from the JSON keep them, and an
	// explicit timing = 0 stays 0.
	c := Config{ScanType: DefaultScanType, Timing: DefaultTiming}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return c, err
	}
	verr := &sdk.ValidationError{}
	var set map[string]json.RawMessage
	_ = json.Unmarshal(raw, &set)
	portsGiven := set["ports"] != nil && string(set["ports"]) != "null"
	if !portsGiven {
		c.Ports = DefaultPorts
	}
	switch c.Profile {
	case "":
	case ProfileOTSafe:
		applyOTSafe(&c, set, portsGiven, verr)
	default:
		verr.Add("profile", "%q is not a profile; the one there is: %q", c.Profile, ProfileOTSafe)
	}
	if c.ChunkSize != 0 && (c.ChunkSize < 16 || c.ChunkSize > 65536 || c.ChunkSize&(c.ChunkSize-1) != 0) {
		verr.Add("chunk_size", "%d is not a power of two from 16 to 65536", c.ChunkSize)
	}
	if c.ParallelChunks < 0 || c.ParallelChunks > 8 {
		verr.Add("parallel_chunks", "%d is not from 1 to 8", c.ParallelChunks)
	}
	if c.ParallelChunks == 0 {
		c.ParallelChunks = 2
	}
	if c.MaxRate < 0 {
		verr.Add("max_rate", "%d is not a number of packets per second", c.MaxRate)
	}
	if c.MaxParallelHosts < 0 {
		verr.Add("max_parallel_hosts", "%d is not a number of hosts", c.MaxParallelHosts)
	}
	if c.ScanDelay != "" {
		d, err := time.ParseDuration(c.ScanDelay)
		if err != nil || d < 0 || d > time.Minute {
			verr.Add("scan_delay", "%q is not a delay such as \"100ms\" (at most 1m)", c.ScanDelay)
		}
		c.scanDelay = d
	}

	if len(c.Targets) == 0 {
		verr.Add("targets", "at least one IP address or CIDR is required")
	}
	for _, t := range c.Targets {
		p, err := parseTarget(t)
		if err != nil {
			verr.Add("targets", "%v", err)
			continue
		}
		c.prefixes = append(c.prefixes, p)
	}

	var err error
	if c.tcp, err = parsePorts(c.Ports); err != nil {
		verr.Add("ports", "%v", err)
	}
	if c.UDPPorts != "" {
		if c.udp, err = parsePorts(c.UDPPorts); err != nil {
			verr.Add("udp_ports", "%v", err)
		}
	}
	switch c.ScanType {
	case "auto", "connect", "syn":
	default:
		verr.Add("scan_type", "%q is not one of auto, connect, syn", c.ScanType)
	}
	if c.Timing < 0 || c.Timing > 5 {
		verr.Add("timing", "%d is not a timing template 0-5", c.Timing)
	}
	for _, a := range c.ExtraArgs {
		if msg := extraArgError(a); msg != "" {
			verr.Add("extra_args", "%q: %s", a, msg)
		}
	}
	return c, verr.Err()
}

// applyOTSafe sets the ot_safe profile's limits, and refuses settings that
// would break them rather than quietly overriding what the job says.
func applyOTSafe(c *Config, set map[string]json.RawMessage, portsGiven bool, verr *sdk.ValidationError) {
	given := func(k string) bool { v, ok := set[k]; return ok && string(v) != "null" }
	if given("scan_type") && c.ScanType != "connect" {
		verr.Add("scan_type", "profile ot_safe scans with connect (-sT) only")
	}
	c.ScanType = "connect"
	if c.ServiceDetection {
		verr.Add("service_detection", "profile ot_safe sends no version probes")
	}
	if c.UDPPorts != "" {
		verr.Add("udp_ports", "profile ot_safe scans no UDP (its probes are raw packets)")
	}
	switch {
	case !given("max_rate"):
		c.MaxRate = otSafeRate
	case c.MaxRate > otSafeMaxRate || c.MaxRate == 0:
		verr.Add("max_rate", "profile ot_safe sends at most %d packets per second", otSafeMaxRate)
	}
	if given("max_parallel_hosts") && c.MaxParallelHosts != 1 {
		verr.Add("max_parallel_hosts", "profile ot_safe scans one host at a time")
	}
	c.MaxParallelHosts = 1
	if !given("timing") {
		c.Timing = 2
	} else if c.Timing > 2 {
		verr.Add("timing", "profile ot_safe allows timing templates 0-2 (polite or slower)")
	}
	if !portsGiven {
		c.Ports = otSafePorts
	} else if r, err := sdk.ParsePortRanges(c.Ports); err == nil && r.Count() > otSafeMaxPorts {
		verr.Add("ports", "profile ot_safe scans at most %d ports; this list has %d", otSafeMaxPorts, r.Count())
	}
	if !given("scan_delay") {
		c.ScanDelay = "100ms"
	}
	c.maxProbes, c.singleRetry = 1, true
}

// parseTarget accepts one IP address or CIDR. Single addresses become
// /32 or /128 so the scope holds exactly what nmap was told.
func parseTarget(s string) (netip.Prefix, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: addresses with a zone are not supported", s)
		}
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR (hostnames and nmap ranges such as 10.0.0.1-9 are not accepted: the scope must be exact and DNS is off)", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4-mapped ranges as IPv4", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %q?", s, p.Masked().String())
	}
	if p.Addr().BitLen()-p.Bits() > maxTargetBits {
		return netip.Prefix{}, fmt.Errorf("%q holds more than 2^%d addresses; split it (at most an IPv4 /%d or an IPv6 /%d per target)", s, maxTargetBits, 32-maxTargetBits, 128-maxTargetBits)
	}
	return p, nil
}

func parsePorts(s string) (sdk.PortRanges, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("must not be empty")
	}
	return sdk.ParsePortRanges(s)
}

// Scope is what a run with this configuration covers: every target times
// every port of every scanned protocol.
func (c Config) Scope() sdk.Scope {
	s := sdk.Scope{
		Prefixes: append([]netip.Prefix(nil), c.prefixes...),
		Ports:    map[sdk.Protocol]sdk.PortRanges{sdk.TCP: c.tcp},
	}
	if len(c.udp) > 0 {
		s.Ports[sdk.UDP] = c.udp
	}
	return s
}

// families splits the targets by address family: one nmap process scans
// either IPv4 or IPv6 (-6), never both.
func (c Config) families() (v4, v6 []netip.Prefix) {
	for _, p := range c.prefixes {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}
