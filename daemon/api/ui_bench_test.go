package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// largeStore fills a store on disk with assets (20 open ports each, one
// address each from 198.18.0.0) and open deviations on every
// assets/devs-th of them.
func largeStore(b *testing.B, assets, devs int) *store.Store {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	base := netip.MustParseAddr("198.18.0.0")
	for start := 0; start < assets; start += 1000 {
		err := st.Update(context.Background(), func(tx *store.Txn) error {
			ip := base
			for range start {
				ip = ip.Next()
			}
			for i := start; i < min(start+1000, assets); i++ {
				a := &model.Asset{ID: fmt.Sprintf("%016x", i), Tenant: model.DefaultTenant, Status: "up", FirstSeen: now, LastSeen: now, LastScanned: now,
					Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}}, Sources: []string{"nmap"}}
				for p := range 20 {
					a.Services = append(a.Services, model.Service{Protocol: "tcp", Port: uint16(1000 + p), State: "open", Since: now})
				}
				if err := tx.PutAsset(a, nil); err != nil {
					return err
				}
				if i%(assets/devs) == 0 {
					if err := tx.PutDeviation(&model.Deviation{ID: fmt.Sprintf("d%06d", i), Tenant: model.DefaultTenant, Rule: "dmz",
						Kind: model.KindUnexpectedPort, Severity: model.SeverityCritical, State: model.StateOpen, AssetID: a.ID,
						Host: ip.String(), Protocol: "tcp", Port: 1000, Detail: "tcp/1000 is open", OpenedAt: now, LastSeen: now}); err != nil {
						return err
					}
				}
				ip = ip.Next()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// BenchmarkWebFirstPage renders the first page of the deviations and the
// assets views over a store of 100,000 assets (20 open ports each) with
// 10,000 open deviations, through HTTP on loopback; it reports the median
// and the 90th percentile of one page.
func BenchmarkWebFirstPage(b *testing.B) {
	st := largeStore(b, 100_000, 10_000)
	h, err := New(Options{Store: st, Jobs: fakeJobs{}, Acks: nil})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	for _, path := range []string{"/ui/", "/ui/assets"} {
		b.Run(path, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("HTTP %d", resp.StatusCode)
				}
				took = append(took, time.Since(start))
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
			b.ReportMetric(float64(took[len(took)*9/10].Microseconds())/1000, "ms-p90")
		})
	}
}
