package store

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
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
// transaction that skips the read is tracked here instead, as a blind
// reader of the key, and a transaction that writes the key spoils every
// other blind reader of it, which then fails its commit with
// badger.ErrConflict and is retried like any conflicting one. The check
// and Badger's assignment of the commit timestamp happen under mu, so a
// writer either spoils a blind reader before it commits, or finds its
// entry (or Badger's conflict) when it commits itself.
type addressFilter struct {
	seed  maphash.Seed
	ready atomic.Bool // the keys stored before Open are all in

	mu     sync.Mutex
	layers []bloomLayer // the last takes new keys; a full one stays as it is
	// blind holds the blind readers by key hash: two keys that share a
	// hash spoil each other's readers, which only costs a retry.
	blind map[uint64]blindReaders
}

// blindReaders are the transactions that read a key blind; almost always
// one.
type blindReaders struct {
	first *Txn
	more  []*Txn
}

// bloomLayer is a blocked Bloom filter: a key's probes all fall into one
// 64-byte block, one cache miss per lookup instead of one per probe. With
// 16 bits per key it was sized for and 6 probes, under 1 % of lookups for
// a key it does not hold read the store anyway.
type bloomLayer struct {
	blocks   [][8]uint64
	mask     uint64 // len(blocks) - 1
	capacity int
	count    int
}

const bloomProbes = 6

func newBloomLayer(capacity int) bloomLayer {
	n := uint64(1) << bits.Len64(uint64(capacity)*16/512) // blocks, a power of two
	return bloomLayer{blocks: make([][8]uint64, n), mask: n - 1, capacity: capacity}
}

// block is the block of h's probes; the low bits pick them.
func (l *bloomLayer) block(h uint64) *[8]uint64 { return &l.blocks[(h>>32)&l.mask] }

func (l *bloomLayer) add(h uint64) {
	b := l.block(h)
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h >> (5 * i)) & 511 // 9 bits of the low 32 per probe, overlapping
		b[bit>>6] |= 1 << (bit & 63)
	}
	l.count++
}

func (l *bloomLayer) has(h uint64) bool {
	b := l.block(h)
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h >> (5 * i)) & 511
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

func newAddressFilter() *addressFilter {
	return &addressFilter{seed: maphash.MakeSeed(), layers: []bloomLayer{newBloomLayer(1 << 17)}, blind: map[uint64]blindReaders{}}
}

// load adds the address index keys of db, then lets the filter answer.
// Keys written meanwhile are added by their writers.
func (f *addressFilter) load(db *badger.DB) error {
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixIP)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			f.add(it.Item().Key(), nil)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: load the address filter: %w", err)
	}
	f.ready.Store(true)
	return nil
}

// add notes that key is written by t (nil: already stored), spoiling the
// transactions other than t that read it blind.
func (f *addressFilter) add(key []byte, t *Txn) {
	h := maphash.Bytes(f.seed, key)
	f.mu.Lock()
	defer f.mu.Unlock()
	last := &f.layers[len(f.layers)-1]
	if last.count >= last.capacity {
		f.layers = append(f.layers, newBloomLayer(8*last.capacity))
		last = &f.layers[len(f.layers)-1]
	}
	last.add(h)
	if rs, ok := f.blind[h]; ok {
		if rs.first != t {
			rs.first.spoiled = true
		}
		for _, r := range rs.more {
			if r != t {
				r.spoiled = true
			}
		}
	}
}

// absent reports whether no entry for key exists, without a read, and if
// so notes t as a blind reader of key until t commits or is discarded.
// false means "maybe": read the store.
func (f *addressFilter) absent(key []byte, t *Txn) bool {
	if !f.ready.Load() {
		return false
	}
	h := maphash.Bytes(f.seed, key)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.layers {
		if f.layers[i].has(h) {
			return false
		}
	}
	if rs, ok := f.blind[h]; !ok {
		f.blind[h] = blindReaders{first: t}
	} else {
		rs.more = append(rs.more, t)
		f.blind[h] = rs
	}
	t.blindKeys = append(t.blindKeys, h)
	return true
}

// commit runs commitTs, which makes Badger give t its commit timestamp,
// unless a writer spoiled one of t's blind reads: then t conflicts.
func (f *addressFilter) commit(t *Txn, commitTs func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	spoiled := t.spoiled
	f.releaseLocked(t)
	if spoiled {
		return fmt.Errorf("an address this transaction found free was taken meanwhile: %w", badger.ErrConflict)
	}
	commitTs()
	return nil
}

// release forgets t's blind reads (t was discarded).
func (f *addressFilter) release(t *Txn) {
	if len(t.blindKeys) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseLocked(t)
}

func (f *addressFilter) releaseLocked(t *Txn) {
	for _, h := range t.blindKeys {
		rs := f.blind[h]
		switch i := slices.Index(rs.more, t); {
		case i >= 0:
			rs.more = slices.Delete(rs.more, i, i+1)
		case rs.first == t && len(rs.more) > 0:
			rs.first, rs.more = rs.more[0], rs.more[1:]
		case rs.first == t:
			delete(f.blind, h)
			continue
		}
		f.blind[h] = rs
	}
	t.blindKeys, t.spoiled = nil, false
}
