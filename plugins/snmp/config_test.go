package snmp

import (
	"errors"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

func TestParseConfig(t *testing.T) {
	file := secretFile(t, "public")
	t.Setenv("SOLLWERT_TEST_COMMUNITY", "public")
	cases := []struct {
		name, config, field, want string
	}{
		{"v2c from a file", `{"targets": ["198.18.0.0/30"], "community_file": "` + file + `"}`, "", ""},
		{"v2c from the environment", `{"targets": ["198.18.0.1"], "community_env": "SOLLWERT_TEST_COMMUNITY"}`, "", ""},
		{"no targets", `{"community_file": "` + file + `"}`, "targets", "at least one"},
		{"a hostname", `{"targets": ["switch.example"], "community_file": "` + file + `"}`, "targets", "is not an IP address or CIDR"},
		{"too many addresses", `{"targets": ["198.18.0.0/16"], "community_file": "` + file + `"}`, "targets", "more addresses than the 4096"},
		{"host bits", `{"targets": ["198.18.0.1/24"], "community_file": "` + file + `"}`, "targets", "has host bits set"},
		{"no community", `{"targets": ["198.18.0.1"]}`, "community_file", "the community is required"},
		{"missing file", `{"targets": ["198.18.0.1"], "community_file": "/nonexistent/c"}`, "community_file", "no such file"},
		{"unset variable", `{"targets": ["198.18.0.1"], "community_env": "SOLLWERT_NOT_SET"}`, "community_env", "is not set"},
		{"both", `{"targets": ["198.18.0.1"], "community_file": "` + file + `", "community_env": "SOLLWERT_TEST_COMMUNITY"}`, "community_file", "not both"},
		{"an inline community", `{"targets": ["198.18.0.1"], "community": "public"}`, "community", "unknown attribute"},
		{"v3 without user", `{"targets": ["198.18.0.1"], "version": "3", "auth_protocol": "sha", "auth_key_file": "` + file + `"}`, "user", "needs a user"},
		{"v3 md5", `{"targets": ["198.18.0.1"], "version": "3", "user": "u", "auth_protocol": "md5", "auth_key_file": "` + file + `"}`, "auth_protocol", `"md5" is not`},
		{"v3 des", `{"targets": ["198.18.0.1"], "version": "3", "user": "u", "auth_protocol": "sha", "auth_key_file": "` + file + `", "priv_protocol": "des", "priv_key_file": "` + file + `"}`, "priv_protocol", `"des" is not "aes"`},
		{"v3 settings on v2c", `{"targets": ["198.18.0.1"], "community_file": "` + file + `", "user": "u"}`, "user", "SNMPv3 setting"},
		{"version 1", `{"targets": ["198.18.0.1"], "version": "1", "community_file": "` + file + `"}`, "version", `"1" is not "2c" or "3"`},
		{"bad timeout", `{"targets": ["198.18.0.1"], "community_file": "` + file + `", "timeout": "soon"}`, "timeout", "is not a duration"},
		{"zero concurrency", `{"targets": ["198.18.0.1"], "community_file": "` + file + `", "concurrency": 0}`, "concurrency", "not within 1-1024"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.config))
			if c.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a field error", err)
			}
			for _, f := range verr.Fields {
				if f.Field == c.field && strings.Contains(f.Message, c.want) {
					return
				}
			}
			t.Fatalf("got %v, want %s: %s", err, c.field, c.want)
		})
	}
	c, err := ParseConfig([]byte(`{"targets": ["198.18.0.0/30", "2001:db8::1"], "community_file": "` + file + `"}`))
	if err != nil || len(c.targets) != 5 || c.targets[4].String() != "2001:db8::1" {
		t.Fatalf("targets %v, %v", c.targets, err)
	}
}
