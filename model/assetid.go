package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"net/netip"
)

// AddressAssetID is the id of an asset first known by its address, the
// same in every data dir. The id of a host first known by an IPv4
// address begins with that address (the rest a checksum with the
// tenant): the hosts of one network then sit side by side in the store
// instead of at random places, which makes writing a first scan or pull
// of many hosts much cheaper for Badger's one writer, and lets the store
// tell from an id which address it was made from (AddressOfID), so that
// the address index needs no entry for it (store/txn.go). The address in
// the id is where the host was first seen, not where it is now.
func AddressAssetID(tenant string, ip netip.Addr) string {
	if !ip.Is4() {
		return hexID16(addressHash(tenant, ip))
	}
	// The address, then a checksum of tenant and address: the address
	// alone makes the id unique in its tenant, the checksum tells it from
	// the ids of other tenants and from hashed ids that begin alike, and
	// costs a tenth of a SHA-256 (this runs several times per new host).
	var buf [96]byte
	b := ip.AppendTo(append(append(buf[:0], tenant...), 0))
	var id [8]byte
	a := ip.As4()
	copy(id[:4], a[:])
	binary.BigEndian.PutUint32(id[4:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	var text [16]byte
	hex.Encode(text[:], id[:])
	return string(text[:])
}

// LegacyAddressAssetID is the id AddressAssetID gave a host first known
// by an IPv4 address before ids began with it: a hash alone.
func LegacyAddressAssetID(tenant string, ip netip.Addr) string {
	return hexID16(addressHash(tenant, ip))
}

// AddressOfID returns the IPv4 address id was made from by
// AddressAssetID, and false for an id made otherwise.
func AddressOfID(tenant, id string) (netip.Addr, bool) {
	if len(id) != 16 {
		return netip.Addr{}, false
	}
	var a [4]byte
	if _, err := hex.Decode(a[:], []byte(id[:8])); err != nil {
		return netip.Addr{}, false
	}
	ip := netip.AddrFrom4(a)
	if AddressAssetID(tenant, ip) != id {
		return netip.Addr{}, false
	}
	return ip, true
}

// addressHash is sha256(tenant + "\x00" + ip.String()), hashed from a
// buffer on the stack: this runs for every new host.
func addressHash(tenant string, ip netip.Addr) [sha256.Size]byte {
	var buf [96]byte
	b := append(append(buf[:0], tenant...), 0)
	if ip.IsValid() {
		b = ip.AppendTo(b) // ip.String's text
	} else {
		b = append(b, ip.String()...)
	}
	return sha256.Sum256(b)
}

// hexID16 spells the first 8 bytes of sum as an id.
func hexID16(sum [sha256.Size]byte) string {
	var id [16]byte
	hex.Encode(id[:], sum[:8])
	return string(id[:])
}
