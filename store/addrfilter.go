package store

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// addressFilter spares a first run of many hosts a read per host: the
// address index read that finds no entry (a Badger lookup through every
// memtable and level, about a tenth of what ingesting a new host costs).
// It is a Bloom filter over every address index key ever written, so
// "not in the filter" means no entry exists.
//
// A read that finds nothing is also what lets Badger's conflict
// detection stop two transactions from both creating the entry (two runs
// finding the same new host at once): Badger checks the keys a
// transaction read against what others committed since it began. A
// transaction that skips the read notes the key as read blind, in a set
// of its own, and a transaction that wrote the key spoils, when it
// commits, every other transaction that read it blind; a spoiled one
// fails its commit with badger.ErrConflict and is retried like any
// conflicting one.
//
// The keys a transaction writes enter the filter when it commits, under
// mu, together with the spoiling, the committer's own check and Badger's
// assignment of its commit timestamp; so of two transactions that both
// found a key free, the one committing second has either been spoiled,
// or read the key from the store (and conflicts in Badger). A blind read
// notes the key before it looks at the filter, so a commit either sees
// the note or has put the key where the read finds it. Lookups take no
// lock shared with other transactions: a million of them from several
// workers would queue on it.
type addressFilter struct {
	seed  maphash.Seed
	ready atomic.Bool // the keys stored before Open are all in

	// held holds the address of every asset that holds or held one:
	// every index entry, and the address each address-born asset was
	// made from, which needs no entry (store/txn.go AddressHolder);
	// explicit holds the index entries alone.
	held, explicit bloom

	mu sync.Mutex
	// readers are the open transactions that read a key blind.
	readers map[*addressUse]struct{}
}

// bloom is a Bloom filter made of layers that only grow, copied on
// growth under the filter's mu; the last layer takes new keys, a full
// one stays as it is.
type bloom struct{ layers atomic.Pointer[[]*bloomLayer] }

func (b *bloom) init() {
	layers := []*bloomLayer{newBloomLayer(1 << 17)}
	b.layers.Store(&layers)
}

// addLocked adds h; the filter's mu is held.
func (b *bloom) addLocked(h uint64) {
	layers := *b.layers.Load()
	last := layers[len(layers)-1]
	if last.count >= last.capacity {
		last = newBloomLayer(8 * last.capacity)
		grown := append(layers[:len(layers):len(layers)], last)
		b.layers.Store(&grown)
	}
	last.add(h)
}

func (b *bloom) has(h uint64) bool {
	for _, l := range *b.layers.Load() {
		if l.has(h) {
			return true
		}
	}
	return false
}

// addressUse is what one read-write transaction did with the address
// index: the keys (by hash) it read blind, and those it wrote.
type addressUse struct {
	mu      sync.Mutex // guards blind and spoiled against other commits
	blind   map[uint64]struct{}
	spoiled bool
	// written is the transaction's own: the keys it wrote an entry for
	// (true) or made an address-born asset for (false); they enter the
	// filter before it commits (announce), or when it does.
	written   map[uint64]bool
	announced bool // written is in the filter
	reading   bool // registered among the filter's readers
}

// bloomLayer is a blocked Bloom filter: a key's probes all fall into one
// 64-byte block, one cache miss per lookup instead of one per probe. With
// 16 bits per key it was sized for and 6 probes, under 1 % of lookups for
// a key it does not hold read the store anyway. Bits are only ever set.
type bloomLayer struct {
	blocks   [][8]uint64
	mask     uint64 // len(blocks) - 1
	capacity int
	count    int // under the filter's mu
}

const bloomProbes = 6

func newBloomLayer(capacity int) *bloomLayer {
	n := uint64(1) << bits.Len64(uint64(capacity)*16/512) // blocks, a power of two
	return &bloomLayer{blocks: make([][8]uint64, n), mask: n - 1, capacity: capacity}
}

// block is the block of h's probes; the low bits pick them.
func (l *bloomLayer) block(h uint64) *[8]uint64 { return &l.blocks[(h>>32)&l.mask] }

func (l *bloomLayer) add(h uint64) {
	b := l.block(h)
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h >> (5 * i)) & 511 // 9 bits of the low 32 per probe, overlapping
		atomic.OrUint64(&b[bit>>6], 1<<(bit&63))
	}
	l.count++
}

func (l *bloomLayer) has(h uint64) bool {
	b := l.block(h)
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h >> (5 * i)) & 511
		if atomic.LoadUint64(&b[bit>>6])&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

func newAddressFilter() *addressFilter {
	f := &addressFilter{seed: maphash.MakeSeed(), readers: map[*addressUse]struct{}{}}
	f.held.init()
	f.explicit.init()
	return f
}

// load adds the address index keys of db and the addresses of its
// address-born assets, then lets the filter answer. Keys committed
// meanwhile are added by their committers.
func (f *addressFilter) load(db *badger.DB) error {
	// Added a few thousand at a time: commits wait for the lock meanwhile.
	var held, explicit []uint64
	flush := func() {
		f.mu.Lock()
		for _, h := range held {
			f.held.addLocked(h)
		}
		for _, h := range explicit {
			f.explicit.addLocked(h)
		}
		f.mu.Unlock()
		held, explicit = held[:0], explicit[:0]
	}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixIP)})
		for it.Rewind(); it.Valid(); it.Next() {
			h := maphash.Bytes(f.seed, it.Item().Key())
			held, explicit = append(held, h), append(explicit, h)
			if len(held) == 4096 {
				flush()
			}
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixAsset)}) // keys only
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			tenant, id, ok := splitAssetKey(it.Item().Key())
			if !ok {
				continue
			}
			if ip, born := model.AddressOfID(tenant, id); born {
				held = append(held, maphash.Bytes(f.seed, ipKey(tenant, ip)))
				if len(held) == 4096 {
					flush()
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: load the address filter: %w", err)
	}
	flush()
	f.ready.Store(true)
	return nil
}

// wrote notes that t writes an entry for key (explicit), or makes the
// asset key's address is born to, which needs none.
func (f *addressFilter) wrote(key []byte, t *Txn, explicit bool) {
	u := t.addressUse()
	if u.written == nil {
		u.written = make(map[uint64]bool, 256)
	}
	h := maphash.Bytes(f.seed, key)
	u.written[h] = u.written[h] || explicit
}

// addressLookup is what the filter knows of an address.
type addressLookup int

const (
	readIndex addressLookup = iota // the index may hold an entry: read it
	noEntry                        // no entry; the asset the address makes may hold it
	noHolder                       // no asset holds or held the address
)

// lookup tells what to read for key. Unless the answer is readIndex, t
// notes key as read blind until it commits or is discarded.
func (f *addressFilter) lookup(key []byte, t *Txn) addressLookup {
	if !f.ready.Load() {
		return readIndex
	}
	h := maphash.Bytes(f.seed, key)
	u := t.addressUse()
	if _, own := u.written[h]; own {
		return readIndex // the store has t's own write
	}
	if !u.reading {
		f.mu.Lock()
		f.readers[u] = struct{}{}
		f.mu.Unlock()
		u.reading = true
	}
	// Noted before the filter is asked: a commit that adds the key
	// after this sees the note.
	u.mu.Lock()
	if u.blind == nil {
		u.blind = make(map[uint64]struct{}, 256)
	}
	u.blind[h] = struct{}{}
	u.mu.Unlock()
	switch {
	case f.explicit.has(h):
		u.mu.Lock()
		delete(u.blind, h) // read from the store, which Badger tracks
		u.mu.Unlock()
		return readIndex
	case f.held.has(h):
		return noEntry
	}
	return noHolder
}

// announce adds the keys t wrote to the filter ahead of its commit, so
// that the commit, which waits its turn in the chain of commits, has less
// to do. A key the filter holds before (or without) its write only makes
// a reader look in the store: for the index entry, or for the asset the
// address makes, and Badger tracks both reads for conflicts. What the
// commit must do itself is spoil the blind readers of the keys.
func (f *addressFilter) announce(t *Txn) {
	u := t.addrUse
	if u == nil || len(u.written) == 0 {
		return
	}
	f.mu.Lock()
	f.add(u)
	f.mu.Unlock()
	u.announced = true
}

func (f *addressFilter) add(u *addressUse) {
	for h, explicit := range u.written {
		f.held.addLocked(h)
		if explicit {
			f.explicit.addLocked(h)
		}
	}
}

// commit runs commitTs, which makes Badger give t its commit timestamp,
// unless a writer spoiled one of t's blind reads: then t conflicts. The
// keys t wrote enter the filter and spoil the other blind readers.
func (f *addressFilter) commit(t *Txn, commitTs func()) error {
	u := t.addrUse
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.readers, u)
	u.mu.Lock()
	spoiled := u.spoiled
	u.mu.Unlock()
	if spoiled {
		return fmt.Errorf("an address this transaction found free was taken meanwhile: %w", badger.ErrConflict)
	}
	if len(u.written) > 0 {
		if !u.announced {
			f.add(u)
		}
		for r := range f.readers {
			r.mu.Lock()
			for h := range u.written {
				if _, ok := r.blind[h]; ok {
					r.spoiled = true
					break
				}
			}
			r.mu.Unlock()
		}
	}
	commitTs()
	return nil
}

// release forgets t (discarded without a commit).
func (f *addressFilter) release(t *Txn) {
	if u := t.addrUse; u != nil && u.reading {
		f.mu.Lock()
		delete(f.readers, u)
		f.mu.Unlock()
		u.reading = false
	}
}
