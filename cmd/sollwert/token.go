package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sollwert/sollwert/auth"
	"github.com/sollwert/sollwert/daemon/config"
)

const tokenUsage = `usage: sollwert token create --config FILE --name NAME --scope read[,ack,run,admin] [--tenant NAME|*] [--expires 90d]
       sollwert token list   --config FILE [--json]
       sollwert token revoke --config FILE NAME`

// runToken manages the tokens file the configuration's api block names;
// a running daemon picks up every change within a second.
func runToken(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, tokenUsage)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("token "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "sollwert.hcl", "configuration file (its api block names tokens_file)")
	name := fs.String("name", "", "the token's name (create)")
	scope := fs.String("scope", "read", "scopes, comma-separated: read, ack, run, admin (create)")
	tenant := fs.String("tenant", "default", "the tenant the token is bound to, or * for all (create)")
	expires := fs.String("expires", "", "lifetime such as 720h or 90d; default: until revoked (create)")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	path := cfg.API.TokensFile
	if path == "" {
		fmt.Fprintf(stderr, "%s: the api block sets no tokens_file; add one to turn on tokens\n", *cfgPath)
		return 2
	}
	switch verb {
	case "create":
		scopes, err := auth.ParseScopes(*scope)
		if err != nil {
			fmt.Fprintln(stderr, "sollwert token create:", err)
			return 2
		}
		ttl, err := lifetime(*expires)
		if err != nil {
			fmt.Fprintln(stderr, "sollwert token create:", err)
			return 2
		}
		secret, tok, err := auth.Create(path, *name, scopes, *tenant, ttl, time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "sollwert token create:", err)
			return 1
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "token %q (%s, tenant %s) created; it is shown this once, %s keeps only its hash\n",
			tok.Name, joinScopes(tok.Scopes), tok.Tenant, path)
		return 0
	case "list":
		tokens, err := auth.Load(path)
		if err != nil {
			fmt.Fprintln(stderr, "sollwert token list:", err)
			return 1
		}
		if *asJSON {
			if tokens == nil {
				tokens = []auth.Token{}
			}
			for i := range tokens {
				tokens[i].Hash = tokens[i].Hash[:8]
			}
			b, _ := json.MarshalIndent(tokens, "", "  ")
			fmt.Fprintln(stdout, string(b))
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSCOPES\tTENANT\tCREATED\tEXPIRES\tSHA256")
		for _, t := range tokens {
			exp := "never"
			if t.Expires != nil {
				exp = t.Expires.Format(time.RFC3339)
				if t.Expired(time.Now()) {
					exp += " (expired)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s…\n", t.Name, joinScopes(t.Scopes), t.Tenant, t.Created.Format(time.RFC3339), exp, t.Hash[:8])
		}
		tw.Flush()
		return 0
	case "revoke":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, tokenUsage)
			return 2
		}
		if err := auth.Revoke(path, fs.Arg(0)); err != nil {
			fmt.Fprintln(stderr, "sollwert token revoke:", err)
			return 1
		}
		fmt.Fprintf(stdout, "token %q revoked\n", fs.Arg(0))
		return 0
	}
	fmt.Fprintln(stderr, tokenUsage)
	return 2
}

// lifetime reads a Go duration or a number of days ("90d").
func lifetime(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == days {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q is not a lifetime such as 720h or 90d", s)
	}
	return d, nil
}

func joinScopes(s []auth.Scope) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return strings.Join(out, ",")
}
