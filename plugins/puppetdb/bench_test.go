package main

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// BenchmarkPull10000Nodes pulls 10,000 nodes (two interfaces, loopback,
// dmi, os and a report each) from fakePDB in pages of 500, through the
// plugin's pagination, its HTTP client and its fact decoding, to
// observations. The fake serves pre-encoded rows, so the time is the
// plugin's (and the loopback's), not PuppetDB's.
func BenchmarkPull10000Nodes(b *testing.B) {
	const n = 10000
	f := newFakePDB(b, genNodes(n)...)
	cfg := f.config(`"page_size": 500`)
	src := &source{tuning: fastTuning}
	ctx := hclog.WithContext(context.Background(), hclog.NewNullLogger())

	// runtime/metrics reads the heap without stopping the world, as
	// runtime.ReadMemStats would every few milliseconds.
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := heap()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, heap())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})

	b.ResetTimer()
	start := time.Now()
	total := 0
	for range b.N {
		got := 0
		_, err := src.Discover(ctx, sdk.DiscoverRequest{Config: cfg},
			sdk.EmitterFunc(func(_ context.Context, batch []sdk.Observation) error { got += len(batch); return nil }))
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("pulled %d nodes, want %d", got, n)
		}
		total += got
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "nodes/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "peak-heap-above-start-MiB")
}
