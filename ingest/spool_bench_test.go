package ingest

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

// BenchmarkSpoolEach reads back a spool of 100,000 hosts as a provider
// reports them (the end-to-end plugin benchmark's shape).
func BenchmarkSpoolEach(b *testing.B) {
	s, err := NewSpool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const hosts = 100_000
	batch := make([]sdk.Observation, 0, 1000)
	for i := 0; i < hosts; i++ {
		ip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		if i >= 1<<16 {
			ip = netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		}
		batch = append(batch, sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}},
			Hostnames: []string{fmt.Sprintf("host-%d.test", i)}, Labels: map[string]string{"team": "test"}})
		if len(batch) == cap(batch) {
			if err := s.Add(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := s.Each(batchSize, func(obs []*sdk.Observation) error { n += len(obs); return nil }); err != nil {
			b.Fatal(err)
		}
		if n != hosts {
			b.Fatalf("read %d hosts", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/hosts, "ns/host")
}
