package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sollwert/sollwert/model"
)

// runImport sends a scan made elsewhere to a running daemon as a run of
// one of its jobs, so that it feeds the same history, rules and sinks.
func runImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	job := fs.String("job", "", "the job whose run the scan is (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sollwert import FILE.xml --job NAME [--url URL] [--token-file FILE]\n\nThe file must be nmap's XML (-oX) of exactly the job's targets.")
		fs.PrintDefaults()
	}
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(files) != 1 || *job == "" {
		fs.Usage()
		return 2
	}
	f, err := os.Open(files[0])
	if err != nil {
		fmt.Fprintln(stderr, "sollwert import:", err)
		return 2
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(client.base, "/")+"/v1/jobs/"+url.PathEscape(*job)+"/import", f)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert import:", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/xml")
	resp, err := client.do(req)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert import:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var run model.Run
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnprocessableEntity {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		fmt.Fprintf(stderr, "sollwert import: HTTP %d: %s\n", resp.StatusCode, e.Error)
		return 1
	}
	if err := json.Unmarshal(body, &run); err != nil {
		fmt.Fprintln(stderr, "sollwert import:", err)
		return 1
	}
	if run.Status != model.RunSucceeded {
		fmt.Fprintf(stdout, "job %s: import %s: %s\nnothing was changed\n", run.Job, run.Status, run.Error)
		return 1
	}
	fmt.Fprintf(stdout, "job %s: imported %s as run %s: %d hosts up\n", run.Job, files[0], run.ID, run.Hosts)
	return 0
}
