package integrity

import (
	"context"
	"testing"

	"github.com/sollwert/sollwert/internal/testhistory"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkVerify walks chains of 1,000,000 history records (100,000
// assets with 10 versions each: 900,000 under h/, 100,000 as asset
// heads) with one checkpoint to hold them against. Target: under 10 s.
func BenchmarkVerify(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{ValueLogGCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	key, pub := newKey(b)
	testhistory.Write(b, st, 100_000, 10)
	c := &Checkpointer{Store: st, Key: key, Interval: 1, Log: nullLog}
	if _, err := c.Checkpoint(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := Verify(context.Background(), st, Options{PublicKey: pub})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || rep.Chains[0].Versions != 1_000_000 || rep.Checkpoints != 1 {
			b.Fatalf("report: %+v", rep.Chains[0])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/verify")
	b.ReportMetric(1_000_000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
