package nmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// Config is the nmap source's part of a job block.
type Config struct {
	// Targets are IP addresses or CIDRs. Hostnames and nmap's range syntax
	// are refused: the scope must be exact, and DNS stays off.
	Targets []string `json:"targets"`
	// Ports in nmap -p syntax restricted to numbers and ranges.
	Ports string `json:"ports"`
	// UDPPorts adds a UDP scan of these ports (needs privileges).
	UDPPorts string `json:"udp_ports"`
	// ScanType is auto (SYN when privileged, else connect), connect or syn.
	ScanType          string   `json:"scan_type"`
	ServiceDetection  bool     `json:"service_detection"`
	SkipHostDiscovery bool     `json:"skip_host_discovery"`
	Timing            *int     `json:"timing"`
	NmapPath          string   `json:"nmap_path"`
	ExtraArgs         []string `json:"extra_args"`

	prefixes []netip.Prefix
	tcp, udp sdk.PortRanges
}

// Defaults.
const (
	DefaultPorts  = "1-1024"
	DefaultTiming = 4
)

// forbiddenArgs would redirect or replace the XML the source reads, or
// targets it does not know about.
var forbiddenArgs = []string{"-oX", "-oN", "-oG", "-oA", "-oS", "-iL", "-iR", "--resume", "--excludefile"}

// ParseConfig decodes and validates a job's nmap configuration.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	verr := &sdk.ValidationError{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		field := "config"
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			field = strings.Trim(f, `"`)
			msg = "unknown attribute for the nmap source"
		} else if te, ok := err.(*json.UnmarshalTypeError); ok {
			field = te.Field
			msg = fmt.Sprintf("must be %s, not %s", te.Type, te.Value)
		}
		verr.Add(field, "%s", msg)
		return c, verr
	}
	if len(c.Targets) == 0 {
		verr.Add("targets", "at least one target address or CIDR is required")
	}
	for _, t := range c.Targets {
		p, err := parseTarget(t)
		if err != nil {
			verr.Add("targets", "%v", err)
			continue
		}
		c.prefixes = append(c.prefixes, p)
	}
	if c.Ports == "" {
		c.Ports = DefaultPorts
	}
	var err error
	if c.tcp, err = sdk.ParsePortRanges(c.Ports); err != nil {
		verr.Add("ports", "%v", err)
	}
	if c.UDPPorts != "" {
		if c.udp, err = sdk.ParsePortRanges(c.UDPPorts); err != nil {
			verr.Add("udp_ports", "%v", err)
		}
	}
	switch c.ScanType {
	case "":
		c.ScanType = "auto"
	case "auto", "connect", "syn":
	default:
		verr.Add("scan_type", "%q is not auto, connect or syn", c.ScanType)
	}
	if c.Timing == nil {
		t := DefaultTiming
		c.Timing = &t
	} else if *c.Timing < 0 || *c.Timing > 5 {
		verr.Add("timing", "%d is not a timing template 0-5", *c.Timing)
	}
	for _, a := range c.ExtraArgs {
		for _, f := range forbiddenArgs {
			if a == f || strings.HasPrefix(a, f+"=") {
				verr.Add("extra_args", "%s is managed by sollwert and cannot be passed", a)
			}
		}
	}
	return c, verr.Err()
}

func parseTarget(s string) (netip.Prefix, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zoned addresses are not supported", s)
		}
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR (hostnames and nmap ranges are not accepted: the scan's scope must be exact)", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %q?", s, p.Masked())
	}
	return p, nil
}

// Scope is what a run with this configuration covers.
func (c Config) Scope() sdk.Scope {
	s := sdk.Scope{Prefixes: append([]netip.Prefix(nil), c.prefixes...), Ports: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: c.tcp}}
	if len(c.udp) > 0 {
		s.Ports[sdk.UDP] = c.udp
	}
	return s
}

// hasIPv6 and hasIPv4 decide whether one nmap process can scan the
// targets: nmap scans one address family per run.
func (c Config) families() (v4, v6 []string) {
	for _, p := range c.prefixes {
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	return v4, v6
}
