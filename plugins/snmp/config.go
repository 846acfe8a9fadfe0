package snmp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// Defaults of the optional attributes.
const (
	DefaultPort           = 161
	DefaultTimeout        = 2 * time.Second
	DefaultRetries        = 1
	DefaultMaxRepetitions = 25
	DefaultConcurrency    = 16
)

// maxTargets bounds the addresses of one job: SNMP asks every one of them,
// and a /16 of silent addresses would spend the job's timeout waiting.
const maxTargets = 4096

// Config is the snmp source's part of a job block. Secrets are never in
// it: the attributes name a file or an environment variable that holds
// them, so the configuration can be shown, logged and versioned.
type Config struct {
	Targets []string `json:"targets"`
	Port    int      `json:"port"`
	// Version is "2c" or "3".
	Version string `json:"version"`

	CommunityFile string `json:"community_file"`
	CommunityEnv  string `json:"community_env"`

	User         string `json:"user"`
	AuthProtocol string `json:"auth_protocol"` // sha, sha256
	AuthKeyFile  string `json:"auth_key_file"`
	AuthKeyEnv   string `json:"auth_key_env"`
	PrivProtocol string `json:"priv_protocol"` // aes; empty = authNoPriv
	PrivKeyFile  string `json:"priv_key_file"`
	PrivKeyEnv   string `json:"priv_key_env"`

	Timeout        string `json:"timeout"` // per request
	Retries        int    `json:"retries"`
	MaxRepetitions int    `json:"max_repetitions"`
	Concurrency    int    `json:"concurrency"`

	targets []netip.Addr
	timeout time.Duration
}

func fields() []sdk.Field {
	return []sdk.Field{
		{Name: "targets", Type: "list(string)", Required: true, Description: "agent addresses or CIDRs (at most 4096 addresses)"},
		{Name: "port", Type: "number", Description: "UDP port of the agents (default 161)"},
		{Name: "version", Type: "string", Description: `"2c" (default) or "3"`},
		{Name: "community_file", Type: "string", Description: "file holding the SNMPv2c community"},
		{Name: "community_env", Type: "string", Description: "environment variable holding the SNMPv2c community"},
		{Name: "user", Type: "string", Description: "SNMPv3 user"},
		{Name: "auth_protocol", Type: "string", Description: `SNMPv3 authentication: "sha" or "sha256"`},
		{Name: "auth_key_file", Type: "string", Description: "file holding the SNMPv3 authentication passphrase"},
		{Name: "auth_key_env", Type: "string", Description: "environment variable holding the SNMPv3 authentication passphrase"},
		{Name: "priv_protocol", Type: "string", Description: `SNMPv3 privacy: "aes" (authPriv); unset means authNoPriv`},
		{Name: "priv_key_file", Type: "string", Description: "file holding the SNMPv3 privacy passphrase"},
		{Name: "priv_key_env", Type: "string", Description: "environment variable holding the SNMPv3 privacy passphrase"},
		{Name: "timeout", Type: "duration", Description: "wait for one answer (default 2s)"},
		{Name: "retries", Type: "number", Description: "resend a request this many times (default 1)"},
		{Name: "max_repetitions", Type: "number", Description: "GETBULK max-repetitions (default 25)"},
		{Name: "concurrency", Type: "number", Description: "agents asked at the same time (default 16)"},
	}
}

// ParseConfig decodes and checks a configuration without reading secrets
// or touching the network; secretSources checks that the named files and
// variables exist.
func ParseConfig(raw json.RawMessage) (Config, error) {
	c := Config{Port: DefaultPort, Version: "2c", Retries: DefaultRetries, MaxRepetitions: DefaultMaxRepetitions, Concurrency: DefaultConcurrency}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return c, err
	}
	verr := &sdk.ValidationError{}
	if len(c.Targets) == 0 {
		verr.Add("targets", "at least one address or CIDR is required")
	}
	for _, t := range c.Targets {
		addrs, err := expand(t, maxTargets-len(c.targets))
		if err != nil {
			verr.Add("targets", "%v", err)
			continue
		}
		c.targets = append(c.targets, addrs...)
	}
	if c.Port < 1 || c.Port > 65535 {
		verr.Add("port", "%d is outside 1-65535", c.Port)
	}
	c.timeout = DefaultTimeout
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			verr.Add("timeout", "%q is not a duration such as \"2s\"", c.Timeout)
		}
		c.timeout = d
	}
	if c.Retries < 0 || c.Retries > 10 {
		verr.Add("retries", "%d is not within 0-10", c.Retries)
	}
	if c.MaxRepetitions < 1 || c.MaxRepetitions > 200 {
		verr.Add("max_repetitions", "%d is not within 1-200", c.MaxRepetitions)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		verr.Add("concurrency", "%d is not within 1-1024", c.Concurrency)
	}
	switch c.Version {
	case "2c":
		sdk.CheckSecret(verr, "community", c.CommunityFile, c.CommunityEnv, true)
		for name, v := range map[string]string{"user": c.User, "auth_protocol": c.AuthProtocol, "priv_protocol": c.PrivProtocol,
			"auth_key_file": c.AuthKeyFile, "auth_key_env": c.AuthKeyEnv, "priv_key_file": c.PrivKeyFile, "priv_key_env": c.PrivKeyEnv} {
			if v != "" {
				verr.Add(name, "is an SNMPv3 setting; set version = \"3\" or remove it")
			}
		}
	case "3":
		if c.User == "" {
			verr.Add("user", "SNMPv3 needs a user")
		}
		switch strings.ToLower(c.AuthProtocol) {
		case "sha", "sha256":
		case "":
			verr.Add("auth_protocol", `SNMPv3 needs an authentication protocol: "sha" or "sha256"`)
		default:
			verr.Add("auth_protocol", `%q is not "sha" or "sha256"`, c.AuthProtocol)
		}
		sdk.CheckSecret(verr, "auth_key", c.AuthKeyFile, c.AuthKeyEnv, true)
		switch strings.ToLower(c.PrivProtocol) {
		case "aes":
			sdk.CheckSecret(verr, "priv_key", c.PrivKeyFile, c.PrivKeyEnv, true)
		case "":
			sdk.CheckSecret(verr, "priv_key", c.PrivKeyFile, c.PrivKeyEnv, false)
		default:
			verr.Add("priv_protocol", `%q is not "aes"`, c.PrivProtocol)
		}
		if c.CommunityFile != "" || c.CommunityEnv != "" {
			verr.Add("community_file", "a community is an SNMPv2c setting; remove it for version 3")
		}
	default:
		verr.Add("version", `%q is not "2c" or "3"`, c.Version)
	}
	return c, verr.Err()
}

// expand turns an address or CIDR into its addresses, refusing more than
// room.
func expand(s string, room int) ([]netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		if room < 1 {
			return nil, fmt.Errorf("more than %d addresses in targets", maxTargets)
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if p.Masked() != p {
		return nil, fmt.Errorf("%q has host bits set; did you mean %q?", s, p.Masked())
	}
	bits := p.Addr().BitLen() - p.Bits()
	if bits > 12 || 1<<bits > room {
		return nil, fmt.Errorf("%q holds more addresses than the %d a job may ask", s, maxTargets)
	}
	var out []netip.Addr
	for a := p.Addr(); p.Contains(a); a = a.Next() {
		out = append(out, a.Unmap())
	}
	return out, nil
}
