package daemon

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/plugins/nmap"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml/scangen"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkImportLargeScan ingests one synthetic nmap scan of a /16
// (65,536 addresses, three quarters up, -sV output of about 45 MB, from
// the seeded generator) as a run of a job, into a store on disk, with
// the rules evaluated: the streaming reader, the spool, the store with
// history and the deviations. It reports the time of the run and the
// peak resident memory the process reached during it (VmHWM, reset
// before the run through /proc/self/clear_refs).
func BenchmarkImportLargeScan(b *testing.B) {
	// The scan is read from a file, as an import of an upload streams it.
	path := filepath.Join(b.TempDir(), "scan.xml")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := scangen.Write(f, scangen.Config{Hosts: 65536, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	size, _ := f.Seek(0, 1)
	f.Close()
	eng, err := rules.Compile([]rules.Rule{{Name: "dmz", Tenant: model.DefaultTenant, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")},
		Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 22, Last: 22}, {First: 443, Last: 443}}}, Severity: model.SeverityCritical}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"targets": []string{"10.0.0.0/16"}, "ports": "1-1024"})
	job := config.Job{Name: "big", Source: "nmap", Tenant: model.DefaultTenant, SourceConfig: raw}
	var took []time.Duration
	var peak int64
	for b.Loop() {
		st, err := store.Open(filepath.Join(b.TempDir(), "data"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		exec := &Executor{Store: st, Logger: hclog.NewNullLogger(), SpoolDir: b.TempDir(),
			Sources: importFinder{src: nmap.NewImport(in, nil)},
			Applier: &ingest.Applier{Store: st, Engine: func() *rules.Engine { return eng }}}
		debug.FreeOSMemory()
		resetPeakRSS()
		start := time.Now()
		out, err := exec.Execute(context.Background(), job, "import")
		took = append(took, time.Since(start))
		peak = max(peak, peakRSS())
		in.Close()
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		if out.Summary.Hosts < 40000 || out.Summary.Opened == 0 {
			b.Fatalf("summary %+v", out.Summary)
		}
	}
	best := took[0]
	for _, d := range took {
		best = min(best, d)
	}
	b.ReportMetric(best.Seconds(), "s-per-import")
	b.ReportMetric(float64(size)/1e6, "MB-of-xml")
	if peak > 0 {
		b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-rss")
	}
}

// resetPeakRSS makes the kernel forget the process's peak resident set.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM from /proc/self/status, in bytes; 0 if unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
