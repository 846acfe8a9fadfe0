package scandiff

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
)

// The hosts of a scan are kept encoded, one record after the other in a
// byte slice the garbage collector need not scan: about 50 bytes for a
// typical host instead of some 300 as structs with pointers. A record is
// decoded back into a host only while it is compared.
//
// Encoding: unsigned varints; a string is either a reference into the
// scan's strTable of repeated strings (varint 2*index+1) or inline (varint
// 2*length, then the bytes).
//
//	state
//	naddrs {rank:1 byte, addr}
//	nnames {name}
//	nextra {state, count}
//	nports {id, proto, state, service index, nscripts {id, output}}
//	nos {name}
//	nscripts {id, output}
//	nope

// strTable holds the repeated strings and services of both scans: shared,
// so that a host the same in both has the same record in both, and is
// found equal without decoding. Both loaders fill it at once, under mu;
// each keeps a cache in front of it. It is read without the lock only
// after loading.
type strTable struct {
	mu    sync.Mutex
	strs  []string
	index map[string]uint32
	svcs  []Service
	svcIx map[Service]uint32
}

func newStrTable() *strTable {
	return &strTable{index: make(map[string]uint32, 256), svcIx: make(map[Service]uint32, 256)}
}

// ref is the index of a repeated string: states, protocols, OS names,
// script ids. Anything else is stored inline.
func (t *strTable) ref(s string) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[s]
	if !ok {
		i = uint32(len(t.strs))
		t.strs = append(t.strs, s)
		t.index[s] = i
	}
	return i
}

func (t *strTable) service(s Service) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.svcIx[s]
	if !ok {
		i = uint32(len(t.svcs))
		t.svcs = append(t.svcs, s)
		t.svcIx[s] = i
	}
	return i
}

// encoder appends the records of one scan. Its scratch slices are reused
// from host to host.
type encoder struct {
	b     []byte
	t     *strTable
	nopes int32
	nope  int32 // of the host encoded last

	addrs   []address
	names   []string
	extra   []extraPorts
	ports   []int // indexes into the host's ports
	scripts []script

	// Direct-mapped caches in front of the shared table: most values are
	// the same few, and comparing is cheaper than locking and hashing.
	strCache [256]struct {
		s  string
		i  uint32
		ok bool
	}
	svcCache [128]struct {
		s  Service
		i  uint32
		ok bool
	}
}

func (e *encoder) refIndex(s string) uint32 {
	k := uint(len(s))
	if len(s) > 0 {
		k = k*31 + uint(s[0])*7 + uint(s[len(s)-1])
	}
	c := &e.strCache[k%uint(len(e.strCache))]
	if c.ok && c.s == s {
		return c.i
	}
	c.s, c.i, c.ok = s, e.t.ref(s), true
	return c.i
}

func (e *encoder) serviceIndex(s Service) uint32 {
	k := uint(len(s.Name))*131 + uint(len(s.Product))*31 + uint(len(s.Version))*7 + uint(len(s.ExtraInfo)) + uint(len(s.Tunnel))*3
	if len(s.Version) > 0 {
		k += uint(s.Version[len(s.Version)-1]) * 17
	}
	c := &e.svcCache[k%uint(len(e.svcCache))]
	if c.ok && c.s == s {
		return c.i
	}
	c.s, c.i, c.ok = s, e.t.service(s), true
	return c.i
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) ref(s string) { e.uint(uint64(e.refIndex(s))*2 + 1) }

func (e *encoder) inline(s string) {
	e.uint(uint64(len(s)) * 2)
	e.b = append(e.b, s...)
}

// scripts writes scripts sorted by (id, output), as ndiff sorts them.
func (e *encoder) scriptList(in []nmapxml.Script) {
	e.scripts = e.scripts[:0]
	for _, s := range in {
		e.scripts = append(e.scripts, script{id: s.ID, output: s.Output})
	}
	slices.SortFunc(e.scripts, func(a, b script) int { return cmp.Or(strings.Compare(a.id, b.id), strings.Compare(a.output, b.output)) })
	e.uint(uint64(len(e.scripts)))
	for _, s := range e.scripts {
		e.ref(s.id)
		e.inline(s.output)
	}
}

// encode appends the record of h as ndiff sees it: addresses and names
// deduplicated and sorted, one count per extraports state (the last, in
// first-seen order), ports without protocol or state left out and sorted by
// (number, protocol) with the last of a repeated spec kept.
func (e *encoder) encode(h *nmapxml.Host) error {
	e.ref(h.Status.State)

	e.addrs = e.addrs[:0]
	for _, a := range h.Addresses {
		var rank uint8
		switch a.AddrType {
		case "ipv4", "":
			rank = 0
		case "ipv6":
			rank = 1
		case "mac":
			rank = 2
		default:
			return fmt.Errorf("host %s: %w %q", a.Addr, errAddrType, a.AddrType)
		}
		if ad := (address{rank: rank, s: a.Addr}); !slices.Contains(e.addrs, ad) {
			e.addrs = append(e.addrs, ad)
		}
	}
	slices.SortFunc(e.addrs, compareAddrs)
	e.uint(uint64(len(e.addrs)))
	for _, a := range e.addrs {
		e.b = append(e.b, a.rank)
		e.inline(a.s)
	}

	e.names = e.names[:0]
	for _, n := range h.Hostnames {
		if !slices.Contains(e.names, n.Name) {
			e.names = append(e.names, n.Name)
		}
	}
	slices.Sort(e.names)
	e.uint(uint64(len(e.names)))
	for _, n := range e.names {
		e.inline(n)
	}

	e.extra = e.extra[:0]
	for _, x := range h.ExtraPorts {
		if i := slices.IndexFunc(e.extra, func(y extraPorts) bool { return y.state == x.State }); i >= 0 {
			e.extra[i].count = x.Count
		} else {
			e.extra = append(e.extra, extraPorts{state: x.State, count: x.Count})
		}
	}
	e.uint(uint64(len(e.extra)))
	for _, x := range e.extra {
		e.ref(x.state)
		e.uint(uint64(x.count))
	}

	e.ports = e.ports[:0]
	for i := range h.Ports {
		if p := &h.Ports[i]; p.Protocol != "" && p.State.State != "" {
			e.ports = append(e.ports, i)
		}
	}
	spec := func(i int) (uint16, string) { return h.Ports[i].ID, h.Ports[i].Protocol }
	slices.SortStableFunc(e.ports, func(a, b int) int {
		ia, pa := spec(a)
		ib, pb := spec(b)
		return cmp.Or(cmp.Compare(ia, ib), strings.Compare(pa, pb))
	})
	n := 0
	for k, i := range e.ports {
		if k+1 < len(e.ports) {
			if ia, pa := spec(i); true {
				if ib, pb := spec(e.ports[k+1]); ia == ib && pa == pb {
					continue
				}
			}
		}
		e.ports[n] = i
		n++
	}
	e.ports = e.ports[:n]
	e.uint(uint64(len(e.ports)))
	for _, i := range e.ports {
		p := &h.Ports[i]
		v := &p.Service
		e.uint(uint64(p.ID))
		e.ref(p.Protocol)
		e.ref(p.State.State)
		e.uint(uint64(e.serviceIndex(Service{Name: v.Name, Product: v.Product, Version: v.Version, ExtraInfo: v.ExtraInfo, Tunnel: v.Tunnel})))
		e.scriptList(p.Scripts)
	}

	e.uint(uint64(len(h.OS.Matches)))
	for _, m := range h.OS.Matches {
		e.ref(m.Name)
	}
	e.scriptList(h.HostScripts)
	var nope int32
	if len(e.addrs) == 0 && len(e.names) == 0 {
		e.nopes++
		nope = e.nopes
	}
	e.uint(uint64(nope))
	e.nope = nope
	return nil
}

// appendID appends the id of the host encode wrote last.
func (e *encoder) appendID(b []byte, side string) []byte {
	return appendIDOf(b, e.addrs, e.names, e.nope, side)
}

var errRecord = errors.New("scandiff: corrupt host record")

type decoder struct {
	b   []byte
	t   *strTable
	err error
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errRecord, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) count() int {
	v := d.uint()
	if v > uint64(len(d.b)) {
		d.err, d.b = errRecord, nil
		return 0
	}
	return int(v)
}

func (d *decoder) str() string {
	v := d.uint()
	if v&1 == 1 {
		if v>>1 >= uint64(len(d.t.strs)) {
			d.err = errRecord
			return ""
		}
		return d.t.strs[v>>1]
	}
	n := v >> 1
	if n > uint64(len(d.b)) {
		d.err, d.b = errRecord, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) scripts(into []script) []script {
	n := d.count()
	into = into[:0]
	for range n {
		into = append(into, script{id: d.str(), output: d.str()})
	}
	return into
}

// decode reads the record b into h, reusing h's slices.
func (d *decoder) decode(b []byte, h *host) error {
	d.b, d.err = b, nil
	more := h.more
	if more == nil {
		more = &hostMore{}
	}
	*h = host{state: d.str(), addrs: h.addrs[:0], extra: h.extra[:0], ports: h.ports[:0]}
	for range d.count() {
		if len(d.b) == 0 {
			return errRecord
		}
		rank := d.b[0]
		d.b = d.b[1:]
		h.addrs = append(h.addrs, address{rank: rank, s: d.str()})
	}
	more.names = more.names[:0]
	for range d.count() {
		more.names = append(more.names, d.str())
	}
	for range d.count() {
		h.extra = append(h.extra, extraPorts{state: d.str(), count: int(d.uint())})
	}
	n := d.count()
	h.ports = slices.Grow(h.ports, n)[:n]
	for i := range n {
		p := &h.ports[i]
		p.id = uint16(d.uint())
		p.proto, p.state = d.str(), d.str()
		si := d.uint()
		if si >= uint64(len(d.t.svcs)) {
			return errRecord
		}
		p.svc = &d.t.svcs[si]
		p.scripts = d.scripts(p.scripts)
	}
	more.os = more.os[:0]
	for range d.count() {
		more.os = append(more.os, d.str())
	}
	more.scripts = d.scripts(more.scripts)
	h.more = more
	h.nope = int32(d.uint())
	return d.err
}

// recordID appends the host id of record b to id, reading only its
// addresses and names. ok is false for a host with neither, whose id
// needs the whole record.
func (d *decoder) recordID(b []byte, id []byte) (_ []byte, ok bool, err error) {
	d.b, d.err = b, nil
	d.str() // state
	var first, name []byte
	n := d.count()
	for i := range n {
		if len(d.b) == 0 {
			return id, false, errRecord
		}
		d.b = d.b[1:] // rank
		if s := d.rawInline(); i == 0 {
			first = s
		}
	}
	if m := d.count(); m > 0 {
		name = d.rawInline()
	}
	if d.err != nil {
		return id, false, d.err
	}
	if n == 0 && name == nil {
		return id, false, nil
	}
	if n > 0 {
		id = append(id, first...)
		for i := len(first); i < 40; i++ {
			id = append(id, ' ')
		}
	} else {
		id = append(id, "                                        "...)
	}
	return append(id, name...), true, nil
}

// rawInline reads an inline string as bytes of the record.
func (d *decoder) rawInline() []byte {
	v := d.uint()
	if v&1 == 1 || v>>1 > uint64(len(d.b)) {
		d.err, d.b = errRecord, nil
		return nil
	}
	s := d.b[:v>>1]
	d.b = d.b[v>>1:]
	return s
}

// clone copies h so that it outlives the decoder's reuse of h.
func (h *host) clone() *host {
	c := &host{state: h.state, addrs: slices.Clone(h.addrs), extra: slices.Clone(h.extra), ports: slices.Clone(h.ports), nope: h.nope}
	for i := range c.ports {
		c.ports[i].scripts = slices.Clone(c.ports[i].scripts)
	}
	if m := h.more; m != nil && len(m.names)+len(m.os)+len(m.scripts) > 0 {
		c.more = &hostMore{names: slices.Clone(m.names), os: slices.Clone(m.os), scripts: slices.Clone(m.scripts)}
	}
	return c
}
