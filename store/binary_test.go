package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

func fullAsset() model.Asset {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	a := model.Asset{
		ID: "0123456789abcdef", Tenant: "default",
		Addresses: []sdk.Address{{Addr: "127.0.0.1", Type: "ipv4"}, {Addr: "::1", Type: "ipv6"}, {Addr: "00:11:22:33:44:55", Type: "mac", Vendor: "Acme"}},
		Hostnames: []string{"a.example", "b.example"}, Status: "up", OS: "Linux 6.1",
		Facts: map[string]string{"snmp.sys_descr": "switch", "x": ""}, Labels: map[string]string{"env": "prod"},
		Sources: []string{"nmap", "snmp"},
		Scanned: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 1, Last: 1024}, {First: 8000, Last: 9000}}, sdk.UDP: {{First: 53, Last: 53}}},
		Unknown: true, FirstSeen: t0, LastSeen: t0.Add(time.Hour), LastScanned: t0.Add(2 * time.Hour), LastScannedBy: "job", Version: 42,
	}
	for p := uint16(0); p < 20; p++ {
		a.Services = append(a.Services, model.Service{Protocol: sdk.TCP, Port: 100 + p, State: "open", Name: "http", Product: "nginx", Version: "1.22", Since: t0})
	}
	return a
}

func TestBinaryRoundTrip(t *testing.T) {
	cases := map[string]model.Asset{"empty": {}, "full": fullAsset(), "zero times": {ID: "x", Status: "down"}}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			var got model.Asset
			if err := decodeAsset(encodeAsset(&a), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, a) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
			}
			v := model.Version{AssetID: a.ID, Version: 3, Time: time.Unix(1, 2).UTC(), Source: "nmap", Job: "j", RunID: "r",
				Changes: []model.Change{{Field: "service", Key: "tcp/80", From: "closed", To: "open http"}}, Asset: a}
			var gotV model.Version
			if err := decodeVersion(encodeVersion(&v), &gotV); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotV, v) {
				t.Fatalf("version round trip:\n got %+v\nwant %+v", gotV, v)
			}
		})
	}
}

func TestBinaryRefusesDamage(t *testing.T) {
	a := fullAsset()
	b := encodeAsset(&a)
	for n := 0; n < len(b); n++ {
		var got model.Asset
		if err := decodeAsset(b[:n], &got); err == nil {
			t.Fatalf("a record cut at %d of %d bytes decoded", n, len(b))
		}
	}
	huge := append([]byte{tagAssetV1}, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if err := decodeAsset(huge, &model.Asset{}); err == nil {
		t.Fatal("a length beyond the record decoded")
	}
	if err := decodeAsset(append(bytes.Clone(b), 0), &model.Asset{}); err == nil {
		t.Fatal("trailing bytes accepted")
	}
}

func FuzzDecodeAsset(f *testing.F) {
	a := fullAsset()
	f.Add(encodeAsset(&a))
	f.Add(encodeAsset(&model.Asset{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got model.Asset
		if decodeAsset(b, &got) != nil {
			return
		}
		var again model.Asset
		if err := decodeAsset(encodeAsset(&got), &again); err != nil || !reflect.DeepEqual(normalize(got), normalize(again)) {
			t.Fatalf("re-encoding changed the record: %v", err)
		}
	})
}

// normalize makes values that encode identically compare equal.
func normalize(a model.Asset) string {
	b, _ := json.Marshal(a)
	return string(b)
}

func BenchmarkAssetEncoding(b *testing.B) {
	a := fullAsset()
	js, _ := json.Marshal(&a)
	bin := encodeAsset(&a)
	b.Run("binary/encode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			encodeAsset(&a)
		}
		b.ReportMetric(float64(len(bin)), "bytes")
	})
	b.Run("json/encode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			json.Marshal(&a)
		}
		b.ReportMetric(float64(len(js)), "bytes")
	})
	b.Run("binary/decode", func(b *testing.B) {
		var out model.Asset
		for i := 0; i < b.N; i++ {
			decodeAsset(bin, &out)
		}
	})
	b.Run("json/decode", func(b *testing.B) {
		var out model.Asset
		for i := 0; i < b.N; i++ {
			json.Unmarshal(js, &out)
		}
	})
}
