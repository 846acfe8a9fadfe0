package scandiff

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// opcodes must split like Python's difflib, whose count of changes is
// ndiff's cost for OS matches; python3 is what ndiff runs on.
func TestOpcodesAreDifflibs(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed (ndiff needs it too)")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var cases [][2][]string
	for range 300 {
		var c [2][]string
		for k := range c {
			for range rng.IntN(7) {
				c[k] = append(c[k], string(rune('a'+rng.IntN(4))))
			}
		}
		cases = append(cases, c)
	}
	in, _ := json.Marshal(cases)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", `
import difflib, json, sys
for a, b in json.load(sys.stdin):
    a, b = a or [], b or []
    print(" ".join("%s:%d:%d:%d:%d" % op for op in difflib.SequenceMatcher(None, a, b).get_opcodes()))
`)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for i, c := range cases {
		var got []string
		for _, op := range opcodes(c[0], c[1]) {
			got = append(got, fmt.Sprintf("%s:%d:%d:%d:%d", op.tag, op.i1, op.i2, op.j1, op.j2))
		}
		if strings.Join(got, " ") != lines[i] {
			t.Fatalf("%q vs %q: got %s, difflib %s", c[0], c[1], strings.Join(got, " "), lines[i])
		}
	}
}
