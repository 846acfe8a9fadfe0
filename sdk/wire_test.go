package sdk

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The tests of this file hold wire.go to the generated code, which
// older plugins and hosts use: what the hand encoder writes is what
// proto.Marshal writes, and the hand decoder takes and refuses exactly
// what proto.Unmarshal and observationFromPB take and refuse.

// genObservations makes n observations from r: valid ones and, with
// invalid set, ones Validate refuses; with empty fields, unicode, long
// strings, many services, maps of every size.
func genObservations(r *rand.Rand, n int, invalid bool) []Observation {
	obs := make([]Observation, n)
	for i := range obs {
		obs[i] = genObservation(r, invalid)
	}
	return obs
}

var genWords = []string{"", "a", "up", "down", "ipv4", "ipv6", "mac", "tcp", "udp", "sctp", "open", "closed",
	"open|filtered", "team", "net", "Grüße", "日本語のホスト", "emoji 🛰", "tab\tand\nnewline", "nul\x00byte", "ǅ"}

func genString(r *rand.Rand) string {
	switch r.IntN(10) {
	case 0:
		return ""
	case 1:
		// Long: lengths whose varint takes two and three bytes.
		return strings.Repeat(genWords[r.IntN(len(genWords))]+"x", r.IntN(3000))
	case 2, 3:
		return genWords[r.IntN(len(genWords))]
	default:
		b := make([]rune, r.IntN(24))
		for i := range b {
			if r.IntN(8) == 0 {
				b[i] = rune(0x80 + r.IntN(0x10000-0x80))
				if b[i] >= 0xd800 && b[i] < 0xe000 {
					b[i] = 'ß'
				}
			} else {
				b[i] = rune('a' + r.IntN(26))
			}
		}
		return string(b)
	}
}

func genAddress(r *rand.Rand, invalid bool) Address {
	a := Address{}
	switch r.IntN(4) {
	case 0:
		a.Addr, a.Type = fmt.Sprintf("198.%d.%d.%d", 18+r.IntN(2), r.IntN(256), r.IntN(256)), "ipv4"
	case 1:
		a.Addr, a.Type = fmt.Sprintf("2001:db8::%x", r.IntN(1<<16)), "ipv6"
	case 2:
		a.Addr, a.Type, a.Vendor = fmt.Sprintf("52:54:00:%02x:%02x:%02x", r.IntN(256), r.IntN(256), r.IntN(256)), "mac", genString(r)
	default:
		a.Addr, a.Type = "10.0.0.1", "ipv4"
	}
	if invalid && r.IntN(10) == 0 {
		a.Addr, a.Type = genString(r), genString(r)
	}
	return a
}

func genObservation(r *rand.Rand, invalid bool) Observation {
	o := Observation{Status: []string{"", StatusUp, StatusDown}[r.IntN(3)]}
	for range r.IntN(4) + 1 {
		o.Addresses = append(o.Addresses, genAddress(r, invalid))
	}
	if invalid && r.IntN(20) == 0 {
		o.Addresses = nil
	}
	if r.IntN(2) == 0 {
		for range r.IntN(4) {
			o.Hostnames = append(o.Hostnames, genString(r))
		}
	}
	if r.IntN(3) == 0 {
		o.OS = genString(r)
	}
	if r.IntN(2) == 0 {
		for range r.IntN(30) {
			o.Services = append(o.Services, Service{Protocol: []Protocol{TCP, UDP, SCTP}[r.IntN(3)], Port: uint16(1 + r.IntN(65535)),
				State: []string{"open", "closed", "filtered", "open|filtered"}[r.IntN(4)], Name: genString(r), Product: genString(r), Version: genString(r)})
		}
	}
	if invalid && len(o.Services) > 0 && r.IntN(5) == 0 {
		s := &o.Services[r.IntN(len(o.Services))]
		switch r.IntN(3) {
		case 0:
			s.Port = 0
		case 1:
			s.Protocol = Protocol(genString(r))
		default:
			s.State = ""
		}
	}
	genMap := func() map[string]string {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return map[string]string{}
		}
		m := map[string]string{}
		for range r.IntN(6) + 1 {
			m[genString(r)] = genString(r)
		}
		return m
	}
	o.Facts, o.Labels = genMap(), genMap()
	if r.IntN(2) == 0 {
		o.InstanceID = genString(r)
	}
	if r.IntN(4) == 0 {
		o.Source = genString(r)
	}
	if invalid && r.IntN(10) == 0 {
		o.Status = genString(r)
	}
	return o
}

// oldEncode is what a plugin of an older sdk sends for a batch.
func oldEncode(obs []Observation) ([]byte, error) {
	msg := &pb.ObservationBatch{Observations: make([]*pb.Observation, len(obs))}
	for i := range obs {
		msg.Observations[i] = observationToPB(&obs[i])
	}
	return proto.Marshal(&pb.DiscoverEvent{Event: &pb.DiscoverEvent_Batch{Batch: msg}})
}

func oldMessage(obs []Observation) *pb.DiscoverEvent {
	msg := &pb.ObservationBatch{Observations: make([]*pb.Observation, len(obs))}
	for i := range obs {
		msg.Observations[i] = observationToPB(&obs[i])
	}
	return &pb.DiscoverEvent{Event: &pb.DiscoverEvent_Batch{Batch: msg}}
}

func newEncode(obs []Observation) ([]byte, error) {
	data, err := (&outgoingBatch{obs: obs}).marshal()
	if err != nil {
		return nil, err
	}
	defer data.Free()
	return data.Materialize(), nil
}

// outcome is what the host makes of one DiscoverEvent message.
type outcome struct {
	WireError bool
	Kind      eventKind
	// Observations and errors, one of each per observation of a batch:
	// the observation when it passed the checks, else the error.
	Obs    []Observation
	ObsErr []string
	Result *Result
	// ResultErr is the scope's error; its text only when it cannot
	// depend on map order (at most one protocol in the scope).
	ResultErr string
}

// oldDecode is the host of an older sdk: proto.Unmarshal, then
// observationFromPB and scopeFromPB.
func oldDecode(b []byte) outcome {
	var ev pb.DiscoverEvent
	if err := proto.Unmarshal(b, &ev); err != nil {
		return outcome{WireError: true}
	}
	var out outcome
	switch e := ev.GetEvent().(type) {
	case *pb.DiscoverEvent_Batch:
		out.Kind = eventBatch
		for _, p := range e.Batch.GetObservations() {
			o, err := observationFromPB(p)
			if err != nil {
				out.Obs, out.ObsErr = append(out.Obs, Observation{}), append(out.ObsErr, err.Error())
				continue
			}
			out.Obs, out.ObsErr = append(out.Obs, o), append(out.ObsErr, "")
		}
	case *pb.DiscoverEvent_Result:
		out.Kind = eventResult
		scope, err := scopeFromPB(e.Result.GetScope())
		if err != nil {
			out.ResultErr = scopeErr(err, len(e.Result.GetScope().GetPorts()))
			break
		}
		out.Result = &Result{Scope: scope, Warnings: e.Result.GetWarnings()}
	}
	return out
}

func scopeErr(err error, protocols int) string {
	if protocols > 1 {
		return "error"
	}
	return err.Error()
}

// newDecode is the host of this sdk.
func newDecode(b []byte) outcome {
	var ev incomingEvent
	if err := ev.decode(b); err != nil {
		return outcome{WireError: true}
	}
	var out outcome
	out.Kind = ev.kind
	switch ev.kind {
	case eventBatch:
		for i := range ev.obs {
			if err := ev.check(i); err != nil {
				out.Obs, out.ObsErr = append(out.Obs, Observation{}), append(out.ObsErr, err.Error())
				continue
			}
			out.Obs, out.ObsErr = append(out.Obs, ev.obs[i]), append(out.ObsErr, "")
		}
	case eventResult:
		scope, err := ev.result.scope()
		if err != nil {
			out.ResultErr = scopeErr(err, len(ev.result.ports))
			break
		}
		out.Result = &Result{Scope: scope, Warnings: ev.result.warnings}
	}
	return out
}

func compareDecoders(t *testing.T, b []byte) {
	t.Helper()
	want, got := oldDecode(b), newDecode(b)
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("bytes %x\nproto.Unmarshal and observationFromPB: %+v\nthe hand decoder:                   %+v", b, want, got)
	}
}

func TestEncoderWritesWhatProtoMarshalWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	exact := 0
	for round := range 300 {
		obs := genObservations(r, r.IntN(40), round%2 == 1)
		if round%3 == 0 {
			oneEntry(obs)
		}
		got, err := newEncode(obs)
		if err != nil {
			t.Fatal(err)
		}
		want := oldMessage(obs)
		if len(got) != proto.Size(want) {
			t.Fatalf("round %d: %d bytes, proto.Size says %d", round, len(got), proto.Size(want))
		}
		var back pb.DiscoverEvent
		if err := proto.Unmarshal(got, &back); err != nil {
			t.Fatalf("round %d: proto.Unmarshal of the hand encoder's bytes: %v", round, err)
		}
		if !proto.Equal(&back, want) {
			t.Fatalf("round %d: proto.Unmarshal of the hand encoder's bytes gives\n%v\nwant\n%v", round, &back, want)
		}
		// Byte for byte where map order cannot differ.
		if mapsOfOne(obs) {
			old, err := proto.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, old) {
				t.Fatalf("round %d: hand encoder\n%x\nproto.Marshal\n%x", round, got, old)
			}
			exact++
		}
		// And what the hand encoder writes, the hand decoder reads as
		// the old host would.
		compareDecoders(t, got)
	}
	if exact < 100 {
		t.Fatalf("only %d rounds compared byte for byte", exact)
	}
}

// oneEntry leaves at most one entry in each map of obs.
func oneEntry(obs []Observation) {
	for i := range obs {
		for _, m := range []map[string]string{obs[i].Facts, obs[i].Labels} {
			for k := range m {
				if len(m) > 1 {
					delete(m, k)
				}
			}
		}
	}
}

func mapsOfOne(obs []Observation) bool {
	for _, o := range obs {
		if len(o.Facts) > 1 || len(o.Labels) > 1 {
			return false
		}
	}
	return true
}

func TestEncoderRefusesInvalidUTF8AsProtoMarshalDoes(t *testing.T) {
	bad := "caf\xe9"
	base := func() Observation {
		return Observation{Addresses: []Address{{Addr: "198.18.0.1", Type: "ipv4"}}, Services: []Service{{Protocol: TCP, Port: 22, State: "open"}}}
	}
	for name, change := range map[string]func(*Observation){
		"address":      func(o *Observation) { o.Addresses[0].Addr = bad },
		"address type": func(o *Observation) { o.Addresses[0].Type = bad },
		"vendor":       func(o *Observation) { o.Addresses[0].Vendor = bad },
		"hostname":     func(o *Observation) { o.Hostnames = []string{"ok", bad} },
		"status":       func(o *Observation) { o.Status = bad },
		"os":           func(o *Observation) { o.OS = bad },
		"protocol":     func(o *Observation) { o.Services[0].Protocol = Protocol(bad) },
		"state":        func(o *Observation) { o.Services[0].State = bad },
		"name":         func(o *Observation) { o.Services[0].Name = bad },
		"product":      func(o *Observation) { o.Services[0].Product = bad },
		"version":      func(o *Observation) { o.Services[0].Version = bad },
		"fact key":     func(o *Observation) { o.Facts = map[string]string{bad: "v"} },
		"fact value":   func(o *Observation) { o.Facts = map[string]string{"k": bad} },
		"label key":    func(o *Observation) { o.Labels = map[string]string{bad: "v"} },
		"label value":  func(o *Observation) { o.Labels = map[string]string{"k": bad} },
		"instance id":  func(o *Observation) { o.InstanceID = bad },
		"source":       func(o *Observation) { o.Source = bad },
	} {
		o := base()
		change(&o)
		obs := []Observation{base(), o}
		_, oldErr := oldEncode(obs)
		_, newErr := newEncode(obs)
		if oldErr == nil || newErr == nil {
			t.Errorf("%s: proto.Marshal: %v, hand encoder: %v; want both to refuse", name, oldErr, newErr)
		}
	}
	if _, err := newEncode([]Observation{base()}); err != nil {
		t.Fatal(err)
	}
}

func TestDecoderReadsWhatProtoMarshalWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		obs := genObservations(r, r.IntN(40), round%2 == 1)
		b, err := oldEncode(obs)
		if err != nil {
			t.Fatal(err)
		}
		compareDecoders(t, b)
		if round%2 == 0 {
			got := newDecode(b)
			for i, e := range got.ObsErr {
				if e != "" {
					t.Fatalf("round %d: valid observation %d refused: %s", round, i, e)
				}
			}
			if !reflect.DeepEqual(emptyNil(obs), got.Obs) {
				t.Fatalf("round %d: decoded observations differ from what was sent", round)
			}
		}
	}
	// Results, from proto.Marshal.
	for _, res := range []*pb.Result{
		{},
		{Warnings: []string{"", "ü", "w"}},
		{Scope: &pb.Scope{Prefixes: []string{"198.18.0.0/15", "2001:db8::/64", "198.18.0.7/24"}}},
		{Scope: &pb.Scope{Prefixes: []string{"nonsense"}}},
		{Scope: &pb.Scope{Ports: map[string]*pb.PortRanges{"tcp": {Ranges: []*pb.PortRange{{First: 1, Last: 1024}, {First: 80, Last: 80}}}, "udp": {}}}},
		{Scope: &pb.Scope{Ports: map[string]*pb.PortRanges{"icmp": {}}}},
		{Scope: &pb.Scope{Ports: map[string]*pb.PortRanges{"tcp": {Ranges: []*pb.PortRange{{First: 0, Last: 3}}}}}},
		{Scope: &pb.Scope{Ports: map[string]*pb.PortRanges{"tcp": {Ranges: []*pb.PortRange{{First: 5, Last: 70000}}}}}},
		{Scope: &pb.Scope{Ports: map[string]*pb.PortRanges{"tcp": {Ranges: []*pb.PortRange{{First: 9, Last: 3}}}}}},
	} {
		b, err := proto.Marshal(&pb.DiscoverEvent{Event: &pb.DiscoverEvent_Result{Result: res}})
		if err != nil {
			t.Fatal(err)
		}
		compareDecoders(t, b)
	}
}

// emptyNil is obs as the wire gives it back: empty slices and maps nil.
func emptyNil(obs []Observation) []Observation {
	if len(obs) == 0 {
		return nil
	}
	out := make([]Observation, len(obs))
	for i, o := range obs {
		if len(o.Hostnames) == 0 {
			o.Hostnames = nil
		}
		if len(o.Services) == 0 {
			o.Services = nil
		}
		if len(o.Facts) == 0 {
			o.Facts = nil
		}
		if len(o.Labels) == 0 {
			o.Labels = nil
		}
		out[i] = o
	}
	return out
}

// Builders for hand-made messages.
func tagged(num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(nil, num, typ)
}

func msgField(num protowire.Number, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
}

func strField(num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// unknowns is one unknown field of each wire type, groups nested.
func unknowns(num protowire.Number) []byte {
	return cat(
		varintField(num, 1<<40),
		protowire.AppendFixed32(tagged(num+1, protowire.Fixed32Type), 7),
		protowire.AppendFixed64(tagged(num+2, protowire.Fixed64Type), 7),
		strField(num+3, "\xff not UTF-8 but unknown"),
		tagged(num+4, protowire.StartGroupType), varintField(1, 2), tagged(num+5, protowire.StartGroupType),
		tagged(num+5, protowire.EndGroupType), tagged(num+4, protowire.EndGroupType),
		varintField(protowire.MaxValidNumber, 0),
	)
}

var (
	v4   = msgField(fObsAddresses, strField(fAddrAddr, "198.18.0.1"), strField(fAddrType, "ipv4"))
	ssh  = msgField(fObsServices, strField(fSvcProtocol, "tcp"), varintField(fSvcPort, 22), strField(fSvcState, "open"))
	good = msgField(fBatchObservations, v4, ssh)
)

func batch(obs ...[]byte) []byte { return msgField(fEventBatch, obs...) }

func observation(fields ...[]byte) []byte { return msgField(fBatchObservations, fields...) }

func handMadeEvents() map[string][]byte {
	bad := "\xc3\x28"
	cases := map[string][]byte{
		"empty event":                     {},
		"empty batch":                     batch(),
		"one observation":                 batch(good),
		"empty observation":               batch(observation()),
		"unknown fields at every level":   cat(unknowns(10), batch(unknowns(20), observation(v4, unknowns(30), msgField(fObsAddresses, unknowns(4), strField(fAddrAddr, "2001:db8::1"), strField(fAddrType, "ipv6")), msgField(fObsServices, unknowns(7), strField(fSvcProtocol, "udp"), varintField(fSvcPort, 53), strField(fSvcState, "open")), msgField(fObsLabels, unknowns(3), strField(fMapKey, "k"), strField(fMapValue, "v"))))),
		"unknown fields in the result":    cat(unknowns(10), msgField(fEventResult, unknowns(3), msgField(fResultScope, unknowns(3), msgField(fScopePorts, unknowns(3), strField(fMapKey, "tcp"), msgField(fMapValue, unknowns(2), msgField(fRangesRanges, unknowns(3), varintField(fRangeFirst, 1), varintField(fRangeLast, 9))))))),
		"status twice, the last wins":     batch(observation(v4, strField(fObsStatus, "sideways"), strField(fObsStatus, "up"))),
		"status twice, the last is bad":   batch(observation(v4, strField(fObsStatus, "up"), strField(fObsStatus, "sideways"))),
		"address fields twice":            batch(observation(msgField(fObsAddresses, strField(fAddrAddr, "x"), strField(fAddrType, "mac"), strField(fAddrAddr, "198.18.0.9"), strField(fAddrType, "ipv4")))),
		"port twice, the last wins":       batch(observation(v4, msgField(fObsServices, strField(fSvcProtocol, "tcp"), varintField(fSvcPort, 70000), varintField(fSvcPort, 22), strField(fSvcState, "open")))),
		"port 65535":                      batch(observation(v4, msgField(fObsServices, strField(fSvcProtocol, "tcp"), varintField(fSvcPort, 65535), strField(fSvcState, "open")))),
		"port 65536":                      batch(good, observation(v4, msgField(fObsServices, strField(fSvcProtocol, "tcp"), varintField(fSvcPort, 65536), strField(fSvcState, "open")))),
		"second service's port too big":   batch(observation(v4, ssh, msgField(fObsServices, varintField(fSvcPort, 1<<31)), msgField(fObsServices, varintField(fSvcPort, 1<<20)))),
		"port truncated to 32 bits":       batch(observation(v4, msgField(fObsServices, strField(fSvcProtocol, "tcp"), varintField(fSvcPort, 1<<32+22), strField(fSvcState, "open")))),
		"port of 64 bits":                 batch(observation(v4, msgField(fObsServices, strField(fSvcProtocol, "tcp"), varintField(fSvcPort, math.MaxUint64), strField(fSvcState, "open")))),
		"bad port and a bad address":      batch(observation(msgField(fObsAddresses, strField(fAddrAddr, "nope")), msgField(fObsServices, varintField(fSvcPort, 1<<17)))),
		"port as bytes is unknown":        batch(observation(v4, msgField(fObsServices, strField(fSvcProtocol, "tcp"), strField(fSvcPort, "22"), strField(fSvcState, "open")))),
		"port as fixed32 is unknown":      batch(observation(v4, msgField(fObsServices, strField(fSvcProtocol, "tcp"), protowire.AppendFixed32(tagged(fSvcPort, protowire.Fixed32Type), 22), varintField(fSvcPort, 23), strField(fSvcState, "open")))),
		"status as varint is unknown":     batch(observation(v4, varintField(fObsStatus, 1))),
		"address as varint is unknown":    batch(observation(v4, varintField(fObsAddresses, 1))),
		"labels as fixed64 is unknown":    batch(observation(v4, protowire.AppendFixed64(tagged(fObsLabels, protowire.Fixed64Type), 1))),
		"batch as varint is unknown":      cat(varintField(fEventBatch, 3), batch(good)),
		"only a batch as varint":          varintField(fEventBatch, 3),
		"result as fixed32 is unknown":    cat(batch(good), protowire.AppendFixed32(tagged(fEventResult, protowire.Fixed32Type), 3)),
		"observation as varint":           batch(varintField(fBatchObservations, 1), good),
		"map key as varint":               batch(observation(v4, msgField(fObsFacts, varintField(fMapKey, 1), strField(fMapValue, "v")))),
		"map value as fixed32":            batch(observation(v4, msgField(fObsFacts, strField(fMapKey, "k"), protowire.AppendFixed32(tagged(fMapValue, protowire.Fixed32Type), 1)))),
		"map entry without key":           batch(observation(v4, msgField(fObsFacts, strField(fMapValue, "v")))),
		"map entry without value":         batch(observation(v4, msgField(fObsLabels, strField(fMapKey, "k")))),
		"empty map entry":                 batch(observation(v4, msgField(fObsLabels))),
		"map entry key twice":             batch(observation(v4, msgField(fObsLabels, strField(fMapKey, "a"), strField(fMapValue, "1"), strField(fMapKey, "b")))),
		"map entry value before key":      batch(observation(v4, msgField(fObsLabels, strField(fMapValue, "1"), strField(fMapKey, "b")))),
		"map key repeated, last wins":     batch(observation(v4, msgField(fObsLabels, strField(fMapKey, "a"), strField(fMapValue, "1")), msgField(fObsLabels, strField(fMapKey, "a"), strField(fMapValue, "2")))),
		"hostnames repeated and empty":    batch(observation(v4, strField(fObsHostnames, ""), strField(fObsHostnames, "a"), strField(fObsHostnames, ""))),
		"two batches merge":               cat(batch(good), batch(good, observation(v4))),
		"a batch then a result":           cat(batch(good), msgField(fEventResult, strField(fResultWarnings, "w"))),
		"a bad batch then a result":       cat(batch(observation()), msgField(fEventResult)),
		"a result then a batch":           cat(msgField(fEventResult, strField(fResultWarnings, "w")), batch(good)),
		"batch, result, batch":            cat(batch(good, good), msgField(fEventResult), batch(observation(v4))),
		"two results merge":               cat(msgField(fEventResult, strField(fResultWarnings, "a"), msgField(fResultScope, strField(fScopePrefixes, "198.18.0.0/24"))), msgField(fEventResult, strField(fResultWarnings, "b"), msgField(fResultScope, strField(fScopePrefixes, "198.19.0.0/24")))),
		"two scopes merge":                msgField(fEventResult, msgField(fResultScope, msgField(fScopePorts, strField(fMapKey, "tcp"), msgField(fMapValue, msgField(fRangesRanges, varintField(fRangeFirst, 1), varintField(fRangeLast, 2))))), msgField(fResultScope, msgField(fScopePorts, strField(fMapKey, "udp")))),
		"ports entry replaced":            msgField(fEventResult, msgField(fResultScope, msgField(fScopePorts, strField(fMapKey, "tcp"), msgField(fMapValue, msgField(fRangesRanges, varintField(fRangeFirst, 0)))), msgField(fScopePorts, strField(fMapKey, "tcp"), msgField(fMapValue, msgField(fRangesRanges, varintField(fRangeFirst, 5), varintField(fRangeLast, 6)))))),
		"ports values merge":              msgField(fEventResult, msgField(fResultScope, msgField(fScopePorts, strField(fMapKey, "tcp"), msgField(fMapValue, msgField(fRangesRanges, varintField(fRangeFirst, 1), varintField(fRangeLast, 1))), msgField(fMapValue, msgField(fRangesRanges, varintField(fRangeFirst, 0), varintField(fRangeLast, 1)))))),
		"ports entry without key":         msgField(fEventResult, msgField(fResultScope, msgField(fScopePorts, msgField(fMapValue)))),
		"port range first truncated":      msgField(fEventResult, msgField(fResultScope, msgField(fScopePorts, strField(fMapKey, "tcp"), msgField(fMapValue, msgField(fRangesRanges, varintField(fRangeFirst, 1<<32+1), varintField(fRangeLast, 1<<32+80)))))),
		"non-minimal varints":             {0x0a, 0x80, 0x00},
		"non-minimal tag":                 {0x8a, 0x00, 0x00},
		"invalid UTF-8 in a hostname":     batch(observation(v4, strField(fObsHostnames, bad))),
		"invalid UTF-8 in a status":       batch(observation(v4, strField(fObsStatus, bad))),
		"invalid UTF-8 in an os":          batch(observation(v4, strField(fObsOS, bad))),
		"invalid UTF-8 in an instance id": batch(observation(v4, strField(fObsInstanceID, bad))),
		"invalid UTF-8 in a source":       batch(observation(v4, strField(fObsSource, bad))),
		"invalid UTF-8 in an address":     batch(observation(msgField(fObsAddresses, strField(fAddrAddr, bad)))),
		"invalid UTF-8 in a vendor":       batch(observation(v4, msgField(fObsAddresses, strField(fAddrVendor, bad)))),
		"invalid UTF-8 in a service":      batch(observation(v4, msgField(fObsServices, strField(fSvcVersion, bad)))),
		"invalid UTF-8 in a fact key":     batch(observation(v4, msgField(fObsFacts, strField(fMapKey, bad)))),
		"invalid UTF-8 in a label value":  batch(observation(v4, msgField(fObsLabels, strField(fMapKey, "k"), strField(fMapValue, bad)))),
		"invalid UTF-8 in a warning":      msgField(fEventResult, strField(fResultWarnings, bad)),
		"invalid UTF-8 in a prefix":       msgField(fEventResult, msgField(fResultScope, strField(fScopePrefixes, bad))),
		"invalid UTF-8 in a ports key":    msgField(fEventResult, msgField(fResultScope, msgField(fScopePorts, strField(fMapKey, bad)))),
		"invalid UTF-8, later replaced":   cat(batch(observation(v4, strField(fObsOS, bad))), msgField(fEventResult)),
		"surrogate half in UTF-8":         batch(observation(v4, strField(fObsOS, "\xed\xa0\x80"))),
		"truncated tag":                   {0x8a},
		"truncated length":                {0x0a, 0x85},
		"length past the end":             {0x0a, 0x05, 0x0a},
		"truncated observation":           batch(good)[:len(batch(good))-3],
		"truncated port varint":           batch(observation(v4, msgField(fObsServices, []byte{byte(fSvcPort << 3), 0x80}))),
		"varint of 11 bytes":              batch(observation(v4, msgField(fObsServices, append([]byte{byte(fSvcPort << 3)}, bytes.Repeat([]byte{0xff}, 10)...), []byte{0x01}))),
		"varint overflowing 64 bits":      batch(observation(v4, msgField(fObsServices, append(append([]byte{byte(fSvcPort << 3)}, bytes.Repeat([]byte{0xff}, 9)...), 0x02)))),
		"field number 0":                  cat(batch(good), []byte{0x02, 0x00}),
		"field number 0 in a map entry":   batch(observation(v4, msgField(fObsLabels, []byte{0x00, 0x00}))),
		"field number too big":            cat(batch(good), protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3)),
		"field number too big in a map":   batch(observation(v4, msgField(fObsLabels, protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), []byte{0}))),
		"field number of 35 bits":         cat(batch(good), protowire.AppendVarint(nil, (1<<35)<<3)),
		"wire type 6":                     cat(batch(good), tagged(15, 6)),
		"wire type 7 in an observation":   batch(observation(v4, tagged(15, 7))),
		"end group at the top":            cat(batch(good), tagged(15, protowire.EndGroupType)),
		"end group in a map entry":        batch(observation(v4, msgField(fObsLabels, tagged(3, protowire.EndGroupType)))),
		"group not ended":                 cat(batch(good), tagged(15, protowire.StartGroupType), varintField(1, 1)),
		"group ended by another number":   cat(batch(good), tagged(15, protowire.StartGroupType), tagged(16, protowire.EndGroupType)),
		"known field as a group":          batch(observation(v4, tagged(fObsStatus, protowire.StartGroupType), strField(1, "x"), tagged(fObsStatus, protowire.EndGroupType))),
		"address not valid":               batch(observation(msgField(fObsAddresses, strField(fAddrAddr, "198.18.0.1"), strField(fAddrType, "ipv6")))),
		"no address":                      batch(good, observation(ssh)),
		"result then malformed batch":     cat(msgField(fEventResult), batch(observation())),
		"unknown protocol in the scope":   msgField(fEventResult, msgField(fResultScope, msgField(fScopePorts, strField(fMapKey, "icmp")))),
	}
	return cases
}

func TestDecoderTakesAndRefusesWhatProtoUnmarshalDoes(t *testing.T) {
	wireErrors, obsErrors := 0, 0
	for name, b := range handMadeEvents() {
		t.Run(name, func(t *testing.T) {
			compareDecoders(t, b)
		})
		o := oldDecode(b)
		if o.WireError {
			wireErrors++
		}
		for _, e := range o.ObsErr {
			if e != "" {
				obsErrors++
			}
		}
	}
	// The cases mean something only if they hit both kinds of failure.
	if wireErrors < 25 || obsErrors < 6 {
		t.Fatalf("the hand-made cases hit %d wire errors and %d malformed observations; expected more", wireErrors, obsErrors)
	}
}

func TestDecodedStringsDoNotAliasTheMessage(t *testing.T) {
	obs := genObservations(rand.New(rand.NewPCG(5, 6)), 50, false)
	b, err := oldEncode(obs)
	if err != nil {
		t.Fatal(err)
	}
	var ev incomingEvent
	if err := ev.decode(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff // gRPC reuses the buffer
	}
	// A second message decoded with the same scratch must leave the
	// first one's observations alone.
	b2, _ := oldEncode(genObservations(rand.New(rand.NewPCG(7, 8)), 50, false))
	first := ev.obs
	if err := ev.decode(b2); err != nil {
		t.Fatal(err)
	}
	for i := range first {
		first[i].Addresses = append(first[i].Addresses, Address{Addr: "clobber"})
		first[i].Hostnames = append(first[i].Hostnames, "clobber")
		first[i].Services = append(first[i].Services, Service{Name: "clobber"})
	}
	for i := range first {
		first[i].Addresses = first[i].Addresses[:len(first[i].Addresses)-1]
		first[i].Hostnames = first[i].Hostnames[:len(first[i].Hostnames)-1]
		first[i].Services = first[i].Services[:len(first[i].Services)-1]
		if len(first[i].Hostnames) == 0 {
			first[i].Hostnames = nil
		}
		if len(first[i].Services) == 0 {
			first[i].Services = nil
		}
	}
	if !reflect.DeepEqual(emptyNil(obs), first) {
		t.Fatal("the decoded observations changed with the message buffer or the next message")
	}
}

// FuzzDecodeDiscoverEvent holds the hand decoder to proto.Unmarshal and
// observationFromPB on arbitrary bytes.
func FuzzDecodeDiscoverEvent(f *testing.F) {
	for _, b := range handMadeEvents() {
		f.Add(b)
	}
	// Small seeds: the fuzzer minimizes what it finds interesting, and
	// minimizing long inputs stalls it.
	r := rand.New(rand.NewPCG(9, 10))
	for i, seeds := 0, 0; seeds < 20; i++ {
		b, err := oldEncode(genObservations(r, 1+r.IntN(3), i%2 == 0))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 512 {
			f.Add(b)
			seeds++
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		compareDecoders(t, b)
	})
}

// FuzzEncodeObservation holds the hand encoder to proto.Marshal on
// observations made from arbitrary strings.
func FuzzEncodeObservation(f *testing.F) {
	f.Add("198.18.0.1", "ipv4", "host", "up", "tcp", uint16(22), "open", "k", "v")
	f.Add("", "", "", "", "", uint16(0), "", "", "")
	f.Add("\xff", "ipv4", "\xc3\x28", "up", "tcp", uint16(22), "open", "k", "v")
	f.Fuzz(func(t *testing.T, addr, typ, host, status, protocol string, port uint16, state, key, value string) {
		obs := []Observation{{Addresses: []Address{{Addr: addr, Type: typ, Vendor: value}}, Hostnames: []string{host, key}, Status: status, OS: value,
			Services: []Service{{Protocol: Protocol(protocol), Port: port, State: state, Name: key}, {Port: port}},
			Facts:    map[string]string{key: value}, Labels: map[string]string{value: key}, InstanceID: host, Source: state}}
		old, oldErr := oldEncode(obs)
		got, newErr := newEncode(obs)
		if (oldErr == nil) != (newErr == nil) {
			t.Fatalf("proto.Marshal: %v, hand encoder: %v", oldErr, newErr)
		}
		if oldErr == nil && !bytes.Equal(old, got) {
			t.Fatalf("hand encoder\n%x\nproto.Marshal\n%x", got, old)
		}
	})
}

// An observation's length takes one byte when it is short; longer ones
// are moved up for a longer length, and the batch's length is written
// before them once known. Batches of growing size through the pooled
// buffers come out as proto.Marshal has them too.
func TestEncoderLengthsOfEverySize(t *testing.T) {
	svc := func(n int) []Service {
		s := make([]Service, n)
		for i := range s {
			s[i] = Service{Protocol: TCP, Port: uint16(i + 1), State: "open", Name: "svc", Product: "a product", Version: "1.0"}
		}
		return s
	}
	var batches [][]Observation
	for _, services := range []int{0, 1, 3, 4, 400, 1, 2000} {
		batches = append(batches, []Observation{{Addresses: []Address{{Addr: "198.18.0.1", Type: "ipv4"}}, Services: svc(services)}})
	}
	batches = append(batches, nil, make([]Observation, 300))
	pooled := &outgoingBatch{buffers: &bufferPool{}}
	for i, obs := range batches {
		want, err := proto.Marshal(oldMessage(obs))
		if err != nil {
			t.Fatal(err)
		}
		got, err := newEncode(obs)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("batch %d: %v\n%x\nwant\n%x", i, err, got, want)
		}
		pooled.obs = obs
		data, err := pooled.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if b := data.Materialize(); !bytes.Equal(b, want) {
			t.Fatalf("batch %d through the pool: %x\nwant\n%x", i, b, want)
		}
		data.Free()
	}
}

// Observations that follow one with the same labels share its map; the
// others get their own, and each reads what was sent.
func TestDecoderSharesEqualMaps(t *testing.T) {
	labels := []map[string]string{{"team": "a"}, {"team": "a"}, {"team": "b"}, {}, {"team": "b"}, nil}
	obs := make([]Observation, len(labels))
	for i, l := range labels {
		obs[i] = Observation{Addresses: []Address{{Addr: fmt.Sprintf("198.18.0.%d", i), Type: "ipv4"}}, Labels: l}
	}
	b, err := newEncode(obs)
	if err != nil {
		t.Fatal(err)
	}
	var ev incomingEvent
	if err := ev.decode(b); err != nil {
		t.Fatal(err)
	}
	got := ev.obs
	for i := range labels {
		if len(got[i].Labels) != len(labels[i]) || len(labels[i]) > 0 && !reflect.DeepEqual(got[i].Labels, labels[i]) {
			t.Fatalf("observation %d: labels %v, sent %v", i, got[i].Labels, labels[i])
		}
	}
	same := func(i, j int) bool {
		return reflect.ValueOf(got[i].Labels).Pointer() == reflect.ValueOf(got[j].Labels).Pointer()
	}
	if !same(0, 1) || same(1, 2) {
		t.Fatalf("maps shared wrongly: %p %p %p", got[0].Labels, got[1].Labels, got[2].Labels)
	}
}
