package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// codecFullAsset sets every field of an asset, its addresses and its
// services (TestCodecSamplesSetEveryField keeps it so).
func codecFullAsset() model.Asset {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	a := model.Asset{
		ID:     "0123456789abcdef",
		Tenant: "default",
		Addresses: []sdk.Address{
			{Addr: "192.0.2.10", Type: "ipv4", Vendor: "none"},
			{Addr: "2001:db8::1", Type: "ipv6"},
			{Addr: "00:11:22:33:44:55", Type: "mac", Vendor: "Acme Networks"},
		},
		Hostnames: []string{"a.example", "b.example"},
		Status:    sdk.StatusUp,
		OS:        "Linux 6.1",
		Facts:     map[string]string{"snmp.sys_descr": "switch", "x": "", "ünïcode": "☃"},
		Labels:    map[string]string{"env": "prod", "team": "net"},
		Sources:   []string{"nmap", "snmp"},
		Scanned: map[sdk.Protocol]sdk.PortRanges{
			sdk.TCP:  {{First: 1, Last: 1024}, {First: 8000, Last: 9000}},
			sdk.UDP:  {{First: 53, Last: 53}},
			sdk.SCTP: {{First: 0, Last: 65535}},
		},
		Unknown:       true,
		FirstSeen:     t0,
		LastSeen:      t0.Add(time.Hour),
		LastScanned:   t0.Add(2 * time.Hour),
		LastScannedBy: "job-1",
		Version:       math.MaxUint64,
	}
	a.Services = withServiceAddresses(codecServices(20, t0))
	return a
}

// codecServices makes n open ports with typical nmap names and versions.
func codecServices(n int, since time.Time) []model.Service {
	names := []struct{ name, product, version string }{
		{"ssh", "OpenSSH", "8.9p1 Ubuntu 3ubuntu0.10"}, {"http", "nginx", "1.22.1"},
		{"https", "Apache httpd", "2.4.57"}, {"mysql", "MySQL", "8.0.36"}, {"domain", "ISC BIND", "9.18.24"},
	}
	out := make([]model.Service, n)
	for i := range out {
		nm := names[i%len(names)]
		out[i] = model.Service{Protocol: sdk.TCP, Port: uint16(20 + 1000*i), State: "open",
			Name: nm.name, Product: nm.product, Version: nm.version, Since: since.Add(time.Duration(i) * time.Second)}
	}
	out[n-1].Protocol, out[n-1].State = sdk.UDP, "open|filtered"
	return out
}

// withServiceAddresses gives every other service an address, as a
// machine with two addresses has them (the rest from before schema 6).
func withServiceAddresses(ss []model.Service) []model.Service {
	out := slices.Clone(ss)
	for i := range out {
		if i%2 == 0 {
			out[i].Address = fmt.Sprintf("198.18.0.%d", i+1)
		}
	}
	return out
}

func codecFullVersion() model.Version {
	return model.Version{
		AssetID: "0123456789abcdef", Version: 7, Time: time.Date(2026, 3, 4, 7, 0, 0, 1, time.UTC),
		Source: "nmap", Job: "job-1", RunID: "run-42",
		Changes: []model.Change{
			{Field: "service", Key: "tcp/80", From: "closed", To: "open http"},
			{Field: "status", Key: "", From: "down", To: "up"},
		},
		Asset: codecFullAsset(),
	}
}

// codecNormalize turns a value into the form decoding gives back, which
// is also what the codec promises: empty slices and maps become nil (also
// an empty PortRanges inside Scanned), and times lose their location and
// monotonic reading (they come back in UTC; time.Equal holds).
func codecNormalize(a model.Asset) model.Asset {
	a.Addresses = nilIfEmpty(a.Addresses)
	a.Hostnames = nilIfEmpty(a.Hostnames)
	a.Sources = nilIfEmpty(a.Sources)
	if len(a.Services) == 0 {
		a.Services = nil
	} else {
		a.Services = append([]model.Service(nil), a.Services...)
		for i := range a.Services {
			a.Services[i].Since = normTime(a.Services[i].Since)
		}
	}
	if len(a.Facts) == 0 {
		a.Facts = nil
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(a.Scanned) == 0 {
		a.Scanned = nil
	} else {
		sc := make(map[sdk.Protocol]sdk.PortRanges, len(a.Scanned))
		for p, rs := range a.Scanned {
			sc[p] = nilIfEmpty(rs)
		}
		a.Scanned = sc
	}
	a.FirstSeen, a.LastSeen, a.LastScanned = normTime(a.FirstSeen), normTime(a.LastSeen), normTime(a.LastScanned)
	return a
}

func codecNormalizeVersion(v model.Version) model.Version {
	v.Time = normTime(v.Time)
	v.Changes = nilIfEmpty(v.Changes)
	v.Asset = codecNormalize(v.Asset)
	return v
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

// codecCases are the round-trip samples, also the fuzz seeds.
func codecCases() map[string]model.Asset {
	berlin := time.FixedZone("CET", 3600)
	return map[string]model.Asset{
		"empty":      {},
		"zero times": {ID: "x", Tenant: model.DefaultTenant, Status: sdk.StatusDown},
		"full":       codecFullAsset(),
		"ipv6 only": {
			ID: "v6", Tenant: "t",
			Addresses: []sdk.Address{{Addr: "2001:db8:85a3::8a2e:370:7334", Type: "ipv6"}, {Addr: "fe80::1%eth0", Type: "ipv6"}},
			Status:    sdk.StatusUp,
		},
		"services": {
			ID: "s", Status: sdk.StatusUp,
			Services: []model.Service{
				{Protocol: sdk.TCP, Port: 0, State: "open"},
				{Protocol: sdk.TCP, Port: 65535, State: "filtered", Name: "unknown"},
				{Protocol: sdk.UDP, Port: 161, State: "open|filtered", Name: "snmp", Since: time.Unix(0, 0)},
				{Protocol: "", Port: 128, State: ""}, // two-byte port varint
			},
		},
		"empty collections": {
			ID: "e", Addresses: []sdk.Address{}, Hostnames: []string{}, Services: []model.Service{},
			Facts: map[string]string{}, Labels: map[string]string{}, Sources: []string{},
			Scanned: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {}},
		},
		"times": {
			ID:          "t",
			FirstSeen:   time.Unix(0, 0),                             // the epoch: not the zero time
			LastSeen:    time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC), // before 1970
			LastScanned: time.Date(2026, 5, 6, 7, 8, 9, 10, berlin),  // another zone
			Services: []model.Service{
				{Since: time.Now()}, // monotonic reading, local zone
				{Since: time.Date(3000, 1, 1, 0, 0, 0, 5, time.UTC)},          // beyond UnixNano
				{Since: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},             // 1ns after the zero time
				{Since: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},             // the zero time, spelled out
				{Since: time.Unix(0, math.MinInt64)},                          // UnixNano's edges
				{Since: time.Unix(0, math.MaxInt64)},                          //
				{Since: time.Unix(0, math.MinInt64).Add(-1)},                  // just outside them
				{Since: time.Unix(0, math.MaxInt64).Add(1)},                   //
				{Since: time.Date(-5000, 1, 1, 0, 0, 0, 999999999, time.UTC)}, //
			},
		},
		"long strings and many keys": func() model.Asset {
			a := model.Asset{ID: strings.Repeat("i", 300), OS: strings.Repeat("ö", 8200), Facts: map[string]string{}}
			for i := range 40 { // more keys than the encoder's stack buffer holds
				a.Facts[fmt.Sprintf("fact.%02d", 39-i)] = strings.Repeat("v", i*5)
			}
			return a
		}(),
		"binary strings": {ID: "\x00\xff\xfe", Hostnames: []string{"\xa1", "{"}, Labels: map[string]string{"": ""}},
	}
}

func TestCodecAssetRoundTrip(t *testing.T) {
	for name, a := range codecCases() {
		t.Run(name, func(t *testing.T) {
			b := appendAsset(nil, &a)
			if b[0] != assetTag(codecAssetV1, &a) {
				t.Fatalf("tag %#x", b[0])
			}
			var got model.Asset
			if err := decodeAsset(b, &got); err != nil {
				t.Fatal(err)
			}
			if want := codecNormalize(a); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			codecCheckTimes(t, &a, &got)
			// Maps iterate in random order; the bytes must not.
			for range 5 {
				if again := appendAsset(nil, &a); !bytes.Equal(again, b) {
					t.Fatal("encoding is not deterministic")
				}
			}
			if again := appendAsset(nil, &got); !bytes.Equal(again, b) {
				t.Fatal("the decoded asset encodes differently")
			}
			// appendAsset appends.
			prefix := []byte("prefix")
			if out := appendAsset(prefix, &a); string(out[:6]) != "prefix" || !bytes.Equal(out[6:], b) {
				t.Fatal("appendAsset did not append")
			}
		})
	}
}

// codecCheckTimes checks the promise on times directly: zero stays zero,
// others are Equal.
func codecCheckTimes(t *testing.T, a, got *model.Asset) {
	t.Helper()
	pairs := [][2]time.Time{{a.FirstSeen, got.FirstSeen}, {a.LastSeen, got.LastSeen}, {a.LastScanned, got.LastScanned}}
	for i := range a.Services {
		pairs = append(pairs, [2]time.Time{a.Services[i].Since, got.Services[i].Since})
	}
	for _, p := range pairs {
		if p[0].IsZero() != p[1].IsZero() || !p[0].Equal(p[1]) {
			t.Errorf("time %v came back as %v", p[0], p[1])
		}
	}
}

func TestCodecVersionRoundTrip(t *testing.T) {
	cases := map[string]model.Version{"empty": {}, "full": codecFullVersion()}
	for name, a := range codecCases() {
		cases["asset "+name] = model.Version{AssetID: a.ID, Version: 1, Time: time.Now(), Asset: a,
			Changes: []model.Change{{Field: "os", From: "", To: a.OS}}}
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			b := appendVersion(nil, &v)
			if b[0] != assetTag(codecVersionV1, &v.Asset) {
				t.Fatalf("tag %#x", b[0])
			}
			var got model.Version
			if err := decodeVersion(b, &got); err != nil {
				t.Fatal(err)
			}
			if want := codecNormalizeVersion(v); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			if again := appendVersion(nil, &got); !bytes.Equal(again, b) {
				t.Fatal("the decoded version encodes differently")
			}
		})
	}
}

// TestCodecSamplesSetEveryField fails when a field is added to one of the
// encoded types but not to the full samples, and so maybe not to the
// codec either.
func TestCodecSamplesSetEveryField(t *testing.T) {
	v := codecFullVersion()
	check := func(name string, x any) {
		rv := reflect.ValueOf(x)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("the sample %s leaves %s unset: does the codec know it?", name, rv.Type().Field(i).Name)
			}
		}
	}
	check("version", v)
	check("change", v.Changes[0])
	check("asset", v.Asset)
	for i, ad := range v.Asset.Addresses[:1] {
		check(fmt.Sprint("address ", i), ad)
	}
	for i, s := range v.Asset.Services[:1] {
		check(fmt.Sprint("service ", i), s)
	}
	check("port range", v.Asset.Scanned[sdk.TCP][0])
}

func TestCodecTruncated(t *testing.T) {
	for name, a := range codecCases() {
		b := appendAsset(nil, &a)
		for n := range len(b) {
			var got model.Asset
			err := decodeAsset(b[:n], &got)
			if err == nil {
				t.Fatalf("%s: a record cut to %d of %d bytes decoded", name, n, len(b))
			}
			if !reflect.DeepEqual(got, model.Asset{}) {
				t.Fatalf("%s: a failed decode left %+v", name, got)
			}
		}
	}
	v := codecFullVersion()
	b := appendVersion(nil, &v)
	for n := range len(b) {
		var got model.Version
		if err := decodeVersion(b[:n], &got); err == nil {
			t.Fatalf("a version cut to %d of %d bytes decoded", n, len(b))
		}
	}
}

func TestCodecRefusesDamage(t *testing.T) {
	full := codecFullAsset()
	good := appendAsset(nil, &full)
	// hostOff is where the count of hostnames sits in the full sample.
	hostOff := bytes.Index(good, []byte("\x02\x09a.example"))
	if hostOff < 0 {
		t.Fatal("hostnames not found in the sample")
	}
	withByte := func(off int, repl ...byte) []byte {
		b := append([]byte(nil), good[:off]...)
		b = append(b, repl...)
		return append(b, good[off+1:]...)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		b    []byte
		want string // in the error
	}{
		{"nil", nil, "byte 0: empty record"},
		{"json", []byte(`{"id":"x"}`), "byte 0: a JSON record"},
		{"version tag", cat([]byte{codecVersionV1}, good[1:]), "unknown format tag 0xb1"},
		{"huge hostname count", withByte(hostOff, 0xff, 0xff, 0xff, 0xff, 0x0f), fmt.Sprintf("byte %d: hostnames: length 4294967295 exceeds", hostOff)},
		{"huge id length", cat([]byte{codecAssetV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), "byte 1: id: length 18446744073709551615 exceeds"},
		{"id longer than the record", cat([]byte{codecAssetV1, 50}, []byte("short")), "byte 1: id: length 50 exceeds the 5 bytes left"},
		{"hostname count one too many", withByte(hostOff, 3), "decode asset record: byte "},
		{"varint overflow", cat([]byte{codecAssetV1}, bytes.Repeat([]byte{0xff}, 10), []byte{0x02}), "byte 1: id: varint overflows"},
		{"varint overflow in the last byte", cat([]byte{codecAssetV1}, bytes.Repeat([]byte{0xff}, 9), []byte{0x02}), "byte 1: id: varint overflows"},
		{"scanned out of order", func() []byte {
			a := model.Asset{Scanned: map[sdk.Protocol]sdk.PortRanges{"a": nil, "b": nil}}
			b := appendAsset(nil, &a)
			i := bytes.Index(b, []byte("\x01a\x00\x01b\x00"))
			b[i+4] = 'a'
			return b
		}(), "byte 15: scanned.protocol: keys out of order or repeated"},
		{"long varint", cat([]byte{codecAssetV1, 0x80, 0x00}), "byte 1: id: varint is not in its shortest form"},
		{"trailing byte", cat(good, []byte{0}), fmt.Sprintf("byte %d: 1 bytes left over", len(good))},
		{"two records", cat(good, good), "bytes left over"},
	}
	// Damage found by position in a small record.
	small := model.Asset{ID: "a", Services: []model.Service{{Protocol: sdk.TCP, Port: 80, State: "open"}},
		Facts: map[string]string{"a": "1", "b": "2"}, Unknown: true}
	sb := appendAsset(nil, &small)
	// tag, id(2), tenant(1), addresses(1), hostnames(1), status(1), os(1), services count(1)
	svc := 1 + 2 + 1 + 1 + 1 + 1 + 1 + 1
	portOff := svc + 4 // after protocol "tcp"
	// a service is protocol(4) port(1) state(5) name product version(3) since(1)
	facts := svc + 4 + 1 + 5 + 3 + 1
	unknownOff := facts + 1 + 4*2 + 1 + 1 + 1 // facts, labels, sources, scanned
	firstSeen := unknownOff + 1
	mod := func(off int, repl ...byte) []byte {
		b := append([]byte(nil), sb[:off]...)
		b = append(b, repl...)
		return append(b, sb[off+1:]...)
	}
	if sb[portOff] != 80 || sb[unknownOff] != 1 || sb[firstSeen] != timeZero || string(sb[facts+1:facts+5]) != "\x01a\x011" {
		t.Fatalf("the layout of the small sample changed: % x", sb)
	}
	cases = append(cases, []struct {
		name string
		b    []byte
		want string
	}{
		{"port too big", mod(portOff, 0x80, 0x80, 0x04), fmt.Sprintf("byte %d: services.port: port 65536 out of range", portOff)},
		{"bool byte", mod(unknownOff, 2), fmt.Sprintf("byte %d: unknown: bool byte 0x02", unknownOff)},
		{"time flag", mod(firstSeen, 9), fmt.Sprintf("byte %d: first_seen: unknown time flag 9", firstSeen)},
		{"wide time that fits", mod(firstSeen, timeWide, 2, 0), fmt.Sprintf("byte %d: first_seen: time is not in its shortest form", firstSeen)},
		{"wide zero time", mod(firstSeen, cat([]byte{timeWide}, binary.AppendVarint(nil, -62135596800), []byte{0})...), "first_seen: time is not in its shortest form"},
		{"nanoseconds", mod(firstSeen, cat([]byte{timeWide}, binary.AppendVarint(nil, -1e12), binary.AppendUvarint(nil, 1e9))...), "first_seen: nanoseconds 1000000000 out of range"},
		{"facts out of order", mod(facts+2, 'c'), fmt.Sprintf("byte %d: facts: keys out of order", facts+5)},
		{"repeated fact", mod(facts+6, 'a'), fmt.Sprintf("byte %d: facts: keys out of order or repeated", facts+5)},
	}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got model.Asset
			err := decodeAsset(c.b, &got)
			if err == nil {
				t.Fatal("decoded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "decode asset record: byte ") {
				t.Fatalf("error %q does not name the record and offset", err)
			}
			var ce *codecError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T", err)
			}
		})
	}
}

func TestCodecVersionRefusesDamage(t *testing.T) {
	v := codecFullVersion()
	b := appendVersion(nil, &v)
	var got model.Version
	if err := decodeVersion(append([]byte{codecAssetV1}, b[1:]...), &got); err == nil || !strings.Contains(err.Error(), "decode version record: byte 0: unknown format tag 0xa1") {
		t.Fatalf("an asset tag: %v", err)
	}
	// AssetID(17) Version(1) Time(1+9) Source(5) Job(6) RunID(7): the change count.
	off := 1 + 17 + 1 + 10 + 5 + 6 + 7
	if b[off] != 2 {
		t.Fatalf("the layout of the sample version changed: % x", b[:off+1])
	}
	bad := append(binary.AppendUvarint(append([]byte(nil), b[:off]...), 1000), b[off+1:]...)
	if err := decodeVersion(bad, &got); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("byte %d: changes: length 1000 exceeds", off)) {
		t.Fatalf("a corrupt change count: %v", err)
	}
	if err := decodeVersion(append(b, 0), &got); err == nil {
		t.Fatal("trailing bytes accepted")
	}
}

// FuzzDecodeAsset feeds the decoder arbitrary bytes: it must not panic,
// and what it accepts must be canonical: encoding the result again gives
// back the same bytes, which decode to the same value.
func FuzzDecodeAsset(f *testing.F) {
	for _, a := range codecCases() {
		b := appendAsset(nil, &a)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"id":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got model.Asset
		if decodeAsset(b, &got) != nil {
			return
		}
		again := appendAsset(nil, &got)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding changed the bytes:\n in % x\nout % x", b, again)
		}
		var got2 model.Asset
		if err := decodeAsset(again, &got2); err != nil {
			t.Fatalf("the re-encoded asset does not decode: %v", err)
		}
		if !reflect.DeepEqual(got, got2) {
			t.Fatalf("the re-encoded asset decodes differently:\n%+v\n%+v", got, got2)
		}
	})
}

// FuzzDecodeVersion is FuzzDecodeAsset for versions.
func FuzzDecodeVersion(f *testing.F) {
	v := codecFullVersion()
	b := appendVersion(nil, &v)
	f.Add(b)
	f.Add(appendVersion(nil, &model.Version{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got model.Version
		if decodeVersion(b, &got) != nil {
			return
		}
		again := appendVersion(nil, &got)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding changed the bytes:\n in % x\nout % x", b, again)
		}
		var got2 model.Version
		if err := decodeVersion(again, &got2); err != nil || !reflect.DeepEqual(got, got2) {
			t.Fatalf("the re-encoded version decodes differently: %v", err)
		}
	})
}

// codecBenchAsset is a typical scanned host: 20 services, as in the
// ingest benchmark.
func codecBenchAsset() model.Asset {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	return model.Asset{
		ID: "9f86d081884c7d65", Tenant: model.DefaultTenant,
		Addresses: []sdk.Address{{Addr: "10.1.42.17", Type: "ipv4"}, {Addr: "52:54:00:12:34:56", Type: "mac", Vendor: "QEMU virtual NIC"}},
		Hostnames: []string{"web-17.example.internal"},
		Status:    sdk.StatusUp, OS: "Linux 5.0 - 5.14",
		Services:  codecServices(20, t0),
		Labels:    map[string]string{"env": "prod"},
		Sources:   []string{"nmap"},
		Scanned:   map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 65535}}},
		FirstSeen: t0, LastSeen: t0.Add(time.Hour), LastScanned: t0.Add(time.Hour), LastScannedBy: "nightly",
		Version: 12,
	}
}

func BenchmarkAppendAsset(b *testing.B) {
	a := codecBenchAsset()
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			n = len(appendAsset(nil, &a))
		}
		b.ReportMetric(float64(n), "bytes/record")
	})
	b.Run("binary-reuse", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendAsset(buf[:0], &a)
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			js, err := json.Marshal(&a)
			if err != nil {
				b.Fatal(err)
			}
			n = len(js)
		}
		b.ReportMetric(float64(n), "bytes/record")
	})
}

func BenchmarkDecodeAsset(b *testing.B) {
	a := codecBenchAsset()
	bin := appendAsset(nil, &a)
	js, err := json.Marshal(&a)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out model.Asset
			if err := decodeAsset(bin, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out model.Asset
			if err := json.Unmarshal(js, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVersionAsset(b *testing.B) {
	v := model.Version{AssetID: "9f86d081884c7d65", Version: 12, Time: time.Now(), Source: "nmap", Job: "nightly", RunID: "r1",
		Changes: []model.Change{{Field: "service", Key: "tcp/443", From: "", To: "open https"}}, Asset: codecBenchAsset()}
	bin := appendVersion(nil, &v)
	js, err := json.Marshal(&v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("append/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			appendVersion(nil, &v)
		}
		b.ReportMetric(float64(len(bin)), "bytes/record")
	})
	b.Run("append/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes/record")
	})
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out model.Version
			if err := decodeVersion(bin, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out model.Version
			if err := json.Unmarshal(js, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSkipAssetEndsWhereAssetDoes: skipAsset knows the layout asset reads.
func TestSkipAssetEndsWhereAssetDoes(t *testing.T) {
	for name, a := range codecCases() {
		t.Run(name, func(t *testing.T) {
			b := appendAssetRecord(nil, &a, &head{Time: time.Unix(1700000000, 5), Source: "nmap", Changes: []model.Change{{Field: "os", To: "x"}}})
			var read, skipped decoder
			read.start(b, codecAssetV2)
			skipped.start(b, codecAssetV2)
			var got model.Asset
			read.asset(&got)
			skipped.skipAsset()
			if read.err != nil || skipped.err != nil || read.off != skipped.off {
				t.Fatalf("asset ends at %d (%v), skipAsset at %d (%v)", read.off, read.err, skipped.off, skipped.err)
			}
			h, err := peekHead(b)
			if err != nil || h.flag != headSame || !h.time().Equal(time.Unix(1700000000, 5)) {
				t.Fatalf("peekHead: %+v %v", h, err)
			}
		})
	}
}

// TestServiceAddressesKeepOldRecords: an asset whose services carry no
// address encodes as it did before schema 6, tag and bytes, so what was
// chained then still matches its digest; one that does takes the other
// tag, and that tag without an address is refused (one encoding per
// value).
func TestServiceAddressesKeepOldRecords(t *testing.T) {
	plain := model.Asset{ID: "a", Services: codecServices(3, time.Unix(100, 0))}
	b := appendAsset(nil, &plain)
	if b[0] != codecAssetV1 {
		t.Fatalf("tag %#x for services without addresses", b[0])
	}
	addressed := plain
	addressed.Services = withServiceAddresses(plain.Services)
	c := appendAsset(nil, &addressed)
	if c[0] != codecAssetV1+tagServiceAddresses {
		t.Fatalf("tag %#x for services with addresses", c[0])
	}
	var got model.Asset
	if err := decodeAsset(c, &got); err != nil || !reflect.DeepEqual(got.Services, codecNormalize(addressed).Services) {
		t.Fatalf("decode: %v\n%+v", err, got.Services)
	}
	forged := append([]byte{codecAssetV1 + tagServiceAddresses}, b[1:]...)
	if err := decodeAsset(forged, &got); err == nil {
		t.Fatal("a record tagged with service addresses but holding none decoded")
	}
	// Every service of the tagged record ends with an address, the empty
	// one too: dropping that byte leaves the record short.
	if err := decodeAsset(c[:len(c)-1], &got); err == nil {
		t.Fatal("a truncated record decoded")
	}
}
