package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// benchPages generates an account of n droplets, each with a private and
// a public IPv4 and a public IPv6 address, in pages of perPage, and one
// firewall of 5 inbound rules per 100 droplets (so 5 rules apply to each).
func benchPages(n, perPage int) map[string][]byte {
	type page struct {
		Droplets  []map[string]any `json:"droplets,omitempty"`
		Firewalls []map[string]any `json:"firewalls,omitempty"`
		VPCs      []map[string]any `json:"vpcs,omitempty"`
		Links     map[string]any   `json:"links"`
		Meta      map[string]int   `json:"meta"`
	}
	pages := map[string][]byte{}
	put := func(key string, p page) {
		b, err := json.Marshal(p)
		if err != nil {
			panic(err)
		}
		pages[key] = b
	}
	last := (n + perPage - 1) / perPage
	for pg := 1; pg <= last; pg++ {
		p := page{Meta: map[string]int{"total": n}, Links: map[string]any{}}
		if pg < last {
			p.Links["pages"] = map[string]string{"next": fmt.Sprintf("https://api.digitalocean.com/v2/droplets?page=%d&per_page=%d", pg+1, perPage)}
		}
		for i := (pg - 1) * perPage; i < min(pg*perPage, n); i++ {
			p.Droplets = append(p.Droplets, map[string]any{
				"id": 100000 + i, "name": fmt.Sprintf("bench-%05d", i), "memory": 1024, "vcpus": 1, "disk": 25,
				"status": "active", "created_at": "2025-07-01T10:00:00Z", "size_slug": "s-1vcpu-1gb",
				"region": map[string]any{"slug": "nyc3", "name": "New York 3"},
				"image":  map[string]any{"id": 181306497, "slug": "ubuntu-24-04-x64", "distribution": "Ubuntu", "name": "24.04 (LTS) x64"},
				"networks": map[string]any{
					"v4": []map[string]any{
						{"ip_address": fmt.Sprintf("198.19.%d.%d", i/256, i%256), "netmask": "255.255.0.0", "type": "private"},
						{"ip_address": fmt.Sprintf("198.18.%d.%d", i/256, i%256), "netmask": "255.255.0.0", "gateway": "198.18.0.1", "type": "public"},
					},
					"v6": []map[string]any{{"ip_address": fmt.Sprintf("2001:db8:%x::%x", i/256, i%256+1), "netmask": 64, "type": "public"}},
				},
				"tags": []string{"bench", fmt.Sprintf("shard-%d", i%10)}, "vpc_uuid": fmt.Sprintf("00000000-0000-4000-8000-%012d", i%10),
			})
		}
		put(fmt.Sprintf("droplets %d", pg), p)
	}
	fw := page{Meta: map[string]int{"total": (n + 99) / 100}, Links: map[string]any{}}
	for f := 0; f*100 < n; f++ {
		var ids []int
		for i := f * 100; i < min(f*100+100, n); i++ {
			ids = append(ids, 100000+i)
		}
		any4 := map[string]any{"addresses": []string{"0.0.0.0/0", "::/0"}}
		fw.Firewalls = append(fw.Firewalls, map[string]any{
			"id": fmt.Sprintf("fw-%d", f), "name": fmt.Sprintf("bench-fw-%03d", f), "status": "succeeded",
			"inbound_rules": []map[string]any{
				{"protocol": "tcp", "ports": "22", "sources": any4}, {"protocol": "tcp", "ports": "443", "sources": any4},
				{"protocol": "tcp", "ports": fmt.Sprintf("%d-%d", 8000+f, 8100+f), "sources": any4},
				{"protocol": "udp", "ports": "161", "sources": any4}, {"protocol": "icmp", "sources": any4},
			},
			"droplet_ids": ids, "tags": []string{},
		})
	}
	put("firewalls 1", fw)
	vp := page{Meta: map[string]int{"total": 10}, Links: map[string]any{}}
	for v := range 10 {
		vp.VPCs = append(vp.VPCs, map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", v), "name": fmt.Sprintf("vpc-%d", v), "region": "nyc3"})
	}
	put("vpcs 1", vp)
	return pages
}

// BenchmarkPull10000Droplets pulls 10,000 droplets (3 addresses and 5
// firewall rules each) from the fake API in pages of 200, through godo
// and the plugin's pagination, to observations.
func BenchmarkPull10000Droplets(b *testing.B) {
	const n, perPage = 10000, 200
	api := newFakeAPI(b)
	api.perPage = perPage
	api.pages = benchPages(n, perPage)
	cfg := api.config(b, "")
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
	wg.Add(1)
	go func() { // sample the heap while the pulls run
		defer wg.Done()
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
	}()

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
			b.Fatalf("pulled %d droplets, want %d", got, n)
		}
		total += got
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "instances/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "peak-heap-above-start-MiB")
}
