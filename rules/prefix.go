package rules

import (
	"net/netip"
	"slices"
)

// prefixIndex finds every rule whose CIDRs contain an address with one
// hash lookup per distinct prefix length in use, instead of a scan over
// all rules. Configurations use few distinct lengths (/8, /16, /24, /32),
// so a lookup costs a handful of map probes however many rules there are.
type prefixIndex struct {
	v4Lens []int
	v4     map[uint64][]int32 // masked address << 8 | length
	v6Lens []int
	v6     map[netip.Prefix][]int32
}

func newPrefixIndex() *prefixIndex {
	return &prefixIndex{v4: map[uint64][]int32{}, v6: map[netip.Prefix][]int32{}}
}

func (x *prefixIndex) add(p netip.Prefix, rule int32) {
	p = p.Masked()
	if p.Addr().Is4() {
		k := v4Key(p.Addr().As4(), p.Bits())
		if !slices.Contains(x.v4[k], rule) {
			x.v4[k] = append(x.v4[k], rule)
		}
		if !slices.Contains(x.v4Lens, p.Bits()) {
			x.v4Lens = append(x.v4Lens, p.Bits())
			slices.Sort(x.v4Lens)
		}
		return
	}
	if !slices.Contains(x.v6[p], rule) {
		x.v6[p] = append(x.v6[p], rule)
	}
	if !slices.Contains(x.v6Lens, p.Bits()) {
		x.v6Lens = append(x.v6Lens, p.Bits())
		slices.Sort(x.v6Lens)
	}
}

// lookup appends to dst the rules matching ip, each once, in rule order.
func (x *prefixIndex) lookup(ip netip.Addr, dst []int32) []int32 {
	start := len(dst)
	ip = ip.Unmap()
	if ip.Is4() {
		a := ip.As4()
		for _, bits := range x.v4Lens {
			dst = append(dst, x.v4[v4Key(a, bits)]...)
		}
	} else {
		for _, bits := range x.v6Lens {
			p, _ := ip.Prefix(bits)
			dst = append(dst, x.v6[p]...)
		}
	}
	found := dst[start:]
	if len(found) > 1 {
		slices.Sort(found)
		dst = dst[:start+len(slices.Compact(found))]
	}
	return dst
}

func v4Key(a [4]byte, bits int) uint64 {
	u := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	if bits < 32 {
		u &= ^uint32(0) << (32 - bits)
	}
	return uint64(u)<<8 | uint64(bits)
}
