package store

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

func openTemp(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchemaVersionIsCheckedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTemp(t, dir)
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keySchema), []byte("99")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestSecondOpenOfADataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openTemp(t, dir)
	defer s.Close()
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

func TestRecordsSurviveReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openTemp(t, dir)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &model.Asset{ID: "a1", Tenant: "default", Status: "up", Addresses: []sdk.Address{{Addr: "127.0.0.9", Type: "ipv4"}}, FirstSeen: now}
	d := &model.Deviation{ID: "d1", Tenant: "default", AssetID: "a1", State: model.StateOpen, OpenedAt: now}
	r := &model.Run{ID: "r1", Tenant: "default", Job: "j", Status: model.RunSucceeded, Start: now}
	r2 := &model.Run{ID: "r2", Tenant: "default", Job: "j", Status: model.RunFailed, Start: now.Add(time.Minute)}
	err := s.Update(ctx, func(t *Txn) error {
		for _, f := range []func() error{
			func() error { return t.PutAsset(a, nil) },
			func() error { return t.AppendVersion("default", &model.Version{AssetID: "a1", Version: 1, Asset: *a}) },
			func() error { return t.PutDeviation(d) },
			func() error { return t.PutRun(r) },
			func() error { return t.PutRun(r2) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, dir)
	defer s.Close()
	err = s.View(ctx, func(tx *Txn) error {
		id, err := tx.AssetIDByIP("default", netip.MustParseAddr("127.0.0.9"))
		if err != nil || id != "a1" {
			t.Errorf("address index: %q %v", id, err)
		}
		if _, err := tx.AssetIDByIP("other", netip.MustParseAddr("127.0.0.9")); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant sees the asset: %v", err)
		}
		devs, err := tx.DeviationsOfAsset("default", "a1")
		if err != nil || len(devs) != 1 {
			t.Errorf("deviations of asset: %v %v", devs, err)
		}
		hist, err := tx.History("default", "a1")
		if err != nil || len(hist) != 1 {
			t.Errorf("history: %v %v", hist, err)
		}
		runs, err := tx.Runs("default", "j", 1)
		if err != nil || len(runs) != 1 || runs[0].ID != "r2" {
			t.Errorf("newest run: %+v %v", runs, err)
		}
		var inPrefix []string
		tx.AssetIDsInPrefix("default", netip.MustParsePrefix("127.0.0.8/29"), func(id string) error { inPrefix = append(inPrefix, id); return nil })
		var outside []string
		tx.AssetIDsInPrefix("default", netip.MustParsePrefix("127.0.0.0/29"), func(id string) error { outside = append(outside, id); return nil })
		if len(inPrefix) != 1 || len(outside) != 0 {
			t.Errorf("prefix scan: in %v out %v", inPrefix, outside)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestValueLogCollectorStopsWithTheStore(t *testing.T) {
	s, err := Open(t.TempDir(), Options{ValueLogGCInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		a := &model.Asset{ID: "a1", Tenant: "default", OS: strings.Repeat("x", 100+i)}
		if err := s.Update(ctx, func(t *Txn) error { return t.PutAsset(a, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let it run a few times
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.gcDone:
	default:
		t.Fatal("the collector still runs after Close")
	}
}
