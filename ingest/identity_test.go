package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// node is what a provider reports of a machine: its instance id, a MAC
// and addresses.
func node(instance, mac string, ips ...string) sdk.Observation {
	o := sdk.Observation{Status: sdk.StatusUp, InstanceID: instance, Facts: map[string]string{"provider": "puppetdb"}}
	for _, ip := range ips {
		o.Addresses = append(o.Addresses, sdk.Address{Addr: ip, Type: "ipv4"})
	}
	if mac != "" {
		o.Addresses = append(o.Addresses, sdk.Address{Addr: mac, Type: "mac"})
	}
	return o
}

var pull = sdk.Scope{} // a provider pull claims no range

func (f *fixture) assets() map[string]model.Asset {
	f.t.Helper()
	out := map[string]model.Asset{}
	if err := f.st.View(context.Background(), func(t *store.Txn) error {
		return t.ForEachAsset(model.DefaultTenant, func(a *model.Asset) error { out[a.ID] = *a; return nil })
	}); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) history(id string) []model.Version {
	f.t.Helper()
	var hist []model.Version
	if err := f.st.View(context.Background(), func(t *store.Txn) error {
		var err error
		hist, err = t.History(model.DefaultTenant, id)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return hist
}

func (f *fixture) assetAt(ip string) model.Asset {
	f.t.Helper()
	var a *model.Asset
	if err := f.st.View(context.Background(), func(t *store.Txn) error {
		id, err := t.AssetIDByIP(model.DefaultTenant, netip.MustParseAddr(ip))
		if err != nil {
			return err
		}
		a, err = t.Asset(model.DefaultTenant, id)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return *a
}

func live(as map[string]model.Asset) int {
	n := 0
	for _, a := range as {
		if a.Status != model.StatusMerged {
			n++
		}
	}
	return n
}

// TestOneAssetPerMachine: a scan sees an address, a provider the same
// machine with its instance id and MAC: one asset. When the machine's
// address changes, the provider's keys keep it the same asset, and the
// scan of the new address finds it.
func TestOneAssetPerMachine(t *testing.T) {
	f := newFixture(t)
	f.run(scope("198.18.0.0/24", "22"), host("198.18.0.5", 22))
	f.run(pull, node("puppetdb:web1", "52:54:00:AA:BB:01", "198.18.0.5"))
	as := f.assets()
	if len(as) != 1 {
		t.Fatalf("%d assets, want 1: %+v", len(as), as)
	}
	a := f.assetAt("198.18.0.5")
	if a.Facts["instance_id:puppetdb"] != "puppetdb:web1" || len(a.Services) != 1 || !strings.Contains(strings.Join(a.Sources, ","), "nmap") {
		t.Fatalf("merged asset: %+v", a)
	}
	// DHCP moves the machine: the provider reports the new address, and
	// the keys find the asset.
	f.run(pull, node("puppetdb:web1", "52:54:00:aa:bb:01", "198.18.0.9"))
	if as := f.assets(); len(as) != 1 {
		t.Fatalf("after the address moved: %d assets", len(as))
	}
	if b := f.assetAt("198.18.0.9"); b.ID != a.ID {
		t.Fatalf("the new address went to asset %s, the machine is %s", b.ID, a.ID)
	}
	// The same machine by MAC only (a switch's ARP table, say).
	byMAC := sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{{Addr: "52:54:00:aa:bb:01", Type: "mac"}}}
	f.run(pull, byMAC)
	if as := f.assets(); len(as) != 1 {
		t.Fatalf("after a sighting by MAC: %d assets", len(as))
	}
}

// TestAddressOnlyAssetIsAbsorbed: the provider knows the machine by one
// address, a scan found it by another before the provider said so: once
// the provider reports both, the scanned asset is folded into the
// machine's, its services kept, and the merge is in both histories.
func TestAddressOnlyAssetIsAbsorbed(t *testing.T) {
	f := newFixture(t)
	f.run(pull, node("puppetdb:db1", "", "198.18.1.1"))
	f.run(scope("198.18.1.0/24", "5432"), host("198.18.1.2", 5432))
	if as := f.assets(); len(as) != 2 {
		t.Fatalf("%d assets before the merge", len(as))
	}
	machine := f.assetAt("198.18.1.1")
	scanned := f.assetAt("198.18.1.2")
	f.run(pull, node("puppetdb:db1", "", "198.18.1.1", "198.18.1.2"))
	as := f.assets()
	if live(as) != 1 {
		t.Fatalf("%d live assets after the merge: %+v", live(as), as)
	}
	got := f.assetAt("198.18.1.2")
	if got.ID != machine.ID || len(got.Services) != 1 || got.Services[0].Port != 5432 {
		t.Fatalf("the machine's asset after the merge: %+v", got)
	}
	gone := as[scanned.ID]
	if gone.Status != model.StatusMerged || gone.Facts[model.FactMergedInto] != machine.ID {
		t.Fatalf("the absorbed asset: %+v", gone)
	}
	for _, id := range []string{machine.ID, scanned.ID} {
		hist := f.history(id)
		last := hist[len(hist)-1]
		if !hasChange(last.Changes, "merged", scanned.ID, machine.ID) {
			t.Fatalf("history of %s ends with %+v, want the merge", id, last.Changes)
		}
	}
	// The next scan of the absorbed address updates the machine.
	f.run(scope("198.18.1.0/24", "5432"), host("198.18.1.2"))
	if got := f.assetAt("198.18.1.2"); got.ID != machine.ID || len(got.Services) != 0 {
		t.Fatalf("a rescan after the merge: %+v", got)
	}
}

func hasChange(cs []model.Change, field, from, to string) bool {
	for _, c := range cs {
		if c.Field == field && c.From == from && c.To == to {
			return true
		}
	}
	return false
}

// TestTwoLiveMachinesOneAddress: a second machine claims an address a
// live one holds. Nothing is overwritten: the address stays, both carry
// an identity_conflict, and the deviation resolves once the claim ends.
func TestTwoLiveMachinesOneAddress(t *testing.T) {
	f := newFixture(t, rules.Rule{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.2.0/24")},
		Severity: model.SeverityWarning, IdentityConflicts: model.SeverityCritical})
	f.run(pull, node("puppetdb:web1", "52:54:00:00:00:01", "198.18.2.10"))
	holder := f.assetAt("198.18.2.10")
	f.run(pull, node("puppetdb:web1", "52:54:00:00:00:01", "198.18.2.10"), node("puppetdb:web2", "52:54:00:00:00:02", "198.18.2.10", "198.18.2.11"))
	if got := f.assetAt("198.18.2.10"); got.ID != holder.ID {
		t.Fatalf("the address moved to %s; it belongs to %s", got.ID, holder.ID)
	}
	claimant := f.assetAt("198.18.2.11")
	if claimant.ID == holder.ID || claimant.Facts[model.FactConflictWith] != holder.ID || f.assetAt("198.18.2.10").Facts[model.FactConflictWith] != claimant.ID {
		t.Fatalf("conflict not recorded: holder %+v claimant %+v", f.assetAt("198.18.2.10").Facts, claimant.Facts)
	}
	for _, ad := range claimant.Addresses {
		if ad.Addr == "198.18.2.10" {
			t.Fatalf("the claimant took the held address: %+v", claimant.Addresses)
		}
	}
	expectActive(t, f.active(), "identity_conflict 198.18.2.10 lan critical", "identity_conflict 198.18.2.11 lan critical")
	// web2 gets its own address back: the conflict ends on both.
	f.run(pull, node("puppetdb:web2", "52:54:00:00:00:02", "198.18.2.11"))
	expectActive(t, f.active())
	if f.assetAt("198.18.2.10").Facts[model.FactIdentityConflict] != "" || f.assetAt("198.18.2.11").Facts[model.FactIdentityConflict] != "" {
		t.Fatal("conflict facts left behind")
	}
}

// TestMovedAddressFollowsTheKeys: an address whose holder is down goes
// to the machine that claims it now, without a conflict.
func TestMovedAddressFollowsTheKeys(t *testing.T) {
	f := newFixture(t)
	old := node("openstack:old", "", "198.18.3.5")
	f.run(pull, old)
	old.Status = sdk.StatusDown
	f.run(pull, old)
	f.run(pull, node("openstack:new", "", "198.18.3.5"))
	got := f.assetAt("198.18.3.5")
	if got.Facts["instance_id:openstack"] != "openstack:new" || got.Facts[model.FactIdentityConflict] != "" {
		t.Fatalf("the address after it moved: %+v", got)
	}
	if live(f.assets()) != 2 {
		t.Fatalf("want the old and the new machine: %+v", f.assets())
	}
}

// TestUnmanagedHosts: with PuppetDB as the source of truth for a range,
// a host the scan finds there that PuppetDB does not know is unmanaged,
// until PuppetDB reports it.
func TestUnmanagedHosts(t *testing.T) {
	f := newFixture(t, rules.Rule{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.4.0/24")},
		Severity: model.SeverityWarning, ManagedBy: []string{"puppetdb"}, Unmanaged: model.SeverityWarning})
	f.run(scope("198.18.4.0/24", "22"), host("198.18.4.1", 22), host("198.18.4.2", 22))
	got := f.active()
	sort.Strings(got)
	expectActive(t, got, "unmanaged 198.18.4.1 lan warning", "unmanaged 198.18.4.2 lan warning")
	f.runOf("pdb", "puppetdb", pull, node("puppetdb:web1", "", "198.18.4.1"))
	expectActive(t, f.active(), "unmanaged 198.18.4.2 lan warning")
	// A host only PuppetDB reports is not "seen" by anything else: not
	// unmanaged, whatever else it is.
	f.runOf("pdb", "puppetdb", pull, node("puppetdb:web1", "", "198.18.4.1"), node("puppetdb:db1", "", "198.18.4.3"))
	expectActive(t, f.active(), "unmanaged 198.18.4.2 lan warning")
}

// TestMissingMachines: a machine PuppetDB reports running that three
// successful scans in a row do not find is missing; one miss is not
// enough, and an answer ends it.
func TestMissingMachines(t *testing.T) {
	f := newFixture(t, rules.Rule{Name: "lan", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.5.0/24")},
		Severity: model.SeverityWarning, ManagedBy: []string{"puppetdb"}, Missing: model.SeverityCritical, MissingAfter: 3})
	sc := scope("198.18.5.0/24", "22")
	web := node("puppetdb:web1", "", "198.18.5.1")
	web.Facts["instance_state"] = "active"
	f.runOf("pdb", "puppetdb", pull, web)
	f.run(sc, host("198.18.5.1", 22))
	for miss := 1; miss <= 3; miss++ {
		f.run(sc)                             // the machine does not answer
		f.runOf("pdb", "puppetdb", pull, web) // and PuppetDB still reports it
		if miss < 3 {
			expectActive(t, f.active())
		}
	}
	expectActive(t, f.active(), "missing 198.18.5.1 lan critical")
	if n := model.ScanMisses(ptr(f.assetAt("198.18.5.1"))); n != 3 {
		t.Fatalf("scan misses %d, want 3 (the count stops at what the rule asks)", n)
	}
	f.run(sc) // a fourth miss changes nothing more
	expectActive(t, f.active(), "missing 198.18.5.1 lan critical")
	f.run(sc, host("198.18.5.1", 22))
	expectActive(t, f.active())
	// A machine no provider knows is never missing, however long it is gone.
	other := host("198.18.5.9", 22)
	f.run(sc, host("198.18.5.1", 22), other)
	for range 4 {
		f.run(sc, host("198.18.5.1", 22))
	}
	expectActive(t, f.active())
}

func ptr(a model.Asset) *model.Asset { return &a }

// changesOf lists a version's changes as "field:key:from>to".
func changesOf(v model.Version) string {
	var out []string
	for _, c := range v.Changes {
		out = append(out, c.Field+":"+c.Key+":"+c.From+">"+c.To)
	}
	return strings.Join(out, " ")
}

func historyHas(hist []model.Version, want string) bool {
	for _, v := range hist {
		if strings.Contains(" "+changesOf(v)+" ", " "+want+" ") {
			return true
		}
	}
	return false
}

// TestSplitOffWhenTheMachineLeaves: an address that a provider stops
// reporting leaves its machine with the ports found on it; what answers
// there next is a machine of its own, split off, and both histories say
// so. An asset that had been merged into the machine comes back; one
// that was the machine's own first sighting is not reused.
func TestSplitOffWhenTheMachineLeaves(t *testing.T) {
	f := newFixture(t)
	pdb := func(obs ...sdk.Observation) { f.t.Helper(); f.runOf("pdb", "puppetdb", pull, obs...) }
	scan := func(ip string, open ...uint16) {
		f.t.Helper()
		var obs []sdk.Observation
		if len(open) > 0 && open[0] != 0 {
			obs = append(obs, host(ip, open...))
		}
		f.run(scope(ip+"/32", "1-1024"), obs...)
	}

	// The machine web1 at .9; a scan finds .5 on its own; then the
	// provider reports .5 as web1's too: the scanned asset merges.
	pdb(node("puppetdb:web1", "52:54:00:aa:bb:01", "198.18.0.9"))
	web1 := f.assetAt("198.18.0.9")
	scan("198.18.0.5", 22)
	scanned := f.assetAt("198.18.0.5")
	pdb(node("puppetdb:web1", "52:54:00:aa:bb:01", "198.18.0.9", "198.18.0.5"))
	if got := f.assetAt("198.18.0.5"); got.ID != web1.ID || len(got.Services) != 1 || got.Services[0].Address != "198.18.0.5" {
		t.Fatalf("after the merge, .5 is %+v", got)
	}
	if got := f.assets()[scanned.ID]; got.Status != model.StatusMerged {
		t.Fatalf("scanned asset %+v", got)
	}

	// web1 leaves .5: the address and its port leave the asset.
	pdb(node("puppetdb:web1", "52:54:00:aa:bb:01", "198.18.0.9"))
	w := f.assets()[web1.ID]
	if model.Holds(&w, netip.MustParseAddr("198.18.0.5")) || len(w.Services) != 0 || w.Facts["addresses:puppetdb"] != "198.18.0.9" {
		t.Fatalf("web1 after leaving .5: %+v", w)
	}
	if h := f.history(web1.ID); !historyHas(h, "address::198.18.0.5>") || !historyHas(h, "service:tcp/22:open>left with 198.18.0.5") {
		t.Fatalf("web1's history does not record the address leaving: %+v", h[len(h)-1])
	}
	if err := f.st.View(context.Background(), func(t *store.Txn) error {
		_, err := t.AssetIDByIP(model.DefaultTenant, netip.MustParseAddr("198.18.0.5"))
		return err
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the address index still names an asset for .5: %v", err)
	}
	// A scan that finds nothing at .5 does not mark web1 down.
	scan("198.18.0.5")
	if w := f.assets()[web1.ID]; w.Status != sdk.StatusUp {
		t.Fatalf("web1 marked %s by a scan of an address it left", w.Status)
	}
	// Something answers at .5 again: the merged asset comes back.
	scan("198.18.0.5", 22, 80)
	back := f.assetAt("198.18.0.5")
	if back.ID != scanned.ID || back.Status != sdk.StatusUp || back.Facts[model.FactMergedInto] != "" || len(back.Services) != 2 {
		t.Fatalf(".5 after the split: %+v", back)
	}
	if !historyHas(f.history(scanned.ID), "split::"+web1.ID+">"+scanned.ID) || !historyHas(f.history(web1.ID), "split::"+web1.ID+">"+scanned.ID) {
		t.Fatal("the split is not in both histories")
	}
	if w := f.assets()[web1.ID]; len(w.Services) != 0 || model.Holds(&w, netip.MustParseAddr("198.18.0.5")) {
		t.Fatalf("web1 took .5's ports back: %+v", w)
	}

	// db1 was first seen by the scan at .7, so its asset is .7's: when
	// it moves to .8, what answers at .7 is a new asset split off it.
	scan("198.18.0.7", 22)
	pdb(node("puppetdb:db1", "52:54:00:aa:bb:02", "198.18.0.7"))
	db1 := f.assetAt("198.18.0.7")
	pdb(node("puppetdb:db1", "52:54:00:aa:bb:02", "198.18.0.8"))
	scan("198.18.0.7", 443)
	other := f.assetAt("198.18.0.7")
	if other.ID == db1.ID || len(other.Services) != 1 || other.Services[0].Port != 443 || other.Facts["instance_id:puppetdb"] != "" {
		t.Fatalf(".7 after db1 left it: %+v (db1 %s)", other, db1.ID)
	}
	if !historyHas(f.history(other.ID), "split::"+db1.ID+">"+other.ID) || !historyHas(f.history(db1.ID), "split::"+db1.ID+">"+other.ID) {
		t.Fatal("the split off db1 is not in both histories")
	}
	if d := f.assetAt("198.18.0.8"); d.ID != db1.ID || len(d.Services) != 0 {
		t.Fatalf("db1 at .8: %+v", d)
	}
	// A later scan of .7 stays with the split-off asset.
	scan("198.18.0.7", 443)
	if got := f.assetAt("198.18.0.7"); got.ID != other.ID || len(f.history(other.ID)) != 1 {
		t.Fatalf("the rescan of .7 went to %s (history %d versions)", got.ID, len(f.history(other.ID)))
	}
}

// TestAddressHandedToAnotherMachine: an address a provider's machine
// left and the provider then gives another machine is that machine's,
// with no conflict and no split: the provider said whose it is.
func TestAddressHandedToAnotherMachine(t *testing.T) {
	f := newFixture(t)
	pdb := func(obs ...sdk.Observation) { f.t.Helper(); f.runOf("pdb", "puppetdb", pull, obs...) }
	f.run(scope("198.18.0.20/32", "1-1024"), host("198.18.0.20", 22))
	pdb(node("puppetdb:web3", "52:54:00:aa:bb:03", "198.18.0.20"))
	web3 := f.assetAt("198.18.0.20")
	pdb(node("puppetdb:web3", "52:54:00:aa:bb:03", "198.18.0.21"))
	pdb(node("puppetdb:web3", "52:54:00:aa:bb:03", "198.18.0.21"), node("puppetdb:web4", "52:54:00:aa:bb:04", "198.18.0.20"))
	web4 := f.assetAt("198.18.0.20")
	if web4.ID == web3.ID || web4.Facts["instance_id:puppetdb"] != "puppetdb:web4" || web4.Facts[model.FactIdentityConflict] != "" {
		t.Fatalf(".20 after the provider gave it to web4: %+v (web3 is %s)", web4, web3.ID)
	}
	if w := f.assets()[web3.ID]; w.Facts["instance_id:puppetdb"] != "puppetdb:web3" || w.Facts[model.FactIdentityConflict] != "" {
		t.Fatalf("web3: %+v", w)
	}
	for _, id := range []string{web3.ID, web4.ID} {
		for _, v := range f.history(id) {
			if strings.Contains(changesOf(v), "split:") {
				t.Fatalf("%s records a split: %s", id, changesOf(v))
			}
		}
	}
}

// TestIDsBeginWithTheAddress: hosts first known by an IPv4 address get
// ids that sort as their addresses do, and a host a store knows by the
// id older versions gave (a hash alone) keeps it: what answers at its
// address after the machine it had merged into left is that asset again.
func TestIDsBeginWithTheAddress(t *testing.T) {
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	a, b, c := AssetID("t", ip("198.18.0.9")), AssetID("t", ip("198.18.0.10")), AssetID("t", ip("198.18.1.1"))
	if !strings.HasPrefix(a, "c6120009") || !(a < b && b < c) || AssetID("u", ip("198.18.0.9")) == a {
		t.Fatalf("ids %s %s %s: not in address order, or not per tenant", a, b, c)
	}
	if v6 := AssetID("t", ip("2001:db8::1")); v6 != legacyAssetID("t", ip("2001:db8::1")) {
		t.Fatalf("an IPv6 host's id changed: %s", v6)
	}

	f := newFixture(t)
	old := legacyAssetID(model.DefaultTenant, ip("198.18.0.5"))
	now := time.Now().UTC()
	if err := f.st.Update(context.Background(), func(t *store.Txn) error {
		as := model.Asset{ID: old, Tenant: model.DefaultTenant, Version: 1, Status: sdk.StatusUp, FirstSeen: now, LastSeen: now,
			Addresses: []sdk.Address{{Addr: "198.18.0.5", Type: "ipv4"}}, Sources: []string{"nmap"}}
		return t.PutVersion(nil, &model.Version{AssetID: old, Version: 1, Time: now, Source: "nmap", Job: "scan", RunID: "r0",
			Changes: []model.Change{{Field: "status", To: "up"}}, Asset: as})
	}); err != nil {
		t.Fatal(err)
	}
	pdb := func(obs ...sdk.Observation) { f.t.Helper(); f.runOf("pdb", "puppetdb", pull, obs...) }
	pdb(node("puppetdb:web1", "52:54:00:aa:bb:01", "198.18.0.9", "198.18.0.5"))
	if got := f.assets()[old]; got.Status != model.StatusMerged {
		t.Fatalf("the old asset did not merge into web1: %+v", got)
	}
	pdb(node("puppetdb:web1", "52:54:00:aa:bb:01", "198.18.0.9"))
	f.run(scope("198.18.0.5/32", "1-1024"), host("198.18.0.5", 22))
	if back := f.assetAt("198.18.0.5"); back.ID != old || back.Status != sdk.StatusUp {
		t.Fatalf(".5 after web1 left it is %s (%s), not the asset %s it was", back.ID, back.Status, old)
	}
}

// TestConcurrentRunsFindTheSameNewHosts: two runs that find the same new
// hosts at the same time (two jobs over one network) make one asset per
// host, each version once, and a chain that verifies: the lookups that
// found the addresses free are retried when the other run took them.
func TestConcurrentRunsFindTheSameNewHosts(t *testing.T) {
	for round := range 4 {
		st, err := store.Open(t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := rules.Compile(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		app := &Applier{Store: st, Engine: func() *rules.Engine { return eng }}
		var obs []sdk.Observation
		for i := range 2048 {
			obs = append(obs, host(fmt.Sprintf("198.18.%d.%d", 8*round+i/256, i%256), 22))
		}
		errs := make(chan error, 2)
		for _, job := range []string{"a", "b"} {
			go func() {
				_, err := app.Apply(context.Background(), &model.Run{ID: "r-" + job, Tenant: model.DefaultTenant, Job: job, Source: "nmap"},
					obs, scope(fmt.Sprintf("198.18.%d.0/21", 8*round), "22"))
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		holders := map[string]string{}
		if err := st.View(context.Background(), func(tx *store.Txn) error {
			return tx.ForEachAsset(model.DefaultTenant, func(a *model.Asset) error {
				for _, ad := range a.Addresses {
					if other, dup := holders[ad.Addr]; dup {
						return fmt.Errorf("%s is held by %s and %s", ad.Addr, other, a.ID)
					}
					holders[ad.Addr] = a.ID
				}
				h, err := tx.History(model.DefaultTenant, a.ID)
				for i, v := range h {
					if v.Version != uint64(i+1) {
						return fmt.Errorf("asset %s: versions %+v", a.ID, h)
					}
				}
				return err
			})
		}); err != nil {
			t.Fatal(err)
		}
		if len(holders) != len(obs) {
			t.Fatalf("%d assets for %d hosts", len(holders), len(obs))
		}
		reps, err := st.VerifyChains(context.Background(), nil)
		if err != nil || len(reps) != 1 {
			t.Fatalf("verify: %+v, %v", reps, err)
		}
		if p := reps[0].Problems; len(p) > 0 {
			t.Fatalf("verify found %d problems, the first: %v", len(p), p[0])
		}
		st.Close()
	}
}
