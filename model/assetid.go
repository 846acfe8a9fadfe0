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
	text := ipv4IDText(tenant, ip.As4())
	return string(text[:])
}

// ipv4IDText spells the id of a host first known by IPv4 address a: the
// address, then the CRC-32C of tenant, a zero byte and the address's
// text. The address alone makes the id unique in its tenant; the
// checksum tells it from the ids of other tenants and from hashed ids
// that begin alike. It is computed a byte at a time from the text as it
// is spelled, on the stack: this runs several times per new host, and
// handing a buffer to hash/crc32 would move it to the heap.
func ipv4IDText(tenant string, a [4]byte) [16]byte {
	tab := crc32.MakeTable(crc32.Castagnoli)
	crc := ^uint32(0)
	for i := 0; i < len(tenant); i++ {
		crc = tab[byte(crc)^tenant[i]] ^ crc>>8
	}
	crc = tab[byte(crc)] ^ crc>>8 // the zero byte
	for i, octet := range a {
		if i > 0 {
			crc = tab[byte(crc)^'.'] ^ crc>>8
		}
		if octet >= 100 {
			crc = tab[byte(crc)^('0'+octet/100)] ^ crc>>8
		}
		if octet >= 10 {
			crc = tab[byte(crc)^('0'+octet/10%10)] ^ crc>>8
		}
		crc = tab[byte(crc)^('0'+octet%10)] ^ crc>>8
	}
	var id [8]byte
	copy(id[:4], a[:])
	binary.BigEndian.PutUint32(id[4:], ^crc)
	var text [16]byte
	hex.Encode(text[:], id[:])
	return text
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
	if text := ipv4IDText(tenant, a); string(text[:]) != id {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(a), true
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
