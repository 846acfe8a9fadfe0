package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml/scangen"
	"github.com/sollwert/sollwert/plugins/nmap/scandiff"
)

// requireNdiff skips without nmap's ndiff, except in CI (CI=true).
func requireNdiff(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("ndiff")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("ndiff is not installed but CI=true: install it (Debian/Ubuntu: apt-get install ndiff)")
		}
		tb.Skip("ndiff is not installed (Debian/Ubuntu: apt-get install ndiff); set CI=true to fail instead")
	}
	return p
}

func diffPair(tb testing.TB, hosts int, seed uint64) (string, string) {
	tb.Helper()
	dir := tb.TempDir()
	if err := scangen.WritePair(dir, hosts, seed); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(dir, "old.xml"), filepath.Join(dir, "new.xml")
}

func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	rc := dispatch(args, &stdout, &stderr)
	return rc, stdout.String(), stderr.String()
}

func TestDiffTextIsNdiffs(t *testing.T) {
	bin := requireNdiff(t)
	t.Parallel()
	a, b := diffPair(t, 300, 11)
	rc, out, errOut := runCmd("diff", a, b)
	if rc != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", rc, errOut)
	}
	var want bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, a, b)
	cmd.Stdout = &want
	var ee *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("ndiff: %v", err)
	}
	if out != want.String() {
		t.Fatalf("sollwert diff's text is not ndiff's:\n--- sollwert diff\n%s\n--- ndiff\n%s", out, want.String())
	}
}

func TestDiffJSONAndExitStatus(t *testing.T) {
	t.Parallel()
	a, b := diffPair(t, 300, 12)
	rc, out, errOut := runCmd("diff", a, b, "--json") // flags after the files too
	if rc != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", rc, errOut)
	}
	var d scandiff.Diff
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	kinds := map[scandiff.Change]int{}
	for _, h := range d.Hosts {
		kinds[h.Change]++
	}
	if kinds[scandiff.Appeared] == 0 || kinds[scandiff.Disappeared] == 0 || kinds[scandiff.Changed] == 0 || d.Old.File != a || d.New.File != b {
		t.Fatalf("hosts by change %v, files %q %q", kinds, d.Old.File, d.New.File)
	}

	if rc, out, errOut := runCmd("diff", "--json", a, a); rc != 0 || errOut != "" || !strings.Contains(out, `"hosts": []`) {
		t.Fatalf("same file: exit %d, stdout %q, stderr %q", rc, out, errOut)
	}
	if rc, out, _ := runCmd("diff", a, a); rc != 0 || out != "" {
		t.Fatalf("same file: exit %d, stdout %q", rc, out)
	}
}

func TestDiffErrorsExitTwo(t *testing.T) {
	t.Parallel()
	a, _ := diffPair(t, 20, 13)
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.xml")
	if err := os.WriteFile(cut, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"diff", a}, "usage: sollwert diff"},
		{[]string{"diff", a, a, a}, "usage: sollwert diff"},
		{[]string{"diff", "--bogus", a, a}, "flag provided but not defined"},
		{[]string{"diff", a, "/nonexistent.xml"}, "/nonexistent.xml: no such file"},
		{[]string{"diff", cut, a}, fmt.Sprintf("cut.xml: nmap XML: at byte %d: input ends", len(data)/2)},
	} {
		rc, out, errOut := runCmd(c.args...)
		if rc != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, want %q", c.args, rc, out, errOut, c.want)
		}
	}
}

// procUsage is what one process took.
type procUsage struct {
	wall, cpu time.Duration // cpu: user + system
	peak      int64         // peak RSS in bytes
}

// run starts a command and returns its wall time, CPU time and peak RSS
// (from its rusage), and its output.
func run(b *testing.B, name string, args ...string) (procUsage, []byte) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		b.Fatalf("%s: %v: %s", name, err, stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no rusage")
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return procUsage{wall: wall, cpu: cpu, peak: ru.Maxrss * 1024}, stdout.Bytes() // Maxrss is in KiB on Linux
}

// BenchmarkDiffVsNdiff runs the sollwert binary (built by TestMain) and ndiff on the same
// two generated 65,536-host scans (about 45 MB each), one after the other
// in the same run, and reports the ratios of wall time and peak RSS.
// sollwert diff runs three times (the median counts), ndiff once: it takes
// tens of seconds.
func BenchmarkDiffVsNdiff(b *testing.B) {
	ndiff := requireNdiff(b)
	bin := binary // built by TestMain
	dir := b.TempDir()
	if err := scangen.WritePair(dir, 65536, 1); err != nil {
		b.Fatal(err)
	}
	oldXML, newXML := filepath.Join(dir, "old.xml"), filepath.Join(dir, "new.xml")
	fi, err := os.Stat(oldXML)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var runs []procUsage
		var mine []byte
		for range 3 {
			u, out := run(b, bin, "diff", oldXML, newXML)
			runs, mine = append(runs, u), out
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i].wall < runs[j].wall })
		m := runs[1] // the median by wall time
		n, theirs := run(b, ndiff, oldXML, newXML)
		if !bytes.Equal(mine, theirs) {
			b.Errorf("outputs differ (%d and %d bytes)", len(mine), len(theirs))
		}
		b.Logf("sollwert diff: %v; ndiff: %+v", runs, n)
		b.ReportMetric(m.wall.Seconds(), "sollwert-s")
		b.ReportMetric(n.wall.Seconds(), "ndiff-s")
		b.ReportMetric(n.wall.Seconds()/m.wall.Seconds(), "x-faster")
		b.ReportMetric(n.cpu.Seconds()/m.cpu.Seconds(), "x-less-cpu")
		b.ReportMetric(float64(m.peak)/(1<<20), "sollwert-peak-MiB")
		b.ReportMetric(float64(n.peak)/(1<<20), "ndiff-peak-MiB")
		b.ReportMetric(float64(m.peak)/float64(n.peak), "peak-ratio")
		b.ReportMetric(float64(fi.Size())/(1<<20), "scan-MiB")
	}
}
