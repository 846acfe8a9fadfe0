package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

func TestActiveDeviationIndex(t *testing.T) {
	st, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	devs := []model.Deviation{
		{ID: "w-old", Severity: model.SeverityWarning, State: model.StateOpen, OpenedAt: t0},
		{ID: "c-new", Severity: model.SeverityCritical, State: model.StateOpen, OpenedAt: t0.Add(time.Hour)},
		{ID: "c-old", Severity: model.SeverityCritical, State: model.StateAcknowledged, OpenedAt: t0},
		{ID: "gone", Severity: model.SeverityCritical, State: model.StateResolved, OpenedAt: t0},
		{ID: "wait", Severity: model.SeverityCritical, State: model.StatePending, OpenedAt: t0},
		{ID: "i", Severity: model.SeverityInfo, State: model.StateOpen, OpenedAt: t0},
	}
	put := func(ds ...model.Deviation) {
		t.Helper()
		if err := st.Update(context.Background(), func(tx *Txn) error {
			for i := range ds {
				ds[i].Tenant = "default"
				if err := tx.PutDeviation(&ds[i]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(offset int) (ids string, counts ActiveCounts) {
		t.Helper()
		if err := st.View(context.Background(), func(tx *Txn) error {
			if err := tx.ActiveDeviations("default", offset, func(d *model.Deviation) error { ids += d.ID + " "; return nil }); err != nil {
				return err
			}
			var err error
			counts, err = tx.CountActiveDeviations("default")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ids, counts
	}
	put(devs...)
	if ids, counts := list(0); ids != "c-old c-new w-old i " || counts.Open[model.SeverityCritical] != 1 || counts.Acked[model.SeverityCritical] != 1 ||
		counts.Total(model.SeverityWarning) != 1 || counts.Total(model.SeverityInfo) != 1 || counts.AckedTotal() != 1 {
		t.Fatalf("index %q, counts %v", ids, counts)
	}
	if ids, _ := list(2); ids != "w-old i " {
		t.Fatalf("from the third: %q", ids)
	}
	// Resolving, changing severity and opening again move the entries.
	devs[1].State = model.StateResolved
	devs[0].Severity = model.SeverityCritical
	devs[4].State, devs[4].OpenedAt = model.StateOpen, t0.Add(2*time.Hour)
	put(devs[0], devs[1], devs[4])
	if ids, counts := list(0); ids != "c-old w-old wait i " || counts.Total(model.SeverityCritical) != 3 || counts.Total(model.SeverityWarning) != 0 {
		t.Fatalf("after changes %q, counts %v", ids, counts)
	}
}

// TestDeviationIndexMigration: a schema-2 store (deviations without the
// index) gets the index on open.
func TestDeviationIndexMigration(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(keySchema), []byte("3")); err != nil {
			return err
		}
		for i := range 12000 {
			d := model.Deviation{ID: fmt.Sprintf("d%05d", i), Tenant: "default", Severity: model.SeverityWarning, State: model.StateOpen}
			if i%3 == 0 {
				d.State = model.StateResolved
			}
			b, err := encode(&d)
			if err != nil {
				return err
			}
			if err := txn.Set(deviationKey(d.Tenant, d.ID), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var counts ActiveCounts
	if err := st.View(context.Background(), func(tx *Txn) error {
		counts, err = tx.CountActiveDeviations("default")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if counts.Open[model.SeverityWarning] != 8000 {
		t.Fatalf("after migration: %v", counts)
	}
}
