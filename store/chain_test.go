package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

var chainT0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// writeChainedHistory gives tenant assets a0..a(n-1) with versions
// versions each (every write after the first also moving the volatile
// fields once without a version) and one audit record per asset.
func writeChainedHistory(t testing.TB, st *Store, tenant string, n, versions int) {
	t.Helper()
	ctx := context.Background()
	prev := make([]*model.Asset, n)
	for v := 1; v <= versions; v++ {
		err := st.Update(ctx, func(tx *Txn) error {
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("a%d", i)
				at := chainT0.Add(time.Duration(v) * time.Hour)
				a := model.Asset{ID: id, Tenant: tenant, Version: uint64(v), Status: "up", FirstSeen: chainT0, LastSeen: at,
					OS: fmt.Sprintf("build %d", v), Addresses: []sdk.Address{{Addr: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), Type: "ipv4"}},
					Sources: []string{"nmap"}, Services: []model.Service{{Protocol: "tcp", Port: 22, State: "open", Since: at}}}
				if err := tx.PutVersion(prev[i], &model.Version{AssetID: id, Version: uint64(v), Time: at, Source: "nmap", Job: "j",
					Asset: a, Changes: []model.Change{{Field: "os", To: a.OS}}}); err != nil {
					return err
				}
				prev[i] = &a
				if v > 1 {
					// A rescan that changes nothing moves only the volatile
					// fields; the head stays the version written above.
					b := a
					b.LastSeen = at.Add(time.Minute)
					if _, err := tx.Asset(tenant, id); err != nil {
						return err
					}
					if err := tx.PutAsset(&b, &a); err != nil {
						return err
					}
					prev[i] = &b
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := st.Update(ctx, func(tx *Txn) error {
		for i := 0; i < n; i++ {
			if err := tx.AppendAudit(&model.AuditRecord{Time: chainT0.Add(time.Duration(i) * time.Second), Tenant: tenant, Actor: "test", Action: "ack", Target: fmt.Sprintf("a%d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func verifyOne(t *testing.T, st *Store, tenant string) ChainReport {
	t.Helper()
	reps, err := st.VerifyChains(context.Background(), map[string][]uint64{tenant: nil})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.Tenant == tenant {
			return r
		}
	}
	t.Fatalf("no report for tenant %s in %+v", tenant, reps)
	return ChainReport{}
}

func TestChainOfAnUntouchedStoreVerifies(t *testing.T) {
	st := openTemp(t, t.TempDir())
	writeChainedHistory(t, st, "default", 20, 4)
	writeChainedHistory(t, st, "acme", 3, 2)
	r := verifyOne(t, st, "default")
	if !r.OK() || r.Versions != 80 || r.Audit != 20 || r.Entries != 100 || r.Seq != 100 || len(r.Head) != 64 {
		t.Fatalf("report: %+v", r)
	}
	if r := verifyOne(t, st, "acme"); !r.OK() || r.Entries != 9 {
		t.Fatalf("acme: %+v", r)
	}
}

func TestChainContinuesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeChainedHistory(t, st, "default", 5, 2)
	before := verifyOne(t, st, "default")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openTemp(t, dir)
	if err := st.Update(context.Background(), func(tx *Txn) error {
		return tx.AppendAudit(&model.AuditRecord{Time: chainT0, Tenant: "default", Actor: "test", Action: "reload"})
	}); err != nil {
		t.Fatal(err)
	}
	after := verifyOne(t, st, "default")
	if !after.OK() || after.Seq != before.Seq+1 {
		t.Fatalf("before %+v, after %+v", before, after)
	}
}

// TestChainNamesTampering changes the store through Badger directly, as
// someone with the data directory could, and expects verify to name
// what was done.
func TestChainNamesTampering(t *testing.T) {
	flipLastByte := func(key []byte) func(*testing.T, *badger.Txn) {
		return func(t *testing.T, txn *badger.Txn) {
			item, err := txn.Get(key)
			if err != nil {
				t.Fatal(err)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				t.Fatal(err)
			}
			v[len(v)/2] ^= 0x01
			if err := txn.Set(key, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	del := func(key []byte) func(*testing.T, *badger.Txn) {
		return func(t *testing.T, txn *badger.Txn) {
			if err := txn.Delete(key); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name   string
		tamper func(*testing.T, *badger.Txn)
		want   string
	}{
		{"byte of an older version", flipLastByte(historyKey("default", "a3", 2)), "chain entry 14, version 2 of asset a3 (198.18.0.4): the record does not match its hash"},
		{"byte of the newest version, in its asset record", flipLastByte(assetKey("default", "a7")), "version 3 of asset a7"},
		{"byte of an audit record", flipAudit, "audit record of 2026-11-01T00:00:02Z: the record does not match its hash"},
		{"older version deleted", del(historyKey("default", "a3", 1)), "chain entry 4, version 1 of asset a3 (198.18.0.4): the record is missing (deleted)"},
		{"chain entry deleted", del(chainKey("default", 12)), "chain entry 12: chain entry 12 is missing: the chain jumps from 11 to 13"},
		{"chain entry changed", flipLastByte(chainKey("default", 15)), "chain entry 15"},
		{"version slipped in beside the chain", func(t *testing.T, txn *badger.Txn) {
			v := model.Version{AssetID: "a1", Version: 9, Time: chainT0, Asset: model.Asset{ID: "a1", Tenant: "default", Version: 9}}
			if err := txn.Set(historyKey("default", "a1", 9), appendVersion(nil, &v)); err != nil {
				t.Fatal(err)
			}
		}, "the history holds 1 versions that no chain entry accounts for"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := openTemp(t, t.TempDir())
			writeChainedHistory(t, st, "default", 10, 3)
			if r := verifyOne(t, st, "default"); !r.OK() {
				t.Fatalf("before tampering: %+v", r.Problems)
			}
			if err := st.db.Update(func(txn *badger.Txn) error { c.tamper(t, txn); return nil }); err != nil {
				t.Fatal(err)
			}
			r := verifyOne(t, st, "default")
			if r.OK() {
				t.Fatal("verify found nothing wrong")
			}
			if got := r.Problems[0].String(); !strings.Contains(got, c.want) {
				t.Fatalf("first problem %q, want it to contain %q (all: %v)", got, c.want, r.Problems)
			}
		})
	}
}

// flipAudit changes the third audit record (keys carry a random part, so
// it is found by iterating).
func flipAudit(t *testing.T, txn *badger.Txn) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: auditPrefix("default")})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		if n == 2 {
			k := it.Item().KeyCopy(nil)
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				t.Fatal(err)
			}
			v[len(v)-3] ^= 0x20
			if err := txn.Set(k, v); err != nil {
				t.Fatal(err)
			}
			return
		}
		n++
	}
	t.Fatal("fewer than three audit records")
}

func TestChainAccountsForRetention(t *testing.T) {
	st := openTemp(t, t.TempDir())
	writeChainedHistory(t, st, "default", 10, 5)
	n, err := st.PruneHistory(context.Background(), "default", chainT0.Add(3*time.Hour+30*time.Minute))
	if err != nil || n != 20 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	r := verifyOne(t, st, "default")
	if !r.OK() || r.Pruned != 20 {
		t.Fatalf("after retention: %+v", r)
	}
	// A version newer than the cutoff is not retention's to drop.
	if err := st.db.Update(func(txn *badger.Txn) error { return txn.Delete(historyKey("default", "a2", 4)) }); err != nil {
		t.Fatal(err)
	}
	if r := verifyOne(t, st, "default"); r.OK() || !strings.Contains(r.Problems[0].String(), "version 4 of asset a2 (198.18.0.3): the record is missing") {
		t.Fatalf("deleted after retention: %+v", r.Problems)
	}
}

// TestChainUnderConcurrentWriters writes from several goroutines, with
// and without waiting for commits, on the same assets so that some
// transactions conflict and are retried: the chain must come out whole.
func TestChainUnderConcurrentWriters(t *testing.T) {
	st := openTemp(t, t.TempDir())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				fn := func(tx *Txn) error {
					id := fmt.Sprintf("a%d", i%5)
					prev, err := tx.Asset("default", id)
					if err != nil && err.Error() != "asset "+id+": not found" {
						return err
					}
					var a model.Asset
					if prev != nil {
						a = *prev
					} else {
						a = model.Asset{ID: id, Tenant: "default", Status: "up"}
					}
					a.Version++
					a.OS = fmt.Sprintf("w%d i%d", w, i)
					return tx.PutVersion(prev, &model.Version{AssetID: id, Version: a.Version, Time: chainT0.Add(time.Duration(i) * time.Second), Asset: a})
				}
				if w%2 == 0 {
					if err := st.Update(ctx, fn); err != nil && !strings.Contains(err.Error(), "Transaction Conflict") {
						errs <- err
					}
					continue
				}
				done := make(chan error, 1)
				st.UpdateAsync(ctx, fn, func(err error) { done <- err })
				if err := <-done; err != nil && !strings.Contains(err.Error(), "Transaction Conflict") {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r := verifyOne(t, st, "default")
	if !r.OK() || r.Entries == 0 || r.Entries != r.Seq {
		t.Fatalf("report: %+v", r)
	}
}
