package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sollwert/sollwert/daemon/api"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/store"
)

// runBackup saves a consistent copy of a running daemon's store, taken
// while it goes on working, to FILE (kept only if complete).
func runBackup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "usage: sollwert backup FILE [--url URL] [--token-file FILE]   (an admin token bound to all tenants)")
		return 2
	}
	path := files[0]
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Hour)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(client.base, "/")+"/v1/backup", nil)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert backup:", err)
		return 2
	}
	resp, err := client.do(req)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert backup:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "sollwert backup: HTTP %d: %s\n", resp.StatusCode, strings.TrimSpace(string(b)))
		return 1
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sollwert-backup-*")
	if err != nil {
		fmt.Fprintln(stderr, "sollwert backup:", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, "sollwert backup:", err)
		return 1
	}
	if st := resp.Trailer.Get(api.HeaderBackupStatus); st != "complete" {
		fmt.Fprintf(stderr, "sollwert backup: the daemon did not finish the backup (%q); nothing was kept\n", st)
		return 1
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		fmt.Fprintln(stderr, "sollwert backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup of %s written to %s (%d bytes)\n", client.base, path, n)
	return 0
}

// runRestore loads a backup into the configuration's data_dir, which
// must be empty (a new one); the daemon is not running on it.
func runRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "sollwert.hcl", "configuration whose data_dir receives the backup")
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "usage: sollwert restore FILE --config FILE   (into an empty data_dir)")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	f, err := os.Open(files[0])
	if err != nil {
		fmt.Fprintln(stderr, "sollwert restore:", err)
		return 2
	}
	defer f.Close()
	if err := store.Restore(cfg.DataDir, f, store.Options{}); err != nil {
		fmt.Fprintln(stderr, "sollwert restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", files[0], cfg.DataDir)
	return 0
}
