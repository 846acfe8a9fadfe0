package nmap

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

func TestParseConfigAccepts(t *testing.T) {
	cases := []struct {
		name, raw string
		prefixes  string // the scope's prefixes, comma-joined
		tcp, udp  string
		timing    int
		scanType  string
	}{
		{"minimal with defaults", `{"targets":["127.0.0.1"]}`, "127.0.0.1/32", "1-1024", "", 4, "auto"},
		{"both families", `{"targets":["127.0.0.0/24","::1","2001:db8::/120"],"ports":"22,80-90,81","udp_ports":"53,161","scan_type":"connect","timing":3}`,
			"127.0.0.0/24,::1/128,2001:db8::/120", "22,80-90", "53,161", 3, "connect"},
		{"timing 0 stays 0", `{"targets":["127.0.0.2"],"timing":0,"scan_type":"syn"}`, "127.0.0.2/32", "1-1024", "", 0, "syn"},
		{"null attributes keep defaults", `{"targets":["127.0.0.1"],"ports":null,"timing":null}`, "127.0.0.1/32", "1-1024", "", 4, "auto"},
		{"IPv4-mapped address becomes IPv4", `{"targets":["::ffff:127.0.0.1"]}`, "127.0.0.1/32", "1-1024", "", 4, "auto"},
		{"allowed extra args", `{"targets":["127.0.0.1"],"extra_args":["--max-retries=2","-sV","--open","-Pn","--script=banner","--osscan-guess","--reason","--privileged","-d"]}`,
			"127.0.0.1/32", "1-1024", "", 4, "auto"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig(json.RawMessage(c.raw))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			scope := cfg.Scope()
			var got []string
			for _, p := range scope.Prefixes {
				got = append(got, p.String())
			}
			if strings.Join(got, ",") != c.prefixes {
				t.Errorf("prefixes %v, want %s", got, c.prefixes)
			}
			if scope.Ports[sdk.TCP].String() != c.tcp {
				t.Errorf("tcp %q, want %q", scope.Ports[sdk.TCP], c.tcp)
			}
			if u, ok := scope.Ports[sdk.UDP]; u.String() != c.udp || ok != (c.udp != "") {
				t.Errorf("udp %q (present %v), want %q", u, ok, c.udp)
			}
			if cfg.Timing != c.timing || cfg.ScanType != c.scanType {
				t.Errorf("timing %d scan_type %q, want %d %q", cfg.Timing, cfg.ScanType, c.timing, c.scanType)
			}
		})
	}
}

func TestParseConfigRefuses(t *testing.T) {
	cases := []struct {
		name, raw string
		field     string
		message   string // part of the field's message
	}{
		{"no targets", `{}`, "targets", "required"},
		{"no configuration at all", ``, "targets", "required"},
		{"empty target list", `{"targets":[]}`, "targets", "required"},
		{"hostname", `{"targets":["localhost"]}`, "targets", "hostnames"},
		{"nmap range syntax", `{"targets":["127.0.0.1-5"]}`, "targets", "not an IP address or CIDR"},
		{"nmap octet wildcard", `{"targets":["127.0.0.*"]}`, "targets", "not an IP address or CIDR"},
		{"bad CIDR", `{"targets":["127.0.0.0/33"]}`, "targets", "not an IP address or CIDR"},
		{"host bits set", `{"targets":["127.0.0.1/8"]}`, "targets", `did you mean "127.0.0.0/8"`},
		{"zone", `{"targets":["fe80::1%eth0"]}`, "targets", "zone"},
		{"too large IPv6 range", `{"targets":["2001:db8::/64"]}`, "targets", "split it"},
		{"too large IPv4 range", `{"targets":["10.0.0.0/7"]}`, "targets", "split it"},
		{"targets not a list", `{"targets":"127.0.0.1"}`, "targets", "must be a list"},
		{"port above 65535", `{"targets":["127.0.0.1"],"ports":"70000"}`, "ports", "outside 1-65535"},
		{"reversed range", `{"targets":["127.0.0.1"],"ports":"10-5"}`, "ports", "below start"},
		{"port 0", `{"targets":["127.0.0.1"],"ports":"0"}`, "ports", "outside"},
		{"nmap protocol prefix", `{"targets":["127.0.0.1"],"ports":"T:22"}`, "ports", "not a port number"},
		{"empty ports", `{"targets":["127.0.0.1"],"ports":""}`, "ports", "empty"},
		{"ports as number", `{"targets":["127.0.0.1"],"ports":22}`, "ports", "must be a string"},
		{"bad udp ports", `{"targets":["127.0.0.1"],"udp_ports":"dns"}`, "udp_ports", "not a port number"},
		{"unknown attribute", `{"targets":["127.0.0.1"],"prots":"22"}`, "prots", "unknown attribute"},
		{"timing too high", `{"targets":["127.0.0.1"],"timing":7}`, "timing", "0-5"},
		{"timing negative", `{"targets":["127.0.0.1"],"timing":-1}`, "timing", "0-5"},
		{"timing fractional", `{"targets":["127.0.0.1"],"timing":3.5}`, "timing", "whole number"},
		{"bad scan type", `{"targets":["127.0.0.1"],"scan_type":"xmas"}`, "scan_type", "auto, connect, syn"},
		{"service_detection not bool", `{"targets":["127.0.0.1"],"service_detection":"yes"}`, "service_detection", "true or false"},
		{"not an object", `["127.0.0.1"]`, "config", ""},
		{"trailing data", `{"targets":["127.0.0.1"]} {}`, "config", "after the configuration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectFieldError(t, c.raw, c.field, c.message)
		})
	}
}

func TestExtraArgsRefused(t *testing.T) {
	for _, arg := range []string{
		"-oX", "-oN", "-oG", "-oA", "-oS", "--oX=/tmp/x", "-oXfile", "-ofile", "-o",
		"-iL", "--iL=targets.txt", "-iR", "-iR100",
		"--resume", "--resume=/tmp/scan.xml", "--resu",
		"--exclude=127.0.0.2", "--excludefile=x", "--exclude-ports=22", "--exclude_ports=22", "--top-ports=10", "-F",
		"-p22", "-p", "-p-", "--port-ratio=0.1",
		"-sn", "-sL", "-sS", "-sU", "-sO", "-s",
		"-6", "-R",
		"127.0.0.2", "--", "-",
	} {
		t.Run(arg, func(t *testing.T) {
			expectFieldError(t, `{"targets":["127.0.0.1"],"extra_args":["--reason",`+quote(arg)+`]}`, "extra_args", arg)
		})
	}
}

func expectFieldError(t *testing.T, raw, field, message string) {
	t.Helper()
	_, err := ParseConfig(json.RawMessage(raw))
	var verr *sdk.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v (%T) is not a *sdk.ValidationError", err, err)
	}
	if len(verr.Fields) != 1 {
		t.Fatalf("want exactly one field error, got %v", verr.Fields)
	}
	if f := verr.Fields[0]; f.Field != field || !strings.Contains(f.Message, message) {
		t.Fatalf("got %s: %q, want %s: ...%s...", f.Field, f.Message, field, message)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestValidateEveryProblemAtOnce(t *testing.T) {
	err := New(nil).Validate(t.Context(), json.RawMessage(`{"targets":["localhost","127.0.0.1"],"ports":"0","timing":9,"extra_args":["-oN"]}`))
	var verr *sdk.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v", err)
	}
	var fields []string
	for _, f := range verr.Fields {
		fields = append(fields, f.Field)
	}
	if strings.Join(fields, ",") != "targets,ports,timing,extra_args" {
		t.Fatalf("fields %v", fields)
	}
}

func TestDescribeListsEveryConfigField(t *testing.T) {
	d, err := New(nil).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "nmap" || d.Version == "" || len(d.Observes) == 0 {
		t.Fatalf("description %+v", d)
	}
	// Every JSON attribute of Config is documented, and nothing else.
	raw := `{"targets":["127.0.0.1"]`
	for _, f := range d.Fields {
		if f.Name == "targets" {
			continue
		}
		raw += `,"` + f.Name + `":null`
	}
	if _, err := ParseConfig(json.RawMessage(raw + "}")); err != nil {
		t.Fatalf("a described field is unknown to Config: %v", err)
	}
	if len(d.Fields) != 15 {
		t.Fatalf("%d fields described, Config has 15", len(d.Fields))
	}
}
