package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sollwert/sollwert/check"
	"github.com/sollwert/sollwert/daemon/api"
)

// runCheck is a Monitoring Plugins check: it asks the daemon's check
// endpoint, which computes the verdict, and relays text and exit status.
// Anything that prevents a verdict is UNKNOWN (3).
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	base := &client.base
	host := fs.String("host", "", "only deviations of this address or CIDR")
	fs.StringVar(host, "H", "", "short for --host")
	rule := fs.String("rule", "", "only deviations of this expect block")
	maxAge := fs.Duration("max-age", 0, "CRITICAL when the newest successful scan is older than this")
	warning := fs.String("warning", "", `WARNING thresholds on counts: RANGE for warning+critical deviations, or "critical=RANGE,warning=RANGE,total=RANGE" (Monitoring Plugins range syntax)`)
	fs.StringVar(warning, "w", "", "short for --warning")
	critical := fs.String("critical", "", "CRITICAL thresholds, as --warning")
	fs.StringVar(critical, "c", "", "short for --critical")
	staleStatus := fs.String("stale-status", "critical", "verdict when the data is older than --max-age: critical or unknown")
	timeout := fs.Duration("t", 10*time.Second, "timeout for the request")
	fs.DurationVar(timeout, "timeout", 10*time.Second, "timeout for the request")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(stdout, "SOLLWERT UNKNOWN - bad arguments")
		return int(check.Unknown)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - unexpected argument %q\n", fs.Arg(0))
		return int(check.Unknown)
	}
	u, err := url.Parse(strings.TrimRight(*base, "/") + "/v1/check")
	if err != nil || u.Host == "" {
		fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - --url %q is not a URL\n", *base)
		return int(check.Unknown)
	}
	q := url.Values{}
	if *host != "" {
		q.Set("host", *host)
	}
	if *rule != "" {
		q.Set("rule", *rule)
	}
	if *maxAge > 0 {
		q.Set("max_age", maxAge.String())
	}
	for name, v := range map[string]string{"warning": *warning, "critical": *critical} {
		if v == "" {
			continue
		}
		if _, err := check.ParseThresholds(v); err != nil {
			fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - --%s: %v\n", name, err)
			return int(check.Unknown)
		}
		q.Set(name, v)
	}
	if *staleStatus != "critical" {
		q.Set("stale_status", *staleStatus)
	}
	u.RawQuery = q.Encode()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - %v\n", err)
		return int(check.Unknown)
	}
	resp, err := client.do(req)
	if err != nil {
		fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - cannot reach sollwert at %s: %v\n", *base, err)
		return int(check.Unknown)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - reading answer from %s: %v\n", *base, err)
		return int(check.Unknown)
	}
	status, ok := check.ParseStatus(resp.Header.Get(api.HeaderCheckStatus))
	if !ok && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - %s refused the check: HTTP %d: %s (--token-file or $SOLLWERT_TOKEN)\n", *base, resp.StatusCode, e.Error)
		return int(check.Unknown)
	}
	if !ok {
		fmt.Fprintf(stdout, "SOLLWERT UNKNOWN - %s answered HTTP %d without a check status; is it sollwert?\n", *base, resp.StatusCode)
		return int(check.Unknown)
	}
	_, _ = stdout.Write(body)
	return int(status)
}
