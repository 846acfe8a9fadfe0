package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkCheckUnderLoad polls /v1/check over a store of 100,000 assets
// and 10,000 open deviations from 32 concurrent clients on loopback for
// three seconds, as a monitoring system polling every host would, and
// reports requests per second and the 99th percentile latency. The load
// generator is this benchmark (keep-alive connections, one request at a
// time per client).
func BenchmarkCheckUnderLoad(b *testing.B) {
	st := largeStore(b, 100_000, 10_000)
	h, err := New(Options{Store: st, Jobs: fakeJobs{}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	for _, tc := range []struct{ name, path string }{
		{"one-host", "/v1/check?host=198.18.39.16&max_age=1h"},
		{"everything", "/v1/check?max_age=1h"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const clients, span = 32, 3 * time.Second
			transport := &http.Transport{MaxIdleConnsPerHost: clients}
			client := &http.Client{Transport: transport}
			defer transport.CloseIdleConnections()
			var mu sync.Mutex
			var took []time.Duration
			for b.Loop() {
				deadline := time.Now().Add(span)
				var wg sync.WaitGroup
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var mine []time.Duration
						for time.Now().Before(deadline) {
							start := time.Now()
							resp, err := client.Get(srv.URL + tc.path)
							if err != nil {
								b.Error(err)
								return
							}
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.Header.Get(HeaderCheckStatus) == "" {
								b.Errorf("no check status: HTTP %d", resp.StatusCode)
								return
							}
							mine = append(mine, time.Since(start))
						}
						mu.Lock()
						took = append(took, mine...)
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			if len(took) == 0 {
				b.Fatal("no requests")
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(len(took))/(span.Seconds()*float64(b.N)), "requests/s")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "ms-p99")
		})
	}
}
