package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"
)

// runChanges asks a running daemon what changed on the network between
// two times, in `sollwert diff`'s forms.
func runChanges(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("changes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	from := fs.String("from", "", "the earlier time, RFC 3339 (required), or a duration ago such as 24h")
	to := fs.String("to", "", "the later time (default: now), RFC 3339 or a duration ago")
	host := fs.String("host", "", "only this address or CIDR")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	q := url.Values{}
	for name, v := range map[string]string{"from": *from, "to": *to} {
		if v == "" {
			continue
		}
		t, err := when(v)
		if err != nil {
			fmt.Fprintf(stderr, "sollwert changes: --%s: %v\n", name, err)
			return 2
		}
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
	if q.Get("from") == "" {
		fmt.Fprintln(stderr, "usage: sollwert changes --from TIME [--to TIME] [--host CIDR] [--json]")
		return 2
	}
	if *host != "" {
		q.Set("host", *host)
	}
	if !*asJSON {
		q.Set("format", "text")
	}
	body, err := client.get("/v1/changes", q, 5*time.Minute)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert changes:", err)
		return 1
	}
	_, _ = stdout.Write(body)
	return 0
}

// when reads an RFC 3339 time or a duration before now.
func when(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 24h", s)
}
