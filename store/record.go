package store

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// The asset record of schema version 2 carries the asset's newest version
// (its head) inside it, so that a new asset costs one record instead of
// two (asset and first version), and a rescan that changes nothing keeps
// writing one. The head moves to its own history key (h/...) only when
// the next version arrives, or when the asset changes without a version
// in a way the head could not describe (see carriedHead).
//
// A version's snapshot is the asset as it was when the version was
// written. Later writes without a version only move the fields in
// volatileFields (a rescan that finds the same host updates when it was
// last seen and scanned, and by which job); the head remembers their
// values at the version's time whenever they differ from the record's.
// Every other field is "stable": if a write without a new version changes
// one, the head is written out to the history first, so a snapshot is
// never reconstructed wrongly whatever the caller does.
//
// Record layout (after codec.go's conventions):
//
//	0xA2, the asset body as in codecAssetV1, then a head flag byte:
//	  0  no head: every version, the newest too, is under h/
//	  1  head, its snapshot is the record's asset
//	  2  head, its snapshot is the record's asset with the volatile fields
//	     that follow the head
//	head:     Time Source Job RunID Changes (as in a version record)
//	volatile: Sources Scanned LastSeen LastScanned LastScannedBy
//
// The head's version number is the asset's Version. Records of schema
// version 1 (tag 0xA1, no head) are still read: their versions are all
// under h/.
const codecAssetV2 = 0xA2

const (
	headNone     = 0
	headSame     = 1
	headVolatile = 2
)

// head is an asset's newest version while it lives in the asset record.
type head struct {
	Time    time.Time
	Source  string
	Job     string
	RunID   string
	Changes []model.Change
	// snap holds the volatile fields of the version's snapshot; nil when
	// they are the record's own.
	snap *volatileFields
}

// volatileFields are the fields of an asset that change without a new
// version (see TestEveryAssetFieldIsStableOrVolatile).
type volatileFields struct {
	Sources       []string
	Scanned       map[sdk.Protocol]sdk.PortRanges
	LastSeen      time.Time
	LastScanned   time.Time
	LastScannedBy string
}

func volatileOf(a *model.Asset) volatileFields {
	return volatileFields{Sources: a.Sources, Scanned: a.Scanned, LastSeen: a.LastSeen, LastScanned: a.LastScanned, LastScannedBy: a.LastScannedBy}
}

// stableEqual reports whether a and b agree on every field that only a
// new version may change.
func stableEqual(a, b *model.Asset) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && a.Status == b.Status && a.OS == b.OS && a.Unknown == b.Unknown &&
		a.Version == b.Version && a.FirstSeen.Equal(b.FirstSeen) &&
		slices.Equal(a.Addresses, b.Addresses) && slices.Equal(a.Hostnames, b.Hostnames) &&
		servicesEqual(a.Services, b.Services) && maps.Equal(a.Facts, b.Facts) && maps.Equal(a.Labels, b.Labels)
}

func servicesEqual(a, b []model.Service) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true // a rescan that finds the same reuses the slice
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Protocol != y.Protocol || x.Port != y.Port || x.State != y.State || x.Name != y.Name ||
			x.Product != y.Product || x.Version != y.Version || !x.Since.Equal(y.Since) {
			return false
		}
	}
	return true
}

// snapshotVersion is the version h describes for the asset a holding it.
func snapshotVersion(a *model.Asset, h *head) model.Version {
	s := *a
	if h.snap != nil {
		s.Sources, s.Scanned, s.LastSeen, s.LastScanned, s.LastScannedBy =
			h.snap.Sources, h.snap.Scanned, h.snap.LastSeen, h.snap.LastScanned, h.snap.LastScannedBy
	}
	return model.Version{AssetID: a.ID, Version: a.Version, Time: h.Time, Source: h.Source, Job: h.Job,
		RunID: h.RunID, Changes: h.Changes, Asset: s}
}

// appendAssetRecord appends the schema-2 record of a with head h (nil:
// none) to dst.
func appendAssetRecord(dst []byte, a *model.Asset, h *head) []byte {
	dst, _ = appendAssetRecordBody(dst, a, h)
	return dst
}

// appendAssetRecordBody is appendAssetRecord, also returning where in dst
// the asset body (the part a version record shares) ends; it starts one
// byte after the record.
func appendAssetRecordBody(dst []byte, a *model.Asset, h *head) ([]byte, int) {
	return appendAssetRecordGrown(slices.Grow(dst, assetRecordSizeHint(a, h)), a, h)
}

// appendAssetRecordGrown is appendAssetRecordBody into a dst that has
// room for assetRecordSizeHint(a, h) bytes already.
func appendAssetRecordGrown(dst []byte, a *model.Asset, h *head) ([]byte, int) {
	dst = append(dst, assetTag(codecAssetV2, a))
	dst = appendAssetBody(dst, a)
	bodyEnd := len(dst)
	switch {
	case h == nil:
		return append(dst, headNone), bodyEnd
	case h.snap == nil:
		dst = append(dst, headSame)
	default:
		dst = append(dst, headVolatile)
	}
	dst = appendTime(dst, h.Time)
	dst = appendString(dst, h.Source)
	dst = appendString(dst, h.Job)
	dst = appendString(dst, h.RunID)
	dst = appendChanges(dst, h.Changes)
	if h.snap != nil {
		dst = appendVolatile(dst, h.snap)
	}
	return dst, bodyEnd
}

// assetRecordSizeHint estimates the encoded size of the record of a with
// head h, as assetSizeHint does.
func assetRecordSizeHint(a *model.Asset, h *head) int {
	n := 1 + assetSizeHint(a)
	if h != nil {
		n += 32 + len(h.Source) + len(h.Job) + len(h.RunID) + changesSizeHint(h.Changes)
		if h.snap != nil {
			n += 48 + len(h.snap.LastScannedBy) + 8*len(h.snap.Sources) + 16*len(h.snap.Scanned)
		}
	}
	return n
}

// appendAssetRecordRaw appends the schema-2 record of a with a head kept
// as it was read: meta its encoded time, source, job, run and changes,
// vol the encoded volatile fields of its snapshot (empty: those of a).
func appendAssetRecordRaw(dst []byte, a *model.Asset, meta string, vol []byte) []byte {
	dst = slices.Grow(dst, 2+assetSizeHint(a)+len(meta)+len(vol))
	dst = append(dst, assetTag(codecAssetV2, a))
	dst = appendAssetBody(dst, a)
	if len(vol) == 0 {
		dst = append(dst, headSame)
	} else {
		dst = append(dst, headVolatile)
	}
	return append(append(dst, meta...), vol...)
}

func appendVolatile(dst []byte, v *volatileFields) []byte {
	dst = appendStrings(dst, v.Sources)
	dst = appendScanned(dst, v.Scanned)
	dst = appendTime(dst, v.LastSeen)
	dst = appendTime(dst, v.LastScanned)
	return appendString(dst, v.LastScannedBy)
}

// appendChanges, changesSizeHint and decoder.changes are the one encoding
// of a change list, shared by version records and asset heads.
func appendChanges(dst []byte, cs []model.Change) []byte {
	dst = appendUvarint(dst, uint64(len(cs)))
	for i := range cs {
		c := &cs[i]
		dst = appendString(dst, c.Field)
		dst = appendString(dst, c.Key)
		dst = appendString(dst, c.From)
		dst = appendString(dst, c.To)
	}
	return dst
}

func changesSizeHint(cs []model.Change) int {
	n := 0
	for i := range cs {
		c := &cs[i]
		n += 4 + len(c.Field) + len(c.Key) + len(c.From) + len(c.To)
	}
	return n
}

func (d *decoder) changes() []model.Change {
	n := d.count("changes", minChangeSize)
	if n == 0 {
		return nil
	}
	cs := make([]model.Change, n)
	for i := range cs {
		c := &cs[i]
		c.Field = d.str("changes.field")
		c.Key = d.str("changes.key")
		c.From = d.str("changes.from")
		c.To = d.str("changes.to")
	}
	return cs
}

// rawHead is a head as it lies in a record: checked, but not decoded, so
// that reading an asset and writing it back after a rescan that changed
// nothing costs no allocation for its head.
type rawHead struct {
	flag byte   // headNone, headSame or headVolatile
	meta string // time, source, job, run and changes, encoded
	vol  string // the snapshot's volatile fields, encoded (headVolatile)
}

// decodeAssetRecordRaw reads an asset record of either schema (a
// schema-1 record has no head) and checks its head without decoding it.
// On error *a is left zero.
func decodeAssetRecordRaw(b []byte, a *model.Asset) (rawHead, error) {
	if schema1Record(b) {
		return rawHead{}, decodeAsset(b, a)
	}
	*a = model.Asset{}
	d := decoder{record: "asset"}
	if !d.start(b, codecAssetV2) {
		return rawHead{}, d.err
	}
	d.asset(a)
	h := d.skipHead()
	if d.finish() != nil {
		*a = model.Asset{}
		return rawHead{}, d.err
	}
	return h, nil
}

// schema1Record reports whether b is an asset record without a head.
func schema1Record(b []byte) bool {
	return len(b) > 0 && (b[0] == codecAssetV1 || b[0] == codecAssetV1+tagServiceAddresses)
}

// peekHead reads only the head of an asset record, moving over its body;
// a record of schema 1 has none.
func peekHead(b []byte) (rawHead, error) {
	if schema1Record(b) {
		return rawHead{}, nil
	}
	d := decoder{record: "asset"}
	if !d.start(b, codecAssetV2) {
		return rawHead{}, d.err
	}
	d.skipAsset()
	h := d.skipHead()
	if d.finish() != nil {
		return rawHead{}, d.err
	}
	return h, nil
}

// decodeAssetRecord is decodeAssetRecordRaw with the head decoded into h
// (which may be nil). It reports whether there was a head.
func decodeAssetRecord(b []byte, a *model.Asset, h *head) (bool, error) {
	var scratch head
	if h == nil {
		h = &scratch
	}
	*h = head{}
	rh, err := decodeAssetRecordRaw(b, a)
	if err != nil || rh.flag == headNone {
		return false, err
	}
	if *h, err = rh.decode(); err != nil {
		*a = model.Asset{}
		return false, err
	}
	return true, nil
}

// skipHead checks the head at the decoder's offset and returns it raw.
func (d *decoder) skipHead() rawHead {
	if d.off >= len(d.s) {
		d.fail(d.off, "head", "record ends early")
		return rawHead{}
	}
	flag := d.s[d.off]
	if flag > headVolatile {
		d.fail(d.off, "head", fmt.Sprintf("unknown head flag %d", flag))
		return rawHead{}
	}
	d.off++
	if flag == headNone {
		return rawHead{}
	}
	start := d.off
	d.time("head.time")
	d.str("head.source")
	d.str("head.job")
	d.str("head.run_id")
	n := d.count("head.changes", minChangeSize)
	for i := 0; i < n; i++ {
		d.str("head.changes.field")
		d.str("head.changes.key")
		d.str("head.changes.from")
		d.str("head.changes.to")
	}
	h := rawHead{flag: flag, meta: d.s[start:d.off]}
	if flag == headVolatile {
		start = d.off
		for n := d.count("head.sources", minStringSize); n > 0; n-- {
			d.str("head.sources")
		}
		d.skipScanned()
		d.time("head.last_seen")
		d.time("head.last_scanned")
		d.str("head.last_scanned_by")
		h.vol = d.s[start:d.off]
	}
	if d.err != nil {
		return rawHead{}
	}
	return h
}

// skipScanned checks what scanned reads, without building the map.
func (d *decoder) skipScanned() {
	n := d.count("scanned", minScannedSize)
	var prev string
	for i := 0; i < n; i++ {
		off := d.off
		p := d.str("scanned.protocol")
		if i > 0 && p <= prev && d.err == nil {
			d.fail(off, "scanned.protocol", "keys out of order or repeated")
		}
		prev = p
		for m := d.count("scanned.ranges", minPortRangeSize); m > 0; m-- {
			d.port("scanned.first")
			d.port("scanned.last")
		}
	}
}

// decode decodes a head checked by skipHead.
// time is the head's time, read alone (its first field).
func (r rawHead) time() time.Time {
	d := decoder{s: r.meta, record: "asset head"}
	return d.time("head.time")
}

func (r rawHead) decode() (head, error) {
	var h head
	if r.flag == headNone {
		return h, nil
	}
	d := decoder{s: r.meta, record: "asset head"}
	h.Time = d.time("head.time")
	h.Source = d.str("head.source")
	h.Job = d.str("head.job")
	h.RunID = d.str("head.run_id")
	h.Changes = d.changes()
	if d.finish() != nil {
		return head{}, d.err
	}
	if r.flag == headVolatile {
		d = decoder{s: r.vol, record: "asset head"}
		var a model.Asset // the volatile fields decode as in an asset body
		a.Sources = d.strs("head.sources")
		a.Scanned = d.scanned()
		a.LastSeen = d.time("head.last_seen")
		a.LastScanned = d.time("head.last_scanned")
		a.LastScannedBy = d.str("head.last_scanned_by")
		if d.finish() != nil {
			return head{}, d.err
		}
		v := volatileOf(&a)
		h.snap = &v
	}
	return h, nil
}
