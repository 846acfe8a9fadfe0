package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// Problem is one thing wrong with a chain, in words that name the record.
type Problem struct {
	Tenant string `json:"tenant"`
	// Seq is the link concerned, or for a stored entry as a whole the
	// number of its last link (0 when the problem is not one entry's).
	Seq uint64 `json:"seq,omitempty"`
	// Record names the record: "version 3 of asset 127.0.0.1", "audit
	// record of 2026-12-01T10:00:00Z".
	Record string `json:"record,omitempty"`
	What   string `json:"what"`
}

func (p Problem) String() string {
	s := "tenant " + p.Tenant
	if p.Seq != 0 {
		s += fmt.Sprintf(", chain entry %d", p.Seq)
	}
	if p.Record != "" {
		s += ", " + p.Record
	}
	return s + ": " + p.What
}

// ChainReport is what VerifyChains found in one tenant's chain.
type ChainReport struct {
	Tenant string `json:"tenant"`
	// Entries is the number of links in the chain, one per record (and
	// per retention run), Seq the last one's number; problems name links
	// by these numbers ("chain entry 14"). Stored is the number of stored
	// entries: one per link in stores of schema 5 and 6, one per
	// transaction (and tenant) since schema 7. A stored entry is known by
	// the number of its last link, which checkpoints sign.
	Entries  uint64 `json:"entries"`
	Stored   uint64 `json:"stored_entries"`
	Seq      uint64 `json:"seq"`
	Head     string `json:"head"` // hex SHA-256 of the last stored entry
	Versions uint64 `json:"versions"`
	Audit    uint64 `json:"audit_records"`
	// Pruned counts versions that retention dropped, as a prune entry
	// after them allows.
	Pruned   uint64    `json:"pruned"`
	Problems []Problem `json:"problems,omitempty"`
	// HashAt holds the hash of the entries VerifyChains was asked about,
	// by sequence number (hex); an entry the chain does not have is absent.
	HashAt map[uint64]string `json:"-"`
	// Truncated is set when more problems were found than were kept.
	Truncated bool `json:"truncated,omitempty"`
}

// OK reports whether the chain showed no problem.
func (r *ChainReport) OK() bool { return len(r.Problems) == 0 }

// maxProblems bounds what a report keeps: the first ones name the harm.
const maxProblems = 100

func (r *ChainReport) add(p Problem) {
	p.Tenant = r.Tenant
	if len(r.Problems) >= maxProblems {
		r.Truncated = true
		return
	}
	r.Problems = append(r.Problems, p)
}

// VerifyChains walks the chain of every tenant (or of those named): each
// entry must follow its predecessor, every record must still match its
// digest, and the history must hold no version the chain does not know.
// at names, per tenant, entries whose hashes to return (for comparing
// with checkpoints). A tenant named in at that has no chain is reported
// with no entries. The store stays open for writes: the walk sees the
// chains as they were when it began.
func (s *Store) VerifyChains(ctx context.Context, at map[string][]uint64) ([]ChainReport, error) {
	tenants, err := s.chainTenants()
	if err != nil {
		return nil, err
	}
	for tenant := range at {
		if !containsString(tenants, tenant) {
			tenants = append(tenants, tenant)
		}
	}
	var out []ChainReport
	err = s.db.View(func(txn *badger.Txn) error {
		for _, tenant := range tenants {
			r, err := verifyChain(ctx, txn, tenant, at[tenant])
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// missingRecord is a record an entry points at that is gone; a later
// prune entry may account for it.
type missingRecord struct {
	seq  uint64
	time int64
	name string
}

type pruneMark struct {
	seq    uint64
	cutoff int64
}

func verifyChain(ctx context.Context, txn *badger.Txn, tenant string, at []uint64) (ChainReport, error) {
	r := ChainReport{Tenant: tenant, HashAt: map[uint64]string{}}
	want := make(map[uint64]bool, len(at))
	for _, seq := range at {
		want[seq] = true
	}
	// The links are checked here, in order; the records they point at are
	// looked up and hashed by workers, a batch of entries at a time (the
	// lookups are most of the work, and a read transaction serves them
	// concurrently).
	workers := runtime.GOMAXPROCS(0)
	batches := make(chan []chainEntry, 2*workers)
	results := make([]recordCheck, workers)
	var wg sync.WaitGroup
	for w := range results {
		wg.Add(1)
		go func(rc *recordCheck) {
			defer wg.Done()
			for b := range batches {
				rc.checkBatch(txn, tenant, b)
			}
		}(&results[w])
	}
	err := walkLinks(ctx, txn, tenant, want, &r, batches)
	close(batches)
	wg.Wait()
	if err != nil {
		return r, err
	}
	var (
		missing        []missingRecord
		prunes         []pruneMark
		inHist, inHead uint64
	)
	for i := range results {
		rc := &results[i]
		r.Versions += rc.versions
		r.Audit += rc.audit
		inHist += rc.inHist
		inHead += rc.inHead
		missing = append(missing, rc.missing...)
		prunes = append(prunes, rc.prunes...)
		for _, p := range rc.problems {
			r.add(p)
		}
	}
	for _, m := range missing {
		if prunedBy(prunes, m) {
			r.Pruned++
			continue
		}
		r.add(Problem{Seq: m.seq, Record: m.name, What: "the record is missing (deleted)"})
	}
	if err := countUnchained(txn, tenant, inHist, inHead, &r); err != nil {
		return r, err
	}
	// The first problem in the chain comes first.
	sort.SliceStable(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i].Seq, r.Problems[j].Seq
		return a != 0 && (b == 0 || a < b)
	})
	return r, nil
}

// walkLinks reads tenant's chain in order, checks that each entry follows
// its predecessor (its first link is the one after the last entry's, and
// it carries that entry's hash) and hands the links on in batches.
func walkLinks(ctx context.Context, txn *badger.Txn, tenant string, want map[uint64]bool, r *ChainReport, batches chan<- []chainEntry) error {
	prefix := chainPrefix(tenant)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	const batchSize = 512
	var (
		prevHash [sha256.Size]byte
		prevSeq  uint64
		expect   uint64 = 1
		batch           = make([]chainEntry, 0, batchSize)
		// One buffer per batch holds its values, which the links' refs
		// point into.
		buf = make([]byte, 0, batchSize*128)
	)
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if r.Stored%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		seq, ok := seqOf(item.Key(), prefix)
		if !ok {
			r.add(Problem{What: fmt.Sprintf("key %q in the chain is not a chain entry's", item.Key())})
			continue
		}
		n := len(buf)
		var err error
		if buf, err = item.ValueCopy(buf[n:n]); err != nil {
			return fmt.Errorf("chain %s: read entry %d: %w", tenant, seq, err)
		}
		val := buf[:len(buf):len(buf)]
		buf = buf[len(buf):]
		r.Stored++
		var (
			prev  [sha256.Size]byte
			links uint64
			derr  error
		)
		batch, prev, links, derr = decodeChainValue(seq, val, batch)
		// first is the entry's first link. Where an entry whose count of
		// links cannot be trusted began is not known (the records it held
		// are reported as found beside the chain); it is counted as one.
		first := seq - max(links, 1) + 1
		r.Entries += max(links, 1)
		switch {
		case first < expect:
			r.add(Problem{Seq: seq, What: "entry out of order"})
		case links == 0:
		case first > expect && first == expect+1:
			r.add(Problem{Seq: expect, What: fmt.Sprintf("chain entry %d is missing: the chain jumps from %d to %d (a record was deleted)", expect, expect-1, first)})
		case first > expect:
			r.add(Problem{Seq: expect, What: fmt.Sprintf("chain entries %d to %d are missing: the chain jumps from %d to %d (records were deleted)", expect, first-1, expect-1, first)})
		}
		switch {
		case derr != nil:
			r.add(Problem{Seq: seq, What: derr.Error()})
		case first != expect || prev == prevHash:
		case links == 1:
			r.add(Problem{Seq: seq, What: fmt.Sprintf("entry does not carry the hash of entry %d: one of the two was changed", prevSeq)})
		default:
			r.add(Problem{Seq: seq, What: fmt.Sprintf("entry (links %d to %d) does not carry the hash of entry %d: one of the two was changed", first, seq, prevSeq)})
		}
		prevHash = entryHash(tenant, seq, val)
		prevSeq = seq
		expect = seq + 1
		r.Seq = seq
		if want[seq] {
			r.HashAt[seq] = hex.EncodeToString(prevHash[:])
		}
		if len(batch) >= batchSize {
			select {
			case batches <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]chainEntry, 0, batchSize)
			buf = make([]byte, 0, batchSize*128)
		}
	}
	if len(batch) > 0 {
		batches <- batch
	}
	if r.Stored > 0 {
		r.Head = hex.EncodeToString(prevHash[:])
	}
	return nil
}

// recordCheck is one worker's share of the record checks.
type recordCheck struct {
	versions, audit, inHist, inHead uint64
	missing                         []missingRecord
	prunes                          []pruneMark
	problems                        []Problem
}

// checkBatch checks the records of a batch of entries. Versions are
// looked up in key order through one iterator over the history and one
// over the asset records, which costs a step or a short seek each instead
// of a point lookup through every table of the tree.
func (rc *recordCheck) checkBatch(txn *badger.Txn, tenant string, batch []chainEntry) {
	var versions []*chainEntry
	for i := range batch {
		e := &batch[i]
		if e.kind == linkVersion && len(e.ref) >= 9 {
			versions = append(versions, e)
			continue
		}
		rc.check(txn, tenant, e, foundNowhere, nil)
	}
	if len(versions) == 0 {
		return
	}
	// The history key of a version orders by asset, then version; ids
	// hold no '/', so ordering the refs by (id, version) orders the keys.
	sort.Slice(versions, func(i, j int) bool {
		a, b := versions[i].ref, versions[j].ref
		if c := bytes.Compare(a[8:], b[8:]); c != 0 {
			return c < 0
		}
		return bytes.Compare(a[:8], b[:8]) < 0
	})
	hist := newCursor(txn, []byte(prefixHistory+tenant+"/"))
	defer hist.close()
	heads := newCursor(txn, assetPrefix(tenant))
	defer heads.close()
	var key []byte
	for _, e := range versions {
		key = append(append(append(key[:0], prefixHistory...), tenant...), '/')
		key = append(append(append(key, e.ref[8:]...), '/'), e.ref[:8]...)
		if item := hist.find(key); item != nil {
			rc.check(txn, tenant, e, foundInHistory, item)
			continue
		}
		key = append(append(key[:0], assetPrefix(tenant)...), e.ref[8:]...)
		rc.check(txn, tenant, e, foundInHead, heads.find(key))
	}
}

// cursor finds keys given in ascending order with one iterator.
type cursor struct {
	it      *badger.Iterator
	started bool
}

func newCursor(txn *badger.Txn, prefix []byte) *cursor {
	return &cursor{it: txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})}
}

func (c *cursor) close() { c.it.Close() }

// advance moves to the first key at or after key, which must not be below
// the previous one: stepping over a few keys is cheaper than a seek, which
// walks every table of the tree.
func (c *cursor) advance(key []byte) {
	if !c.started {
		c.it.Seek(key)
		c.started = true
	}
	for steps := 0; c.it.Valid() && bytes.Compare(c.it.Item().Key(), key) < 0; steps++ {
		if steps == 16 {
			c.it.Seek(key)
			return
		}
		c.it.Next()
	}
}

// find returns the item at key, or nil; key must not be below the
// previous one.
func (c *cursor) find(key []byte) *badger.Item {
	c.advance(key)
	if c.it.Valid() && bytes.Equal(c.it.Item().Key(), key) {
		return c.it.Item()
	}
	return nil
}

// check checks the record of one entry; for a version, item is what the
// cursors found where (nil: nothing there).
func (rc *recordCheck) check(txn *badger.Txn, tenant string, e *chainEntry, where int, item *badger.Item) {
	switch e.kind {
	case linkVersion:
		rc.versions++
		where, err := checkVersion(e, where, item)
		if err != nil {
			rc.problems = append(rc.problems, Problem{Tenant: tenant, Seq: e.seq, Record: versionName(txn, tenant, e), What: err.Error()})
		}
		switch where {
		case foundNowhere:
			if err == nil {
				rc.missing = append(rc.missing, missingRecord{seq: e.seq, time: e.time, name: versionName(txn, tenant, e)})
			}
		case foundInHistory:
			rc.inHist++
		default:
			rc.inHead++
		}
	case linkAudit:
		rc.audit++
		if err := checkAudit(txn, tenant, e); errors.Is(err, ErrNotFound) {
			rc.problems = append(rc.problems, Problem{Tenant: tenant, Seq: e.seq, Record: auditName(e), What: "the record is missing (deleted)"})
		} else if err != nil {
			rc.problems = append(rc.problems, Problem{Tenant: tenant, Seq: e.seq, Record: auditName(e), What: err.Error()})
		}
	case linkPrune:
		if len(e.ref) != 8 {
			rc.problems = append(rc.problems, Problem{Tenant: tenant, Seq: e.seq, What: "prune entry without a cutoff"})
			return
		}
		rc.prunes = append(rc.prunes, pruneMark{seq: e.seq, cutoff: int64(binary.BigEndian.Uint64(e.ref))})
	default:
		rc.problems = append(rc.problems, Problem{Tenant: tenant, Seq: e.seq, What: fmt.Sprintf("entry of unknown kind %d", e.kind)})
	}
}

func prunedBy(prunes []pruneMark, m missingRecord) bool {
	for _, p := range prunes {
		if p.seq > m.seq && m.time < p.cutoff {
			return true
		}
	}
	return false
}

const (
	foundNowhere = iota
	foundInHistory
	foundInHead
)

// checkVersion checks the digest of the version e points at, found
// (item) under h/ or as its asset record's head; where says which, and
// comes back foundNowhere when it is in neither.
func checkVersion(e *chainEntry, where int, item *badger.Item) (int, error) {
	if len(e.ref) < 9 {
		return foundNowhere, errors.New("version entry without an asset")
	}
	if item == nil {
		return foundNowhere, nil
	}
	mismatch := errors.New("the record does not match its hash: it was changed after it was written")
	if where == foundInHistory {
		return foundInHistory, item.Value(func(v []byte) error {
			if sha256.Sum256(v) != e.digest {
				return mismatch
			}
			return nil
		})
	}
	version := binary.BigEndian.Uint64(e.ref[:8])
	where = foundNowhere
	err := item.Value(func(v []byte) error {
		var a model.Asset
		var h head
		has, err := decodeAssetRecord(v, &a, &h)
		if err != nil {
			where = foundInHead
			return fmt.Errorf("the asset record holding it cannot be read (it was changed): %w", err)
		}
		if !has || a.Version != version {
			return nil
		}
		where = foundInHead
		ver := snapshotVersion(&a, &h)
		if d, _ := versionDigest(&ver, nil); d != e.digest {
			return mismatch
		}
		return nil
	})
	return where, err
}

// versionName names the version e points at for people.
func versionName(txn *badger.Txn, tenant string, e *chainEntry) string {
	if len(e.ref) < 9 {
		return ""
	}
	id := string(e.ref[8:])
	return fmt.Sprintf("version %d of asset %s%s", binary.BigEndian.Uint64(e.ref[:8]), id, assetLabel(txn, tenant, id))
}

func auditName(e *chainEntry) string {
	name := "audit record"
	if len(e.ref) >= 8 {
		name += " of " + time.Unix(0, int64(binary.BigEndian.Uint64(e.ref[:8]))).UTC().Format(time.RFC3339Nano)
	}
	return name
}

// assetLabel names an asset for people, " (ADDRESS NAME)", from its record
// if it can be read.
func assetLabel(txn *badger.Txn, tenant, id string) string {
	item, err := txn.Get(assetKey(tenant, id))
	if err != nil {
		return ""
	}
	var label string
	_ = item.Value(func(v []byte) error {
		var a model.Asset
		if _, err := decodeAssetRecordRaw(v, &a); err != nil {
			return err
		}
		var parts []string
		if len(a.Addresses) > 0 {
			parts = append(parts, a.Addresses[0].Addr)
		}
		if len(a.Hostnames) > 0 {
			parts = append(parts, a.Hostnames[0])
		}
		if len(parts) > 0 {
			label = " (" + strings.Join(parts, " ") + ")"
		}
		return nil
	})
	return label
}

func checkAudit(txn *badger.Txn, tenant string, e *chainEntry) error {
	item, err := txn.Get(append(auditPrefix(tenant), e.ref...))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return item.Value(func(v []byte) error {
		if sha256.Sum256(v) != e.digest {
			return errors.New("the record does not match its hash: it was changed after it was written")
		}
		return nil
	})
}

// countUnchained compares how many versions the history and the asset
// records hold with how many the chain found: a record slipped in beside
// the chain has no entry.
func countUnchained(txn *badger.Txn, tenant string, inHist, inHead uint64, r *ChainReport) error {
	var hist, heads uint64
	hp := []byte(prefixHistory + tenant + "/")
	it := txn.NewIterator(badger.IteratorOptions{Prefix: hp})
	for it.Seek(hp); it.ValidForPrefix(hp); it.Next() {
		hist++
	}
	it.Close()
	ap := assetPrefix(tenant)
	it = txn.NewIterator(badger.IteratorOptions{Prefix: ap, PrefetchValues: true})
	defer it.Close()
	for it.Seek(ap); it.ValidForPrefix(ap); it.Next() {
		err := it.Item().Value(func(v []byte) error {
			var a model.Asset
			h, err := decodeAssetRecordRaw(v, &a)
			if err == nil && h.flag != headNone {
				heads++
			}
			return nil // an unreadable record is reported by its entry
		})
		if err != nil {
			return fmt.Errorf("chain %s: read assets: %w", tenant, err)
		}
	}
	if hist > inHist {
		r.add(Problem{What: fmt.Sprintf("the history holds %d versions that no chain entry accounts for (inserted beside the chain)", hist-inHist)})
	}
	if heads > inHead {
		r.add(Problem{What: fmt.Sprintf("%d asset records carry a version that no chain entry accounts for (inserted beside the chain)", heads-inHead)})
	}
	return nil
}
