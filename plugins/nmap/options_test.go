package nmap

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name, raw string
		field     string // "" = valid
	}{
		{"minimal", `{"targets":["127.0.0.1"]}`, ""},
		{"cidrs of both families", `{"targets":["127.0.0.0/24","::1"],"ports":"22,80-90","udp_ports":"53","scan_type":"connect","timing":3}`, ""},
		{"no targets", `{}`, "targets"},
		{"hostname target", `{"targets":["localhost"]}`, "targets"},
		{"nmap range syntax", `{"targets":["127.0.0.1-5"]}`, "targets"},
		{"cidr with host bits", `{"targets":["127.0.0.1/8"]}`, "targets"},
		{"port too high", `{"targets":["127.0.0.1"],"ports":"70000"}`, "ports"},
		{"reversed range", `{"targets":["127.0.0.1"],"ports":"10-5"}`, "ports"},
		{"bad udp ports", `{"targets":["127.0.0.1"],"udp_ports":"x"}`, "udp_ports"},
		{"unknown attribute", `{"targets":["127.0.0.1"],"prots":"22"}`, "prots"},
		{"wrong type", `{"targets":"127.0.0.1"}`, "targets"},
		{"bad timing", `{"targets":["127.0.0.1"],"timing":7}`, "timing"},
		{"bad scan type", `{"targets":["127.0.0.1"],"scan_type":"xmas"}`, "scan_type"},
		{"output flag in extra args", `{"targets":["127.0.0.1"],"extra_args":["-oN","/tmp/x"]}`, "extra_args"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig(json.RawMessage(c.raw))
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(cfg.Scope().Prefixes) != len(cfg.Targets) || cfg.Scope().Ports[sdk.TCP] == nil {
					t.Fatalf("scope: %+v", cfg.Scope())
				}
				return
			}
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %v is not a *sdk.ValidationError", err)
			}
			if verr.Fields[0].Field != c.field {
				t.Fatalf("field %q, want %q (%v)", verr.Fields[0].Field, c.field, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := ParseConfig(json.RawMessage(`{"targets":["127.0.0.1"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scope().Ports[sdk.TCP].String() != "1-1024" || *cfg.Timing != 4 || cfg.ScanType != "auto" {
		t.Fatalf("defaults: %+v", cfg)
	}
}
