package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// Txn is one store transaction. Its methods are the only way records are
// read and written, so the key layout stays in this package.
type Txn struct {
	txn *badger.Txn
	// read remembers the assets Asset read in this transaction with their
	// heads, so that writing one after reading it needs no second read.
	read map[assetRef]readAsset
	// links are the records written in this transaction that the commit
	// chains (chain.go); scratch is reused to encode them.
	links   []link
	scratch []byte
	digest  hash.Hash // hashes the versions for their links
	// addrs is the store's address filter in a read-write transaction;
	// addrUse is what this transaction read and wrote through it.
	addrs   *addressFilter
	addrUse *addressUse
	// arena holds the keys and values of the asset records this
	// transaction hands to Badger, which keeps them until the commit:
	// carved from chunks instead of allocated one by one. chunks are the
	// chunks taken, which go back to buffers once Badger is done with
	// them (recycle); a retried transaction is a new Txn.
	arena   []byte
	chunks  [][]byte
	buffers *txnBuffers
}

// txnBuffers keeps the arena chunks and link lists of transactions that
// ended for the next ones: a million new hosts filled about 500 MB of
// chunks, each used once.
type txnBuffers struct {
	mu     sync.Mutex
	chunks [][]byte
	links  [][]link
}

// keptBuffers bounds what txnBuffers holds: enough for the transactions
// the ingest workers have in flight.
const keptBuffers = 64

func (b *txnBuffers) chunk() []byte { return takeBuffer(&b.mu, &b.chunks, arenaChunk) }

func (b *txnBuffers) linkList() []link { return takeBuffer(&b.mu, &b.links, 256) }

// takeBuffer returns the last of kept, emptied, or a new slice with room
// for size elements.
func takeBuffer[T any](mu *sync.Mutex, kept *[][]T, size int) []T {
	mu.Lock()
	defer mu.Unlock()
	if n := len(*kept); n > 0 {
		b := (*kept)[n-1]
		*kept = (*kept)[:n-1]
		return b[:0]
	}
	return make([]T, 0, size)
}

// recycle hands t's chunks and links to its buffers. Only once Badger
// has ended the commit (or the transaction was discarded) is nothing left
// that points into them: Badger copies keys and values into its value log
// and memtable, the address filter keeps hashes, the chain what it staged.
func (t *Txn) recycle() {
	if t.buffers == nil {
		return
	}
	b := t.buffers
	b.mu.Lock()
	for _, c := range t.chunks {
		if len(b.chunks) < keptBuffers {
			b.chunks = append(b.chunks, c)
		}
	}
	if cap(t.links) > 0 && len(b.links) < keptBuffers {
		clear(t.links) // the refs point into the chunks
		b.links = append(b.links, t.links[:0])
	}
	b.mu.Unlock()
	t.arena, t.chunks, t.links = nil, nil, nil
}

// discard ends a transaction that did not commit.
func (t *Txn) discard() {
	t.txn.Discard()
	if t.addrs != nil {
		t.addrs.release(t)
	}
}

// setAddress writes an address index entry.
func (t *Txn) setAddress(key, value []byte) error {
	if t.addrs != nil {
		t.addrs.wrote(key, t, true)
	}
	return t.txn.Set(key, value)
}

func (t *Txn) addressUse() *addressUse {
	if t.addrUse == nil {
		t.addrUse = &addressUse{}
	}
	return t.addrUse
}

// arenaChunk is the size of the arena's chunks: a batch of new hosts
// takes one or a few.
const arenaChunk = 64 << 10

// room returns an empty slice of the arena with room for at least n
// bytes; what is appended to it belongs to the transaction once keep
// has been called on it.
func (t *Txn) room(n int) []byte {
	if cap(t.arena)-len(t.arena) < n {
		if n > arenaChunk/8 {
			return make([]byte, 0, n) // a large record gets its own array
		}
		if t.buffers != nil {
			t.arena = t.buffers.chunk()
			t.chunks = append(t.chunks, t.arena)
		} else {
			t.arena = make([]byte, 0, arenaChunk)
		}
	}
	return t.arena[len(t.arena):]
}

// keep takes b, appended to a slice from room, out of the arena for
// good, and returns it without spare capacity, so that no later append
// to it can write over what follows. A b that outgrew its room (and so
// lies elsewhere) is returned as it is.
func (t *Txn) keep(b []byte) []byte {
	b = b[:len(b):len(b)]
	if n := len(t.arena); len(b) > 0 && cap(t.arena)-n >= len(b) && &t.arena[n : n+1][0] == &b[0] {
		t.arena = t.arena[:n+len(b)]
	}
	return b
}

type assetRef struct{ tenant, id string }

type readAsset struct {
	asset *model.Asset
	head  rawHead // flag headNone: the record holds none
}

func (t *Txn) get(key []byte, into any) error {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(v []byte) error { return decode(v, into) })
}

func (t *Txn) put(key []byte, v any) error {
	b, err := encode(v)
	if err != nil {
		return err
	}
	return t.txn.Set(key, b)
}

// forEach calls fn for each key with prefix, from start (inclusive) to end
// (exclusive; nil = end of prefix), in key order or reversed.
func (t *Txn) forEach(prefix, start, end []byte, reverse, values bool, fn func(key, val []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: values, PrefetchSize: 64, Reverse: reverse})
	defer it.Close()
	if start == nil {
		start = prefix
		if reverse {
			// Reverse iteration seeks to the last key at or before start.
			start = append(append([]byte(nil), prefix...), bytes.Repeat([]byte{0xff}, 16)...)
		}
	}
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		k := item.Key()
		if end != nil && !reverse && bytes.Compare(k, end) >= 0 {
			return nil
		}
		var v []byte
		if values {
			var err error
			if v, err = item.ValueCopy(nil); err != nil {
				return err
			}
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Asset reads one asset.
func (t *Txn) Asset(tenant, id string) (*model.Asset, error) {
	a, h, err := t.readAsset(tenant, id)
	if err != nil {
		return nil, fmt.Errorf("asset %s: %w", id, err)
	}
	if t.read == nil {
		t.read = make(map[assetRef]readAsset)
	}
	t.read[assetRef{tenant, id}] = readAsset{asset: a, head: h}
	return a, nil
}

// readAsset reads an asset record and its head.
func (t *Txn) readAsset(tenant, id string) (*model.Asset, rawHead, error) {
	item, err := t.txn.Get(assetKey(tenant, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, rawHead{}, ErrNotFound
	}
	if err != nil {
		return nil, rawHead{}, err
	}
	var a model.Asset
	var h rawHead
	if err := item.Value(func(v []byte) error {
		var err error
		h, err = decodeAssetRecordRaw(v, &a) // a and h hold a copy of v
		return err
	}); err != nil {
		return nil, rawHead{}, err
	}
	return &a, h, nil
}

// AssetIDByIP looks up the asset that holds ip.
func (t *Txn) AssetIDByIP(tenant string, ip netip.Addr) (string, error) {
	id, left, err := t.AddressHolder(tenant, ip)
	if err == nil && left {
		return "", ErrNotFound
	}
	return id, err
}

// leftMark starts an address index entry whose asset has left the
// address (a provider's machine that moved): the entry stays, naming
// that asset, so that a missing entry keeps meaning that no asset ever
// held the address (ingest counts on it to name a new host's asset
// without reading whether one exists).
const leftMark = 0

// AddressHolder looks up the asset the address index names for ip, and
// whether that asset has left the address since. ErrNotFound: no asset
// ever held it.
func (t *Txn) AddressHolder(tenant string, ip netip.Addr) (id string, left bool, err error) {
	id, _, left, err = t.addressHolder(tenant, ip)
	return id, left, err
}

// HolderAsset is AddressHolder with the holder's asset, as Asset reads
// it (identity resolution reads it next; an address without an entry
// has been answered from it already).
func (t *Txn) HolderAsset(tenant string, ip netip.Addr) (a *model.Asset, left bool, err error) {
	id, a, left, err := t.addressHolder(tenant, ip)
	if err != nil || a != nil {
		return a, left, err
	}
	a, err = t.Asset(tenant, id)
	return a, left, err
}

// addressHolder is AddressHolder, with the holder's asset when it was
// read to find it.
func (t *Txn) addressHolder(tenant string, ip netip.Addr) (id string, a *model.Asset, left bool, err error) {
	ip = ip.Unmap()
	key := ipKey(tenant, ip)
	look := readIndex
	if t.addrs != nil {
		look = t.addrs.lookup(key, t)
	}
	switch look {
	case noHolder:
		return "", nil, false, ErrNotFound
	case readIndex:
		id, left, found, err := t.indexEntry(key)
		if err != nil {
			return "", nil, false, fmt.Errorf("address index %s: %w", ip, err)
		}
		if found {
			return id, nil, left, nil
		}
	}
	return t.bornHolder(tenant, ip)
}

// indexEntry reads the address index entry under key.
func (t *Txn) indexEntry(key []byte) (id string, left, found bool, err error) {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) > 0 && v[0] == leftMark {
			id, left = string(v[1:]), true
		} else {
			id = string(v)
		}
		return nil
	})
	return id, left, err == nil, err
}

// bornHolder is the holder of an address the index has no entry for: the
// asset made from it (model.AddressAssetID), which needs none as long as
// it holds the address and no other asset took it (both write an entry:
// putAssetRecord, markLeft). ErrNotFound: no asset ever held it.
func (t *Txn) bornHolder(tenant string, ip netip.Addr) (id string, a *model.Asset, left bool, err error) {
	if !ip.Is4() {
		return "", nil, false, ErrNotFound
	}
	id = model.AddressAssetID(tenant, ip)
	a, err = t.Asset(tenant, id)
	if errors.Is(err, ErrNotFound) {
		return "", nil, false, ErrNotFound
	}
	if err != nil {
		return "", nil, false, err
	}
	return id, a, !model.Holds(a, ip), nil
}

// bornAt reports whether id is the asset made from ip, which the address
// index names without an entry.
func bornAt(tenant, id string, ip netip.Addr) bool {
	born, ok := model.AddressOfID(tenant, id)
	return ok && born == ip
}

// ClaimAddress points the address index for ip at asset id, which now
// holds it: an asset that takes back an address it held before (split
// off the machine it had been merged into) is not indexed by writing it.
func (t *Txn) ClaimAddress(tenant string, ip netip.Addr, id string) error {
	if err := t.setAddress(ipKey(tenant, ip.Unmap()), []byte(id)); err != nil {
		return fmt.Errorf("index %s: %w", ip, err)
	}
	return nil
}

// PutAsset writes an asset whose change makes no new version, and indexes
// the IP addresses that prev (the version it replaces, nil for a new
// asset) did not have yet. prev must be the asset as read in this
// transaction.
func (t *Txn) PutAsset(a *model.Asset, prev *model.Asset) error {
	if prev == nil {
		return t.putAssetRecord(a, prev, appendAssetRecord(nil, a, nil))
	}
	var scratch [128]byte
	meta, vol, ok, err := t.carriedHead(a, scratch[:0])
	if err != nil {
		return fmt.Errorf("write asset %s: %w", a.ID, err)
	}
	if !ok {
		return t.putAssetRecord(a, prev, appendAssetRecord(nil, a, nil))
	}
	return t.putAssetRecord(a, prev, appendAssetRecordRaw(nil, a, meta, vol))
}

// PutVersion writes v.Asset as the current state of its asset and v as
// its newest version (v.Version must be v.Asset.Version), and indexes the
// IP addresses that prev (the state it replaces, as read in this
// transaction; nil for a new asset) did not have yet.
func (t *Txn) PutVersion(prev *model.Asset, v *model.Version) error {
	a := &v.Asset
	if v.AssetID != a.ID || v.Version != a.Version {
		return fmt.Errorf("write version %d of %s: it holds version %d of %s", v.Version, v.AssetID, a.Version, a.ID)
	}
	if prev != nil {
		r, err := t.readBefore(a)
		if err != nil {
			return fmt.Errorf("write asset %s: %w", a.ID, err)
		}
		if r.head.flag != headNone {
			if r.asset.Version >= v.Version {
				return fmt.Errorf("write version %d of %s: version %d is already recorded", v.Version, a.ID, r.asset.Version)
			}
			if err := t.spill(r); err != nil {
				return err
			}
		}
	}
	h := head{Time: v.Time, Source: v.Source, Job: v.Job, RunID: v.RunID, Changes: v.Changes}
	rec, bodyEnd := appendAssetRecordGrown(t.room(assetRecordSizeHint(a, &h)), a, &h)
	rec = t.keep(rec)
	if err := t.putAssetRecord(a, prev, rec); err != nil {
		return err
	}
	// The version's canonical encoding (appendVersion) is its header and
	// the body just encoded, and the header is the tag, asset id and
	// version number followed by what the record's head holds (time,
	// source, job, run, changes, after the head flag at bodyEnd): hashed
	// from the record's bytes, nothing is encoded twice
	// (TestPutVersionDigestIsTheVersions).
	vtag := rec[0] - codecAssetV2 + codecVersionV1 // assetTag(codecVersionV1, a)
	t.scratch = appendUvarint(appendString(append(t.scratch[:0], vtag), v.AssetID), v.Version)
	if t.digest == nil {
		t.digest = sha256.New()
	}
	d := t.digest
	d.Reset()
	d.Write(t.scratch)
	d.Write(rec[bodyEnd+1:])
	d.Write(rec[1:bodyEnd])
	var digest [sha256.Size]byte
	d.Sum(digest[:0])
	ref := t.keep(appendVersionRef(t.room(versionRefSize(v)), v))
	if t.links == nil && t.buffers != nil {
		t.links = t.buffers.linkList()
	}
	t.links = append(t.links, link{tenant: a.Tenant, kind: linkVersion, time: v.Time, digest: digest, ref: ref})
	return nil
}

// readBefore returns the stored state of a's asset as read in this
// transaction, reading it now if it was not.
func (t *Txn) readBefore(a *model.Asset) (readAsset, error) {
	ref := assetRef{a.Tenant, a.ID}
	if r, ok := t.read[ref]; ok {
		return r, nil
	}
	prev, h, err := t.readAsset(a.Tenant, a.ID)
	if errors.Is(err, ErrNotFound) {
		return readAsset{}, nil
	}
	return readAsset{asset: prev, head: h}, err
}

// carriedHead returns the head the record of a keeps when a is written
// without a new version, encoded: the stored head, with the snapshot's
// volatile fields where a moves them on (vol, appended to scratch; empty
// when they are a's). If a changes a field only a version may change, the
// head goes to the history first and the record keeps none (ok false).
func (t *Txn) carriedHead(a *model.Asset, scratch []byte) (meta string, vol []byte, ok bool, err error) {
	r, err := t.readBefore(a)
	if err != nil || r.head.flag == headNone {
		return "", nil, false, err
	}
	if !stableEqual(r.asset, a) {
		return "", nil, false, t.spill(r)
	}
	if r.head.flag == headSame {
		v := volatileOf(r.asset)
		vol = appendVolatile(scratch, &v)
	} else {
		vol = append(scratch, r.head.vol...)
	}
	var buf [128]byte
	cur := volatileOf(a)
	if string(appendVolatile(buf[:0], &cur)) == string(vol) {
		vol = vol[:0]
	}
	return r.head.meta, vol, true, nil
}

// spill writes the head of a stored asset to the history.
func (t *Txn) spill(r readAsset) error {
	h, err := r.head.decode()
	if err != nil {
		return fmt.Errorf("asset %s: %w", r.asset.ID, err)
	}
	v := snapshotVersion(r.asset, &h)
	return t.putHistory(r.asset.Tenant, &v)
}

func (t *Txn) putAssetRecord(a, prev *model.Asset, rec []byte) error {
	delete(t.read, assetRef{a.Tenant, a.ID}) // a later write in this transaction reads what this one wrote
	key := t.keep(appendAssetKey(t.room(assetKeySize(a.Tenant, a.ID)), a.Tenant, a.ID))
	// The address and identity index entries all hold a.ID: they share
	// one copy of it.
	id := t.keep(append(t.room(len(a.ID)), a.ID...))
	if err := t.txn.Set(key, rec); err != nil {
		return fmt.Errorf("write asset %s: %w", a.ID, err)
	}
	for _, ad := range a.Addresses {
		if prev != nil && slices.ContainsFunc(prev.Addresses, func(p sdk.Address) bool { return p.Addr == ad.Addr }) {
			continue
		}
		ip, err := netip.ParseAddr(ad.Addr)
		if err != nil {
			continue // MAC addresses are not indexed here
		}
		ip = ip.Unmap()
		if prev == nil && bornAt(a.Tenant, a.ID, ip) {
			// A new asset made from its address needs no entry for it
			// (bornHolder); the filter learns it holds the address.
			if t.addrs != nil {
				var buf [64]byte
				t.addrs.wrote(appendIPKey(buf[:0], a.Tenant, ip), t, false)
			}
			continue
		}
		if err := t.setAddress(t.keep(appendIPKey(t.room(ipKeySize(a.Tenant)), a.Tenant, ip)), id); err != nil {
			return fmt.Errorf("index %s: %w", ip, err)
		}
	}
	if prev != nil && !slices.Equal(prev.Addresses, a.Addresses) {
		if err := t.markLeft(a, prev); err != nil {
			return err
		}
	}
	return t.indexIdentity(a, prev, id)
}

// markLeft marks the address index entries of the IP addresses that prev
// had and a has left, where they still name a.
func (t *Txn) markLeft(a, prev *model.Asset) error {
	for _, ad := range prev.Addresses {
		if slices.ContainsFunc(a.Addresses, func(n sdk.Address) bool { return n.Addr == ad.Addr }) {
			continue
		}
		ip, err := netip.ParseAddr(ad.Addr)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		// The entry, not AddressHolder: a has already been written
		// without ip, and an asset made from ip that leaves it needs
		// the entry now (bornHolder names it only while it holds ip).
		key := ipKey(a.Tenant, ip)
		id, left, found, err := t.indexEntry(key)
		if err != nil {
			return fmt.Errorf("address index %s: %w", ip, err)
		}
		if found && (left || id != a.ID) || !found && !bornAt(a.Tenant, a.ID, ip) {
			continue
		}
		if err := t.setAddress(key, append([]byte{leftMark}, a.ID...)); err != nil {
			return fmt.Errorf("index %s: %w", ip, err)
		}
	}
	return nil
}

// indexIdentity indexes the identity keys a holds that prev did not.
// id is a.ID, held until the commit.
func (t *Txn) indexIdentity(a, prev *model.Asset, id []byte) error {
	if len(a.Facts) == 0 && !slices.ContainsFunc(a.Addresses, func(ad sdk.Address) bool { return ad.Type == "mac" }) {
		return nil // nothing a scan alone finds: no keys
	}
	if prev != nil && maps.Equal(a.Facts, prev.Facts) && slices.Equal(a.Addresses, prev.Addresses) {
		return nil
	}
	var had []model.IdentityKey
	if prev != nil {
		had = model.AssetKeys(prev)
	}
	for _, k := range model.AssetKeys(a) {
		if slices.Contains(had, k) {
			continue
		}
		if err := t.txn.Set(identityKey(a.Tenant, k), id); err != nil {
			return fmt.Errorf("index %s %s: %w", k.Kind, k.Value, err)
		}
	}
	return nil
}

// AssetIDByIdentity looks up the asset that holds an identity key.
func (t *Txn) AssetIDByIdentity(tenant string, k model.IdentityKey) (string, error) {
	item, err := t.txn.Get(identityKey(tenant, k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("identity index %s %s: %w", k.Kind, k.Value, err)
	}
	var id string
	err = item.Value(func(v []byte) error { id = string(v); return nil })
	return id, err
}

// AppendVersion writes one version straight into an asset's history, for
// imports and tests; ingest writes versions with PutVersion.
func (t *Txn) AppendVersion(tenant string, v *model.Version) error {
	if err := t.putHistory(tenant, v); err != nil {
		return err
	}
	t.linkVersion(tenant, v)
	return nil
}

// putHistory writes a version under its history key; a head moving out
// of its asset record keeps the chain entry it was written with.
func (t *Txn) putHistory(tenant string, v *model.Version) error {
	if err := t.put(historyKey(tenant, v.AssetID, v.Version), v); err != nil {
		return fmt.Errorf("write history of %s: %w", v.AssetID, err)
	}
	return nil
}

// AssetIDsInPrefix calls fn with the id of every asset holding an address
// inside p.
func (t *Txn) AssetIDsInPrefix(tenant string, p netip.Prefix, fn func(id string) error) error {
	p = p.Masked()
	if p.IsSingleIP() {
		// One key: a lookup, not an iterator that would prefetch the
		// index entries after it (the check of one host, thousands of
		// times a second).
		id, err := t.AssetIDByIP(tenant, p.Addr())
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(id)
	}
	first := p.Addr()
	last := lastAddr(p)
	prefix := ipPrefix(tenant)
	end := append(ipKey(tenant, last), 0)
	// The IPv4 addresses with an entry, in order: only IPv4 addresses
	// have address-born assets to tell apart from them.
	v4, hasV4 := ipv4Part(p)
	var entries []uint32
	if err := t.forEach(prefix, ipKey(tenant, first), end, false, true, func(k, v []byte) error {
		if hasV4 {
			if ip, ok := netip.AddrFromSlice(k[len(k)-16:]); ok && ip.Is4In6() {
				entries = append(entries, binary.BigEndian.Uint32(k[len(k)-4:]))
			}
		}
		if len(v) > 0 && v[0] == leftMark {
			return nil
		}
		return fn(string(v))
	}); err != nil {
		return err
	}
	if !hasV4 {
		return nil
	}
	// The assets made from an address of p that no entry names hold it
	// (bornHolder): their ids begin with it.
	p = v4
	f, l := v4.Addr().As4(), lastAddr(v4).As4()
	from := assetKey(tenant, hex.EncodeToString(f[:]))
	to := append(assetKey(tenant, hex.EncodeToString(l[:])), 'g') // past every hex digit
	return t.forEach(assetPrefix(tenant), from, to, false, false, func(k, _ []byte) error {
		id := string(k[len(assetPrefix(tenant)):])
		ip, born := model.AddressOfID(tenant, id)
		if !born || !p.Contains(ip) {
			return nil
		}
		if _, named := slices.BinarySearch(entries, binary.BigEndian.Uint32(ip.AsSlice())); named {
			return nil
		}
		return fn(id)
	})
}

// ipv4Part is the IPv4 prefix of the addresses p holds as IPv4 ones:
// p itself, or the part of an IPv6 prefix within ::ffff:0:0/96.
func ipv4Part(p netip.Prefix) (netip.Prefix, bool) {
	if p.Addr().Is4() {
		return p, true
	}
	mapped := netip.PrefixFrom(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff}), 96)
	switch {
	case p.Bits() <= 96 && p.Contains(mapped.Addr()):
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	case p.Bits() > 96 && mapped.Contains(p.Addr()):
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96), true
	}
	return netip.Prefix{}, false
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 1 << (7 - uint(i%8))
	}
	return netip.AddrFrom16(a)
}

// ForEachAsset calls fn for every asset of tenant, in id order.
func (t *Txn) ForEachAsset(tenant string, fn func(*model.Asset) error) error {
	return t.forEach(assetPrefix(tenant), nil, nil, false, true, func(_, v []byte) error {
		var a model.Asset
		if err := decode(v, &a); err != nil {
			return err
		}
		return fn(&a)
	})
}

// CountAssets counts the assets of tenant without decoding them.
func (t *Txn) CountAssets(tenant string) (int, error) {
	n := 0
	err := t.forEach(assetPrefix(tenant), nil, nil, false, false, func(_, _ []byte) error { n++; return nil })
	return n, err
}

// AssetAt is the asset as it stood at at: its newest version from then
// or before. ErrNotFound when it did not exist yet (or never did).
func (t *Txn) AssetAt(tenant, id string, at time.Time) (*model.Asset, error) {
	hist, err := t.History(tenant, id)
	if err != nil {
		return nil, err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		if !hist[i].Time.After(at) {
			a := hist[i].Asset
			return &a, nil
		}
	}
	return nil, ErrNotFound
}

// History returns the versions of an asset, oldest first.
func (t *Txn) History(tenant, id string) ([]model.Version, error) {
	var out []model.Version
	err := t.forEach(historyPrefix(tenant, id), nil, nil, false, true, func(_, v []byte) error {
		var ver model.Version
		if err := decode(v, &ver); err != nil {
			return err
		}
		out = append(out, ver)
		return nil
	})
	if err != nil {
		return out, err
	}
	a, rh, err := t.readAsset(tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return out, nil
	case err != nil:
		return out, fmt.Errorf("asset %s: %w", id, err)
	case rh.flag != headNone:
		h, err := rh.decode()
		if err != nil {
			return out, fmt.Errorf("asset %s: %w", id, err)
		}
		out = append(out, snapshotVersion(a, &h))
	}
	return out, nil
}

// Deviation reads one deviation.
func (t *Txn) Deviation(tenant, id string) (*model.Deviation, error) {
	var d model.Deviation
	if err := t.get(deviationKey(tenant, id), &d); err != nil {
		return nil, fmt.Errorf("deviation %s: %w", id, err)
	}
	return &d, nil
}

// DeviationsOfAsset returns every deviation ever recorded for an asset.
// The ids sit in one record per asset rather than in index keys: the write
// path reads them for every asset, and an iterator inside a write
// transaction costs a sort of all its pending writes.
func (t *Txn) DeviationsOfAsset(tenant, assetID string) ([]model.Deviation, error) {
	ids, err := t.assetDeviationIDs(tenant, assetID)
	if err != nil {
		return nil, err
	}
	out := make([]model.Deviation, 0, len(ids))
	for _, id := range ids {
		d, err := t.Deviation(tenant, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *d)
	}
	return out, nil
}

func (t *Txn) assetDeviationIDs(tenant, assetID string) ([]string, error) {
	var ids []string
	err := t.get(assetDevsKey(tenant, assetID), &ids)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return ids, err
}

// PutDeviation writes a deviation and links it to its asset.
func (t *Txn) PutDeviation(d *model.Deviation) error {
	var prev *model.Deviation
	var old model.Deviation
	switch err := t.get(deviationKey(d.Tenant, d.ID), &old); {
	case err == nil:
		prev = &old
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("read deviation %s: %w", d.ID, err)
	}
	if err := t.put(deviationKey(d.Tenant, d.ID), d); err != nil {
		return fmt.Errorf("write deviation %s: %w", d.ID, err)
	}
	if err := t.indexDeviation(prev, d); err != nil {
		return err
	}
	if d.AssetID == "" {
		return nil
	}
	ids, err := t.assetDeviationIDs(d.Tenant, d.AssetID)
	if err != nil {
		return fmt.Errorf("index deviation %s: %w", d.ID, err)
	}
	for _, id := range ids {
		if id == d.ID {
			return nil
		}
	}
	if err := t.put(assetDevsKey(d.Tenant, d.AssetID), append(ids, d.ID)); err != nil {
		return fmt.Errorf("index deviation %s: %w", d.ID, err)
	}
	return nil
}

// ForEachDeviation calls fn for every deviation of tenant.
func (t *Txn) ForEachDeviation(tenant string, fn func(*model.Deviation) error) error {
	return t.forEach(deviationPrefix(tenant), nil, nil, false, true, func(_, v []byte) error {
		var d model.Deviation
		if err := decode(v, &d); err != nil {
			return err
		}
		return fn(&d)
	})
}

// PutRun writes a job run (insert or update).
func (t *Txn) PutRun(r *model.Run) error {
	if err := t.put(runKey(r.Tenant, r.Job, r.Start.UnixNano(), r.ID), r); err != nil {
		return fmt.Errorf("write run %s: %w", r.ID, err)
	}
	return nil
}

// Runs returns up to limit runs of a job, newest first (limit <= 0: all).
func (t *Txn) Runs(tenant, job string, limit int) ([]model.Run, error) {
	var out []model.Run
	err := t.forEach(runPrefix(tenant, job), nil, nil, true, true, func(_, v []byte) error {
		var r model.Run
		if err := decode(v, &r); err != nil {
			return err
		}
		out = append(out, r)
		if limit > 0 && len(out) >= limit {
			return errStopIteration
		}
		return nil
	})
	if errors.Is(err, errStopIteration) {
		err = nil
	}
	return out, err
}

// ForEachRunning calls fn for every run still marked running in any
// tenant: after a crash these are the runs that never finished.
func (t *Txn) ForEachRunning(fn func(*model.Run) error) error {
	return t.forEach([]byte(prefixRun), nil, nil, false, true, func(_, v []byte) error {
		var r model.Run
		if err := decode(v, &r); err != nil {
			return err
		}
		if r.Status != model.RunRunning {
			return nil
		}
		return fn(&r)
	})
}

// JobState is what the store remembers about a job between runs.
type JobState struct {
	LastRunID      string     `json:"last_run_id,omitempty"`
	LastStatus     string     `json:"last_status,omitempty"`
	LastSuccess    *model.Run `json:"last_success,omitempty"`
	SucceededCount int64      `json:"succeeded_count"`
}

// JobState reads a job's state; a job never run has the zero state.
func (t *Txn) JobState(tenant, job string) (JobState, error) {
	var s JobState
	err := t.get(jobKey(tenant, job), &s)
	if errors.Is(err, ErrNotFound) {
		return JobState{}, nil
	}
	return s, err
}

// PutJobState writes a job's state.
func (t *Txn) PutJobState(tenant, job string, s JobState) error {
	return t.put(jobKey(tenant, job), s)
}

func encode(v any) ([]byte, error) {
	switch r := v.(type) {
	case *model.Asset:
		return appendAssetRecord(nil, r, nil), nil
	case *model.Version:
		return appendVersion(nil, r), nil
	}
	return json.Marshal(v)
}

func decode(b []byte, v any) error {
	switch r := v.(type) {
	case *model.Asset:
		_, err := decodeAssetRecordRaw(b, r)
		return err
	case *model.Version:
		return decodeVersion(b, r)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	return nil
}
