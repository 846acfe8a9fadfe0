package store

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// arenaVersions are first versions of assets of every size, from a bare
// host to one whose record takes a chunk of the arena of its own, with
// and without service addresses, and with strings and numbers past one
// byte of length.
func arenaVersions(n int) []model.Version {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 89, time.UTC)
	vs := make([]model.Version, n)
	for i := range vs {
		ip := netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
		a := model.Asset{ID: fmt.Sprintf("%016x", i), Tenant: model.DefaultTenant, Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}},
			Hostnames: []string{fmt.Sprintf("host-%d.test", i)}, Status: sdk.StatusUp, Labels: map[string]string{"team": "test"},
			Sources: []string{"src"}, FirstSeen: t0, LastSeen: t0, LastScanned: t0, LastScannedBy: "job", Version: uint64(1 + i%300)}
		changes := []model.Change{{Field: "asset", To: "discovered"}}
		switch i % 5 {
		case 1:
			a.Services = codecServices(1+i%40, t0)
		case 2:
			a.Services = withServiceAddresses(codecServices(2+i%40, t0))
			a.Addresses = append(a.Addresses, sdk.Address{Addr: netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)}).String(), Type: "ipv4"}, sdk.Address{Addr: fmt.Sprintf("52:54:00:00:%02x:%02x", byte(i>>8), byte(i)), Type: "mac"})
			a.Facts = map[string]string{model.FactInstancePrefix + "aws": fmt.Sprintf("aws:i-%d", i)}
		case 3:
			a.OS = strings.Repeat("o", 200+i)
			a.Facts = map[string]string{"a": "1", "b": strings.Repeat("x", 300)}
			for j := 0; j < 30; j++ {
				changes = append(changes, model.Change{Field: "fact", Key: fmt.Sprint(j), To: strings.Repeat("v", j*10)})
			}
		case 4:
			if i%20 == 4 { // larger than an arena chunk's share
				a.Services = codecServices(400, t0)
			}
		}
		vs[i] = model.Version{AssetID: a.ID, Version: a.Version, Time: t0.Add(time.Duration(i)), Source: "src", Job: "job",
			RunID: fmt.Sprintf("run-%d", i), Changes: changes, Asset: a}
	}
	return vs
}

// TestPutVersionDigestIsTheVersions holds the digest PutVersion chains
// to that of the version's canonical encoding, which it hashes from the
// record's bytes instead of encoding the version.
func TestPutVersionDigestIsTheVersions(t *testing.T) {
	st := openTemp(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	vs := arenaVersions(200)
	if err := st.Update(context.Background(), func(tx *Txn) error {
		for i := range vs {
			if err := tx.PutVersion(nil, &vs[i]); err != nil {
				return err
			}
			l := tx.links[len(tx.links)-1]
			want, _ := versionDigest(&vs[i], nil)
			if l.digest != want || !bytes.Equal(l.ref, versionRef(&vs[i])) {
				t.Fatalf("version %d of %s: chained digest %x ref %x, want %x ref %x", vs[i].Version, vs[i].AssetID, l.digest, l.ref, want, versionRef(&vs[i]))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPutVersionRecordsSurviveTheirTransaction checks the records and
// index entries PutVersion carves from its arena: each holds exactly the
// bytes of its own encoding after the whole transaction is written and
// committed, however many chunks it took.
//
// The chunks and link lists of a transaction that ended serve the next
// ones: the versions go in one transaction, then in many, written by
// Update and by UpdateAsync with several commits in flight, so that
// chunks are taken again while other commits are still being written.
func TestPutVersionRecordsSurviveTheirTransaction(t *testing.T) {
	for _, tc := range []struct {
		name string
		per  int
	}{{"one transaction", 3000}, {"recycled chunks", 90}} {
		t.Run(tc.name, func(t *testing.T) {
			st := openTemp(t, t.TempDir())
			t.Cleanup(func() { st.Close() })
			vs := arenaVersions(3000)
			putVersionsInTransactions(t, st, vs, tc.per)
			checkArenaVersions(t, st, vs)
			if rep := verifyOne(t, st, model.DefaultTenant); !rep.OK() || rep.Versions != uint64(len(vs)) {
				t.Fatalf("chain: %+v", rep)
			}
		})
	}
}

// putVersionsInTransactions writes vs in transactions of per versions,
// built by four goroutines at once as the ingest workers build them.
func putVersionsInTransactions(t *testing.T, st *Store, vs []model.Version, per int) {
	t.Helper()
	ctx := context.Background()
	parts := make(chan []model.Version)
	errs := make(chan error, len(vs)/per+1)
	var builders, commits sync.WaitGroup
	for w := 0; w < 4; w++ {
		builders.Add(1)
		go func() {
			defer builders.Done()
			n := 0
			for part := range parts {
				put := func(tx *Txn) error {
					for i := range part {
						if err := tx.PutVersion(nil, &part[i]); err != nil {
							return err
						}
					}
					return nil
				}
				if n++; n%3 == 0 {
					errs <- st.Update(ctx, put)
					continue
				}
				commits.Add(1)
				st.UpdateAsync(ctx, put, func(err error) { errs <- err; commits.Done() })
			}
		}()
	}
	for start := 0; start < len(vs); start += per {
		parts <- vs[start:min(start+per, len(vs))]
	}
	close(parts)
	builders.Wait()
	commits.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func checkArenaVersions(t *testing.T, st *Store, vs []model.Version) {
	t.Helper()
	if err := st.View(context.Background(), func(tx *Txn) error {
		for i := range vs {
			v := &vs[i]
			a := &v.Asset
			item, err := tx.txn.Get(assetKey(a.Tenant, a.ID))
			if err != nil {
				return fmt.Errorf("asset %s: %w", a.ID, err)
			}
			got, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			h := head{Time: v.Time, Source: v.Source, Job: v.Job, RunID: v.RunID, Changes: v.Changes}
			if want := appendAssetRecord(nil, a, &h); !bytes.Equal(got, want) {
				t.Fatalf("record of %s:\n got %x\nwant %x", a.ID, got, want)
			}
			for _, ad := range a.Addresses {
				ip, err := netip.ParseAddr(ad.Addr)
				if err != nil {
					continue
				}
				if id, err := tx.AssetIDByIP(a.Tenant, ip); err != nil || id != a.ID {
					t.Fatalf("address %s: %q %v, want %s", ip, id, err, a.ID)
				}
			}
			for _, k := range model.AssetKeys(a) {
				if id, err := tx.AssetIDByIdentity(a.Tenant, k); err != nil || id != a.ID {
					t.Fatalf("identity %v: %q %v, want %s", k, id, err, a.ID)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
