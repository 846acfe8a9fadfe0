package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sollwert/sollwert/model"
)

// ForEachAssetAt calls fn, in id order, with every asset of tenant as it
// stood at at: its newest version from then or before. Assets that did
// not exist yet are left out. One pass over the asset records and one
// over the history, side by side (both are in id order): an asset whose
// newest version is older than at costs no history read at all, and one
// that changed since costs a few steps through its own versions.
func (t *Txn) ForEachAssetAt(tenant string, at time.Time, fn func(*model.Asset) error) error {
	ap := assetPrefix(tenant)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: ap, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	hp := []byte(prefixHistory + tenant + "/")
	hist := t.txn.NewIterator(badger.IteratorOptions{Prefix: hp, PrefetchValues: true, PrefetchSize: 64})
	defer hist.Close()
	hist.Seek(hp)
	var key []byte
	for it.Seek(ap); it.ValidForPrefix(ap); it.Next() {
		var a model.Asset
		var h head
		var has bool
		if err := it.Item().Value(func(v []byte) error {
			var err error
			has, err = decodeAssetRecord(v, &a, &h)
			return err
		}); err != nil {
			return fmt.Errorf("asset %q: %w", it.Item().Key()[len(ap):], err)
		}
		if has && !h.Time.After(at) {
			v := snapshotVersion(&a, &h)
			if err := fn(&v.Asset); err != nil {
				return err
			}
			continue
		}
		key = append(append(append(key[:0], prefixHistory...), tenant...), '/')
		key = append(append(key, a.ID...), '/')
		then, ok, err := versionAt(hist, key, at)
		if err != nil {
			return fmt.Errorf("history of %s: %w", a.ID, err)
		}
		if !ok {
			continue
		}
		if err := fn(&then.Asset); err != nil {
			return err
		}
	}
	return nil
}

// versionAt moves it, which only ever goes forward through the history in
// key order, to the versions under prefix (oldest first), and returns the
// newest from at or before, decoding only that one. Stepping over the
// versions of assets that needed none is cheaper than a seek, up to a
// point.
func versionAt(it *badger.Iterator, prefix []byte, at time.Time) (model.Version, bool, error) {
	for steps := 0; it.Valid() && bytes.Compare(it.Item().Key(), prefix) < 0; steps++ {
		if steps == 32 {
			it.Seek(prefix)
			break
		}
		it.Next()
	}
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
