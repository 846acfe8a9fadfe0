package notifier

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sollwert/sollwert/plugins/webhook"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkDeliver queues 10,000 deviation events at once (as a scan that
// opens 10,000 deviations does) and measures how fast the webhook sink
// delivers them, signed, to a receiver on loopback.
func BenchmarkDeliver(b *testing.B) {
	const events = 10_000
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	b.Setenv("SOLLWERT_BENCH_HMAC", "k3y")
	cfg, _ := json.Marshal(map[string]any{"url": srv.URL, "secret_env": "SOLLWERT_BENCH_HMAC", "parallel": 16})
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		st, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]sdk.Event, events)
		for i := range batch {
			batch[i] = ev(i, "dmz")
			batch[i].ID = batch[i].ID + "-" + time.Now().Format("150405.000000")
		}
		if err := st.Update(context.Background(), func(tx *store.Txn) error {
			for i := range batch {
				if err := tx.Enqueue("hook", &batch[i]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		got.Store(0)
		m := New(st, Options{Poll: time.Millisecond, Batch: 500})
		b.StartTimer()
		m.Update([]Sink{{Name: "hook", Type: "webhook", Impl: webhook.New(nil), Config: cfg, Fingerprint: "1"}})
		for {
			sts, err := m.Statuses(context.Background(), false)
			if err != nil {
				b.Fatal(err)
			}
			if sts[0].Queued == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		m.Stop()
		st.Close()
		if got.Load() != events {
			b.Fatalf("receiver got %d events, want %d", got.Load(), events)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
