package model

import (
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// The id of an IPv4 host is spelled a byte at a time; it must stay the
// id hash/crc32 gives over tenant, a zero byte and the address's text,
// which is what every data dir holds.
func TestIPv4IDIsCRC32COfTenantAndAddress(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tenants := []string{"", "default", "acme", "a-rather-long-tenant-name-of-a-managed-service-provider"}
	addrs := []netip.Addr{netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("9.10.99.100"), netip.MustParseAddr("198.18.0.1")}
	for range 2000 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}))
	}
	for _, tenant := range tenants {
		for _, ip := range addrs {
			var id [8]byte
			a := ip.As4()
			copy(id[:4], a[:])
			binary.BigEndian.PutUint32(id[4:], crc32.Checksum([]byte(tenant+"\x00"+ip.String()), crc32.MakeTable(crc32.Castagnoli)))
			want := hex.EncodeToString(id[:])
			if got := AddressAssetID(tenant, ip); got != want {
				t.Fatalf("AddressAssetID(%q, %s) = %s, want %s", tenant, ip, got, want)
			}
			if back, ok := AddressOfID(tenant, want); !ok || back != ip {
				t.Fatalf("AddressOfID(%q, %s) = %s, %t", tenant, want, back, ok)
			}
			if _, ok := AddressOfID(tenant+"x", want); ok {
				t.Fatalf("id %s of tenant %q taken for tenant %q's", want, tenant, tenant+"x")
			}
		}
	}
}

func TestAddressIDsAllocateOnlyTheID(t *testing.T) {
	ip := netip.MustParseAddr("198.18.7.200")
	id := AddressAssetID("default", ip)
	if n := testing.AllocsPerRun(100, func() { _ = AddressAssetID("default", ip) }); n > 1 {
		t.Errorf("AddressAssetID: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = AddressOfID("default", id) }); n > 0 {
		t.Errorf("AddressOfID: %v allocations, want none", n)
	}
}
