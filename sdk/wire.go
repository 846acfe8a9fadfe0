package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file moves observations between a plugin's Emit and the host's
// Emitter without the generated pb structs: the plugin encodes a batch
// of Observations with protowire straight into the bytes proto.Marshal
// gives for the equivalent pb.DiscoverEvent, and the host decodes
// DiscoverEvent bytes straight into Observations, accepting and
// rejecting exactly what proto.Unmarshal followed by observationFromPB
// does. The wire format is plugin.proto's; plugins and hosts of older
// sdks, which use the generated code, read and write the same bytes.
// Both ends are tested against the generated code (wire_test.go), which
// stays the reference: convert.go's observationToPB, observationFromPB
// and scopeFromPB.

// wireCodec is the gRPC codec of both ends. It handles outgoingBatch and
// incomingEvent itself and hands every other message to gRPC's proto
// codec, so it can be forced on a whole server (Serve) or on one call
// (remoteSource.Discover) without changing anything else.
type wireCodec struct{}

// protoCodec is gRPC's default codec, which wireCodec falls back to.
func protoCodec() encoding.CodecV2 { return encoding.GetCodecV2(grpcproto.Name) }

// Name is "proto": what the codec reads and writes is protobuf, and a
// server of an older sdk looks its codec up by this name (the call's
// content-type becomes application/grpc+proto, which means the same as
// application/grpc).
func (wireCodec) Name() string { return grpcproto.Name }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch b := v.(type) {
	case *outgoingBatch:
		return b.marshal()
	case encodedBatch:
		return b.data, nil
	}
	return protoCodec().Marshal(v)
}

// encodedBatch is a batch outgoingBatch.marshal encoded already, sent as
// it is.
type encodedBatch struct{ data mem.BufferSlice }

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	ev, ok := v.(*incomingEvent)
	if !ok {
		return protoCodec().Unmarshal(data, v)
	}
	if len(data) == 1 {
		return ev.decode(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return ev.decode(buf.ReadOnlyData())
}

// Field numbers of plugin.proto.
const (
	fEventBatch  protowire.Number = 1 // DiscoverEvent.batch
	fEventResult protowire.Number = 2 // DiscoverEvent.result

	fBatchObservations protowire.Number = 1 // ObservationBatch.observations

	fObsAddresses  protowire.Number = 1
	fObsHostnames  protowire.Number = 2
	fObsStatus     protowire.Number = 3
	fObsOS         protowire.Number = 4
	fObsServices   protowire.Number = 5
	fObsFacts      protowire.Number = 6
	fObsLabels     protowire.Number = 7
	fObsInstanceID protowire.Number = 8
	fObsSource     protowire.Number = 9

	fAddrAddr   protowire.Number = 1
	fAddrType   protowire.Number = 2
	fAddrVendor protowire.Number = 3

	fSvcProtocol protowire.Number = 1
	fSvcPort     protowire.Number = 2
	fSvcState    protowire.Number = 3
	fSvcName     protowire.Number = 4
	fSvcProduct  protowire.Number = 5
	fSvcVersion  protowire.Number = 6

	fMapKey   protowire.Number = 1 // of every map entry
	fMapValue protowire.Number = 2

	fResultScope    protowire.Number = 1
	fResultWarnings protowire.Number = 2
	fScopePrefixes  protowire.Number = 1
	fScopePorts     protowire.Number = 2
	fRangesRanges   protowire.Number = 1 // PortRanges.ranges
	fRangeFirst     protowire.Number = 1
	fRangeLast      protowire.Number = 2
)

// ---- the plugin's end: encoding ----

// outgoingBatch is a DiscoverEvent holding one ObservationBatch, which
// wireCodec encodes from obs while gRPC sends it. last is the size of the
// batch encoded before, kept to size the next one's buffer; buffers, when
// set, lends the buffers of the encoded batches.
type outgoingBatch struct {
	obs     []Observation
	last    int
	buffers *bufferPool
}

// errInvalidUTF8 is what proto.Marshal refuses for a proto3 string field.
type errInvalidUTF8 struct{ field string }

func (e errInvalidUTF8) Error() string {
	return "proto: field sollwert.plugin.v1." + e.field + " contains invalid UTF-8"
}

// batchHeadRoom is what marshal leaves before the observations for the
// batch's tag and length, which it knows only once they are encoded.
const batchHeadRoom = 1 + binary.MaxVarintLen32

// marshal encodes the batch in one pass over the observations: each
// observation's length is written into the one byte left for it when it
// is short (and what follows is moved up when it is not), and the
// batch's tag and length into the room left before the first, so no
// observation, and no map of one, is walked twice.
func (b *outgoingBatch) marshal() (mem.BufferSlice, error) {
	var (
		buf  *[]byte
		pool mem.BufferPool
	)
	// The last batch's size, or a guess, is where the buffer starts; the
	// encoding grows it when a batch is larger.
	want := max(b.last, batchHeadRoom+64*len(b.obs))
	if b.buffers == nil || mem.IsBelowBufferPoolingThreshold(want) {
		s := make([]byte, 0, want)
		buf = &s
	} else {
		pool = b.buffers
		buf = pool.Get(want)
	}
	out := append((*buf)[:0], make([]byte, batchHeadRoom)...)
	for i := range b.obs {
		out = protowire.AppendTag(out, fBatchObservations, protowire.BytesType)
		at := len(out)
		out = append(out, 0)
		var err error
		if out, err = appendObservation(out, &b.obs[i]); err != nil {
			if pool != nil {
				pool.Put(buf)
			}
			return nil, err
		}
		n := len(out) - at - 1
		if n < 0x80 {
			out[at] = byte(n)
			continue
		}
		w := protowire.SizeVarint(uint64(n))
		out = append(out, make([]byte, w-1)...)
		copy(out[at+w:], out[at+1:at+1+n])
		protowire.AppendVarint(out[at:at], uint64(n))
	}
	batch := len(out) - batchHeadRoom
	if batch > math.MaxInt32 {
		if pool != nil {
			pool.Put(buf)
		}
		return nil, fmt.Errorf("sdk: a batch of %d bytes is too large to send", batch)
	}
	start := batchHeadRoom - 1 - protowire.SizeVarint(uint64(batch))
	protowire.AppendVarint(protowire.AppendTag(out[start:start], fEventBatch, protowire.BytesType), uint64(batch))
	out = out[start:]
	b.last = len(out) + start
	*buf = out
	if pool == nil {
		return mem.BufferSlice{mem.SliceBuffer(out)}, nil
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// bufferPool holds the buffers of encoded batches while gRPC sends
// them, and for the next batches once it has. Unlike gRPC's own pool it
// does not clear a buffer it hands out: marshal overwrites every byte of
// what it sends.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, n+n/4) // room for a batch a little larger
	return &b
}

func (p *bufferPool) Put(b *[]byte) { p.pool.Put(b) }

// sizeString is the size of a proto3 string field: nothing when empty.
func sizeString(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func addressSize(a *Address) int {
	return sizeString(a.Addr) + sizeString(a.Type) + sizeString(a.Vendor)
}

func serviceSize(s *Service) int {
	n := sizeString(string(s.Protocol)) + sizeString(s.State) + sizeString(s.Name) + sizeString(s.Product) + sizeString(s.Version)
	if s.Port != 0 {
		n += 1 + protowire.SizeVarint(uint64(s.Port))
	}
	return n
}

// entrySize is the size of a map<string, string> entry, which holds its
// key and value even when empty.
func entrySize(k, v string) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(v))
}

// appendObservation writes o as the generated code marshals a
// pb.Observation: fields in number order, proto3 defaults left out, map
// entries in the map's own order (which proto leaves unspecified too).
// It refuses what proto.Marshal refuses: a string that is not UTF-8.
func appendObservation(b []byte, o *Observation) ([]byte, error) {
	var err error
	str := func(num protowire.Number, s, field string) {
		if err == nil && !utf8.ValidString(s) {
			err = errInvalidUTF8{field}
		}
		b = appendString(b, num, s)
	}
	for i := range o.Addresses {
		a := &o.Addresses[i]
		b = protowire.AppendTag(b, fObsAddresses, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(addressSize(a)))
		str(fAddrAddr, a.Addr, "Address.addr")
		str(fAddrType, a.Type, "Address.type")
		str(fAddrVendor, a.Vendor, "Address.vendor")
	}
	for _, h := range o.Hostnames {
		if err == nil && !utf8.ValidString(h) {
			err = errInvalidUTF8{"Observation.hostnames"}
		}
		b = protowire.AppendTag(b, fObsHostnames, protowire.BytesType)
		b = protowire.AppendString(b, h)
	}
	str(fObsStatus, o.Status, "Observation.status")
	str(fObsOS, o.OS, "Observation.os")
	for i := range o.Services {
		s := &o.Services[i]
		b = protowire.AppendTag(b, fObsServices, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(serviceSize(s)))
		str(fSvcProtocol, string(s.Protocol), "Service.protocol")
		if s.Port != 0 {
			b = protowire.AppendTag(b, fSvcPort, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(s.Port))
		}
		str(fSvcState, s.State, "Service.state")
		str(fSvcName, s.Name, "Service.name")
		str(fSvcProduct, s.Product, "Service.product")
		str(fSvcVersion, s.Version, "Service.version")
	}
	if err == nil {
		b, err = appendMap(b, fObsFacts, o.Facts, "Observation.facts")
	}
	if err == nil {
		b, err = appendMap(b, fObsLabels, o.Labels, "Observation.labels")
	}
	str(fObsInstanceID, o.InstanceID, "Observation.instance_id")
	str(fObsSource, o.Source, "Observation.source")
	return b, err
}

func appendMap(b []byte, num protowire.Number, m map[string]string, field string) ([]byte, error) {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return b, errInvalidUTF8{field}
		}
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(k, v)))
		b = protowire.AppendTag(b, fMapKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, fMapValue, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b, nil
}

// ---- the host's end: decoding ----

// eventKind is which case of DiscoverEvent's oneof a message set.
type eventKind uint8

const (
	eventNone eventKind = iota
	eventBatch
	eventResult
)

// incomingEvent is a DiscoverEvent as the host reads it. decode fills
// it from one message; what it keeps besides (scratch and arenas) is
// reused from one message to the next, never shared with what a
// message's observations hold except through capacity-limited slices
// and immutable strings.
type incomingEvent struct {
	kind eventKind
	// obs is the batch, allocated anew for each message: the emitter may
	// keep it.
	obs []Observation
	// badPort holds, per observation of obs, the first service whose
	// port does not fit in 16 bits; observationFromPB refuses those
	// before Validate.
	badPort []portError
	result  wireResult

	// The message being decoded, and the string holding a copy of a
	// stretch of it that the decoded strings share (see str).
	buf                []byte
	chunk              string
	chunkOff, chunkEnd int

	// Scratch for one observation, and arenas its slices are cut from.
	addrs  []Address
	hosts  []string
	svcs   []Service
	facts  []string // key, value, key, value, ...
	labels []string
	// The maps made last, which an observation with the same entries
	// shares: a provider's hosts mostly carry the same labels, and a map
	// per host was a sixth of what the host allocated taking in a stream.
	lastFacts, lastLabels lastMap
	addrArena             []Address
	hostArena             []string
	svcArena              []Service
}

type portError struct {
	obs, service int
	port         uint32
}

// wireResult is a Result as it came off the wire, before the checks of
// scopeFromWire.
type wireResult struct {
	warnings []string
	prefixes []string
	ports    map[string][]wirePortRange
}

type wirePortRange struct{ first, last uint32 }

// chunkSize bounds how much of a message one decoded string can keep
// alive: strings share copies of stretches of the message this long
// rather than each having its own allocation.
const chunkSize = 4096

// arenaSize is how many addresses, hostnames or services one allocation
// holds for the observations of a stream.
const arenaSize = 128

// errDecode is what proto.Unmarshal reports for bytes that are not the
// wire format.
var errDecode = errors.New("proto: cannot parse invalid wire-format data")

// errDecodeUTF8 is what proto.Unmarshal reports for a proto3 string field
// that is not UTF-8.
var errDecodeUTF8 = errors.New("proto: string field contains invalid UTF-8")

// decode reads one DiscoverEvent message. It fails exactly where
// proto.Unmarshal into a pb.DiscoverEvent fails; the checks of
// observationFromPB that go past the wire format are left to the caller
// (check), after the whole message was read, as the host did them after
// proto.Unmarshal.
func (ev *incomingEvent) decode(b []byte) error {
	hint := cap(ev.obs)
	ev.kind, ev.obs, ev.badPort, ev.result = eventNone, nil, ev.badPort[:0], wireResult{}
	ev.buf, ev.chunk, ev.chunkOff, ev.chunkEnd = b, "", 0, 0
	defer func() { ev.buf = nil }() // the message's buffer goes back to gRPC
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		v, n, ok := bytesField(b, typ)
		if !ok || n < 0 {
			return n, ok, nil
		}
		switch num {
		case fEventBatch:
			if ev.kind != eventBatch {
				// A oneof's case replaces the other; the same case
				// merges, and a batch merges by appending.
				ev.kind, ev.result = eventBatch, wireResult{}
				ev.obs, ev.badPort = make([]Observation, 0, max(hint, 16)), ev.badPort[:0]
			}
			return n, true, ev.decodeBatch(v)
		case fEventResult:
			if ev.kind != eventResult {
				ev.kind, ev.obs, ev.badPort, ev.result = eventResult, nil, ev.badPort[:0], wireResult{}
			}
			return n, true, ev.decodeResult(v)
		}
		return 0, false, nil
	})
}

// check applies to observation i what observationFromPB checks: a port
// that does not fit, then Validate.
func (ev *incomingEvent) check(i int) error {
	for _, p := range ev.badPort {
		if p.obs == i {
			return fmt.Errorf("service %d: port %d is outside 1-65535", p.service, p.port)
		}
	}
	return ev.obs[i].Validate()
}

// consumeTag reads a field's tag as proto.Unmarshal does: a field number
// outside 1 to 2^29-1 is an error.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0] < 0x80 {
		if b[0]>>3 == 0 {
			return 0, 0, -1
		}
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 || v>>3 < uint64(protowire.MinValidNumber) || v>>3 > uint64(protowire.MaxValidNumber) {
		return 0, 0, -1
	}
	return protowire.Number(v >> 3), protowire.Type(v & 7), n
}

// eachField calls field for each field of the message b, in order, with
// its number, wire type and the bytes that follow its tag. field returns
// how many of those its value took, or ok false for a field it does not
// read (an unknown one, or a known one with another wire type, which
// proto treats as unknown), which is then skipped. A negative n is a
// value that does not parse.
func eachField(b []byte, field func(num protowire.Number, typ protowire.Type, b []byte) (n int, ok bool, err error)) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errDecode
		}
		b = b[n:]
		n, ok, err := field(num, typ, b)
		if err != nil {
			return err
		}
		if !ok {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errDecode
		}
		b = b[n:]
	}
	return nil
}

// bytesField reads a length-delimited field's value at b; ok is false
// for another wire type.
func bytesField(b []byte, typ protowire.Type) (v []byte, n int, ok bool) {
	if typ != protowire.BytesType {
		return nil, 0, false
	}
	v, n = protowire.ConsumeBytes(b)
	return v, n, true
}

// varintValue reads a varint field's value at b; ok is false for another
// wire type.
func varintValue(b []byte, typ protowire.Type) (v uint64, n int, ok bool) {
	if typ != protowire.VarintType {
		return 0, 0, false
	}
	v, n = protowire.ConsumeVarint(b)
	return v, n, true
}

// str reads a string field's value v (a slice of ev.buf) as proto3 does,
// refusing invalid UTF-8. The string shares a copy of up to chunkSize
// bytes of the message with its neighbours: one allocation for many
// strings, and one that a kept string holds alive is small.
func (ev *incomingEvent) str(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", errDecodeUTF8
	}
	if len(v) == 0 {
		return "", nil
	}
	// v was cut from ev.buf, so their capacities end together.
	off := cap(ev.buf) - cap(v)
	if off < ev.chunkOff || off+len(v) > ev.chunkEnd {
		end := min(len(ev.buf), off+max(len(v), chunkSize))
		ev.chunk, ev.chunkOff, ev.chunkEnd = string(ev.buf[off:end]), off, end
	}
	return ev.chunk[off-ev.chunkOff : off-ev.chunkOff+len(v)], nil
}

// stringField reads a string field at b, or reports ok false when the
// wire type is not that of a string (then the field is skipped).
func (ev *incomingEvent) stringField(b []byte, typ protowire.Type) (s string, n int, ok bool, err error) {
	v, n, ok := bytesField(b, typ)
	if !ok || n < 0 {
		return "", n, ok, nil
	}
	s, err = ev.str(v)
	return s, n, true, err
}

func (ev *incomingEvent) decodeBatch(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		v, n, ok := bytesField(b, typ)
		if num != fBatchObservations || !ok || n < 0 {
			return n, ok && num == fBatchObservations, nil
		}
		return n, true, ev.decodeObservation(v)
	})
}

func (ev *incomingEvent) decodeObservation(b []byte) error {
	ev.addrs, ev.hosts, ev.svcs, ev.facts, ev.labels = ev.addrs[:0], ev.hosts[:0], ev.svcs[:0], ev.facts[:0], ev.labels[:0]
	var o Observation
	index := len(ev.obs)
	badPort, factsSeen, labelsSeen := false, false, false
	err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		switch num {
		case fObsHostnames, fObsStatus, fObsOS, fObsInstanceID, fObsSource:
			s, n, ok, err := ev.stringField(b, typ)
			if !ok || n < 0 || err != nil {
				return n, ok, err
			}
			switch num {
			case fObsHostnames:
				ev.hosts = append(ev.hosts, s)
			case fObsStatus:
				o.Status = s
			case fObsOS:
				o.OS = s
			case fObsInstanceID:
				o.InstanceID = s
			case fObsSource:
				o.Source = s
			}
			return n, true, nil
		case fObsAddresses, fObsServices, fObsFacts, fObsLabels:
			// The generated code makes a map at the first sight of its
			// field, whatever its wire type: an empty one, not nil.
			factsSeen = factsSeen || num == fObsFacts
			labelsSeen = labelsSeen || num == fObsLabels
			v, n, ok := bytesField(b, typ)
			if !ok || n < 0 {
				return n, ok, nil
			}
			var err error
			switch num {
			case fObsAddresses:
				var a Address
				err = ev.decodeAddress(v, &a)
				ev.addrs = append(ev.addrs, a)
			case fObsServices:
				var svc Service
				var port uint32
				port, err = ev.decodeService(v, &svc)
				if port > 65535 && !badPort {
					badPort = true
					ev.badPort = append(ev.badPort, portError{obs: index, service: len(ev.svcs), port: port})
				}
				ev.svcs = append(ev.svcs, svc)
			case fObsFacts:
				ev.facts, err = ev.decodeEntry(v, ev.facts)
			case fObsLabels:
				ev.labels, err = ev.decodeEntry(v, ev.labels)
			}
			return n, true, err
		}
		return 0, false, nil
	})
	if err != nil {
		return err
	}
	o.Addresses = carve(&ev.addrArena, ev.addrs)
	o.Hostnames = carve(&ev.hostArena, ev.hosts)
	o.Services = carve(&ev.svcArena, ev.svcs)
	o.Facts = ev.lastFacts.makeMap(ev.facts, factsSeen)
	o.Labels = ev.lastLabels.makeMap(ev.labels, labelsSeen)
	ev.obs = append(ev.obs, o)
	return nil
}

// carve copies src into the arena and returns the copy, its capacity
// limited so that an append by whoever keeps it cannot reach a
// neighbour's elements. Empty is nil, as the generated code leaves it.
func carve[T any](arena *[]T, src []T) []T {
	if len(src) == 0 {
		return nil
	}
	a := *arena
	if cap(a)-len(a) < len(src) {
		a = make([]T, 0, max(arenaSize, len(src)))
	}
	start := len(a)
	a = append(a, src...)
	*arena = a
	return a[start:len(a):len(a)]
}

// lastMap is the map made last from kv.
type lastMap struct {
	kv []string
	m  map[string]string
}

// makeMap builds a map from key, value pairs; a later entry of the same
// key wins, as in proto. A map whose field was not seen is nil, as the
// generated code leaves it; one seen without entries (only with another
// wire type) is empty. Pairs the same, in the same order, as those of the
// map made last give that map again, so observations share it: the host
// only reads them (see Emitter).
func (l *lastMap) makeMap(kv []string, seen bool) map[string]string {
	if !seen {
		return nil
	}
	if len(kv) > 0 && l.m != nil && slices.Equal(kv, l.kv) {
		return l.m
	}
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	l.kv, l.m = append(l.kv[:0], kv...), m
	return m
}

func (ev *incomingEvent) decodeAddress(b []byte, a *Address) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		if num < fAddrAddr || num > fAddrVendor {
			return 0, false, nil
		}
		s, n, ok, err := ev.stringField(b, typ)
		if !ok || n < 0 || err != nil {
			return n, ok, err
		}
		switch num {
		case fAddrAddr:
			a.Addr = s
		case fAddrType:
			a.Type = s
		case fAddrVendor:
			a.Vendor = s
		}
		return n, true, nil
	})
}

// decodeService reads a Service and returns its port as the wire says it
// (a uint32, of which observationFromPB refuses what exceeds 65535).
func (ev *incomingEvent) decodeService(b []byte, svc *Service) (uint32, error) {
	var port uint32
	err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		switch {
		case num == fSvcPort:
			v, n, ok := varintValue(b, typ)
			if ok && n >= 0 {
				port = uint32(v) // proto truncates a uint32's varint
			}
			return n, ok, nil
		case num >= fSvcProtocol && num <= fSvcVersion:
			s, n, ok, err := ev.stringField(b, typ)
			if !ok || n < 0 || err != nil {
				return n, ok, err
			}
			switch num {
			case fSvcProtocol:
				svc.Protocol = Protocol(s)
			case fSvcState:
				svc.State = s
			case fSvcName:
				svc.Name = s
			case fSvcProduct:
				svc.Product = s
			case fSvcVersion:
				svc.Version = s
			}
			return n, true, nil
		}
		return 0, false, nil
	})
	svc.Port = uint16(port)
	return port, err
}

// decodeEntry reads a map<string, string> entry and appends its key and
// value to kv; a missing key or value is "", a repeated one the last.
func (ev *incomingEvent) decodeEntry(b []byte, kv []string) ([]string, error) {
	var key, val string
	err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		if num != fMapKey && num != fMapValue {
			return 0, false, nil
		}
		s, n, ok, err := ev.stringField(b, typ)
		if !ok || n < 0 || err != nil {
			return n, ok, err
		}
		if num == fMapKey {
			key = s
		} else {
			val = s
		}
		return n, true, nil
	})
	if err != nil {
		return kv, err
	}
	return append(kv, key, val), nil
}

func (ev *incomingEvent) decodeResult(b []byte) error {
	r := &ev.result
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		switch num {
		case fResultWarnings:
			s, n, ok, err := ev.stringField(b, typ)
			if ok && n >= 0 && err == nil {
				r.warnings = append(r.warnings, s)
			}
			return n, ok, err
		case fResultScope:
			v, n, ok := bytesField(b, typ)
			if !ok || n < 0 {
				return n, ok, nil
			}
			return n, true, ev.decodeScope(v) // a repeated scope merges
		}
		return 0, false, nil
	})
}

func (ev *incomingEvent) decodeScope(b []byte) error {
	r := &ev.result
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		switch num {
		case fScopePrefixes:
			s, n, ok, err := ev.stringField(b, typ)
			if ok && n >= 0 && err == nil {
				r.prefixes = append(r.prefixes, s)
			}
			return n, ok, err
		case fScopePorts:
			v, n, ok := bytesField(b, typ)
			if !ok || n < 0 {
				return n, ok, nil
			}
			return n, true, ev.decodePortsEntry(v)
		}
		return 0, false, nil
	})
}

// decodePortsEntry reads an entry of map<string, PortRanges>: a later
// entry of the same key replaces the earlier one, and the values of one
// entry merge.
func (ev *incomingEvent) decodePortsEntry(b []byte) error {
	var (
		key    string
		ranges []wirePortRange
	)
	err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		switch num {
		case fMapKey:
			s, n, ok, err := ev.stringField(b, typ)
			if ok && n >= 0 && err == nil {
				key = s
			}
			return n, ok, err
		case fMapValue:
			v, n, ok := bytesField(b, typ)
			if !ok || n < 0 {
				return n, ok, nil
			}
			var err error
			ranges, err = decodePortRanges(v, ranges)
			return n, true, err
		}
		return 0, false, nil
	})
	if err != nil {
		return err
	}
	if ev.result.ports == nil {
		ev.result.ports = make(map[string][]wirePortRange)
	}
	ev.result.ports[key] = ranges
	return nil
}

func decodePortRanges(b []byte, ranges []wirePortRange) ([]wirePortRange, error) {
	err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		v, n, ok := bytesField(b, typ)
		if num != fRangesRanges || !ok || n < 0 {
			return n, ok && num == fRangesRanges, nil
		}
		r, err := decodePortRange(v)
		ranges = append(ranges, r)
		return n, true, err
	})
	if err != nil {
		return nil, err
	}
	return ranges, nil
}

func decodePortRange(b []byte) (wirePortRange, error) {
	var r wirePortRange
	err := eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, bool, error) {
		if num != fRangeFirst && num != fRangeLast {
			return 0, false, nil
		}
		v, n, ok := varintValue(b, typ)
		if !ok || n < 0 {
			return n, ok, nil
		}
		if num == fRangeFirst {
			r.first = uint32(v)
		} else {
			r.last = uint32(v)
		}
		return n, true, nil
	})
	return r, err
}

// scope applies to a result off the wire the checks scopeFromPB applies
// to a pb.Scope (and must stay in step with it; wire_test.go compares
// the two).
func (r *wireResult) scope() (Scope, error) {
	var s Scope
	for _, text := range r.prefixes {
		pfx, err := netip.ParsePrefix(text)
		if err != nil {
			return s, fmt.Errorf("scope: %q is not a CIDR prefix", text)
		}
		s.Prefixes = append(s.Prefixes, pfx.Masked())
	}
	for proto, ranges := range r.ports {
		if !knownProtocol(Protocol(proto)) {
			return s, fmt.Errorf("scope: unknown protocol %q", proto)
		}
		var out PortRanges
		for _, pr := range ranges {
			if pr.first < 1 || pr.last > 65535 || pr.first > pr.last {
				return s, fmt.Errorf("scope: %s port range %d-%d is not within 1-65535", proto, pr.first, pr.last)
			}
			out = append(out, PortRange{First: uint16(pr.first), Last: uint16(pr.last)})
		}
		if s.Ports == nil {
			s.Ports = make(map[Protocol]PortRanges)
		}
		s.Ports[Protocol(proto)] = out.Normalize()
	}
	return s, nil
}
