package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sollwert/sollwert/daemon/api"
	"github.com/sollwert/sollwert/model"
)

// runAck acknowledges a deviation (or, with --remove, takes that back)
// through a running daemon's API.
func runAck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	comment := fs.String("comment", "", "why the deviation is accepted (required)")
	author := fs.String("author", os.Getenv("USER"), "who accepts it")
	forDur := fs.Duration("for", 0, "how long the acknowledgement holds, e.g. 24h (default: until resolved)")
	remove := fs.Bool("remove", false, "take an acknowledgement back")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sollwert ack [--url URL] --comment TEXT [--for 24h] [--author NAME] ID\n       sollwert ack --remove ID")
		fs.PrintDefaults()
	}
	// The id may stand before, between or after the flags.
	ids, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(ids) != 1 || (!*remove && strings.TrimSpace(*comment) == "") {
		fs.Usage()
		return 2
	}
	id := ids[0]
	method, body := http.MethodPost, []byte(nil)
	if *remove {
		method = http.MethodDelete
	} else {
		req := api.AckRequest{Author: *author, Comment: *comment}
		if *forDur > 0 {
			req.For = forDur.String()
		}
		body, _ = json.Marshal(req)
	}
	status, b, err := client.send(method, "/v1/deviations/"+url.PathEscape(id)+"/ack", "application/json", bytes.NewReader(body), 30*time.Second)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert ack:", err)
		return 1
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "sollwert ack: HTTP %d: %s\n", status, apiError(b))
		return 1
	}
	var d model.Deviation
	if err := json.Unmarshal(b, &d); err != nil {
		fmt.Fprintln(stderr, "sollwert ack:", err)
		return 1
	}
	if d.Ack == nil {
		fmt.Fprintf(stdout, "%s: %s is %s again\n", d.ID, d.Subject(), d.State)
		return 0
	}
	until := "until it resolves"
	if d.Ack.Until != nil {
		until = "until " + d.Ack.Until.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "%s: %s acknowledged by %s %s: %s\n", d.ID, d.Subject(), d.Ack.By, until, d.Ack.Comment)
	return 0
}
