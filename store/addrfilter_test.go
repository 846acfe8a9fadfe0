package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// filterStore opens a store whose address filter has loaded what the
// store holds.
func filterStore(t *testing.T, dir string) *Store {
	t.Helper()
	s := openTemp(t, dir)
	<-s.loaded
	if !s.addrs.ready.Load() {
		t.Fatal("the address filter did not load")
	}
	return s
}

// blindReads counts the keys tx read blind.
func blindReads(tx *Txn) int {
	if tx.addrUse == nil {
		return 0
	}
	return len(tx.addrUse.blind)
}

func (s *Store) begin() *Txn { return &Txn{txn: s.db.NewTransaction(true), addrs: s.addrs} }

// TestAddressFilterKeepsConflictDetection plays two transactions that
// find an address free, in every order that matters: whichever commits
// after the other wrote the address conflicts, as it would had both read
// the store, whether it looked the address up blind or not.
func TestAddressFilterKeepsConflictDetection(t *testing.T) {
	ip := netip.MustParseAddr("198.18.0.1")
	// look looks ip up in tx, which must find it free, blind or not.
	look := func(tx *Txn, blind bool) {
		t.Helper()
		if _, _, err := tx.AddressHolder("t", ip); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a free address: %v", err)
		}
		if got := blindReads(tx) > 0; got != blind {
			t.Fatalf("the lookup was blind: %t, want %t", got, blind)
		}
	}
	write := func(tx *Txn, id string) {
		t.Helper()
		if err := tx.ClaimAddress("t", ip, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		play func(s *Store, a, b *Txn) (errA, errB error)
		// wantA and wantB: whether each commit succeeds.
		wantA, wantB bool
	}{
		{"a writes and commits, then b writes", func(s *Store, a, b *Txn) (error, error) {
			look(a, true)
			look(b, true)
			write(a, "A")
			errA := s.commit(a)
			write(b, "B")
			return errA, s.commit(b)
		}, true, false},
		{"both write, then commit", func(s *Store, a, b *Txn) (error, error) {
			look(a, true)
			look(b, true)
			write(a, "A")
			write(b, "B")
			return s.commit(a), s.commit(b)
		}, true, false},
		{"b only reads, a writes", func(s *Store, a, b *Txn) (error, error) {
			look(b, true)
			look(a, true)
			write(a, "A")
			return s.commit(a), s.commit(b)
		}, true, false},
		{"b commits its read before a writes", func(s *Store, a, b *Txn) (error, error) {
			look(b, true)
			errB := s.commit(b)
			look(a, true)
			write(a, "A")
			return s.commit(a), errB
		}, true, true},
		{"a writes before b looks", func(s *Store, a, b *Txn) (error, error) {
			look(a, true)
			write(a, "A")
			look(b, true)
			errA := s.commit(a)
			write(b, "B")
			return errA, s.commit(b)
		}, true, false},
		{"a commits before b looks: b reads the store", func(s *Store, a, b *Txn) (error, error) {
			look(a, true)
			write(a, "A")
			errA := s.commit(a)
			look(b, false)
			write(b, "B")
			return errA, s.commit(b)
		}, true, false},
		{"a reads its own write from the store", func(s *Store, a, b *Txn) (error, error) {
			look(a, true)
			write(a, "A")
			if id, _, err := a.AddressHolder("t", ip); err != nil || id != "A" {
				t.Fatalf("a's own write: %q, %v", id, err)
			}
			return s.commit(a), nil
		}, true, true},
		{"async commits", func(s *Store, a, b *Txn) (error, error) {
			look(a, true)
			look(b, true)
			write(a, "A")
			errA := make(chan error, 1)
			s.commitAsync(a, func(err error) { errA <- err })
			if err := <-errA; err != nil {
				return err, nil
			}
			write(b, "B")
			errB := make(chan error, 1)
			s.commitAsync(b, func(err error) { errB <- err })
			return nil, <-errB
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := filterStore(t, t.TempDir())
			defer s.Close()
			a, b := s.begin(), s.begin()
			errA, errB := tc.play(s, a, b)
			a.discard()
			b.discard()
			for _, c := range []struct {
				who  string
				err  error
				want bool
			}{{"a", errA, tc.wantA}, {"b", errB, tc.wantB}} {
				if (c.err == nil) != c.want {
					t.Errorf("%s's commit: %v, want success %t", c.who, c.err, c.want)
				}
				if c.err != nil && !errors.Is(c.err, badger.ErrConflict) {
					t.Errorf("%s's commit failed with %v, not a conflict to retry", c.who, c.err)
				}
			}
			if n := len(s.addrs.readers); n != 0 {
				t.Errorf("%d blind readers left after both ended", n)
			}
		})
	}
}

// TestAddressFilterKnowsStoredAddresses: addresses written before the
// store was opened, and by committed transactions since, are read from
// the store, never taken as free.
func TestAddressFilterKnowsStoredAddresses(t *testing.T) {
	dir := t.TempDir()
	s := filterStore(t, dir)
	const n = 5000 // more than fit one block of the filter, and than load adds at a time
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
	write := func(s *Store, from, to int) {
		t.Helper()
		tx := s.begin()
		for i := from; i < to; i++ {
			if err := tx.ClaimAddress("t", addr(i), fmt.Sprint("id", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.commit(tx); err != nil {
			t.Fatal(err)
		}
	}
	write(s, 0, n)
	s.Close()
	s = filterStore(t, dir)
	defer s.Close()
	write(s, n, 2*n)
	tx := s.begin()
	defer tx.discard()
	for i := 0; i < 2*n; i++ {
		id, _, err := tx.AddressHolder("t", addr(i))
		if err != nil || id != fmt.Sprint("id", i) {
			t.Fatalf("%s: %q, %v", addr(i), id, err)
		}
	}
	if n := blindReads(tx); n != 0 {
		t.Fatalf("%d stored addresses were taken as free", n)
	}
	// Free addresses are mostly answered without a read.
	for i := 2 * n; i < 4*n; i++ {
		if _, _, err := tx.AddressHolder("t", addr(i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: %v", addr(i), err)
		}
	}
	if blind := blindReads(tx); blind < 2*n*98/100 {
		t.Fatalf("only %d of %d free addresses were answered by the filter", blind, 2*n)
	}
}

// TestAddressBornAssetsNeedNoEntry follows an asset made from its
// address (model.AddressAssetID): no index entry is written for it, yet
// every lookup names it, also after a reopen; once it leaves the address,
// or another asset takes it, an entry says so.
func TestAddressBornAssetsNeedNoEntry(t *testing.T) {
	dir := t.TempDir()
	s := filterStore(t, dir)
	ctx := context.Background()
	x := netip.MustParseAddr("198.18.7.5")
	born := model.AddressAssetID("t", x)
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	asset := func(id string, version uint64, ips ...netip.Addr) *model.Version {
		a := model.Asset{ID: id, Tenant: "t", Version: version, Status: sdk.StatusUp, FirstSeen: now, LastSeen: now}
		for _, ip := range ips {
			a.Addresses = append(a.Addresses, sdk.Address{Addr: ip.String(), Type: "ipv4"})
		}
		return &model.Version{AssetID: id, Version: version, Time: now, Source: "nmap", Job: "scan", RunID: "r",
			Changes: []model.Change{{Field: "status", To: "up"}}, Asset: a}
	}
	write := func(prev *model.Asset, v *model.Version) {
		t.Helper()
		if err := s.Update(ctx, func(tx *Txn) error { return tx.PutVersion(prev, v) }); err != nil {
			t.Fatal(err)
		}
	}
	// check looks x up every way the store offers.
	check := func(what, wantID string, wantLeft bool) {
		t.Helper()
		if err := s.View(ctx, func(tx *Txn) error {
			id, left, err := tx.AddressHolder("t", x)
			if wantID == "" {
				if !errors.Is(err, ErrNotFound) {
					return fmt.Errorf("holder %q, %v; want none", id, err)
				}
			} else if err != nil || id != wantID || left != wantLeft {
				return fmt.Errorf("holder %q left %t, %v; want %q left %t", id, left, err, wantID, wantLeft)
			}
			if mid, mleft, err := tx.AddressHolder("t", netip.AddrFrom16(x.As16())); mid != id || mleft != left || (err == nil) != (wantID != "") {
				return fmt.Errorf("as ::ffff:%s: holder %q left %t, %v", x, mid, mleft, err)
			}
			want := []string{}
			if wantID != "" && !wantLeft {
				want = append(want, wantID)
			}
			// The /16 as IPv4 and as IPv4 in IPv6.
			for _, p := range []string{"198.18.0.0/16", "::ffff:198.18.0.0/112"} {
				inRange := []string{}
				if err := tx.AssetIDsInPrefix("t", netip.MustParsePrefix(p), func(id string) error {
					inRange = append(inRange, id)
					return nil
				}); err != nil {
					return err
				}
				if fmt.Sprint(inRange) != fmt.Sprint(want) {
					return fmt.Errorf("%s holds %v, want %v", p, inRange, want)
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	entry := func() bool {
		t.Helper()
		found := false
		if err := s.db.View(func(txn *badger.Txn) error {
			_, err := txn.Get(ipKey("t", x))
			found = err == nil
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}

	check("before", "", false)
	// An id of the same shape that is not the one x makes is no holder.
	write(nil, asset(born[:8]+"ffffffff", 1, netip.MustParseAddr("198.19.9.9")))
	first := asset(born, 1, x)
	write(nil, first)
	if entry() {
		t.Fatal("an index entry was written for the address the asset was made from")
	}
	if err := s.View(ctx, func(tx *Txn) error {
		id, err := tx.AssetIDByIP("t", netip.MustParseAddr("198.19.9.9"))
		if err != nil || id != born[:8]+"ffffffff" {
			return fmt.Errorf("the other asset's address: %q, %v", id, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("made from x", born, false)
	s.Close()
	s = filterStore(t, dir)
	defer func() { s.Close() }()
	tx := s.begin()
	if _, _, err := tx.AddressHolder("t", x); err != nil || blindReads(tx) != 1 {
		t.Fatalf("after a reopen the filter does not know x is held: %v (blind reads %d)", err, blindReads(tx))
	}
	tx.discard()
	check("after a reopen", born, false)

	// The asset leaves x: an entry says so.
	y := netip.MustParseAddr("198.19.7.6")
	second := asset(born, 2, y)
	write(&first.Asset, second)
	if !entry() {
		t.Fatal("no entry after the asset left the address it was made from")
	}
	check("left", born, true)
	// Another asset takes x.
	other := asset("0123456789abcdef", 1, x)
	write(nil, other)
	check("taken", "0123456789abcdef", false)
}
