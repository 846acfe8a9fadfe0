package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sollwert/sollwert/plugins/nmap/scandiff"
)

// runDiff compares two nmap XML files, like nmap's ndiff: exit 0 when they
// agree, 1 when they differ, 2 on an error.
func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of ndiff-like text")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sollwert diff [--json] OLD.xml NEW.xml\n\nWhat changed between two nmap XML scans; exit 0: no differences, 1: differences, 2: error.")
		fs.PrintDefaults()
	}
	// Flags may come before or after the file names.
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(files) != 2 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := scandiff.Files(ctx, files[0], files[1])
	if err != nil {
		fmt.Fprintln(stderr, "sollwert diff:", err)
		return 2
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	if *asJSON {
		err = d.WriteJSON(w)
	} else {
		err = d.WriteText(w)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(stderr, "sollwert diff:", err)
		return 2
	}
	if d.Cost() > 0 {
		return 1
	}
	return 0
}
