package store

import (
	"context"
	"encoding/binary"
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
	for _, format := range []struct {
		name    string
		oneLink bool
	}{{"batched entries", false}, {"entries of one link (schema 6)", true}} {
		t.Run(format.name, func(t *testing.T) { testChainNamesTampering(t, format.oneLink) })
	}
}

// testChainNamesTampering tampers with a chain of batched entries, or
// with one whose entries hold one link each, as stores of schema 5 and 6
// wrote them (unbatchChain).
func testChainNamesTampering(t *testing.T, oneLink bool) {
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
		{"version slipped in beside the chain", func(t *testing.T, txn *badger.Txn) {
			v := model.Version{AssetID: "a1", Version: 9, Time: chainT0, Asset: model.Asset{ID: "a1", Tenant: "default", Version: 9}}
			if err := txn.Set(historyKey("default", "a1", 9), appendVersion(nil, &v)); err != nil {
				t.Fatal(err)
			}
		}, "the history holds 1 versions that no chain entry accounts for"},
	}
	// also, when set, is another problem verify must name.
	type entryCase struct {
		name   string
		tamper func(*testing.T, *badger.Txn)
		want   string
		also   string
	}
	var entryCases []entryCase
	if oneLink {
		entryCases = []entryCase{
			{"chain entry deleted", del(chainKey("default", 12)), "chain entry 12: chain entry 12 is missing: the chain jumps from 11 to 13", ""},
			{"chain entry changed", flipLastByte(chainKey("default", 15)), "chain entry 15", ""},
		}
	} else {
		// Each of writeChainedHistory's transactions is one entry: links 1
		// to 10 (the first versions) under 10, 11 to 20 under 20, 21 to
		// 30 under 30, the audit records 31 to 40 under 40.
		entryCases = []entryCase{
			{"batched entry deleted", del(chainKey("default", 20)),
				"chain entry 11: chain entries 11 to 20 are missing: the chain jumps from 10 to 21 (records were deleted)", ""},
			{"digest of one link in a batched entry changed", rewriteLinks(20, func(ls []link) []link { ls[4].digest[0] ^= 1; return ls }),
				"chain entry 15, version 2 of asset a4 (198.18.0.5): the record does not match its hash",
				"chain entry 30: entry (links 21 to 30) does not carry the hash of entry 20: one of the two was changed"},
			{"digest of a link in the last entry changed", rewriteLinks(40, func(ls []link) []link { ls[2].digest[0] ^= 1; return ls }),
				"chain entry 33, audit record of 2026-11-01T00:00:02Z: the record does not match its hash", ""},
			{"one link removed from a batched entry", rewriteLinks(20, func(ls []link) []link { return append(ls[:1:1], ls[2:]...) }),
				"chain entry 11: chain entry 11 is missing: the chain jumps from 10 to 12 (a record was deleted)",
				"the history holds 1 versions that no chain entry accounts for"},
			{"link pointed at another version", rewriteLinks(20, func(ls []link) []link { ls[4].ref = ls[5].ref; return ls }),
				"chain entry 15, version 2 of asset a5 (198.18.0.6): the record does not match its hash",
				"chain entry 30: entry (links 21 to 30) does not carry the hash of entry 20"},
			{"byte of a batched entry changed", flipLastByte(chainKey("default", 20)), "chain entry 15, version 2 of asset a4", "chain entry 30: entry (links 21 to 30) does not carry the hash of entry 20"},
			{"count of a batched entry changed", func(t *testing.T, txn *badger.Txn) {
				item, err := txn.Get(chainKey("default", 20))
				if err != nil {
					t.Fatal(err)
				}
				v, _ := item.ValueCopy(nil)
				v[1+32+3]--
				if err := txn.Set(chainKey("default", 20), v); err != nil {
					t.Fatal(err)
				}
			}, "chain entry 11: chain entry 11 is missing: the chain jumps from 10 to 12", "chain entry 20: 52 bytes after the last of its 9 links"},
		}
	}
	for _, c := range cases {
		entryCases = append(entryCases, entryCase{c.name, c.tamper, c.want, ""})
	}
	for _, c := range entryCases {
		t.Run(c.name, func(t *testing.T) {
			st := openTemp(t, t.TempDir())
			writeChainedHistory(t, st, "default", 10, 3)
			if oneLink {
				unbatchChain(t, st, "default")
			}
			if r := verifyOne(t, st, "default"); !r.OK() || r.Entries != 40 || oneLink != (r.Stored == 40) {
				t.Fatalf("before tampering: %+v", r)
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
			if c.also != "" && !strings.Contains(fmt.Sprint(r.Problems), c.also) {
				t.Fatalf("problems %v, want one to contain %q", r.Problems, c.also)
			}
		})
	}
}

// readLinks returns the links of tenant's chain, with the stored entries'
// sequence numbers and values.
func readLinks(t testing.TB, txn *badger.Txn, tenant string) (links []chainEntry, seqs []uint64, vals [][]byte) {
	t.Helper()
	prefix := chainPrefix(tenant)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		seq, _ := seqOf(it.Item().Key(), prefix)
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			t.Fatal(err)
		}
		if links, _, _, err = decodeChainValue(seq, v, links); err != nil {
			t.Fatal(err)
		}
		seqs, vals = append(seqs, seq), append(vals, v)
	}
	return links, seqs, vals
}

func linkOf(e chainEntry) link {
	return link{kind: e.kind, time: time.Unix(0, e.time), digest: e.digest, ref: e.ref}
}

// rewriteLinks has f change the links of the batched entry of default's
// chain stored under seq and writes it back with the hash it carried of
// the entry before, the way someone who can write to the data directory
// but does not want to rewrite the chain up to its head would.
func rewriteLinks(seq uint64, f func([]link) []link) func(*testing.T, *badger.Txn) {
	return func(t *testing.T, txn *badger.Txn) {
		item, err := txn.Get(chainKey("default", seq))
		if err != nil {
			t.Fatal(err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			t.Fatal(err)
		}
		es, prev, _, err := decodeChainValue(seq, v, nil)
		if err != nil || v[0] != chainFormatBatch {
			t.Fatalf("entry %d is not a batched entry: %v", seq, err)
		}
		var ls []link
		for _, e := range es {
			ls = append(ls, linkOf(e))
		}
		ls = f(ls)
		w := appendBatchHeader(nil, prev)
		binary.BigEndian.PutUint32(w[1+32:], uint32(len(ls)))
		for i := range ls {
			w = appendBatchLink(w, &ls[i])
		}
		if err := txn.Set(chainKey("default", seq), w); err != nil {
			t.Fatal(err)
		}
	}
}

// unbatchChain rewrites tenant's chain into entries of one link each
// (format 0x01), as stores of schema 5 and 6 hold them, and makes st
// read its head again.
func unbatchChain(t testing.TB, st *Store, tenant string) {
	t.Helper()
	err := st.db.Update(func(txn *badger.Txn) error {
		links, seqs, _ := readLinks(t, txn, tenant)
		for _, seq := range seqs {
			if err := txn.Delete(chainKey(tenant, seq)); err != nil {
				return err
			}
		}
		var prev [32]byte
		for _, e := range links {
			v := []byte{chainFormat, e.kind}
			v = binary.BigEndian.AppendUint64(v, uint64(e.time))
			v = append(append(append(v, prev[:]...), e.digest[:]...), e.ref...)
			if err := txn.Set(chainKey(tenant, e.seq), v); err != nil {
				return err
			}
			prev = entryHash(tenant, e.seq, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.chains.mu.Lock()
	delete(st.chains.heads, tenant)
	st.chains.mu.Unlock()
}

// TestChainOfEntriesOfOneLinkGoesOnBatched opens a store of schema 6,
// whose entries hold one link each, and writes on: the chain holds both
// formats, verifies, and tampering with either kind of entry is named.
func TestChainOfEntriesOfOneLinkGoesOnBatched(t *testing.T) {
	dir := t.TempDir()
	st := openTemp(t, dir)
	writeChainedHistory(t, st, "default", 10, 2)
	unbatchChain(t, st, "default")
	var before []ChainHead
	err := st.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keySchema), []byte("6")) })
	if err == nil {
		before, err = st.ChainHeads()
	}
	if err != nil || len(before) != 1 || before[0].Seq != 30 {
		t.Fatalf("heads %+v, %v", before, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openTemp(t, dir)
	defer st.Close()
	// The old entries are not rewritten: the head a checkpoint signed
	// is still there.
	r := verifyOne(t, st, "default")
	if !r.OK() || r.Entries != 30 || r.Stored != 30 || r.Seq != 30 || r.Head != hexHash(before[0].Hash) {
		t.Fatalf("after the migration: %+v", r)
	}
	ctx := context.Background()
	err = st.Update(ctx, func(tx *Txn) error {
		for i := 0; i < 10; i++ {
			if err := tx.AppendAudit(&model.AuditRecord{Time: chainT0.Add(time.Duration(i) * time.Minute), Tenant: "default", Actor: "test", Action: "ack"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reps, err := st.VerifyChains(ctx, map[string][]uint64{"default": {30, 40}})
	if err != nil || len(reps) != 1 {
		t.Fatal(reps, err)
	}
	if r := reps[0]; !r.OK() || r.Entries != 40 || r.Stored != 31 || r.Seq != 40 || r.Audit != 20 || r.Versions != 20 ||
		r.HashAt[30] != hexHash(before[0].Hash) || r.HashAt[40] != r.Head {
		t.Fatalf("old and new entries: %+v", r)
	}
	for _, c := range []struct {
		name   string
		tamper func(*testing.T, *badger.Txn)
		want   string
	}{
		{"the last entry of one link deleted", func(t *testing.T, txn *badger.Txn) {
			if err := txn.Delete(chainKey("default", 30)); err != nil {
				t.Fatal(err)
			}
		}, "chain entry 30: chain entry 30 is missing: the chain jumps from 29 to 31"},
		{"a link of the batched entry after them changed", rewriteLinks(40, func(ls []link) []link { ls[0].digest[5] ^= 1; return ls }),
			"chain entry 31, audit record of 2026-11-01T00:00:00Z: the record does not match its hash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := st.db.Update(func(txn *badger.Txn) error {
				// Keep the untouched chain to put back.
				_, seqs, vals := readLinks(t, txn, "default")
				t.Cleanup(func() {
					if err := st.db.Update(func(txn *badger.Txn) error {
						for i, seq := range seqs {
							if err := txn.Set(chainKey("default", seq), vals[i]); err != nil {
								return err
							}
						}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				})
				c.tamper(t, txn)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			r := verifyOne(t, st, "default")
			if r.OK() || !strings.Contains(r.Problems[0].String(), c.want) {
				t.Fatalf("problems %v, want the first to contain %q", r.Problems, c.want)
			}
		})
	}
}

func hexHash(h [32]byte) string { return fmt.Sprintf("%x", h[:]) }

// TestChainSplitsLargeTransactions writes more links in one transaction
// than fit in one entry, into two tenants: each tenant gets entries of
// its own, none above maxChainValue.
func TestChainSplitsLargeTransactions(t *testing.T) {
	st := openTemp(t, t.TempDir())
	defer st.Close()
	const n = 12000
	err := st.Update(context.Background(), func(tx *Txn) error {
		for i := 0; i < n; i++ {
			for _, tenant := range []string{"default", "acme"} {
				if tenant == "acme" && i%100 != 0 {
					continue
				}
				if err := tx.AppendAudit(&model.AuditRecord{Time: chainT0.Add(time.Duration(i) * time.Millisecond), Tenant: tenant, Actor: "test", Action: "ack"}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		r := verifyOne(t, st, "default")
		if !r.OK() || r.Entries != n || r.Seq != n || r.Audit != n || r.Stored < 2 {
			t.Fatalf("%s: %+v", when, r)
		}
		if r := verifyOne(t, st, "acme"); !r.OK() || r.Entries != n/100 || r.Stored != 1 {
			t.Fatalf("%s: acme: %+v", when, r)
		}
		if err := st.db.View(func(txn *badger.Txn) error {
			_, _, vals := readLinks(t, txn, "default")
			for _, v := range vals {
				if len(v) > maxChainValue {
					t.Errorf("%s: an entry of %d bytes", when, len(v))
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	check("written")
	// chainExisting (schema 5's migration) chains the same records
	// again, in batches of its own.
	if err := st.chainExisting(); err != nil {
		t.Fatal(err)
	}
	check("chained again")
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
