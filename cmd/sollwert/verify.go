package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sollwert/sollwert/daemon/api"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/integrity"
	"github.com/sollwert/sollwert/store"
)

// runVerify walks the chains of history and audit records and holds them
// against the checkpoints. Exit status: 0 every chain holds, 1 something
// does not (each problem named), 2 verify could not run.
//
// Given a data dir (--data, or --config's data_dir) it reads the store
// itself, with the public key and exported checkpoints the caller trusts;
// that is the check that does not rely on the machine being honest. When
// the daemon holds the data dir, or neither is given, it asks the daemon
// (GET /v1/verify), which uses its own key and export file.
func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	cfgPath := fs.String("config", "", "configuration: its data_dir, and its integrity block's key and export_file")
	dataDir := fs.String("data", "", "data directory of a stopped daemon")
	pubPath := fs.String("public-key", "", "public key (PEM) the checkpoints must be signed with")
	exported := fs.String("checkpoints", "", "exported checkpoints (JSON lines) to hold the chains against")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return 2
	}
	opts := integrity.Options{ExportFile: *exported}
	dir := *dataDir
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if dir == "" {
			dir = cfg.DataDir
		}
		if opts.ExportFile == "" {
			opts.ExportFile = cfg.Integrity.ExportFile
		}
		if *pubPath == "" && cfg.Integrity.SigningKeyFile != "" {
			*pubPath = cfg.Integrity.SigningKeyFile
		}
	}
	if *pubPath != "" {
		pub, err := integrity.LoadPublicKey(*pubPath)
		if err != nil {
			fmt.Fprintln(stderr, "sollwert verify:", err)
			return 2
		}
		opts.PublicKey = pub
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Hour)
	defer cancel()
	var rep *integrity.Report
	if dir != "" {
		st, err := store.Open(dir, store.Options{ValueLogGCInterval: -1})
		switch {
		case err == nil:
			rep, err = integrity.Verify(ctx, st, opts)
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				fmt.Fprintln(stderr, "sollwert verify:", err)
				return 2
			}
		case strings.Contains(err.Error(), "in use by another sollwert process"):
			fmt.Fprintf(stderr, "sollwert verify: %s is in use by the daemon; asking it at %s (its key and export file)\n", dir, client.base)
		default:
			fmt.Fprintln(stderr, "sollwert verify:", err)
			return 2
		}
	}
	if rep == nil {
		body, err := client.get("/v1/verify", nil, 6*time.Hour)
		if err != nil {
			fmt.Fprintln(stderr, "sollwert verify:", err)
			return 2
		}
		var ans api.VerifyAnswer
		if err := json.Unmarshal(body, &ans); err != nil || ans.Report == nil {
			fmt.Fprintln(stderr, "sollwert verify: the daemon's answer is not a report:", errors.Join(err, errors.New(strings.TrimSpace(string(body)))))
			return 2
		}
		rep = ans.Report
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(api.VerifyAnswer{OK: rep.OK(), Report: rep}); err != nil {
			return 2
		}
	} else {
		rep.WriteText(stdout)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

// runKeygen writes a new checkpoint signing key and its public key.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "usage: sollwert keygen FILE   (writes FILE, mode 0600, and FILE.pub)")
		return 2
	}
	if _, err := integrity.GenerateKey(files[0]); err != nil {
		fmt.Fprintln(stderr, "sollwert", err)
		if errors.Is(err, os.ErrExist) {
			fmt.Fprintln(stderr, "(it is not overwritten: checkpoints signed with it could not be checked any more)")
		}
		return 1
	}
	fmt.Fprintf(stdout, "signing key written to %s, public key to %s.pub\n", files[0], files[0])
	return 0
}
