package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
)

// TestForEachAssetAtAgreesWithHistory: the one-pass walk gives, at every
// time, exactly what each asset's own history says it was.
func TestForEachAssetAtAgreesWithHistory(t *testing.T) {
	st := openTemp(t, t.TempDir())
	writeChainedHistory(t, st, "default", 30, 4)
	// Versions at T0+1h..T0+4h; the current one moved its volatile
	// fields after it was written. Tenant "acme" has one version each,
	// whose heads are their records as they are.
	writeChainedHistory(t, st, "acme", 30, 1)
	for _, tenant := range []string{"default", "acme"} {
		for _, at := range []time.Time{chainT0, chainT0.Add(time.Hour), chainT0.Add(90 * time.Minute), chainT0.Add(3 * time.Hour),
			chainT0.Add(4 * time.Hour), chainT0.Add(4*time.Hour + 30*time.Second), chainT0.Add(48 * time.Hour)} {
			t.Run(tenant+"/"+at.Format("15:04:05"), func(t *testing.T) {
				err := st.View(context.Background(), func(tx *Txn) error {
					var got []model.Asset
					if err := tx.ForEachAssetAt(tenant, at, func(a *model.Asset) error { got = append(got, *a); return nil }); err != nil {
						return err
					}
					var want []model.Asset
					if err := tx.ForEachAsset(tenant, func(a *model.Asset) error {
						then, err := tx.AssetAt(tenant, a.ID, at)
						if err == nil {
							want = append(want, *then)
						}
						return nil
					}); err != nil {
						return err
					}
					if len(want) == 0 && at.After(chainT0) {
						t.Fatal("no asset existed then: the test proves nothing")
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("at %s: %d assets\n got %+v\nwant %+v", at, len(got), got, want)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
