package store

import (
	"context"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

func TestPruneHistoryKeepsTheStateAtTheCutoff(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := model.Asset{ID: "a", Tenant: "default", Status: "up", Addresses: []sdk.Address{{Addr: "198.18.0.1", Type: "ipv4"}}}
	var prev *model.Asset
	for v := 1; v <= 5; v++ {
		next := a
		next.Version = uint64(v)
		next.OS = "build " + string(rune('0'+v))
		at := t0.Add(time.Duration(v) * 24 * time.Hour)
		if err := st.Update(ctx, func(tx *Txn) error {
			return tx.PutVersion(prev, &model.Version{AssetID: "a", Version: uint64(v), Time: at, Source: "nmap", Asset: next,
				Changes: []model.Change{{Field: "os", To: next.OS}}})
		}); err != nil {
			t.Fatal(err)
		}
		p := next
		prev = &p
	}
	// Versions on days 1..5; cut at day 3.5: days 1 and 2 go, day 3 stays
	// as the state at the cutoff, days 4 and 5 stay.
	n, err := st.PruneHistory(ctx, "default", t0.Add(84*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("dropped %d, %v", n, err)
	}
	var hist []model.Version
	if err := st.View(ctx, func(tx *Txn) error { hist, err = tx.History("default", "a"); return err }); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Version != 3 || hist[2].Version != 5 {
		t.Fatalf("history after pruning: %+v", hist)
	}
	var at *model.Asset
	if err := st.View(ctx, func(tx *Txn) error { at, err = tx.AssetAt("default", "a", t0.Add(90*time.Hour)); return err }); err != nil || at.Version != 3 {
		t.Fatalf("state just after the cutoff: %+v %v", at, err)
	}
	if n, err := st.PruneHistory(ctx, "default", t0.Add(84*time.Hour)); err != nil || n != 0 {
		t.Fatalf("a second pass dropped %d, %v", n, err)
	}
}
