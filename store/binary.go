package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// Assets and their versions are the bulk of what the store writes and
// reads on every scan, so they use a compact binary form instead of JSON
// (which spent most of an upsert formatting timestamps). The first byte
// tags the format; other records stay JSON, which starts with '{'.
const (
	tagAssetV1   = 0xA1
	tagVersionV1 = 0xB1
)

type writer struct{ b []byte }

func (w *writer) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) str(s string)  { w.uint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *writer) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// time stores nanoseconds since the epoch; 0 means the zero time.
func (w *writer) time(t time.Time) {
	if t.IsZero() {
		w.int(0)
		return
	}
	w.int(t.UnixNano())
}

func (w *writer) strs(s []string) {
	w.uint(uint64(len(s)))
	for _, v := range s {
		w.str(v)
	}
}

func (w *writer) strMap(m map[string]string) {
	w.uint(uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.str(k)
		w.str(m[k])
	}
}

type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("record ends early")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("decode record at byte %d: %w", r.off, err)
	}
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.off += n
	return v
}

// count reads a length and checks it against the bytes left, so a
// corrupt record cannot ask for a huge allocation.
func (r *reader) count(minSize int) int {
	n := r.uint()
	if r.err == nil && n > uint64(len(r.b)-r.off)/uint64(max(minSize, 1)) {
		r.fail(fmt.Errorf("length %d exceeds the record", n))
		return 0
	}
	return int(n)
}

func (r *reader) str() string {
	n := r.count(1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	if r.off >= len(r.b) {
		r.fail(errShort)
		return false
	}
	v := r.b[r.off]
	r.off++
	return v == 1
}

func (r *reader) time() time.Time {
	ns := r.int()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (r *reader) strs() []string {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *reader) strMap() map[string]string {
	n := r.count(2)
	if n == 0 {
		return nil
	}
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		k := r.str()
		out[k] = r.str()
	}
	return out
}

func appendAssetBody(w *writer, a *model.Asset) {
	w.str(a.ID)
	w.str(a.Tenant)
	w.uint(uint64(len(a.Addresses)))
	for _, ad := range a.Addresses {
		w.str(ad.Addr)
		w.str(ad.Type)
		w.str(ad.Vendor)
	}
	w.strs(a.Hostnames)
	w.str(a.Status)
	w.str(a.OS)
	w.uint(uint64(len(a.Services)))
	for _, s := range a.Services {
		w.str(string(s.Protocol))
		w.uint(uint64(s.Port))
		w.str(s.State)
		w.str(s.Name)
		w.str(s.Product)
		w.str(s.Version)
		w.time(s.Since)
	}
	w.strMap(a.Facts)
	w.strMap(a.Labels)
	w.strs(a.Sources)
	w.uint(uint64(len(a.Scanned)))
	for _, p := range slices.Sorted(maps.Keys(a.Scanned)) {
		w.str(string(p))
		w.uint(uint64(len(a.Scanned[p])))
		for _, r := range a.Scanned[p] {
			w.uint(uint64(r.First))
			w.uint(uint64(r.Last))
		}
	}
	w.bool(a.Unknown)
	w.time(a.FirstSeen)
	w.time(a.LastSeen)
	w.time(a.LastScanned)
	w.str(a.LastScannedBy)
	w.uint(a.Version)
}

func readAssetBody(r *reader, a *model.Asset) {
	a.ID = r.str()
	a.Tenant = r.str()
	if n := r.count(3); n > 0 {
		a.Addresses = make([]sdk.Address, n)
		for i := range a.Addresses {
			a.Addresses[i] = sdk.Address{Addr: r.str(), Type: r.str(), Vendor: r.str()}
		}
	}
	a.Hostnames = r.strs()
	a.Status = r.str()
	a.OS = r.str()
	if n := r.count(8); n > 0 {
		a.Services = make([]model.Service, n)
		for i := range a.Services {
			s := &a.Services[i]
			s.Protocol = sdk.Protocol(r.str())
			s.Port = port(r)
			s.State = r.str()
			s.Name = r.str()
			s.Product = r.str()
			s.Version = r.str()
			s.Since = r.time()
		}
	}
	a.Facts = r.strMap()
	a.Labels = r.strMap()
	a.Sources = r.strs()
	if n := r.count(2); n > 0 {
		a.Scanned = make(map[sdk.Protocol]sdk.PortRanges, n)
		for i := 0; i < n; i++ {
			p := sdk.Protocol(r.str())
			m := r.count(2)
			ranges := make(sdk.PortRanges, m)
			for j := range ranges {
				ranges[j] = sdk.PortRange{First: port(r), Last: port(r)}
			}
			a.Scanned[p] = ranges
		}
	}
	a.Unknown = r.bool()
	a.FirstSeen = r.time()
	a.LastSeen = r.time()
	a.LastScanned = r.time()
	a.LastScannedBy = r.str()
	a.Version = r.uint()
}

func port(r *reader) uint16 {
	v := r.uint()
	if v > 65535 {
		r.fail(fmt.Errorf("port %d out of range", v))
		return 0
	}
	return uint16(v)
}

func encodeAsset(a *model.Asset) []byte {
	w := writer{b: make([]byte, 0, 256+64*len(a.Services))}
	w.b = append(w.b, tagAssetV1)
	appendAssetBody(&w, a)
	return w.b
}

func decodeAsset(b []byte, a *model.Asset) error {
	if len(b) == 0 || b[0] != tagAssetV1 {
		return errors.New("decode asset: unknown record format")
	}
	r := reader{b: b, off: 1}
	*a = model.Asset{}
	readAssetBody(&r, a)
	return r.done()
}

func encodeVersion(v *model.Version) []byte {
	w := writer{b: make([]byte, 0, 384+64*len(v.Asset.Services))}
	w.b = append(w.b, tagVersionV1)
	w.str(v.AssetID)
	w.uint(v.Version)
	w.time(v.Time)
	w.str(v.Source)
	w.str(v.Job)
	w.str(v.RunID)
	w.uint(uint64(len(v.Changes)))
	for _, c := range v.Changes {
		w.str(c.Field)
		w.str(c.Key)
		w.str(c.From)
		w.str(c.To)
	}
	appendAssetBody(&w, &v.Asset)
	return w.b
}

func decodeVersion(b []byte, v *model.Version) error {
	if len(b) == 0 || b[0] != tagVersionV1 {
		return errors.New("decode version: unknown record format")
	}
	r := reader{b: b, off: 1}
	*v = model.Version{}
	v.AssetID = r.str()
	v.Version = r.uint()
	v.Time = r.time()
	v.Source = r.str()
	v.Job = r.str()
	v.RunID = r.str()
	if n := r.count(4); n > 0 {
		v.Changes = make([]model.Change, n)
		for i := range v.Changes {
			v.Changes[i] = model.Change{Field: r.str(), Key: r.str(), From: r.str(), To: r.str()}
		}
	}
	readAssetBody(&r, &v.Asset)
	return r.done()
}

func (r *reader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail(fmt.Errorf("%d bytes left over", len(r.b)-r.off))
	}
	return r.err
}
