package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// ForEachAssetAt calls fn, in id order, with every asset of tenant as it
// stood at at: its newest version from then or before. Assets that did
// not exist yet are left out.
//
// Each part of the id range is one pass over its asset records and one
// over its history, side by side (both are in id order): an asset whose
// newest version is older than at costs no history read at all, and one
// that changed since costs a few steps through its own versions. The
// parts run on every core; the first streams to fn as it goes, so a
// caller that stops early (a page of a list) does not wait for the rest.
func (t *Txn) ForEachAssetAt(tenant string, at time.Time, fn func(*model.Asset) error) error {
	bounds := t.assetSplits(tenant, runtime.GOMAXPROCS(0))
	if len(bounds) <= 2 {
		return t.assetsAtRange(tenant, at, bounds[0], bounds[1], func(b []model.Asset) error { return emit(b, fn) })
	}
	// The parts end before the transaction may: stop tells them, the
	// wait group waits for them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	parts := make([]chan []model.Asset, len(bounds)-1)
	errs := make([]error, len(parts))
	for i := range parts {
		// Room for every batch of a part: the later parts run ahead while
		// fn takes the earlier ones.
		parts[i] = make(chan []model.Asset, 1<<14)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer close(parts[i])
			errs[i] = t.assetsAtRange(tenant, at, bounds[i], bounds[i+1], func(b []model.Asset) error {
				select {
				case <-stop:
					return errStopIteration
				default:
				}
				select {
				case parts[i] <- b:
					return nil
				case <-stop:
					return errStopIteration
				}
			})
		}(i)
	}
	for i, ch := range parts {
		for b := range ch {
			if err := emit(b, fn); err != nil {
				return err // stop ends the other parts
			}
		}
		if errs[i] != nil {
			return errs[i]
		}
	}
	return nil
}

func emit(b []model.Asset, fn func(*model.Asset) error) error {
	for i := range b {
		if err := fn(&b[i]); err != nil {
			return err
		}
	}
	return nil
}

// assetSplits returns up to parts+1 asset keys of tenant that cut its
// assets into parts of about the same size, assuming ids spread evenly
// (sollwert's are hex): the first key, the keys in between interpolated
// from the first and last id, and nil for the end. One part when there
// are too few assets to be worth it.
func (t *Txn) assetSplits(tenant string, parts int) [][]byte {
	ap := assetPrefix(tenant)
	whole := [][]byte{ap, nil}
	if parts < 2 {
		return whole
	}
	first, last := t.edgeKey(ap, false), t.edgeKey(ap, true)
	if first == nil || last == nil {
		return whole
	}
	// Interpolate over the eight bytes after what the first and last id
	// share.
	a, b := first[len(ap):], last[len(ap):]
	common := 0
	for common < len(a) && common < len(b) && a[common] == b[common] {
		common++
	}
	lo, hi := idNumber(a[common:]), idNumber(b[common:])
	if hi-lo < uint64(parts) {
		return whole
	}
	out := [][]byte{ap}
	step := (hi - lo) / uint64(parts)
	for i := 1; i < parts; i++ {
		k := append([]byte(nil), first[:len(ap)+common]...)
		out = append(out, binary.BigEndian.AppendUint64(k, lo+uint64(i)*step))
	}
	return append(out, nil)
}

// idNumber reads the first eight bytes of id as a number (zero padded),
// in the order of the keys.
func idNumber(id []byte) uint64 {
	var b [8]byte
	copy(b[:], id)
	return binary.BigEndian.Uint64(b[:])
}

// edgeKey returns the first (or last) key under prefix; nil when none.
func (t *Txn) edgeKey(prefix []byte, last bool) []byte {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: last})
	defer it.Close()
	seek := prefix
	if last {
		seek = append(append([]byte(nil), prefix...), bytes.Repeat([]byte{0xff}, 16)...)
	}
	it.Seek(seek)
	if !it.ValidForPrefix(prefix) {
		return nil
	}
	return it.Item().KeyCopy(nil)
}

// assetsAtRange is ForEachAssetAt over the asset keys from lo to hi (nil:
// the end of the tenant's), handing fn batches it may keep.
func (t *Txn) assetsAtRange(tenant string, at time.Time, lo, hi []byte, fn func([]model.Asset) error) error {
	ap := assetPrefix(tenant)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: ap, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	hp := []byte(prefixHistory + tenant + "/")
	hist := newCursor(t.txn, hp)
	defer hist.close()
	hist.advance(append(append([]byte(nil), hp...), lo[len(ap):]...))
	const batchSize = 256
	batch := make([]model.Asset, 0, batchSize)
	var key []byte
	for it.Seek(lo); it.ValidForPrefix(ap); it.Next() {
		if hi != nil && bytes.Compare(it.Item().Key(), hi) >= 0 {
			break
		}
		// The record is decoded only when its head is the answer, and the
		// head then only as far as the snapshot needs; otherwise only the
		// head's time is read.
		var a model.Asset
		var rh rawHead
		if err := it.Item().Value(func(v []byte) error {
			var err error
			if rh, err = peekHead(v); err != nil || rh.flag == headNone || rh.time().After(at) {
				return err
			}
			rh, err = decodeAssetRecordRaw(v, &a)
			return err
		}); err != nil {
			return fmt.Errorf("asset %q: %w", it.Item().Key()[len(ap):], err)
		}
		if rh.flag != headNone && !rh.time().After(at) {
			if rh.flag == headSame {
				batch = append(batch, a)
			} else {
				h, err := rh.decode()
				if err != nil {
					return fmt.Errorf("asset %s: %w", a.ID, err)
				}
				v := snapshotVersion(&a, &h)
				batch = append(batch, v.Asset)
			}
		} else {
			id := it.Item().Key()[len(ap):]
			key = append(append(key[:0], hp...), id...)
			key = append(key, '/')
			then, ok, err := versionAt(hist, key, at)
			if err != nil {
				return fmt.Errorf("history of %s: %w", id, err)
			}
			if ok {
				batch = append(batch, then.Asset)
			}
		}
		if len(batch) == batchSize {
			if err := fn(batch); err != nil {
				return err
			}
			batch = make([]model.Asset, 0, batchSize)
		}
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

// versionAt moves the history cursor, which only ever goes forward in
// key order, to the versions under prefix (oldest first), and returns the
// newest from at or before, decoding only that one.
func versionAt(c *cursor, prefix []byte, at time.Time) (model.Version, bool, error) {
	c.advance(prefix)
	it := c.it
	var best []byte
	for ; it.ValidForPrefix(prefix); it.Next() {
		stop := false
		if err := it.Item().Value(func(v []byte) error {
			when, err := versionTime(v)
			if err != nil {
				return err
			}
			if stop = when.After(at); !stop {
				best = append(best[:0], v...) // the item is gone after Next
			}
			return nil
		}); err != nil {
			return model.Version{}, false, err
		}
		if stop {
			break
		}
	}
	if best == nil {
		return model.Version{}, false, nil
	}
	var v model.Version
	if err := decodeVersion(best, &v); err != nil {
		return model.Version{}, false, err
	}
	return v, true, nil
}

// versionTime reads only the time of a version record, from the few
// bytes before it (tag, asset id, version number).
func versionTime(b []byte) (time.Time, error) {
	d := decoder{record: "version"}
	if len(b) > 1 && b[1] < 0x80 {
		b = b[:min(len(b), 2+int(b[1])+binary.MaxVarintLen64+1+2*binary.MaxVarintLen64)]
	}
	if !d.start(b, codecVersionV1) {
		return time.Time{}, d.err
	}
	d.str("asset_id")
	d.uint("version")
	when := d.time("time")
	return when, d.err
}
