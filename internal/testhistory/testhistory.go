// Package testhistory writes large, realistic asset histories into a
// store for benchmarks: many assets, each with several versions, written
// through the store's own write path so that they are chained like real
// ones.
package testhistory

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// T0 is when the first version of every asset was written; version v is
// written at T0 + v hours.
var T0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// VersionTime is when version v (from 1) was written.
func VersionTime(v int) time.Time { return T0.Add(time.Duration(v) * time.Hour) }

// Write gives st assets assets in tenant "default", with versions
// versions each: addresses from 198.18.0.0/15, two open ports, and each
// version changing the OS and a third port.
func Write(tb testing.TB, st *store.Store, assets, versions int) {
	tb.Helper()
	ctx := context.Background()
	base := netip.MustParseAddr("198.18.0.0").As4()
	prev := make([]*model.Asset, assets)
	const batch = 2000
	for v := 1; v <= versions; v++ {
		at := VersionTime(v)
		for lo := 0; lo < assets; lo += batch {
			hi := min(lo+batch, assets)
			err := st.Update(ctx, func(t *store.Txn) error {
				for i := lo; i < hi; i++ {
					n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(i+1)
					ip := netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
					a := model.Asset{ID: fmt.Sprintf("%016x", i), Tenant: "default", Version: uint64(v), Status: "up",
						OS: fmt.Sprintf("Linux 6.%d", v), FirstSeen: T0, LastSeen: at, LastScanned: at, LastScannedBy: "bench",
						Sources: []string{"nmap"}, Addresses: []sdk.Address{{Addr: ip.String(), Type: "ipv4"}},
						Services: []model.Service{
							{Protocol: "tcp", Port: 22, State: "open", Name: "ssh", Since: T0},
							{Protocol: "tcp", Port: 443, State: "open", Name: "https", Since: T0},
							{Protocol: "tcp", Port: uint16(8000 + v), State: "open", Since: at},
						}}
					ver := &model.Version{AssetID: a.ID, Version: a.Version, Time: at, Source: "nmap", Job: "bench", RunID: fmt.Sprintf("run-%d", v),
						Asset: a, Changes: []model.Change{{Field: "os", From: fmt.Sprintf("Linux 6.%d", v-1), To: a.OS}}}
					if err := t.PutVersion(prev[i], ver); err != nil {
						return err
					}
					prev[i] = &a
				}
				return nil
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
}
