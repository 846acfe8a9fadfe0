package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// Problem is one thing wrong with a chain, in words that name the record.
type Problem struct {
	Tenant string `json:"tenant"`
	// Seq is the chain entry concerned (0 when the problem is not one
	// entry's).
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
	// Entries is the number of chain entries, Seq the last one's number.
	Entries  uint64 `json:"entries"`
	Seq      uint64 `json:"seq"`
	Head     string `json:"head"` // hex SHA-256 of the last entry
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
	prefix := chainPrefix(tenant)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	var (
		prevHash [sha256.Size]byte
		expect   uint64 = 1
		missing  []missingRecord
		prunes   []pruneMark
		inHist   uint64 // versions found under h/
		inHead   uint64 // versions found as an asset record's head
		scratch  []byte
	)
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if r.Entries%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return r, err
			}
		}
		item := it.Item()
		seq, ok := seqOf(item.Key(), prefix)
		if !ok {
			r.add(Problem{What: fmt.Sprintf("key %q in the chain is not a chain entry's", item.Key())})
			continue
		}
		val, err := item.ValueCopy(scratch[:0])
		if err != nil {
			return r, fmt.Errorf("chain %s: read entry %d: %w", tenant, seq, err)
		}
		scratch = val
		r.Entries++
		switch {
		case seq < expect:
			r.add(Problem{Seq: seq, What: "entry out of order"})
		case seq > expect && seq == expect+1:
			r.add(Problem{Seq: expect, What: fmt.Sprintf("chain entry %d is missing: the chain jumps from %d to %d (a record was deleted)", expect, expect-1, seq)})
		case seq > expect:
			r.add(Problem{Seq: expect, What: fmt.Sprintf("chain entries %d to %d are missing: the chain jumps from %d to %d (records were deleted)", expect, seq-1, expect-1, seq)})
		}
		e, err := decodeChainValue(seq, val)
		if err != nil {
			r.add(Problem{Seq: seq, What: err.Error()})
		} else if seq == expect && e.prev != prevHash {
			r.add(Problem{Seq: seq, What: fmt.Sprintf("entry does not carry the hash of entry %d: one of the two was changed", seq-1)})
		}
		prevHash = entryHash(tenant, seq, val)
		expect = seq + 1
		r.Seq = seq
		if want[seq] {
			r.HashAt[seq] = hex.EncodeToString(prevHash[:])
		}
		if err != nil {
			continue
		}
		switch e.kind {
		case linkVersion:
			r.Versions++
			where, name, err := checkVersion(txn, tenant, &e)
			if err != nil {
				r.add(Problem{Seq: seq, Record: name, What: err.Error()})
			}
			switch where {
			case foundNowhere:
				if err == nil {
					missing = append(missing, missingRecord{seq: seq, time: e.time, name: name})
				}
			case foundInHistory:
				inHist++
			default:
				inHead++
			}
		case linkAudit:
			r.Audit++
			name, err := checkAudit(txn, tenant, &e)
			switch {
			case errors.Is(err, ErrNotFound):
				r.add(Problem{Seq: seq, Record: name, What: "the record is missing (deleted)"})
			case err != nil:
				r.add(Problem{Seq: seq, Record: name, What: err.Error()})
			}
		case linkPrune:
			if len(e.ref) != 8 {
				r.add(Problem{Seq: seq, What: "prune entry without a cutoff"})
				continue
			}
			prunes = append(prunes, pruneMark{seq: seq, cutoff: int64(binary.BigEndian.Uint64(e.ref))})
		default:
			r.add(Problem{Seq: seq, What: fmt.Sprintf("entry of unknown kind %d", e.kind)})
		}
	}
	r.Head = hex.EncodeToString(prevHash[:])
	if r.Entries == 0 {
		r.Head = ""
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
	return r, nil
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

// checkVersion finds the version e points at, under h/ or as its asset
// record's head, and checks its digest.
func checkVersion(txn *badger.Txn, tenant string, e *chainEntry) (where int, name string, err error) {
	if len(e.ref) < 9 {
		return foundNowhere, "", errors.New("version entry without an asset")
	}
	version := binary.BigEndian.Uint64(e.ref[:8])
	id := string(e.ref[8:])
	name = fmt.Sprintf("version %d of asset %s", version, id)
	defer func() {
		if err != nil || where == foundNowhere {
			name += assetLabel(txn, tenant, id)
		}
	}()
	item, err := txn.Get(historyKey(tenant, id, version))
	switch {
	case err == nil:
		err = item.Value(func(v []byte) error {
			if sha256.Sum256(v) != e.digest {
				return errors.New("the record does not match its hash: it was changed after it was written")
			}
			return nil
		})
		return foundInHistory, name, err
	case !errors.Is(err, badger.ErrKeyNotFound):
		return foundNowhere, name, fmt.Errorf("read: %w", err)
	}
	item, err = txn.Get(assetKey(tenant, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return foundNowhere, name, nil
	}
	if err != nil {
		return foundNowhere, name, fmt.Errorf("read: %w", err)
	}
	where = foundNowhere
	err = item.Value(func(v []byte) error {
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
			return errors.New("the record does not match its hash: it was changed after it was written")
		}
		return nil
	})
	return where, name, err
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

func checkAudit(txn *badger.Txn, tenant string, e *chainEntry) (string, error) {
	name := "audit record"
	if len(e.ref) >= 8 {
		name += " of " + time.Unix(0, int64(binary.BigEndian.Uint64(e.ref[:8]))).UTC().Format(time.RFC3339Nano)
	}
	item, err := txn.Get(append(auditPrefix(tenant), e.ref...))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return name, ErrNotFound
	}
	if err != nil {
		return name, fmt.Errorf("read: %w", err)
	}
	return name, item.Value(func(v []byte) error {
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
