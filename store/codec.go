package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// Binary record format for assets and versions.
//
// Assets and their versions are most of what the store writes and reads,
// so they use a compact hand-written binary form rather than JSON. The
// first byte tags the format: codecAssetV1 or codecVersionV1. Every other
// record, and any record written before this codec, is JSON and so starts
// with '{' (decodeAsset and decodeVersion refuse those with an error
// saying so; a caller that must read old records checks b[0] first). A new
// layout gets a new tag.
//
// After the tag the fields follow in a fixed order, with no names:
//
//	uint    uvarint
//	string  uvarint length, then the bytes
//	bool    one byte, 0 or 1
//	time    one byte flag, then
//	          0: nothing: the zero time.Time
//	          1: varint of UnixNano
//	          2: varint of Unix seconds, uvarint of nanoseconds (only for
//	             times UnixNano cannot hold, before 1678 or after 2262)
//	list    uvarint count, then the elements
//	map     uvarint count, then key, value pairs in strictly increasing
//	        key order
//
// An asset is
//
//	ID Tenant
//	Addresses: list of {Addr Type Vendor}
//	Hostnames: list of string
//	Status OS
//	Services: list of {Protocol Port(uint) State Name Product Version Since(time)},
//	  each followed by its Address when the tag says so (tagServiceAddresses)
//	Facts Labels: map of string to string
//	Sources: list of string
//	Scanned: map of Protocol to list of {First Last} (uints)
//	Unknown(bool) FirstSeen LastSeen LastScanned (times)
//	LastScannedBy Version(uint)
//
// and a version is
//
//	AssetID Version(uint) Time Source Job RunID
//	Changes: list of {Field Key From To}
//	the asset's fields as above, without a tag
//
// The encoding is canonical: a value has exactly one encoding (nil and
// empty, and a time in any location, count as the same value), and the
// decoder refuses any other (long varints, unsorted or repeated map keys,
// other bool bytes, a time in a wider form than it needs, trailing
// bytes), so decoding and encoding again gives back the same bytes.
// Decoded times are in UTC without a monotonic reading, and empty lists
// and maps decode as nil. The decoded strings share one copy of the
// record, so decoding takes about ten allocations however many strings
// an asset has, and keeping any one string keeps the whole record.
//
// Records come from disk and are checked as untrusted: a count or length
// larger than the bytes left is an error, so no allocation exceeds a small
// multiple of the record's size, and the decoder never panics.
const (
	codecAssetV1   = 0xA1
	codecVersionV1 = 0xB1
)

// tagServiceAddresses is added to a record's tag when a service of its
// asset carries the address it was seen on (Service.Address, schema 6):
// each service then ends with that address. Records without one keep the
// tag and bytes they always had, so the chain digests of what was
// written before still hold.
const tagServiceAddresses = 0x04

// assetTag is tag, or its variant when a's services carry addresses.
func assetTag(tag byte, a *model.Asset) byte {
	if serviceAddresses(a) {
		return tag + tagServiceAddresses
	}
	return tag
}

func serviceAddresses(a *model.Asset) bool {
	for i := range a.Services {
		if a.Services[i].Address != "" {
			return true
		}
	}
	return false
}

// Time flags.
const (
	timeZero  = 0
	timeNanos = 1
	timeWide  = 2
)

// fitsNanos reports whether the time sec, nsec after the Unix epoch lies
// within what UnixNano can hold, from time.Unix(0, math.MinInt64) to
// time.Unix(0, math.MaxInt64).
func fitsNanos(sec int64, nsec int) bool {
	switch {
	case sec > -9223372037 && sec < 9223372036:
		return true
	case sec == -9223372037:
		return nsec >= 145224192
	case sec == 9223372036:
		return nsec <= 854775807
	}
	return false
}

// Smallest encoded sizes of list and map elements, to bound counts.
const (
	minAddressSize   = 3 // three empty strings
	minServiceSize   = 7 // five empty strings, a port, a zero time
	minChangeSize    = 4
	minStringSize    = 1
	minPairSize      = 2
	minScannedSize   = 2 // protocol, range count
	minPortRangeSize = 2
)

// appendAsset appends the binary form of a to dst.
func appendAsset(dst []byte, a *model.Asset) []byte {
	dst = slices.Grow(dst, 1+assetSizeHint(a))
	dst = append(dst, assetTag(codecAssetV1, a))
	return appendAssetBody(dst, a)
}

// appendVersion appends the binary form of v to dst.
func appendVersion(dst []byte, v *model.Version) []byte {
	n := 24 + len(v.AssetID) + len(v.Source) + len(v.Job) + len(v.RunID) + changesSizeHint(v.Changes)
	dst = slices.Grow(dst, n+assetSizeHint(&v.Asset))
	dst = appendVersionHeader(dst, v)
	return appendAssetBody(dst, &v.Asset)
}

// appendVersionHeader appends what a version record holds before its
// asset body.
func appendVersionHeader(dst []byte, v *model.Version) []byte {
	dst = append(dst, assetTag(codecVersionV1, &v.Asset))
	dst = appendString(dst, v.AssetID)
	dst = appendUvarint(dst, v.Version)
	dst = appendTime(dst, v.Time)
	dst = appendString(dst, v.Source)
	dst = appendString(dst, v.Job)
	dst = appendString(dst, v.RunID)
	return appendChanges(dst, v.Changes)
}

// assetSizeHint estimates the encoded size of a, so that encoding
// allocates once. Short strings take one length byte; maps are guessed
// rather than walked.
func assetSizeHint(a *model.Asset) int {
	n := 64 + len(a.ID) + len(a.Tenant) + len(a.Status) + len(a.OS) + len(a.LastScannedBy)
	for i := range a.Addresses {
		ad := &a.Addresses[i]
		n += 3 + len(ad.Addr) + len(ad.Type) + len(ad.Vendor)
	}
	for _, h := range a.Hostnames {
		n += 1 + len(h)
	}
	for i := range a.Services {
		s := &a.Services[i]
		n += 18 + len(s.Protocol) + len(s.State) + len(s.Name) + len(s.Product) + len(s.Version) + len(s.Address)
	}
	for _, s := range a.Sources {
		n += 1 + len(s)
	}
	n += 32 * (len(a.Facts) + len(a.Labels) + len(a.Scanned))
	return n
}

func appendAssetBody(dst []byte, a *model.Asset) []byte {
	dst = appendString(dst, a.ID)
	dst = appendString(dst, a.Tenant)
	dst = appendUvarint(dst, uint64(len(a.Addresses)))
	for i := range a.Addresses {
		ad := &a.Addresses[i]
		dst = appendString(dst, ad.Addr)
		dst = appendString(dst, ad.Type)
		dst = appendString(dst, ad.Vendor)
	}
	dst = appendStrings(dst, a.Hostnames)
	dst = appendString(dst, a.Status)
	dst = appendString(dst, a.OS)
	dst = appendUvarint(dst, uint64(len(a.Services)))
	withAddr := serviceAddresses(a)
	for i := range a.Services {
		s := &a.Services[i]
		dst = appendString(dst, string(s.Protocol))
		dst = appendUvarint(dst, uint64(s.Port))
		dst = appendString(dst, s.State)
		dst = appendString(dst, s.Name)
		dst = appendString(dst, s.Product)
		dst = appendString(dst, s.Version)
		dst = appendTime(dst, s.Since)
		if withAddr {
			dst = appendString(dst, s.Address)
		}
	}
	dst = appendStringMap(dst, a.Facts)
	dst = appendStringMap(dst, a.Labels)
	dst = appendStrings(dst, a.Sources)
	dst = appendScanned(dst, a.Scanned)
	dst = appendBool(dst, a.Unknown)
	dst = appendTime(dst, a.FirstSeen)
	dst = appendTime(dst, a.LastSeen)
	dst = appendTime(dst, a.LastScanned)
	dst = appendString(dst, a.LastScannedBy)
	return appendUvarint(dst, a.Version)
}

func appendString(dst []byte, s string) []byte {
	return append(appendUvarint(dst, uint64(len(s))), s...)
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = appendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendString(dst, s)
	}
	return dst
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, timeZero)
	}
	sec, nsec := t.Unix(), t.Nanosecond()
	if !fitsNanos(sec, nsec) {
		dst = append(dst, timeWide)
		dst = appendVarint(dst, sec)
		return appendUvarint(dst, uint64(nsec))
	}
	return appendVarint(append(dst, timeNanos), sec*1e9+int64(nsec)) // t.UnixNano(), from what is at hand
}

// appendUvarint is binary.AppendUvarint, quicker for small numbers.
func appendUvarint(dst []byte, x uint64) []byte {
	if x < 1<<7 {
		return append(dst, byte(x))
	}
	if x < 1<<14 {
		return append(dst, byte(x)|0x80, byte(x>>7))
	}
	return putUvarint(dst, x)
}

// putUvarint writes into spare capacity rather than appending byte by
// byte: times take nine bytes.
func putUvarint(dst []byte, x uint64) []byte {
	dst = slices.Grow(dst, binary.MaxVarintLen64)
	n := len(dst)
	return dst[:n+binary.PutUvarint(dst[n:n+binary.MaxVarintLen64], x)]
}

// appendVarint is binary.AppendVarint.
func appendVarint(dst []byte, x int64) []byte {
	u := uint64(x) << 1
	if x < 0 {
		u = ^u
	}
	return appendUvarint(dst, u)
}

// sortedKeys returns the keys of m in order, in buf if they fit.
func sortedKeys[K ~string, V any](m map[K]V, buf []K) []K {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	if len(keys) > 1 {
		slices.Sort(keys)
	}
	return keys
}

func appendStringMap(dst []byte, m map[string]string) []byte {
	dst = appendUvarint(dst, uint64(len(m)))
	if len(m) == 0 {
		return dst
	}
	// The pairs are sorted as they are, so that no value is looked up
	// again by its key.
	var buf [8]stringPair
	pairs := buf[:0]
	for k, v := range m {
		pairs = append(pairs, stringPair{k, v})
	}
	if len(pairs) > 1 {
		slices.SortFunc(pairs, func(a, b stringPair) int { return strings.Compare(a.k, b.k) })
	}
	for _, p := range pairs {
		dst = appendString(dst, p.k)
		dst = appendString(dst, p.v)
	}
	return dst
}

type stringPair struct{ k, v string }

func appendScanned(dst []byte, m map[sdk.Protocol]sdk.PortRanges) []byte {
	dst = appendUvarint(dst, uint64(len(m)))
	if len(m) == 0 {
		return dst
	}
	var buf [4]sdk.Protocol
	for _, p := range sortedKeys(m, buf[:]) {
		dst = appendString(dst, string(p))
		rs := m[p]
		dst = appendUvarint(dst, uint64(len(rs)))
		for _, r := range rs {
			dst = appendUvarint(dst, uint64(r.First))
			dst = appendUvarint(dst, uint64(r.Last))
		}
	}
	return dst
}

// codecError is a record the binary codec could not read.
type codecError struct {
	Record string // "asset" or "version"
	Offset int    // byte offset in the record where the bad value starts
	Field  string // which field, e.g. "services.port"
	Reason string
}

func (e *codecError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("decode %s record: byte %d: %s", e.Record, e.Offset, e.Reason)
	}
	return fmt.Sprintf("decode %s record: byte %d: %s: %s", e.Record, e.Offset, e.Field, e.Reason)
}

// decodeAsset reads one asset from b, which must hold exactly one encoded
// asset. On error *a is left zero.
func decodeAsset(b []byte, a *model.Asset) error {
	*a = model.Asset{}
	d := decoder{record: "asset"}
	if !d.start(b, codecAssetV1) {
		return d.err
	}
	d.asset(a)
	if d.finish() != nil {
		*a = model.Asset{}
		return d.err
	}
	return nil
}

// decodeVersion reads one version from b, which must hold exactly one
// encoded version. On error *v is left zero.
func decodeVersion(b []byte, v *model.Version) error {
	*v = model.Version{}
	d := decoder{record: "version"}
	if !d.start(b, codecVersionV1) {
		return d.err
	}
	v.AssetID = d.str("asset_id")
	v.Version = d.uint("version")
	v.Time = d.time("time")
	v.Source = d.str("source")
	v.Job = d.str("job")
	v.RunID = d.str("run_id")
	v.Changes = d.changes()
	d.asset(&v.Asset)
	if d.finish() != nil {
		*v = model.Version{}
		return d.err
	}
	return nil
}

// decoder reads a record held in one string, so that the decoded strings
// are slices of it and cost no allocation each. After the first error
// off is moved to the end, so every later read fails fast and returns a
// zero value, and only the first error is kept.
type decoder struct {
	s      string
	off    int
	err    error
	record string
	// svcAddr is set by the tag: each service ends with its address.
	svcAddr bool
}

// start begins a record of format tag, or of its variant whose services
// carry addresses.
func (d *decoder) start(b []byte, tag byte) bool {
	switch {
	case len(b) == 0:
		d.fail(0, "", "empty record")
	case b[0] == '{':
		d.fail(0, "", "a JSON record, not binary")
	case b[0] != tag && b[0] != tag+tagServiceAddresses:
		d.fail(0, "", fmt.Sprintf("unknown format tag 0x%02x, want 0x%02x or 0x%02x", b[0], tag, tag+tagServiceAddresses))
	default:
		d.s = string(b)
		d.off = 1
		d.svcAddr = b[0] != tag
		return true
	}
	return false
}

func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.s) {
		d.fail(d.off, "", fmt.Sprintf("%d bytes left over after the record", len(d.s)-d.off))
	}
	return d.err
}

func (d *decoder) fail(off int, field, reason string) {
	if d.err == nil {
		d.err = &codecError{Record: d.record, Offset: off, Field: field, Reason: reason}
	}
	d.off = len(d.s)
}

func (d *decoder) asset(a *model.Asset) {
	a.ID = d.str("id")
	a.Tenant = d.str("tenant")
	if n := d.count("addresses", minAddressSize); n > 0 {
		a.Addresses = make([]sdk.Address, n)
		for i := range a.Addresses {
			ad := &a.Addresses[i]
			ad.Addr = d.str("addresses.addr")
			ad.Type = d.str("addresses.type")
			ad.Vendor = d.str("addresses.vendor")
		}
	}
	a.Hostnames = d.strs("hostnames")
	a.Status = d.str("status")
	a.OS = d.str("os")
	off := d.off
	if n := d.count("services", minServiceSize); n > 0 {
		a.Services = make([]model.Service, n)
		for i := range a.Services {
			s := &a.Services[i]
			if !d.serviceFast(s) {
				s.Protocol = sdk.Protocol(d.str("services.protocol"))
				s.Port = d.port("services.port")
				s.State = d.str("services.state")
				s.Name = d.str("services.name")
				s.Product = d.str("services.product")
				s.Version = d.str("services.version")
				s.Since = d.time("services.since")
			}
			if d.svcAddr {
				s.Address = d.str("services.address")
			}
		}
	}
	if d.svcAddr && !serviceAddresses(a) && d.err == nil {
		d.fail(off, "services", "the tag says services carry addresses, and none does")
	}
	a.Facts = d.strMap("facts")
	a.Labels = d.strMap("labels")
	a.Sources = d.strs("sources")
	a.Scanned = d.scanned()
	a.Unknown = d.bool("unknown")
	a.FirstSeen = d.time("first_seen")
	a.LastSeen = d.time("last_seen")
	a.LastScanned = d.time("last_scanned")
	a.LastScannedBy = d.str("last_scanned_by")
	a.Version = d.uint("version")
}

// scanned reads a map of protocol to port ranges.
// skipAsset moves over an asset body as asset reads it, keeping nothing
// and allocating nothing (TestSkipAssetEndsWhereAssetDoes holds the two
// together): time travel needs only the head that follows it.
func (d *decoder) skipAsset() {
	d.str("id")
	d.str("tenant")
	for n := d.count("addresses", minAddressSize); n > 0; n-- {
		d.str("addresses.addr")
		d.str("addresses.type")
		d.str("addresses.vendor")
	}
	d.skipStrs("hostnames")
	d.str("status")
	d.str("os")
	var s model.Service
	for n := d.count("services", minServiceSize); n > 0; n-- {
		if !d.serviceFast(&s) {
			d.str("services.protocol")
			d.port("services.port")
			d.str("services.state")
			d.str("services.name")
			d.str("services.product")
			d.str("services.version")
			d.time("services.since")
		}
		if d.svcAddr {
			d.str("services.address")
		}
	}
	for _, f := range []string{"facts", "labels"} {
		for n := d.count(f, minPairSize); n > 0; n-- {
			d.str(f)
			d.str(f)
		}
	}
	d.skipStrs("sources")
	d.skipScanned()
	d.bool("unknown")
	d.time("first_seen")
	d.time("last_seen")
	d.time("last_scanned")
	d.str("last_scanned_by")
	d.uint("version")
}

func (d *decoder) skipStrs(field string) {
	for n := d.count(field, minStringSize); n > 0; n-- {
		d.str(field)
	}
}

func (d *decoder) scanned() map[sdk.Protocol]sdk.PortRanges {
	n := d.count("scanned", minScannedSize)
	if n == 0 {
		return nil
	}
	out := make(map[sdk.Protocol]sdk.PortRanges, n)
	var prev string
	for i := 0; i < n; i++ {
		off := d.off
		p := d.str("scanned.protocol")
		if i > 0 && p <= prev && d.err == nil {
			d.fail(off, "scanned.protocol", "keys out of order or repeated")
		}
		prev = p
		var rs sdk.PortRanges
		if m := d.count("scanned.ranges", minPortRangeSize); m > 0 {
			rs = make(sdk.PortRanges, m)
			for j := range rs {
				rs[j].First = d.port("scanned.first")
				rs[j].Last = d.port("scanned.last")
			}
		}
		out[sdk.Protocol(p)] = rs
	}
	return out
}

// serviceFast reads a service whose strings are shorter than 128 bytes,
// the common case, without calls per field. It reads nothing and returns
// false for any other, which the general path then reads; both read the
// same bytes the same way.
func (d *decoder) serviceFast(sv *model.Service) bool {
	s, off := d.s, d.off
	var proto, state, name, product, version string
	var port uint16
	var ok bool
	if proto, off, ok = shortStr(s, off); !ok {
		return false
	}
	if port, off, ok = shortPort(s, off); !ok {
		return false
	}
	if state, off, ok = shortStr(s, off); !ok {
		return false
	}
	if name, off, ok = shortStr(s, off); !ok {
		return false
	}
	if product, off, ok = shortStr(s, off); !ok {
		return false
	}
	if version, off, ok = shortStr(s, off); !ok {
		return false
	}
	d.off = off
	sv.Protocol, sv.Port, sv.State = sdk.Protocol(proto), port, state
	sv.Name, sv.Product, sv.Version = name, product, version
	sv.Since = d.time("services.since")
	return true
}

// shortStr reads a string shorter than 128 bytes (with a one-byte length)
// at off, and returns it and the offset after it.
func shortStr(s string, off int) (string, int, bool) {
	if off < len(s) && s[off] < 0x80 {
		if end := off + 1 + int(s[off]); end <= len(s) {
			return s[off+1 : end], end, true
		}
	}
	return "", off, false
}

// shortPort reads a port at off, in one to three bytes.
func shortPort(s string, off int) (uint16, int, bool) {
	if off >= len(s) {
		return 0, off, false
	}
	c := s[off]
	if c < 0x80 {
		return uint16(c), off + 1, true
	}
	if off+1 >= len(s) {
		return 0, off, false
	}
	c2 := s[off+1]
	if c2 != 0 && c2 < 0x80 {
		return uint16(c&0x7f) | uint16(c2)<<7, off + 2, true
	}
	if c2 < 0x80 || off+2 >= len(s) {
		return 0, off, false
	}
	if c3 := s[off+2]; c3 != 0 && c3 <= 3 {
		return uint16(c&0x7f) | uint16(c2&0x7f)<<7 | uint16(c3)<<14, off + 3, true
	}
	return 0, off, false
}

// uint reads a uvarint.
func (d *decoder) uint(field string) uint64 {
	if off := d.off; off < len(d.s) && d.s[off] < 0x80 {
		d.off++
		return uint64(d.s[off])
	}
	x, next, reason := uvarintAt(d.s, d.off)
	if reason != "" {
		d.fail(d.off, field, reason)
		return 0
	}
	d.off = next
	return x
}

// uvarintAt reads the uvarint at s[off:] and returns it with the offset
// after it, or why there is none. It refuses encodings longer than
// needed, as binary.Uvarint does not.
func uvarintAt(s string, off int) (x uint64, next int, reason string) {
	if off < 0 || off > len(s) {
		return 0, off, "record ends early"
	}
	b := s[off:]
	for i := 0; i < len(b); i++ {
		c := b[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return 0, off, "varint overflows 64 bits"
		}
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, off, "varint is not in its shortest form"
			}
			return x | uint64(c)<<(7*uint(i)), off + i + 1, ""
		}
		x |= uint64(c&0x7f) << (7 * uint(i))
	}
	return 0, off, "record ends early"
}

func (d *decoder) int(field string) int64 { return unzigzag(d.uint(field)) }

// unzigzag undoes the mapping of binary.AppendVarint.
func unzigzag(u uint64) int64 {
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// count reads the length of a list, map or string whose elements take at
// least minSize bytes each, and refuses one the rest of the record cannot
// hold.
func (d *decoder) count(field string, minSize int) int {
	start := d.off
	n := d.uint(field)
	if n > uint64((len(d.s)-d.off)/minSize) {
		d.fail(start, field, fmt.Sprintf("length %d exceeds the %d bytes left", n, len(d.s)-d.off))
		return 0
	}
	return int(n)
}

// str reads a string; the common case of a short one is inlined.
func (d *decoder) str(field string) string {
	if off := d.off; off < len(d.s) && d.s[off] < 0x80 {
		if end := off + 1 + int(d.s[off]); end <= len(d.s) {
			d.off = end
			return d.s[off+1 : end]
		}
	}
	return d.strSlow(field)
}

func (d *decoder) strSlow(field string) string {
	n := d.count(field, 1)
	s := d.s[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) strs(field string) []string {
	n := d.count(field, minStringSize)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str(field)
	}
	return out
}

func (d *decoder) strMap(field string) map[string]string {
	n := d.count(field, minPairSize)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	var prev string
	for i := 0; i < n; i++ {
		off := d.off
		k := d.str(field)
		if i > 0 && k <= prev && d.err == nil {
			d.fail(off, field, "keys out of order or repeated")
		}
		prev = k
		m[k] = d.str(field)
	}
	return m
}

func (d *decoder) port(field string) uint16 {
	start := d.off
	v := d.uint(field)
	if v > 0xffff {
		d.fail(start, field, fmt.Sprintf("port %d out of range", v))
		return 0
	}
	return uint16(v)
}

func (d *decoder) bool(field string) bool {
	if d.off >= len(d.s) {
		if d.err == nil {
			d.fail(d.off, field, "record ends early")
		}
		return false
	}
	c := d.s[d.off]
	if c > 1 {
		d.fail(d.off, field, fmt.Sprintf("bool byte 0x%02x", c))
		return false
	}
	d.off++
	return c == 1
}

func (d *decoder) time(field string) time.Time {
	if off := d.off; off < len(d.s) && d.s[off] == timeNanos {
		if u, next, reason := uvarintAt(d.s, off+1); reason == "" {
			d.off = next
			return time.Unix(0, unzigzag(u)).UTC()
		}
	}
	return d.timeSlow(field)
}

func (d *decoder) timeSlow(field string) time.Time {
	if d.off >= len(d.s) {
		if d.err == nil {
			d.fail(d.off, field, "record ends early")
		}
		return time.Time{}
	}
	start := d.off
	flag := d.s[d.off]
	d.off++
	switch flag {
	case timeZero:
		return time.Time{}
	case timeNanos:
		return time.Unix(0, d.int(field)).UTC()
	case timeWide:
		sec := d.int(field)
		nsec := d.uint(field)
		if d.err != nil {
			return time.Time{}
		}
		if nsec >= 1e9 {
			d.fail(start, field, fmt.Sprintf("nanoseconds %d out of range", nsec))
			return time.Time{}
		}
		t := time.Unix(sec, int64(nsec)).UTC()
		if t.IsZero() || fitsNanos(sec, int(nsec)) {
			d.fail(start, field, "time is not in its shortest form")
			return time.Time{}
		}
		return t
	default:
		d.fail(start, field, fmt.Sprintf("unknown time flag %d", flag))
		return time.Time{}
	}
}
