package store

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

// BenchmarkPutVersionNew writes the first versions of new assets, 256 to
// a transaction as ingest batches them, without committing: the cost of
// encoding, hashing and handing the keys to Badger. "pull" is a host as
// a provider reports it, "scan" one with 20 open ports.
func BenchmarkPutVersionNew(b *testing.B) {
	st, err := Open("", Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	mk := func(i int, services int) model.Version {
		ip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		var svcs []model.Service
		if services > 0 {
			svcs = codecServices(services, t0)
		}
		a := model.Asset{ID: fmt.Sprintf("%016x", i), Tenant: model.DefaultTenant, Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}},
			Hostnames: []string{fmt.Sprintf("host-%d.test", i)}, Status: sdk.StatusUp, Labels: map[string]string{"team": "test"},
			Services: svcs, Sources: []string{"testplugin"}, Unknown: true,
			FirstSeen: t0, LastSeen: t0, LastScanned: t0, LastScannedBy: "inventory", Version: 1}
		return model.Version{AssetID: a.ID, Version: 1, Time: t0, Source: "testplugin", Job: "inventory", RunID: "run-1",
			Changes: []model.Change{{Field: "asset", To: "discovered"}, {Field: "hostnames", From: "[]", To: "[" + a.Hostnames[0] + "]"},
				{Field: "label", Key: "team", To: "test"}}, Asset: a}
	}
	for _, c := range []struct {
		name     string
		services int
	}{{"pull", 0}, {"scan", 20}} {
		vs := make([]model.Version, 256)
		for i := range vs {
			vs[i] = mk(i, c.services)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t := &Txn{txn: st.db.NewTransaction(true)}
				for i := range vs {
					if err := t.PutVersion(nil, &vs[i]); err != nil {
						b.Fatal(err)
					}
				}
				t.txn.Discard()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(vs)), "ns/asset")
		})
	}
}
