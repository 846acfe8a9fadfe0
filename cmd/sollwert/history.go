package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/sollwert/sollwert/model"
)

// runHistory prints what happened to one asset, version by version: what
// each run changed, merges and splits among them.
func runHistory(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: sollwert history ADDRESS|ASSET-ID [--json]")
		return 2
	}
	body, err := client.get("/v1/assets/"+url.PathEscape(pos[0])+"/history", nil, 30*time.Second)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert history:", err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		return 0
	}
	var versions []model.Version
	if err := json.Unmarshal(body, &versions); err != nil {
		fmt.Fprintln(stderr, "sollwert history: bad answer:", err)
		return 1
	}
	writeHistory(stdout, versions)
	return 0
}

// writeHistory writes one paragraph per version, oldest first.
func writeHistory(w io.Writer, versions []model.Version) {
	for i, v := range versions {
		if i > 0 {
			fmt.Fprintln(w)
		}
		by := v.Source
		if v.Job != "" {
			by += ", job " + v.Job
		}
		fmt.Fprintf(w, "version %d  %s  %s\n", v.Version, v.Time.UTC().Format(time.RFC3339), by)
		for _, c := range v.Changes {
			fmt.Fprintf(w, "  %s\n", describeChange(c))
		}
	}
}

// describeChange reads a change as a sentence fragment: what, then from
// and to.
func describeChange(c model.Change) string {
	what := c.Field
	if c.Key != "" {
		what += " " + c.Key
	}
	switch {
	case c.Field == "merged":
		return fmt.Sprintf("merged: asset %s went into %s", c.From, c.To)
	case c.Field == "split":
		return fmt.Sprintf("split: asset %s split off %s", c.To, c.From)
	case c.From == "" && c.To == "":
		return what
	case c.From == "":
		return fmt.Sprintf("%s: %s", what, c.To)
	case c.To == "":
		return fmt.Sprintf("%s: %s, removed", what, c.From)
	}
	return fmt.Sprintf("%s: %s -> %s", what, strings.TrimSpace(c.From), strings.TrimSpace(c.To))
}
