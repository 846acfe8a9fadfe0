package nmapxml_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenFiles are the inputs read without error: hand-written edge cases
// and real nmap output captured by TestRealNmap -update.
var goldenFiles = []string{"ipv6-mac-hostnames.xml", "scripts-os.xml", "quoting.xml"}

// Every good file reads to its golden JSON; go test -run Golden -update
// rewrites them after a deliberate change.
func TestGolden(t *testing.T) {
	files := append([]string(nil), goldenFiles...)
	real, _ := filepath.Glob("testdata/real-*.xml")
	for _, r := range real {
		files = append(files, filepath.Base(r))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			s := readAll(t, readFile(t, filepath.Join("testdata", f)))
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", strings.TrimSuffix(f, ".xml")+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := readFile(t, golden)
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("%s differs from %s (run go test -run Golden -update after a deliberate change): %s", f, golden, firstDiff(want, buf.Bytes()))
			}
		})
	}
}
