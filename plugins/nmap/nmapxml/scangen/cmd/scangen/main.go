// Command scangen writes a synthetic nmap XML scan pair: OLD.xml and
// NEW.xml, the second derived from the first with seeded changes.
//
//	go run ./plugins/nmap/nmapxml/scangen/cmd/scangen -hosts 65536 -seed 1 -out /tmp/scans
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml/scangen"
)

func main() {
	hosts := flag.Int("hosts", 65536, "hosts in the first scan")
	seed := flag.Uint64("seed", 1, "seed: the same seed writes the same scans")
	out := flag.String("out", ".", "directory for old.xml and new.xml")
	flag.Parse()
	if err := scangen.WritePair(*out, *hosts, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "scangen:", err)
		os.Exit(1)
	}
	fmt.Println(filepath.Join(*out, "old.xml"), filepath.Join(*out, "new.xml"))
}
