package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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
	status, body, err := client.send(http.MethodPost, "/v1/jobs/"+url.PathEscape(*job)+"/import", "application/xml", f, 30*time.Minute)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert import:", err)
		return 1
	}
	var run model.Run
	if status != http.StatusOK && status != http.StatusUnprocessableEntity {
		fmt.Fprintf(stderr, "sollwert import: HTTP %d: %s\n", status, apiError(body))
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
