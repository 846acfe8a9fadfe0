package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// Every history record (a version of an asset) and every audit record is
// a link in its tenant's hash chain, numbered from 1. The links a
// transaction writes are stored beside its records, in the same
// transaction, as one chain entry per tenant it touches:
//
//	c/TENANT/SEQ(8)   0x02 PREV(32) N(4) N × (KIND(1) TIME(8) DIGEST(32) LEN(uvarint) REF)
//
// SEQ is the number of the entry's last link, which holds links
// SEQ-N+1 to SEQ in the order they were written; PREV is the hash of the
// entry before (zero for the first), DIGEST the SHA-256 of a record's
// canonical encoding and REF where to find the record. An entry's value
// is kept under maxChainValue: a transaction with more links than fit
// writes several entries, each carrying the hash of the one before.
// Stores of schema 5 and 6 hold entries of one link each, which are read
// as they are (their hashes are what checkpoints signed):
//
//	c/TENANT/SEQ(8)   0x01 KIND(1) TIME(8) PREV(32) DIGEST(32) REF
//
// An entry's hash is SHA-256 over the tenant, its sequence number and its
// value, so changing a record breaks its digest, changing or dropping an
// entry breaks the next entry's PREV (or the numbering), and rewriting
// the whole chain consistently changes its head, which a checkpoint
// signed and kept outside the store (checkpoint.go) catches. Verify walks
// the chains.
//
// Sequence numbers are handed out under one lock held from staging the
// entries to the end of the commit, so entries are written in order and
// a transaction that fails (a conflict, a full transaction) leaves no
// gap: only a committed transaction moves a chain's head.
const (
	prefixChain = "c/"
	// chainFormat is the entry of one link (schema 5 and 6), read only;
	// chainFormatBatch the entry of a transaction's links (schema 7).
	chainFormat      = 0x01
	chainFormatBatch = 0x02

	// LinkVersion entries point at version VERSION of ASSET:
	// REF = VERSION(8) ASSET.
	linkVersion = 1
	// LinkAudit entries point at an audit record: REF = its key's
	// TIME(8)RANDOM(4).
	linkAudit = 2
	// LinkPrune entries say that retention dropped versions older than
	// a cutoff from here on: REF = CUTOFF(8), DIGEST zero. Versions
	// written before such an entry and older than its cutoff may be gone.
	linkPrune = 3

	chainHeaderSize = 1 + 1 + 8 + sha256.Size + sha256.Size
	// batchHeaderSize is FORMAT PREV N, batchLinkSize a link without
	// its REF and LEN.
	batchHeaderSize = 1 + sha256.Size + 4
	batchLinkSize   = 1 + 8 + sha256.Size
	// maxChainValue bounds a batched entry's value: a transaction of
	// thousands of links (chainExisting) writes several.
	maxChainValue = 256 << 10
)

func chainPrefix(tenant string) []byte { return []byte(prefixChain + tenant + "/") }

func chainKey(tenant string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(chainPrefix(tenant), seq)
}

// link is a record a transaction wrote that still needs its chain entry.
type link struct {
	tenant string
	kind   byte
	time   time.Time
	digest [sha256.Size]byte
	ref    []byte
}

// chainEntry is a decoded link: seq is its number in the chain.
type chainEntry struct {
	seq    uint64
	kind   byte
	time   int64
	digest [sha256.Size]byte
	ref    []byte
}

// linkSize is what l takes in a batched entry.
func linkSize(l *link) int {
	return batchLinkSize + uvarintLen(uint64(len(l.ref))) + len(l.ref)
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

func appendBatchHeader(dst []byte, prev [sha256.Size]byte) []byte {
	dst = append(dst, chainFormatBatch)
	dst = append(dst, prev[:]...)
	return append(dst, 0, 0, 0, 0) // N, set when the entry is complete
}

func appendBatchLink(dst []byte, l *link) []byte {
	dst = append(dst, l.kind)
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.time.UnixNano()))
	dst = append(dst, l.digest[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(l.ref)))
	return append(dst, l.ref...)
}

// decodeChainValue appends the links of the entry stored under seq to
// dst and returns the hash it carries of the entry before and how many
// links it says it holds, even when they cannot be read: 1 for an entry
// that is not of the batched format, 0 when the count cannot be trusted.
// The links' refs point into v.
func decodeChainValue(seq uint64, v []byte, dst []chainEntry) ([]chainEntry, [sha256.Size]byte, uint64, error) {
	var prev [sha256.Size]byte
	if len(v) == 0 {
		return dst, prev, 1, errors.New("empty, not a chain entry")
	}
	switch v[0] {
	case chainFormat:
		if len(v) < chainHeaderSize {
			break
		}
		e := chainEntry{seq: seq, kind: v[1], time: int64(binary.BigEndian.Uint64(v[2:10]))}
		copy(prev[:], v[10:42])
		copy(e.digest[:], v[42:74])
		e.ref = v[74:]
		return append(dst, e), prev, 1, nil
	case chainFormatBatch:
		if len(v) < batchHeaderSize {
			return dst, prev, 0, fmt.Errorf("batched entry of %d bytes, too short for one", len(v))
		}
		copy(prev[:], v[1:33])
		n := uint64(binary.BigEndian.Uint32(v[33:37]))
		if n == 0 || n > seq {
			return dst, prev, 0, fmt.Errorf("a batched entry of %d links cannot end at link %d", n, seq)
		}
		start := len(dst)
		rest := v[batchHeaderSize:]
		for i := uint64(0); i < n; i++ {
			if len(rest) < batchLinkSize {
				return dst[:start], prev, n, fmt.Errorf("batched entry cut short at its link %d of %d", i+1, n)
			}
			e := chainEntry{seq: seq - n + 1 + i, kind: rest[0], time: int64(binary.BigEndian.Uint64(rest[1:9]))}
			copy(e.digest[:], rest[9:41])
			rest = rest[batchLinkSize:]
			size, k := binary.Uvarint(rest)
			if k <= 0 || uint64(len(rest)-k) < size {
				return dst[:start], prev, n, fmt.Errorf("batched entry cut short at its link %d of %d", i+1, n)
			}
			e.ref = rest[k : k+int(size) : k+int(size)]
			rest = rest[k+int(size):]
			dst = append(dst, e)
		}
		if len(rest) != 0 {
			return dst[:start], prev, n, fmt.Errorf("%d bytes after the last of its %d links", len(rest), n)
		}
		return dst, prev, n, nil
	}
	return dst, prev, 1, fmt.Errorf("not a chain entry of format %d or %d", chainFormat, chainFormatBatch)
}

// entryHash is the hash the next entry of tenant's chain carries as PREV.
func entryHash(tenant string, seq uint64, value []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(tenant))
	var b [9]byte
	binary.BigEndian.PutUint64(b[1:], seq)
	h.Write(b[:])
	h.Write(value)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// versionDigest is the digest of a version in its canonical encoding, the
// form it has under h/ and that an asset record's head reconstructs.
func versionDigest(v *model.Version, scratch []byte) ([sha256.Size]byte, []byte) {
	scratch = appendVersion(scratch[:0], v)
	return sha256.Sum256(scratch), scratch
}

func versionRef(v *model.Version) []byte {
	return appendVersionRef(make([]byte, 0, versionRefSize(v)), v)
}

func versionRefSize(v *model.Version) int { return 8 + len(v.AssetID) }

func appendVersionRef(dst []byte, v *model.Version) []byte {
	return append(binary.BigEndian.AppendUint64(dst, v.Version), v.AssetID...)
}

// linkVersion records that v was written.
func (t *Txn) linkVersion(tenant string, v *model.Version) {
	var d [sha256.Size]byte
	d, t.scratch = versionDigest(v, t.scratch)
	t.links = append(t.links, link{tenant: tenant, kind: linkVersion, time: v.Time, digest: d, ref: versionRef(v)})
}

// chainHead is where a tenant's chain ends.
type chainHead struct {
	seq  uint64 // of the last entry; 0: the chain is empty
	hash [sha256.Size]byte
}

// chains hands out sequence numbers. mu is held from staging a
// transaction's entries until its commit has ended.
type chains struct {
	mu    sync.Mutex
	heads map[string]chainHead
}

// staged is what a transaction's commit will make the heads, if it
// succeeds.
type staged map[string]chainHead

// stage writes the chain entries of t's links into t: one entry per
// tenant, or more when its links would not fit in maxChainValue. The
// caller holds c.mu until the commit has ended, and calls advance if it
// succeeded.
func (c *chains) stage(db *badger.DB, t *Txn) (staged, error) {
	next := staged{}
	// Tenants in the order of their first link; a transaction mostly has
	// one.
	var tenants []string
	for i := range t.links {
		if tn := t.links[i].tenant; !containsString(tenants, tn) {
			tenants = append(tenants, tn)
		}
	}
	for _, tenant := range tenants {
		h, err := c.head(db, tenant)
		if err != nil {
			return nil, err
		}
		size := 0
		for i := range t.links {
			if t.links[i].tenant == tenant {
				size += linkSize(&t.links[i])
			}
		}
		var (
			val []byte
			n   int
		)
		put := func() error {
			binary.BigEndian.PutUint32(val[1+sha256.Size:], uint32(n))
			h.seq += uint64(n)
			if err := t.txn.Set(chainKey(tenant, h.seq), val); err != nil {
				return fmt.Errorf("chain %s: %w", tenant, err)
			}
			h.hash = entryHash(tenant, h.seq, val)
			val, n = nil, 0
			return nil
		}
		for i := range t.links {
			l := &t.links[i]
			if l.tenant != tenant {
				continue
			}
			ls := linkSize(l)
			if n > 0 && len(val)+ls > maxChainValue {
				if err := put(); err != nil {
					return nil, err
				}
			}
			if n == 0 {
				val = appendBatchHeader(make([]byte, 0, batchHeaderSize+min(size, maxChainValue)), h.hash)
			}
			val = appendBatchLink(val, l)
			size -= ls
			n++
		}
		if err := put(); err != nil {
			return nil, err
		}
		next[tenant] = h
	}
	return next, nil
}

func (c *chains) advance(s staged) {
	for tenant, h := range s {
		c.heads[tenant] = h
	}
}

// head returns where tenant's chain ends, reading it from the store the
// first time.
func (c *chains) head(db *badger.DB, tenant string) (chainHead, error) {
	if h, ok := c.heads[tenant]; ok {
		return h, nil
	}
	var h chainHead
	err := db.View(func(txn *badger.Txn) error {
		prefix := chainPrefix(tenant)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		it.Seek(append(append([]byte(nil), prefix...), bytes.Repeat([]byte{0xff}, 9)...))
		if !it.ValidForPrefix(prefix) {
			return nil
		}
		item := it.Item()
		seq, ok := seqOf(item.Key(), prefix)
		if !ok {
			return fmt.Errorf("chain %s: key %q is not a chain key", tenant, item.Key())
		}
		return item.Value(func(v []byte) error {
			h = chainHead{seq: seq, hash: entryHash(tenant, seq, v)}
			return nil
		})
	})
	if err != nil {
		return chainHead{}, fmt.Errorf("chain %s: read head: %w", tenant, err)
	}
	c.heads[tenant] = h
	return h, nil
}

func seqOf(key, prefix []byte) (uint64, bool) {
	if len(key) != len(prefix)+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), true
}

// commit commits t, with its chain entries when it has links.
func (s *Store) commit(t *Txn) error {
	if len(t.links) == 0 {
		return s.commitWait(t)
	}
	s.chains.mu.Lock()
	defer s.chains.mu.Unlock()
	next, err := s.chains.stage(s.db, t)
	if err != nil {
		return err
	}
	if err := s.commitWait(t); err != nil {
		return err
	}
	s.chains.advance(next)
	return nil
}

// commitWait commits t and waits until it is written.
func (s *Store) commitWait(t *Txn) error {
	if t.addrUse == nil {
		return t.txn.Commit()
	}
	written := make(chan error, 1)
	s.commitWith(t, func(err error) { written <- err })
	return <-written
}

// commitWith hands t to Badger's writer, once the address filter has
// checked t's blind reads; done receives the outcome.
func (s *Store) commitWith(t *Txn, done func(error)) {
	if t.addrUse == nil {
		t.txn.CommitWith(done)
		return
	}
	if err := s.addrs.commit(t, func() {
		// Badger calls back at once, on this goroutine, when it refuses
		// a transaction outright; done must not run under the filter's
		// lock (a retry reads addresses).
		t.txn.CommitWith(func(err error) { go done(err) })
	}); err != nil {
		t.txn.Discard()
		done(err)
	}
}

// commitAsync hands t to Badger's writer and calls done with the outcome;
// a transaction with links holds the chain lock until its commit ends.
func (s *Store) commitAsync(t *Txn, done func(error)) {
	if len(t.links) == 0 {
		s.commitWith(t, done)
		return
	}
	s.chains.mu.Lock()
	next, err := s.chains.stage(s.db, t)
	if err != nil {
		s.chains.mu.Unlock()
		t.txn.Discard()
		done(err)
		return
	}
	s.commitWith(t, func(err error) {
		if err == nil {
			s.chains.advance(next)
		}
		s.chains.mu.Unlock()
		done(err)
	})
}

// ChainHead is the end of a tenant's chain: how many entries it has and
// the hash of the last.
type ChainHead struct {
	Tenant string
	Seq    uint64
	Hash   [sha256.Size]byte
}

// ChainHeads returns the head of every tenant's chain that has entries.
func (s *Store) ChainHeads() ([]ChainHead, error) {
	tenants, err := s.chainTenants()
	if err != nil {
		return nil, err
	}
	s.chains.mu.Lock()
	defer s.chains.mu.Unlock()
	out := make([]ChainHead, 0, len(tenants))
	for _, tenant := range tenants {
		h, err := s.chains.head(s.db, tenant)
		if err != nil {
			return nil, err
		}
		out = append(out, ChainHead{Tenant: tenant, Seq: h.seq, Hash: h.hash})
	}
	return out, nil
}

// chainTenants lists the tenants that have a chain, skipping from one
// tenant's entries to the next.
func (s *Store) chainTenants() ([]string, error) {
	var out []string
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixChain)})
		defer it.Close()
		for it.Seek([]byte(prefixChain)); it.ValidForPrefix([]byte(prefixChain)); {
			k := it.Item().Key()[len(prefixChain):]
			i := bytes.IndexByte(k, '/')
			if i < 0 {
				return fmt.Errorf("chain key %q has no tenant", it.Item().Key())
			}
			tenant := string(k[:i])
			out = append(out, tenant)
			it.Seek(prefixEnd(chainPrefix(tenant)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chains: %w", err)
	}
	return out, nil
}

// chainExisting links the records of a store written before chains
// existed (schema 4 and older) into new chains, before the schema version
// moves: versions under h/, then asset heads, then audit records, tenant
// by tenant in key order. Entries left by an attempt that did not finish
// are dropped first, so a crash part-way only means starting again.
func (s *Store) chainExisting() error {
	if err := s.db.DropPrefix([]byte(prefixChain)); err != nil {
		return fmt.Errorf("store: chain existing records: %w", err)
	}
	s.chains.heads = map[string]chainHead{}
	var batch []link
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		t := &Txn{txn: s.db.NewTransaction(true), links: batch}
		defer t.txn.Discard()
		batch = nil
		return s.commit(t)
	}
	add := func(l link) error {
		batch = append(batch, l)
		if len(batch) >= 5000 {
			return flush()
		}
		return nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		for _, p := range []string{prefixHistory, prefixAsset, prefixAudit} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p), PrefetchValues: true})
			for it.Rewind(); it.ValidForPrefix([]byte(p)); it.Next() {
				l, ok, err := linkOfExisting(p, it.Item())
				if err == nil && ok {
					err = add(l)
				}
				if err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("store: chain existing records: %w", err)
	}
	return nil
}

// linkOfExisting is the link a stored record would have been written
// with; ok is false for an asset record without a head.
func linkOfExisting(prefix string, item *badger.Item) (link, bool, error) {
	k := item.Key()[len(prefix):]
	i := bytes.IndexByte(k, '/')
	if i < 0 {
		return link{}, false, fmt.Errorf("key %q has no tenant", item.Key())
	}
	tenant, rest := string(k[:i]), k[i+1:]
	l := link{tenant: tenant}
	err := item.Value(func(v []byte) error {
		switch prefix {
		case prefixHistory:
			if len(rest) < 9 {
				return fmt.Errorf("history key %q has no version", item.Key())
			}
			var ver model.Version
			_ = decodeVersion(v, &ver) // an unreadable one is chained as found
			id, version := rest[:len(rest)-9], binary.BigEndian.Uint64(rest[len(rest)-8:])
			l.kind, l.time, l.digest = linkVersion, ver.Time, sha256.Sum256(v)
			l.ref = append(binary.BigEndian.AppendUint64(nil, version), id...)
		case prefixAsset:
			var a model.Asset
			var h head
			has, err := decodeAssetRecord(v, &a, &h)
			if err != nil || !has {
				return err
			}
			ver := snapshotVersion(&a, &h)
			l.kind, l.time, l.ref = linkVersion, ver.Time, versionRef(&ver)
			l.digest, _ = versionDigest(&ver, nil)
		case prefixAudit:
			if len(rest) < 8 {
				return fmt.Errorf("audit key %q has no time", item.Key())
			}
			l.kind, l.time, l.digest = linkAudit, time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8]))), sha256.Sum256(v)
			l.ref = append([]byte(nil), rest...)
		}
		return nil
	})
	return l, l.kind != 0, err
}
