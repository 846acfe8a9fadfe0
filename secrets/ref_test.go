package secrets

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	cases := []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "secret/network/snmp#community", want: Ref{"secret", "network/snmp", "community"}},
		{in: "kv/x#k", want: Ref{"kv", "x", "k"}},
		{in: "secret/a/b/c#key-with.dots_and-dashes", want: Ref{"secret", "a/b/c", "key-with.dots_and-dashes"}},
		{in: "secret/network/snmp", err: "names no key"},
		{in: "secret/network/snmp#", err: "empty key"},
		{in: "secret/a#b#c", err: "more than one '#'"},
		{in: "/secret/x#k", err: "starts with '/'"},
		{in: "secret#k", err: "needs a mount and a path"},
		{in: "secret/#k", err: "needs a mount and a path"},
		{in: "/x#k", err: "starts with '/'"},
		{in: "secret/a//b#k", err: "empty path element"},
		{in: "secret/a/#k", err: "empty path element"},
		{in: "secret/../sys#k", err: `".." path element`},
		{in: "secret/a\nb#k", err: "control character"},
		{in: "", err: "names no key"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRef(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseRef(%q) = %+v, %v; want an error saying %s", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRef(%q) = %+v, %v", tc.in, got, err)
			}
			if got.String() != tc.in {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}
