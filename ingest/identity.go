package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// resolved is the asset an observation belongs to (model/identity.go has
// the order of the keys).
type resolved struct {
	prev *model.Asset // nil: a new asset
	id   string
	// absorb are assets known only by one of the observation's
	// addresses, which its keys show to be this machine: they are folded
	// in and retired.
	absorb []*model.Asset
	// rival is a live asset known as another machine that holds one of
	// the observation's addresses, rivalIP: the address stays with it,
	// and both carry an identity_conflict.
	rival   *model.Asset
	rivalIP netip.Addr
	// keyed is set when the observation carried identity keys.
	keyed bool
	// splitFrom is the asset that held the observation's address and has
	// left it (a provider's machine that moved): the observation is
	// another machine, split off from it.
	splitFrom string
	// reclaim is an address the asset held before another did, which it
	// takes back: the address index still names the other.
	reclaim netip.Addr
}

// resolve finds the asset of o: by its identity keys, strongest first,
// then by its first address; then what its other addresses say.
func resolve(t *store.Txn, tenant string, o *sdk.Observation) (resolved, error) {
	keys := model.ObservationKeys(o)
	r := resolved{keyed: len(keys) > 0}
	for _, k := range keys {
		id, err := t.AssetIDByIdentity(tenant, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return r, err
		}
		a, err := t.Asset(tenant, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return r, err
		}
		if a.Status != model.StatusMerged && model.HasKey(a, k) {
			r.prev, r.id = a, a.ID
			break
		}
	}
	var ips []netip.Addr
	for _, ad := range o.Addresses {
		if ad.Type == "mac" {
			continue
		}
		if ip, err := netip.ParseAddr(ad.Addr); err == nil {
			ips = append(ips, ip.Unmap())
		}
	}
	owners := make([]*model.Asset, len(ips))
	left := false // the first address was held by an asset that has left it
	for i, ip := range ips {
		a, stale, err := ownerOf(t, tenant, ip)
		if err != nil {
			return r, err
		}
		owners[i] = a
		if i == 0 {
			left = stale
		}
	}
	if r.prev == nil {
		var err error
		switch first := firstOwner(owners); {
		case first != nil && !model.Contradicts(first, keys):
			r.prev, r.id = first, first.ID
		case len(ips) > 0 && owners[0] == nil && !left:
			r.id = AssetID(tenant, ips[0]) // no asset ever held it (store.Txn.AddressHolder)
		case len(ips) > 0 && owners[0] == nil && !model.StrongKeys(keys):
			// What answers at an address a machine left (a scan sees no
			// more than a MAC) is split off that machine.
			r.id, r.prev, r.splitFrom, err = addressAsset(t, tenant, ips[0])
			if r.prev != nil {
				r.reclaim = ips[0]
			}
		case len(keys) > 0:
			r.id = keyAssetID(tenant, keys[0])
			r.prev, err = existing(t, tenant, r.id)
		default:
			r.id = AssetID(tenant, netip.Addr{})
			r.prev, err = existing(t, tenant, r.id)
		}
		if err != nil {
			return r, err
		}
	}
	for i, a := range owners {
		switch {
		case a == nil || a.ID == r.id:
		case a.Status == sdk.StatusUp && model.Contradicts(a, keys):
			if r.rival == nil {
				r.rival, r.rivalIP = a, ips[i]
			}
		case len(model.AssetKeys(a)) == 0 && model.StrongKeys(keys) && !containsAsset(r.absorb, a.ID):
			// A MAC alone (a scan on the segment) does not merge two
			// histories: the address may have been another machine's.
			r.absorb = append(r.absorb, a)
		}
		// Otherwise the address moved from a machine that is down, or
		// whose keys do not say it is another: it follows the keys.
	}
	return r, nil
}

// ownerOf is the asset the address index names for ip, following a
// merged asset to the one it went into; nil when none holds it, and then
// stale tells whether one did (an address a provider no longer reports
// has left its machine).
func ownerOf(t *store.Txn, tenant string, ip netip.Addr) (owner *model.Asset, stale bool, err error) {
	a, left, err := t.HolderAsset(tenant, ip)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case left:
		return nil, true, nil
	}
	if into := a.Facts[model.FactMergedInto]; a.Status == model.StatusMerged && into != "" {
		if a, err = t.Asset(tenant, into); err != nil {
			return nil, false, err
		}
	}
	if !model.Holds(a, ip) {
		return nil, true, nil
	}
	return a, false, nil
}

// addressAsset is the asset of an address no asset holds: the one first
// known by it (AssetID), or, when that one has become a machine that no
// longer holds the address (a provider's, which moved away), the one
// split off from it, in turn. splitFrom names the machine the address
// left when the asset found is split off from it: the one it had been
// merged into, or the one stepped over.
func addressAsset(t *store.Txn, tenant string, ip netip.Addr) (id string, prev *model.Asset, splitFrom string, err error) {
	id = AssetID(tenant, ip)
	if legacy := legacyAssetID(tenant, ip); legacy != id {
		// A store written before ids began with the address knows the
		// host by its hash.
		switch a, err := existing(t, tenant, id); {
		case err != nil:
			return id, nil, "", err
		case a == nil:
			if a, err = existing(t, tenant, legacy); err != nil {
				return id, nil, "", err
			} else if a != nil {
				id = legacy
			}
		}
	}
	for range 8 { // each step is a machine that held the address and left it
		a, err := existing(t, tenant, id)
		switch {
		case err != nil:
			return id, nil, "", err
		case a == nil:
			return id, nil, splitFrom, nil
		case a.Status == model.StatusMerged:
			return id, a, a.Facts[model.FactMergedInto], nil
		case model.Holds(a, ip):
			return id, a, "", nil
		}
		splitFrom = a.ID
		id = splitAssetID(tenant, ip, a.ID)
	}
	return id, nil, "", fmt.Errorf("address %s: more than 8 machines held it one after another", ip)
}

// existing reads asset id, nil if there is none.
func existing(t *store.Txn, tenant, id string) (*model.Asset, error) {
	a, err := t.Asset(tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return a, err
}

// splitAssetID names the asset of an address split off from the asset
// from, which the address was first known as.
func splitAssetID(tenant string, ip netip.Addr, from string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + ip.String() + "\x00split\x00" + from))
	return hex.EncodeToString(sum[:8])
}

func firstOwner(owners []*model.Asset) *model.Asset {
	if len(owners) == 0 {
		return nil
	}
	return owners[0]
}

func containsAsset(as []*model.Asset, id string) bool {
	for _, a := range as {
		if a.ID == id {
			return true
		}
	}
	return false
}

// keyAssetID names the asset of a machine first known by an identity key
// (AssetID names one first known by its address).
func keyAssetID(tenant string, k model.IdentityKey) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + k.Kind + "\x00" + k.Value))
	return hex.EncodeToString(sum[:8])
}

// withoutAddress is o without ip, which another machine holds.
func withoutAddress(o *sdk.Observation, ip netip.Addr) *sdk.Observation {
	c := *o
	c.Addresses = nil
	for _, a := range o.Addresses {
		if a.Type == "mac" || a.Addr != ip.String() {
			c.Addresses = append(c.Addresses, a)
		}
	}
	return &c
}

// apply merges o into the asset r names, with what identity found on the
// way: an absorbed asset folded in and retired, an identity conflict
// recorded on both machines or ended.
func (a *Applier) apply(t *store.Txn, r resolved, o *sdk.Observation, tenant string, scope sdk.Scope, ref model.RunRef, now time.Time, sum *Summary) error {
	reported := o
	ip := r.rivalIP
	if r.rival != nil {
		o = withoutAddress(o, ip)
	}
	base := r.prev
	var extra []model.Change
	if len(r.absorb) > 0 {
		var folded model.Asset
		if r.prev != nil {
			folded = *r.prev
		} else {
			folded = model.Asset{ID: r.id, Tenant: tenant}
		}
		folded.Addresses = append([]sdk.Address(nil), folded.Addresses...)
		folded.Services = append([]model.Service(nil), folded.Services...)
		folded.Sources = append([]string(nil), folded.Sources...)
		for _, ab := range r.absorb {
			extra = append(extra, model.Absorb(&folded, ab)...)
		}
		base = &folded
	}
	next, changes := model.Merge(base, tenant, r.id, *o, scope, ref, now)
	changes = append(changes, extra...)
	if r.splitFrom != "" {
		// The address left the machine r.splitFrom, and this one answers
		// on it: a machine of its own (again, if it had been merged).
		_, ch := model.Unmerge(&next)
		changes = append(changes, ch...)
		if len(ch) == 0 {
			changes = append(changes, model.Change{Field: "split", From: r.splitFrom, To: next.ID})
		}
	}
	source := ref.Source
	if o.Source != "" {
		source = o.Source
	}
	changes = append(changes, model.ReleaseAddresses(&next, reported, source)...)
	if len(scope.Prefixes) > 0 && o.Status != sdk.StatusDown {
		changes = append(changes, model.FoundByScan(&next)...) // it answered a scan
	}
	var rivalChanges []model.Change
	var rival model.Asset
	switch {
	case r.rival != nil:
		changes = append(changes, model.SetConflict(&next,
			fmt.Sprintf("%s is also held by asset %s, known as another machine; it stays with that one", ip, r.rival.ID), r.rival.ID)...)
		rival = cloneAsset(r.rival)
		rivalChanges = model.SetConflict(&rival, fmt.Sprintf("%s is also claimed by asset %s (%s)", ip, next.ID, instanceOf(o)), next.ID)
	case r.keyed && next.Facts[model.FactConflictWith] != "":
		// The machine no longer claims a held address: the conflict ends
		// on both.
		other := next.Facts[model.FactConflictWith]
		changes = append(changes, model.ClearConflict(&next)...)
		if oa, err := t.Asset(tenant, other); err == nil && oa.Facts[model.FactConflictWith] == next.ID {
			rival = cloneAsset(oa)
			rivalChanges = model.ClearConflict(&rival)
			r.rival = oa
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := a.write(t, r.prev, &next, changes, ref, now, sum); err != nil {
		return err
	}
	if len(rivalChanges) > 0 {
		if err := a.write(t, r.rival, &rival, rivalChanges, ref, now, sum); err != nil {
			return err
		}
	}
	for _, ab := range r.absorb {
		retired, changes := model.Retire(*ab, next.ID)
		if err := a.write(t, ab, &retired, changes, ref, now, sum); err != nil {
			return err
		}
	}
	if r.splitFrom != "" {
		if err := a.recordSplit(t, tenant, r.splitFrom, next.ID, ref, now, sum); err != nil {
			return err
		}
	}
	if r.reclaim.IsValid() {
		if err := t.ClaimAddress(tenant, r.reclaim, next.ID); err != nil {
			return err
		}
	}
	return nil
}

// recordSplit writes into the history of the asset from that the asset
// to left it.
func (a *Applier) recordSplit(t *store.Txn, tenant, from, to string, ref model.RunRef, now time.Time, sum *Summary) error {
	prev, err := existing(t, tenant, from)
	if err != nil || prev == nil {
		return err
	}
	next := cloneAsset(prev)
	return a.write(t, prev, &next, []model.Change{{Field: "split", From: from, To: to}}, ref, now, sum)
}

func cloneAsset(a *model.Asset) model.Asset {
	c := *a
	c.Addresses = slices.Clone(a.Addresses)
	c.Sources = slices.Clone(a.Sources)
	c.Facts = make(map[string]string, len(a.Facts)+2)
	for k, v := range a.Facts {
		c.Facts[k] = v
	}
	return c
}

func instanceOf(o *sdk.Observation) string {
	if o.InstanceID != "" {
		return o.InstanceID
	}
	if keys := model.ObservationKeys(o); len(keys) > 0 {
		return keys[0].Kind + " " + keys[0].Value
	}
	return "no identity"
}
