package ingest

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// Observations is a finished run's result, read once in order.
type Observations interface {
	// Hosts counts the distinct hosts.
	Hosts() int
	// Skipped counts observations without an IP address.
	Skipped() int
	// Each hands out the observations in batches of up to n, each host
	// once: when a source reported a host twice, its last report.
	Each(n int, fn func(batch []*sdk.Observation) error) error
}

// dedup finds, for each address, the observation that reported it last.
// While a run streams in, it only appends each address with the
// observation's number to a chunk: a million hosts cost a million
// appends instead of a million inserts at random places of a hash map
// (most of what taking in an observation cost), and chunks of a fixed
// size instead of one slice that grows, so that nothing is copied or
// allocated twice. Before the observations are read back, seal sorts
// each chunk and walks them together once in address order (a source
// that reports in address order hands them over sorted, and the walk
// takes them one after the other), counting the addresses and setting
// aside the numbers of the reports a later one replaced, which are few
// or none. Addresses are kept as their 16 bytes, without the pointer a
// netip.Addr holds for its zone, so the chunks cost the garbage
// collector nothing to scan; the rare address with a zone keeps its own
// map.
type dedup struct {
	// chunks hold one entry per report in the order added; those before
	// sorted are sorted, and growing is false once the last of them is.
	chunks   [][]ipReport
	sorted   int
	growing  bool
	distinct int // addresses in the sorted chunks
	// replaced holds the reports a later one of the same address
	// replaced.
	replaced map[uint32]struct{}
	zoned    map[netip.Addr]uint32
	// noIP has bit i set when observation i has no IP address, so that
	// current need not parse its addresses again.
	noIP    []uint64
	count   uint32
	skipped int
}

// dedupChunk is how many reports a chunk holds once the first has grown
// to it (384 KB).
const dedupChunk = 16 << 10

// ipReport says that observation i reported the address hi<<64 | lo.
type ipReport struct {
	hi, lo uint64
	i      uint32
}

func (d *dedup) add(o *sdk.Observation) {
	if ip, ok := o.IP(); ok {
		if ip.Zone() != "" {
			if d.zoned == nil {
				d.zoned = make(map[netip.Addr]uint32)
			}
			if prev, ok := d.zoned[ip]; ok {
				d.replace(prev)
			}
			d.zoned[ip] = d.count
		} else {
			b := ip.As16()
			d.report(ipReport{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), i: d.count})
		}
	} else {
		d.skipped++
		w := int(d.count / 64)
		if len(d.noIP) <= w {
			d.noIP = append(d.noIP, make([]uint64, w+1-len(d.noIP))...)
		}
		d.noIP[w] |= 1 << (d.count % 64)
	}
	d.count++
}

// report appends r to the last chunk, which grows by append up to
// dedupChunk, or to a new one.
func (d *dedup) report(r ipReport) {
	n := len(d.chunks)
	if n == 0 || !d.growing || (len(d.chunks[n-1]) == cap(d.chunks[n-1]) && cap(d.chunks[n-1]) >= dedupChunk) {
		size := dedupChunk
		if n == 0 {
			size = 64
		}
		d.chunks = append(d.chunks, make([]ipReport, 0, size))
		d.growing = true
		n++
	}
	d.chunks[n-1] = append(d.chunks[n-1], r)
}

func (d *dedup) replace(i uint32) {
	if d.replaced == nil {
		d.replaced = make(map[uint32]struct{})
	}
	d.replaced[i] = struct{}{}
}

func compareReports(a, b *ipReport) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	return cmp.Compare(a.i, b.i)
}

// seal sorts the chunks added since the last seal and walks all of them
// in address order: each address counts once, and every report of it
// but the last (reports of one address sort by their number) is
// replaced. A later seal walks them all again; replacing is idempotent.
func (d *dedup) seal() {
	if d.sorted == len(d.chunks) && !d.growing {
		return
	}
	for _, c := range d.chunks[d.sorted:] {
		slices.SortFunc(c, func(a, b ipReport) int { return compareReports(&a, &b) })
	}
	d.sorted, d.growing = len(d.chunks), false
	d.distinct = 0
	var last *ipReport // the last report of the address walked
	visit := func(r *ipReport) {
		if last != nil && last.hi == r.hi && last.lo == r.lo {
			d.replace(last.i)
		} else {
			d.distinct++
		}
		last = r
	}
	if inOrder(d.chunks) {
		for _, c := range d.chunks {
			for j := range c {
				visit(&c[j])
			}
		}
		return
	}
	h := reportHeap{}
	for _, c := range d.chunks {
		if len(c) > 0 {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		visit(&h[0][0])
		if h[0] = h[0][1:]; len(h[0]) == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
}

// reportHeap orders sorted chunks by their first report, to walk them
// together.
type reportHeap [][]ipReport

func (h reportHeap) Len() int           { return len(h) }
func (h reportHeap) Less(i, j int) bool { return compareReports(&h[i][0], &h[j][0]) < 0 }
func (h reportHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *reportHeap) Push(x any)        { *h = append(*h, x.([]ipReport)) }
func (h *reportHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// inOrder reports whether sorted chunks follow each other in address
// order, each beginning above where the one before ends.
func inOrder(chunks [][]ipReport) bool {
	var end *ipReport
	for _, c := range chunks {
		if len(c) == 0 {
			continue
		}
		if end != nil && (c[0].hi < end.hi || c[0].hi == end.hi && c[0].lo <= end.lo) {
			return false
		}
		end = &c[len(c)-1]
	}
	return true
}

// hosts counts the distinct addresses.
func (d *dedup) hosts() int {
	d.seal()
	return d.distinct + len(d.zoned)
}

// current reports whether observation i, as it was added, is the one to
// apply.
func (d *dedup) current(i uint32) bool {
	d.seal()
	if w := int(i / 64); w < len(d.noIP) && d.noIP[w]&(1<<(i%64)) != 0 {
		return false
	}
	_, replaced := d.replaced[i]
	return !replaced
}

// Slice serves observations held in memory.
func Slice(obs []sdk.Observation) Observations {
	s := &sliceObs{obs: obs}
	for i := range obs {
		s.d.add(&obs[i])
	}
	return s
}

type sliceObs struct {
	obs []sdk.Observation
	d   dedup
}

func (s *sliceObs) Hosts() int   { return s.d.hosts() }
func (s *sliceObs) Skipped() int { return s.d.skipped }

func (s *sliceObs) Each(n int, fn func([]*sdk.Observation) error) error {
	batch := make([]*sdk.Observation, 0, n)
	for i := range s.obs {
		if !s.d.current(uint32(i)) {
			continue
		}
		batch = append(batch, &s.obs[i])
		if len(batch) == n {
			if err := fn(batch); err != nil {
				return err
			}
			batch = make([]*sdk.Observation, 0, n)
		}
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

// Spool holds a running job's observations on disk until the run has
// finished: only a finished run may change the store, and holding a
// provider's million hosts in memory until then is what a spool avoids.
// The file is unlinked as soon as it is created, so a crash leaves
// nothing behind.
type Spool struct {
	f   *os.File
	w   *bufio.Writer
	d   dedup
	buf []byte
}

// NewSpool creates a spool in dir ("" = the system's temporary directory).
func NewSpool(dir string) (*Spool, error) {
	f, err := os.CreateTemp(dir, "sollwert-run-*.spool")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &Spool{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// Add appends a batch.
func (s *Spool) Add(batch []sdk.Observation) error {
	if s.d.count+uint32(len(batch)) < s.d.count {
		return errors.New("spool: more than 4 billion observations in one run")
	}
	for i := range batch {
		s.buf = appendObservation(s.buf[:0], &batch[i])
		var n [binary.MaxVarintLen64]byte
		if _, err := s.w.Write(n[:binary.PutUvarint(n[:], uint64(len(s.buf)))]); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.d.add(&batch[i])
	}
	return nil
}

// Observations counts what was added, duplicates included.
func (s *Spool) Observations() int { return int(s.d.count) }

// Hosts counts the distinct hosts added.
func (s *Spool) Hosts() int { return s.d.hosts() }

// Skipped counts observations without an IP address.
func (s *Spool) Skipped() int { return s.d.skipped }

// Each reads the spool from the start.
func (s *Spool) Each(n int, fn func([]*sdk.Observation) error) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	r := bufio.NewReaderSize(s.f, 1<<20)
	var raw []byte // the records of one group, read raw
	var ends []int // where each ends in raw
	batch := make([]sdk.Observation, 0, n)
	ptrs := make([]*sdk.Observation, 0, n)
	sl := &slabs{}
	flush := func() error {
		for i := range batch {
			ptrs = append(ptrs, &batch[i])
		}
		err := fn(ptrs)
		// The batch now belongs to fn's transaction; start new ones.
		batch, ptrs = make([]sdk.Observation, 0, n), make([]*sdk.Observation, 0, n)
		return err
	}
	// Records are read in groups, each at most what the batch has room
	// for (so fn is called where it was when records were read one by
	// one) and about spoolGroupBytes: a group becomes one string that its
	// observations' strings are slices of, and their lists are carved
	// from shared arrays (slabs), instead of allocating each. Nothing an
	// observation holds is ever reused, so the observations stay intact
	// for as long as fn's transaction keeps them, retried or not.
	for i := uint32(0); i < s.d.count; {
		first := i
		raw, ends = raw[:0], ends[:0]
		for ; i < s.d.count && len(ends) < n-len(batch) && len(raw) < spoolGroupBytes; i++ {
			size, err := binary.ReadUvarint(r)
			if err != nil {
				return fmt.Errorf("spool: record %d: %w", i, err)
			}
			if size > 64<<20 {
				return fmt.Errorf("spool: record %d claims %d bytes", i, size)
			}
			raw = slices.Grow(raw, int(size))
			if _, err := io.ReadFull(r, raw[len(raw):len(raw)+int(size)]); err != nil {
				return fmt.Errorf("spool: record %d: %w", i, err)
			}
			raw = raw[:len(raw)+int(size)]
			ends = append(ends, len(raw))
		}
		group := string(raw)
		sl = &slabs{records: len(ends), facts: sl.facts, labels: sl.labels}
		start := 0
		for j, end := range ends {
			var o sdk.Observation
			if err := decodeRecord(group[start:end], &o, sl); err != nil {
				return fmt.Errorf("spool: record %d: %w", first+uint32(j), err)
			}
			start = end
			if !s.d.current(first + uint32(j)) {
				continue
			}
			batch = append(batch, o)
			if len(batch) == n {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if len(batch) > 0 {
		return flush()
	}
	return nil
}

// spoolGroupBytes bounds the records Each reads into one string.
const spoolGroupBytes = 64 << 10

// slabs are the arrays that the lists of a group's observations are
// carved from. Each list is capped at its length, so that appending to
// one never writes into the next.
type slabs struct {
	records   int // in the group, to size the next array
	addresses []sdk.Address
	strings   []string
	services  []sdk.Service
	// The maps of the record decoded last, which the next may share.
	facts, labels lastMap
}

// carve returns the next n elements of *slab, starting a new array of
// max(n, want) elements when it has too few left.
func carve[T any](slab *[]T, n, want int) []T {
	if cap(*slab)-len(*slab) < n {
		*slab = make([]T, 0, max(n, want))
	}
	l := len(*slab)
	*slab = (*slab)[:l+n]
	return (*slab)[l : l+n : l+n]
}

// Close releases the spool's file.
func (s *Spool) Close() error { return s.f.Close() }

// The spool's record format: strings and counts as uvarint-prefixed, in
// field order. It only ever lives for one run in one process, so it has
// no version.

func appendObservation(b []byte, o *sdk.Observation) []byte {
	b = binary.AppendUvarint(b, uint64(len(o.Addresses)))
	for _, a := range o.Addresses {
		b = appendStr(appendStr(appendStr(b, a.Addr), a.Type), a.Vendor)
	}
	b = binary.AppendUvarint(b, uint64(len(o.Hostnames)))
	for _, h := range o.Hostnames {
		b = appendStr(b, h)
	}
	b = appendStr(appendStr(b, o.Status), o.OS)
	b = binary.AppendUvarint(b, uint64(len(o.Services)))
	for _, s := range o.Services {
		b = appendStr(b, string(s.Protocol))
		b = binary.AppendUvarint(b, uint64(s.Port))
		b = appendStr(appendStr(appendStr(appendStr(b, s.State), s.Name), s.Product), s.Version)
	}
	b = appendMap(b, o.Facts)
	b = appendMap(b, o.Labels)
	return appendStr(appendStr(b, o.InstanceID), o.Source)
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendMap(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = appendStr(appendStr(b, k), v)
	}
	return b
}

// spoolReader reads a record held in one string, so that the decoded
// strings are slices of it: one allocation per record instead of one per
// string.
type spoolReader struct {
	b   string
	err error
}

func (r *spoolReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) > 0 && r.b[0] < 0x80 {
		v := uint64(r.b[0])
		r.b = r.b[1:]
		return v
	}
	var v uint64
	for i := 0; i < len(r.b) && i < binary.MaxVarintLen64; i++ {
		c := r.b[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			r.b = r.b[i+1:]
			return v | uint64(c)<<(7*uint(i))
		}
		v |= uint64(c&0x7f) << (7 * uint(i))
	}
	r.err = errors.New("truncated record")
	return 0
}

func (r *spoolReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) { // every element takes at least a byte
		r.err = errors.New("corrupt count")
		return 0
	}
	return int(n)
}

func (r *spoolReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errors.New("truncated string")
		return ""
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// sharedMap is strMap, except that a map encoded in the same bytes as
// the one before it is that map again: the hosts of a provider mostly
// carry the same labels, and a map per host was a tenth of what reading
// a million of them allocated. Observations and the assets made from them
// only read their maps (see model.Merge).
func (r *spoolReader) sharedMap(last *lastMap) map[string]string {
	if last.raw != "" && strings.HasPrefix(r.b, last.raw) {
		r.b = r.b[len(last.raw):]
		return last.m
	}
	rest := r.b
	m := r.strMap()
	if m != nil && r.err == nil {
		last.raw, last.m = rest[:len(rest)-len(r.b)], m
	}
	return m
}

// lastMap is the map a spool record held last, and its encoding.
type lastMap struct {
	raw string
	m   map[string]string
}

func (r *spoolReader) strMap() map[string]string {
	n := r.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		m[k] = r.str()
	}
	return m
}

func decodeObservation(b []byte, o *sdk.Observation) error {
	return decodeRecord(string(b), o, nil)
}

// decodeRecord decodes a record held in b, whose strings o then shares,
// with o's lists carved from sl (nil: allocated each).
func decodeRecord(b string, o *sdk.Observation, sl *slabs) error {
	r := &spoolReader{b: b}
	if n := r.count(); n > 0 {
		if sl != nil {
			o.Addresses = carve(&sl.addresses, n, sl.records)
		} else {
			o.Addresses = make([]sdk.Address, n)
		}
		for i := range o.Addresses {
			o.Addresses[i] = sdk.Address{Addr: r.str(), Type: r.str(), Vendor: r.str()}
		}
	}
	if n := r.count(); n > 0 {
		if sl != nil {
			o.Hostnames = carve(&sl.strings, n, sl.records)
		} else {
			o.Hostnames = make([]string, n)
		}
		for i := range o.Hostnames {
			o.Hostnames[i] = r.str()
		}
	}
	o.Status, o.OS = r.str(), r.str()
	if n := r.count(); n > 0 {
		if sl != nil {
			o.Services = carve(&sl.services, n, 4*sl.records)
		} else {
			o.Services = make([]sdk.Service, n)
		}
		for i := range o.Services {
			s := &o.Services[i]
			s.Protocol = sdk.Protocol(r.str())
			s.Port = uint16(r.uvarint())
			s.State, s.Name, s.Product, s.Version = r.str(), r.str(), r.str(), r.str()
		}
	}
	if sl != nil {
		o.Facts = r.sharedMap(&sl.facts)
		o.Labels = r.sharedMap(&sl.labels)
	} else {
		o.Facts = r.strMap()
		o.Labels = r.strMap()
	}
	o.InstanceID = r.str()
	o.Source = r.str()
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	return r.err
}
