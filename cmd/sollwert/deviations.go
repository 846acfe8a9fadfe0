package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/sollwert/sollwert/model"
)

func runDeviations(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deviations", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	state := fs.String("state", "", "active (default), all, open, acknowledged, resolved")
	severity := fs.String("severity", "", "info, warning, critical")
	host := fs.String("host", "", "address or CIDR")
	rule := fs.String("rule", "", "expect block name")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	q := url.Values{}
	for k, v := range map[string]string{"state": *state, "severity": *severity, "host": *host, "rule": *rule} {
		if v != "" {
			q.Set(k, v)
		}
	}
	body, err := client.get("/v1/deviations", q, 30*time.Second)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert deviations:", err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		return 0
	}
	var devs []model.Deviation
	if err := json.Unmarshal(body, &devs); err != nil {
		fmt.Fprintln(stderr, "sollwert deviations: bad answer:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tSTATE\tKIND\tSUBJECT\tRULE\tSINCE")
	for _, d := range devs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Severity, d.State, d.Kind, d.Subject(), d.Rule, d.OpenedAt.Local().Format(time.RFC3339))
	}
	_ = tw.Flush()
	return 0
}
