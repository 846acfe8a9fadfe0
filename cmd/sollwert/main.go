// Command sollwert is the one binary: the daemon, a one-shot scan, the
// monitoring check, rule validation and a deviation listing. It only
// parses flags and wires packages together.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

// Set by the linker (see Makefile).
var (
	version = "dev"
	commit  = "unknown"
	built   = "unknown" // UTC, RFC 3339
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"daemon", "run the scheduler, store and API", runDaemon},
		{"scan", "run one job once in the foreground", runScan},
		{"check", "monitoring plugin: verdict on open deviations", runCheck},
		{"rules", "rules validate: check a configuration and exit", runRules},
		{"deviations", "list deviations from a running daemon", runDeviations},
		{"ack", "acknowledge a deviation (or --remove the acknowledgement)", runAck},
		{"token", "token create|list|revoke: API tokens in the tokens file", runToken},
		{"inventory", "Ansible inventory script: --list, --host H", runInventory},
		{"import", "import FILE.xml --job NAME: a scan made elsewhere as a run of a job", runImport},
		{"changes", "changes --from T1 [--to T2]: what changed on the network between two times", runChanges},
		{"history", "history ADDRESS|ID: what happened to one asset, version by version", runHistory},
		{"backup", "backup FILE: a consistent copy of a running daemon's store", runBackup},
		{"restore", "restore FILE --config CFG: a backup into an empty data_dir", runRestore},
		{"verify", "verify the chains of history and audit records against their checkpoints", runVerify},
		{"keygen", "keygen FILE: a key to sign checkpoints with (integrity block)", runKeygen},
		{"plugins", "plugins list: the plugins in plugin_dir, started and asked", runPlugins},
		{"diff", "what changed between two nmap XML scans (like ndiff; --json)", runDiff},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sollwert: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sollwert discovers what is on the network (Ist), compares it with what should be (Soll), and tells monitoring.")
	fmt.Fprintln(w, "\nUsage: sollwert COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sollwert COMMAND -h' for a command's flags.")
}

// parseArgs parses fs's flags wherever they stand among the positional
// arguments ("sollwert ack ID --comment x" and "sollwert ack --comment x
// ID" alike) and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "sollwert %s (commit %s, built %s)\n", version, commit, built)
	return 0
}
