package store

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

func codecHeads() map[string]*head {
	v := codecFullVersion()
	snap := volatileOf(&v.Asset)
	return map[string]*head{
		"none":           nil,
		"same":           {Time: v.Time, Source: v.Source, Job: v.Job, RunID: v.RunID, Changes: v.Changes},
		"volatile":       {Time: v.Time, Source: v.Source, Job: v.Job, RunID: v.RunID, Changes: v.Changes, snap: &snap},
		"empty":          {},
		"empty volatile": {snap: &volatileFields{}},
	}
}

func TestCodecAssetRecordRoundTrip(t *testing.T) {
	for an, a := range codecCases() {
		for hn, h := range codecHeads() {
			t.Run(an+"/"+hn, func(t *testing.T) {
				b := appendAssetRecord(nil, &a, h)
				if b[0] != assetTag(codecAssetV2, &a) {
					t.Fatalf("tag %#x", b[0])
				}
				var got model.Asset
				var gh head
				has, err := decodeAssetRecord(b, &got, &gh)
				if err != nil {
					t.Fatal(err)
				}
				if has != (h != nil) {
					t.Fatalf("head decoded: %v", has)
				}
				if want := codecNormalize(a); !reflect.DeepEqual(got, want) {
					t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
				}
				var hp *head
				if has {
					hp = &gh
				}
				if again := appendAssetRecord(nil, &got, hp); !bytes.Equal(again, b) {
					t.Fatal("the decoded record encodes differently")
				}
				if h != nil {
					want := snapshotVersion(&a, h)
					if gotV := snapshotVersion(&got, &gh); !reflect.DeepEqual(gotV, codecNormalizeVersion(want)) {
						t.Fatalf("head:\n got %+v\nwant %+v", gotV, want)
					}
				}
				for n := range len(b) {
					if _, err := decodeAssetRecord(b[:n], &got, &gh); err == nil {
						t.Fatalf("a record cut to %d of %d bytes decoded", n, len(b))
					}
					if !reflect.DeepEqual(got, model.Asset{}) || !reflect.DeepEqual(gh, head{}) {
						t.Fatal("a failed decode left values behind")
					}
				}
			})
		}
	}
}

func TestCodecAssetRecordReadsSchema1(t *testing.T) {
	a := codecFullAsset()
	var got model.Asset
	has, err := decodeAssetRecord(appendAsset(nil, &a), &got, nil)
	if err != nil || has {
		t.Fatalf("schema-1 record: head %v, %v", has, err)
	}
	if !reflect.DeepEqual(got, codecNormalize(a)) {
		t.Fatalf("schema-1 record: %+v", got)
	}
	b := appendAssetRecord(nil, &a, nil)
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"head flag", append(b[:len(b)-1:len(b)-1], 3), "head: unknown head flag 3"},
		{"no head flag", b[:len(b)-1], "head: record ends early"},
		{"version tag", append([]byte{codecVersionV1}, b[1:]...), "unknown format tag 0xb1, want 0xa2"},
	} {
		if _, err := decodeAssetRecord(c.b, &got, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// FuzzDecodeAssetRecord is FuzzDecodeAsset for schema-2 records.
func FuzzDecodeAssetRecord(f *testing.F) {
	for _, a := range codecCases() {
		for _, h := range codecHeads() {
			b := appendAssetRecord(nil, &a, h)
			f.Add(b)
			f.Add(b[:len(b)/2])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got model.Asset
		var h head
		has, err := decodeAssetRecord(b, &got, &h)
		if err != nil || b[0] != codecAssetV2 {
			return
		}
		hp := &h
		if !has {
			hp = nil
		}
		if again := appendAssetRecord(nil, &got, hp); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding changed the bytes:\n in % x\nout % x", b, again)
		}
	})
}

// TestEveryAssetFieldIsStableOrVolatile fails when a field is added to
// model.Asset that neither stableEqual nor volatileFields knows: a write
// without a version could then change it unseen, and the head's snapshot
// would show the new value for the old version.
func TestEveryAssetFieldIsStableOrVolatile(t *testing.T) {
	base := codecFullAsset()
	other := model.Asset{ID: "x", Tenant: "t", Addresses: []sdk.Address{{Addr: "x"}}, Hostnames: []string{"x"}, Status: "x",
		OS: "x", Services: codecServices(2, time.Unix(1, 0)), Facts: map[string]string{"x": "y"}, Labels: map[string]string{"x": "y"},
		Sources: []string{"x"}, Scanned: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 2}}},
		FirstSeen: time.Unix(1, 0), LastSeen: time.Unix(1, 0), LastScanned: time.Unix(1, 0), LastScannedBy: "x", Version: 1}
	bv, ov := reflect.ValueOf(&base).Elem(), reflect.ValueOf(other)
	for i := range bv.NumField() {
		name := bv.Type().Field(i).Name
		mod := base
		mv := reflect.ValueOf(&mod).Elem()
		if name == "Unknown" {
			mv.Field(i).SetBool(!base.Unknown)
		} else {
			mv.Field(i).Set(ov.Field(i))
		}
		if reflect.DeepEqual(mod, base) {
			t.Fatalf("the sample does not change %s", name)
		}
		stable := !stableEqual(&base, &mod)
		vb, vm := volatileOf(&base), volatileOf(&mod)
		volatile := !bytes.Equal(appendVolatile(nil, &vb), appendVolatile(nil, &vm))
		if stable == volatile {
			t.Errorf("field %s: seen as stable %v, as volatile %v; it must be exactly one", name, stable, volatile)
		}
	}
}

// TestHeadKeepsHistoryExact writes random sequences of new versions,
// writes without a version that move only volatile fields, and writes
// without a version that change a stable field, and checks History
// against every version written, as the schema-1 layout recorded them.
func TestHeadKeepsHistoryExact(t *testing.T) {
	for _, inMemory := range []bool{true, false} {
		s, err := Open(t.TempDir(), Options{InMemory: inMemory})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		for asset := range 20 {
			id := fmt.Sprintf("a%02d", asset)
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var want []model.Version
			var cur *model.Asset
			for step := range 30 {
				now := t0.Add(time.Duration(step) * time.Minute)
				err := s.Update(ctx, func(tx *Txn) error {
					var prev *model.Asset
					if cur != nil {
						var err error
						if prev, err = tx.Asset("default", id); err != nil {
							return err
						}
					}
					next := model.Asset{ID: id, Tenant: "default", Status: "up", FirstSeen: t0,
						Addresses: []sdk.Address{{Addr: fmt.Sprintf("127.0.1.%d", asset), Type: "ipv4"}}}
					if prev != nil {
						next = *prev
					}
					next.LastScanned, next.LastScannedBy = now, fmt.Sprint("job", rng.IntN(2))
					if rng.IntN(2) == 0 {
						next.LastSeen = now
					}
					if rng.IntN(4) == 0 {
						next.Sources = append(next.Sources[:len(next.Sources):len(next.Sources)], fmt.Sprint("src", step))
					}
					switch op := rng.IntN(3); {
					case prev == nil || op == 0: // a new version
						next.OS = fmt.Sprint("os ", step)
						next.Version++
						v := model.Version{AssetID: id, Version: next.Version, Time: now, Source: "nmap", Job: next.LastScannedBy,
							RunID: fmt.Sprint("r", step), Changes: []model.Change{{Field: "os", To: next.OS}}, Asset: next}
						if err := tx.PutVersion(prev, &v); err != nil {
							return err
						}
						want = append(want, codecNormalizeVersion(v))
					case op == 1: // volatile fields only
						if err := tx.PutAsset(&next, prev); err != nil {
							return err
						}
					default: // a stable field without a version (no writer does this today)
						next.Labels = map[string]string{"step": fmt.Sprint(step)}
						if err := tx.PutAsset(&next, prev); err != nil {
							return err
						}
					}
					cur = &next
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				var got []model.Version
				var stored *model.Asset
				if err := s.View(ctx, func(tx *Txn) error {
					var err error
					if got, err = tx.History("default", id); err != nil {
						return err
					}
					stored, err = tx.Asset("default", id)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("asset %s step %d: history\n got %+v\nwant %+v", id, step, got, want)
				}
				if !reflect.DeepEqual(*stored, codecNormalize(*cur)) {
					t.Fatalf("asset %s step %d: asset\n got %+v\nwant %+v", id, step, *stored, *cur)
				}
			}
		}
		s.Close()
	}
}

func TestSchema1IsMigrated(t *testing.T) {
	dir := t.TempDir()
	s := openTemp(t, dir)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := model.Asset{ID: "a1", Tenant: "default", Status: "up", Version: 1, FirstSeen: t0,
		Addresses: []sdk.Address{{Addr: "127.0.0.9", Type: "ipv4"}}}
	v1 := model.Version{AssetID: "a1", Version: 1, Time: t0, Source: "nmap", Job: "j", RunID: "r1", Asset: a,
		Changes: []model.Change{{Field: "asset", To: "discovered"}}}
	// What schema 1 wrote: the asset (0xA1) and its version apart.
	if err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(keySchema), []byte("1")); err != nil {
			return err
		}
		if err := txn.Set(assetKey("default", "a1"), appendAsset(nil, &a)); err != nil {
			return err
		}
		return txn.Set(historyKey("default", "a1", 1), appendVersion(nil, &v1))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTemp(t, dir)
	defer s.Close()
	err := s.Update(ctx, func(tx *Txn) error {
		prev, err := tx.Asset("default", "a1")
		if err != nil {
			return err
		}
		next := *prev
		next.OS, next.Version = "Linux", 2
		return tx.PutVersion(prev, &model.Version{AssetID: "a1", Version: 2, Time: t0.Add(time.Hour), Asset: next,
			Changes: []model.Change{{Field: "os", To: "Linux"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx *Txn) error {
		hist, err := tx.History("default", "a1")
		if err != nil {
			return err
		}
		if len(hist) != 2 || !reflect.DeepEqual(hist[0], codecNormalizeVersion(v1)) || hist[1].Asset.OS != "Linux" {
			t.Errorf("history after migration: %+v", hist)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keySchema))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		got = string(v)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got != fmt.Sprint(SchemaVersion) {
		t.Fatalf("schema version after migration: %q", got)
	}
	// The version written before chains existed is chained by the
	// migration, the one after by its write.
	if r := verifyOne(t, s, "default"); !r.OK() || r.Versions != 2 {
		t.Fatalf("chain after migration: %+v", r)
	}
}
