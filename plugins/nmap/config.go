package nmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// Defaults of the optional attributes.
const (
	DefaultPorts    = "1-1024"
	DefaultScanType = "auto"
	DefaultTiming   = 4
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

	// Filled in by ParseConfig.
	prefixes []netip.Prefix
	tcp, udp sdk.PortRanges
}

// ParseConfig decodes and checks a job's nmap configuration. Every problem
// is reported as an *sdk.ValidationError whose fields carry the JSON (and
// so HCL) attribute names.
func ParseConfig(raw json.RawMessage) (Config, error) {
	// Defaults first: attributes absent from the JSON keep them, and an
	// explicit timing = 0 stays 0.
	c := Config{Ports: DefaultPorts, ScanType: DefaultScanType, Timing: DefaultTiming}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return c, err
	}
	verr := &sdk.ValidationError{}

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
