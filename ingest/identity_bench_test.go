package ingest

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkIdentityMerge merges 100,000 observations into 50,000 assets:
// a provider pull reports 50,000 machines (instance id, MAC, address),
// then a second source reports each of them twice more, once by its
// instance id with a new MAC and once by address only (as a scan would),
// so every observation is matched through the identity or address index
// to an existing asset and merged. Target: >= 200,000 observations/s.
func BenchmarkIdentityMerge(b *testing.B) {
	const machines = 50_000
	first := make([]sdk.Observation, machines)
	again := make([]sdk.Observation, 0, 2*machines)
	for i := range first {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		id := fmt.Sprintf("bench:%d", i)
		first[i] = sdk.Observation{Status: sdk.StatusUp, InstanceID: id, Facts: map[string]string{"provider": "bench"},
			Addresses: []sdk.Address{{Addr: ip, Type: "ipv4"}, {Addr: fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i)), Type: "mac"}}}
		again = append(again,
			sdk.Observation{Status: sdk.StatusUp, InstanceID: id, Facts: map[string]string{"provider": "bench"},
				Addresses: []sdk.Address{{Addr: fmt.Sprintf("52:54:01:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i)), Type: "mac"}}},
			sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{{Addr: ip, Type: "ipv4"}}})
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		app := benchApplier(b)
		run := &model.Run{ID: "pull", Tenant: model.DefaultTenant, Job: "pull", Source: "bench", Start: time.Now()}
		if _, err := app.Apply(context.Background(), run, first, sdk.Scope{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		run = &model.Run{ID: "merge", Tenant: model.DefaultTenant, Job: "merge", Source: "other", Start: time.Now()}
		if _, err := app.Apply(context.Background(), run, again, sdk.Scope{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		count, err := countAssets(app)
		if err != nil || count != machines {
			b.Fatalf("%d assets after the merge, want %d (%v)", count, machines, err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(again)*b.N)/b.Elapsed().Seconds(), "observations/s")
}

func countAssets(app *Applier) (int, error) {
	var n int
	err := app.Store.View(context.Background(), func(t *store.Txn) error {
		var err error
		n, err = t.CountAssets(model.DefaultTenant)
		return err
	})
	return n, err
}
