package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/metrics"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkPluginStart measures what launching a plugin per call costs:
// from starting the process (checksum pin, handshake, AutoMTLS) to the
// answer of its first Describe, with and without a sha256 pin.
func BenchmarkPluginStart(b *testing.B) {
	dir := b.TempDir()
	bin := buildTestPlugin(b, dir, "testplugin")
	sum, err := fileSHA256(bin)
	if err != nil {
		b.Fatal(err)
	}
	// A pinned binary's checksum is remembered only once the file has not
	// changed for 3 s (sdk/checksum.go); installed plugins are older.
	fi, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Until(fi.ModTime().Add(3500 * time.Millisecond)))
	for _, pinned := range []bool{true, false} {
		b.Run(fmt.Sprintf("pinned=%t", pinned), func(b *testing.B) {
			h := &Host{Dir: dir, Pins: map[string]string{}}
			if pinned {
				h.Pins["testplugin"] = sum
			}
			benchStart(b, h, Plugin{Name: "testplugin", Path: bin})
		})
	}
}

func benchStart(b *testing.B, h *Host, p Plugin) {
	ctx := context.Background()
	var took []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		start := time.Now()
		c, err := h.Launch(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		src, err := c.Source()
		if err == nil {
			_, err = src.Describe(ctx)
		}
		took = append(took, time.Since(start))
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median-to-describe")
	b.ReportMetric(float64(took[len(took)*9/10].Microseconds())/1000, "ms-p90-to-describe")
}

// BenchmarkPluginStream runs a job whose plugin reports 1,000,000 hosts
// (and 100,000, to show that memory does not grow with the stream),
// end to end: the plugin process, gRPC, the host's checks, the spool, the
// store with history and the rules, as the daemon runs it. It reports the
// rate and the peak Go heap, which must not grow with the stream.
func BenchmarkPluginStream(b *testing.B) {
	for _, hosts := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) { benchStream(b, hosts) })
	}
}

func benchStream(b *testing.B, hosts int) {
	dir := b.TempDir()
	buildTestPlugin(b, dir, "testplugin")
	reg := plugins.NewRegistry()
	if err := (&Host{Dir: dir}).Register(reg); err != nil {
		b.Fatal(err)
	}
	eng, err := rules.Compile([]rules.Rule{{Name: "inventory", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")},
		UnknownHosts: model.SeverityWarning}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]int{"hosts": hosts})
	job := config.Job{Name: "inventory", Source: "testplugin", Tenant: model.DefaultTenant, SourceConfig: cfg}
	var peak atomic.Uint64
	var streaming, applying time.Duration
	// Building the test plugin is not part of a run.
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		st, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		exe := &daemon.Executor{Store: st, Sources: reg, Logger: hclog.NewNullLogger(), SpoolDir: b.TempDir(),
			Applier: &ingest.Applier{Store: st, Engine: func() *rules.Engine { return eng }}}
		var streamed time.Time // when the last observation reached the spool
		exe.Progress = func(n int) {
			if n == hosts {
				streamed = time.Now()
			}
		}
		runtime.GC()
		stop := watchHeap(&peak)
		b.StartTimer()
		start := time.Now()
		out, err := exe.Execute(context.Background(), job, "bench")
		b.StopTimer()
		streaming += streamed.Sub(start)
		applying += time.Since(streamed)
		stop()
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		if out.Summary.Hosts != hosts || out.Summary.Changed != hosts {
			b.Fatalf("summary %+v", out.Summary)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(hosts)*float64(b.N)/b.Elapsed().Seconds(), "assets/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "MB-peak-heap")
	b.ReportMetric(streaming.Seconds()/float64(b.N), "s-streaming")
	b.ReportMetric(applying.Seconds()/float64(b.N), "s-applying")
}

// watchHeap samples the Go heap in use (what runtime.MemStats calls
// HeapInuse) until the returned stop is called. runtime/metrics reads it
// without stopping the world, as runtime.ReadMemStats would 20 times a
// second.
func watchHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			inUse := sample[0].Value.Uint64() + sample[1].Value.Uint64()
			for {
				p := peak.Load()
				if inUse <= p || peak.CompareAndSwap(p, inUse) {
					break
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
