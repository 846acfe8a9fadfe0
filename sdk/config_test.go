package sdk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeConfig(t *testing.T) {
	type cfg struct {
		Targets []string `json:"targets"`
		Port    int      `json:"port"`
		Verbose bool     `json:"verbose"`
	}
	cases := []struct {
		raw, field, want string
	}{
		{`{"targets": ["198.18.0.1"], "port": 1161}`, "", ""},
		{``, "", ""},
		{`{"target": []}`, "target", "unknown attribute (known: port, targets, verbose)"},
		{`{"port": "161"}`, "port", "must be a whole number, not string"},
		{`{"targets": "198.18.0.1"}`, "targets", "must be a list, not string"},
		{`{"verbose": 1}`, "verbose", "must be true or false, not number"},
		{`{} {}`, "config", "unexpected data after the configuration object"},
	}
	for _, c := range cases {
		got := cfg{Port: 161}
		err := DecodeConfig(json.RawMessage(c.raw), &got)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.raw, err)
			}
			continue
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != c.field || !strings.Contains(verr.Fields[0].Message, c.want) {
			t.Errorf("%s: got %#v, want %s: %s", c.raw, err, c.field, c.want)
		}
	}
	got := cfg{Port: 161}
	if err := DecodeConfig(json.RawMessage(`{"verbose": true}`), &got); err != nil || got.Port != 161 || !got.Verbose {
		t.Errorf("defaults must survive: %+v %v", got, err)
	}
}
