package scandiff

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
)

// scan is one side of a diff: what of a scan a diff needs, in compact
// per-host records sorted by ndiff's host id. The parsed hosts are dropped
// as soon as they are converted; strings the scan repeats are shared.
type scan struct {
	info  ScanInfo
	recs  []byte   // the hosts' records (see arena.go), in file order
	offs  []uint32 // where each record starts in recs
	order []int32  // record numbers in id order
	tab   *strTable
	side  string
	dec   decoder
}

// host is ndiff's view of a host, compactly: about 100 bytes plus the
// ports for most hosts.
type host struct {
	state string    // "" when the host has no <status> (ndiff's None)
	addrs []address // sorted as ndiff sorts them
	extra []extraPorts
	ports []port    // sorted by (number, protocol)
	more  *hostMore // what most hosts lack
	nope  int32     // hosts without address or name: each its own id
}

type hostMore struct {
	names   []string // sorted
	os      []string
	scripts []script
}

func (h *host) names() []string {
	if h.more == nil {
		return nil
	}
	return h.more.names
}

func (h *host) os() []string {
	if h.more == nil {
		return nil
	}
	return h.more.os
}

func (h *host) scripts() []script {
	if h.more == nil {
		return nil
	}
	return h.more.scripts
}

type address struct {
	rank uint8 // 0 ipv4, 1 ipv6, 2 mac: ndiff's sort order
	s    string
}

type extraPorts struct {
	state string
	count int
}

type port struct {
	id      uint16
	proto   string
	state   string
	svc     *Service
	scripts []script
}

type script struct{ id, output string }

// loadFile reads one scan.
func loadFile(ctx context.Context, path, side string, tab *strTable) (*scan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	s, err := load(ctx, f, side, size, tab)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.info.File = path
	return s, nil
}

// load reads a scan from r, host by host.
func load(ctx context.Context, r io.Reader, side string, size int64, tab *strTable) (*scan, error) {
	rd := nmapxml.NewReader(r, nmapxml.Options{Lean: true})
	s, err := build(ctx, side, size/14, tab, rd.NextInto)
	if err != nil {
		return nil, err
	}
	if err := rd.Finish(); err != nil {
		return nil, err
	}
	run := rd.Run()
	s.info.Scanner, s.info.Version, s.info.Args, s.info.Start = run.Scanner, run.Version, run.Args, run.Start
	return s, nil
}

// build encodes the hosts next yields (io.EOF: no more) into a scan.
// Records take about a fourteenth of nmap -sV XML: hint, if known, saves
// the copies of growing.
func build(ctx context.Context, side string, hint int64, tab *strTable, next func(*nmapxml.Host) error) (*scan, error) {
	s := &scan{side: side, tab: tab}
	enc := &encoder{t: s.tab}
	if hint > 0 && hint < 1<<30 {
		enc.b = make([]byte, 0, hint)
	}
	var ids []byte     // ndiff's ids, one after the other, for sorting
	var idOffs []int32 // where each starts
	var h nmapxml.Host
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		err := next(&h)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(enc.b) > math.MaxUint32 || len(ids) > math.MaxInt32 {
			return nil, errors.New("scan too large for one diff (over 2 GiB of host records)")
		}
		s.offs = append(s.offs, uint32(len(enc.b)))
		idOffs = append(idOffs, int32(len(ids)))
		if err := enc.encode(&h); err != nil {
			return nil, err
		}
		ids = enc.appendID(ids, side)
	}
	s.recs = enc.b
	s.dec = decoder{t: s.tab}
	// ndiff pairs hosts in the order of their ids; a stable sort keeps
	// hosts with equal ids in file order, as Python's does.
	id := func(k int32) []byte {
		end := int32(len(ids))
		if int(k)+1 < len(idOffs) {
			end = idOffs[k+1]
		}
		return ids[idOffs[k]:end]
	}
	s.order = make([]int32, len(idOffs))
	for i := range s.order {
		s.order[i] = int32(i)
	}
	slices.SortStableFunc(s.order, func(a, b int32) int { return bytes.Compare(id(a), id(b)) })
	return s, nil
}

func (s *scan) len() int { return len(s.order) }

// record is the i-th host's record in id order.
func (s *scan) record(i int) []byte {
	k := s.order[i]
	end := len(s.recs)
	if int(k)+1 < len(s.offs) {
		end = int(s.offs[k+1])
	}
	return s.recs[s.offs[k]:end]
}

// idAt appends the i-th host's id to id.
func (s *scan) idAt(i int, h *host, id []byte) ([]byte, error) {
	id, ok, err := s.dec.recordID(s.record(i), id)
	if err != nil || ok {
		return id, err
	}
	if err := s.at(i, h); err != nil {
		return id, err
	}
	return appendID(id, h, s.side), nil
}

// at decodes the i-th host in id order into h, reusing its memory.
func (s *scan) at(i int, h *host) error {
	k := s.order[i]
	end := len(s.recs)
	if int(k)+1 < len(s.offs) {
		end = int(s.offs[k+1])
	}
	return s.dec.decode(s.recs[s.offs[k]:end], h)
}

var errAddrType = errors.New("unknown address type")

func comparePorts(a, b port) int {
	return cmp.Or(cmp.Compare(a.id, b.id), strings.Compare(a.proto, b.proto))
}

// appendID appends ndiff's Host.get_id of h: hosts with equal ids are
// the same host in both scans.
func appendID(b []byte, h *host, side string) []byte {
	return appendIDOf(b, h.addrs, h.names(), h.nope, side)
}

func appendIDOf(b []byte, addrs []address, names []string, nope int32, side string) []byte {
	if nope > 0 {
		// ndiff uses the object's identity: such a host matches nothing.
		b = append(b, 0)
		b = append(b, side...)
		return strconv.AppendInt(b, int64(nope), 10)
	}
	if len(addrs) > 0 {
		a := addrs[0].s // the first in ndiff's order
		b = append(b, a...)
		for i := len(a); i < 40; i++ {
			b = append(b, ' ')
		}
	}
	if len(names) > 0 {
		if len(addrs) == 0 {
			b = append(b, "                                        "...)
		}
		b = append(b, names[0]...)
	}
	return b
}

func compareAddrs(a, b address) int {
	return cmp.Or(cmp.Compare(a.rank, b.rank), strings.Compare(a.s, b.s))
}
