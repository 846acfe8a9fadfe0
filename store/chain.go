package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// Every history record (a version of an asset) and every audit record is
// linked into its tenant's hash chain when it is written: beside it the
// store keeps a chain entry
//
//	c/TENANT/SEQ(8)   0x01 KIND(1) TIME(8) PREV(32) DIGEST(32) REF
//
// where PREV is the hash of entry SEQ-1 (zero for the first), DIGEST the
// SHA-256 of the record's canonical encoding and REF where to find the
// record. An entry's hash is SHA-256 over the tenant, its sequence number
// and its value, so changing a record breaks its digest, changing or
// dropping an entry breaks the next entry's PREV, and rewriting the whole
// chain consistently changes its head, which a checkpoint signed and kept
// outside the store (checkpoint.go) catches. Verify walks the chains.
//
// Sequence numbers are handed out under one lock held from staging the
// entries to the end of the commit, so entries are written in order and
// a transaction that fails (a conflict, a full transaction) leaves no
// gap: only a committed transaction moves a chain's head.
const (
	prefixChain = "c/"
	chainFormat = 0x01

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

// chainEntry is a decoded chain entry.
type chainEntry struct {
	seq    uint64
	kind   byte
	time   int64
	prev   [sha256.Size]byte
	digest [sha256.Size]byte
	ref    []byte
}

func appendChainValue(dst []byte, l *link, prev [sha256.Size]byte) []byte {
	dst = append(dst, chainFormat, l.kind)
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.time.UnixNano()))
	dst = append(dst, prev[:]...)
	dst = append(dst, l.digest[:]...)
	return append(dst, l.ref...)
}

func decodeChainValue(seq uint64, v []byte) (chainEntry, error) {
	if len(v) < chainHeaderSize || v[0] != chainFormat {
		return chainEntry{}, fmt.Errorf("chain entry %d: not a chain entry of format %d", seq, chainFormat)
	}
	e := chainEntry{seq: seq, kind: v[1], time: int64(binary.BigEndian.Uint64(v[2:10]))}
	copy(e.prev[:], v[10:42])
	copy(e.digest[:], v[42:74])
	e.ref = v[74:]
	return e, nil
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
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(v.AssetID)), v.Version), v.AssetID...)
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

// stage writes the chain entries of t's links into t. The caller holds
// c.mu until the commit has ended, and calls advance if it succeeded.
func (c *chains) stage(db *badger.DB, t *Txn) (staged, error) {
	next := staged{}
	var buf []byte
	for i := range t.links {
		l := &t.links[i]
		h, ok := next[l.tenant]
		if !ok {
			var err error
			if h, err = c.head(db, l.tenant); err != nil {
				return nil, err
			}
		}
		h.seq++
		buf = appendChainValue(buf[:0], l, h.hash)
		val := append([]byte(nil), buf...)
		if err := t.txn.Set(chainKey(l.tenant, h.seq), val); err != nil {
			return nil, fmt.Errorf("chain %s: %w", l.tenant, err)
		}
		h.hash = entryHash(l.tenant, h.seq, val)
		next[l.tenant] = h
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
		return t.txn.Commit()
	}
	s.chains.mu.Lock()
	defer s.chains.mu.Unlock()
	next, err := s.chains.stage(s.db, t)
	if err != nil {
		return err
	}
	if err := t.txn.Commit(); err != nil {
		return err
	}
	s.chains.advance(next)
	return nil
}

// commitAsync hands t to Badger's writer and calls done with the outcome;
// a transaction with links holds the chain lock until its commit ends.
func (s *Store) commitAsync(t *Txn, done func(error)) {
	if len(t.links) == 0 {
		t.txn.CommitWith(done)
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
	t.txn.CommitWith(func(err error) {
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
