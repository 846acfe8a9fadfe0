package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"
)

// runInventory is an Ansible dynamic inventory script over a running
// daemon: --list prints the groups and hosts, --host H one host's
// variables. Ansible passes nothing else, so the daemon's URL and token
// come from $SOLLWERT_URL and $SOLLWERT_TOKEN (or the flags).
func runInventory(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := addClientFlags(fs)
	list := fs.Bool("list", false, "print the whole inventory")
	host := fs.String("host", "", "print the variables of one host")
	tenant := fs.String("tenant", "", "the tenant, for a token bound to all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *list == (*host != "") {
		fmt.Fprintln(stderr, "usage: sollwert inventory --list | --host HOST   (daemon: $SOLLWERT_URL, token: $SOLLWERT_TOKEN)")
		return 2
	}
	q := url.Values{}
	if *host != "" {
		q.Set("host", *host)
	}
	if *tenant != "" {
		q.Set("tenant", *tenant)
	}
	body, err := client.get("/v1/inventory/ansible", q, 60*time.Second)
	if err != nil {
		fmt.Fprintln(stderr, "sollwert inventory:", err)
		return 1
	}
	_, _ = stdout.Write(body)
	return 0
}
