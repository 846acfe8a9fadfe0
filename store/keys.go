package store

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/sollwert/sollwert/model"
)

// Key layout. Every record key carries its tenant; tenant, job and rule
// names never contain '/', so prefixes cannot collide. Integers are big
// endian so that byte order is numeric order.
//
//	m/schema                              schema version
//	a/TENANT/ASSET                        current asset and its newest version (record.go)
//	h/TENANT/ASSET/VERSION(8)             older asset version (history)
//	i/TENANT/IP(16)                       address index -> asset id (none for the address an id was made from)
//	n/TENANT/KIND/VALUE                   identity index (instance, uuid, serial, mac) -> asset id
//	d/TENANT/DEVIATION                    deviation
//	e/TENANT/ASSET                        ids of the deviations of an asset
//	s/TENANT/RANK(1)OPENED(8)DEVIATION    active deviation -> state, worst first (devindex.go)
//	u/TENANT/TIME(8)RANDOM(4)             audit record (audit.go)
//	c/TENANT/SEQ(8)                       chain entry of a version or audit record (chain.go)
//	k/TENANT/SEQ(8)                       signed checkpoint of the chain (checkpoint.go)
//	r/TENANT/JOB/START(8)RUN              job run
//	j/TENANT/JOB                          job state (last success, ...)
//	q/SINK/TIME(8)EVENT                   event queued for a sink (outbox.go)
//	x/SINK/TIME(8)EVENT                   event a sink refused for good
const (
	prefixAsset     = "a/"
	prefixHistory   = "h/"
	prefixIP        = "i/"
	prefixIdentity  = "n/"
	prefixDeviation = "d/"
	prefixAssetDevs = "e/"
	prefixRun       = "r/"
	prefixJob       = "j/"
	prefixQueue     = "q/"
	prefixDead      = "x/"
	keySchema       = "m/schema"
)

func assetKey(tenant, id string) []byte {
	return appendAssetKey(make([]byte, 0, assetKeySize(tenant, id)), tenant, id)
}

func assetKeySize(tenant, id string) int { return len(prefixAsset) + len(tenant) + 1 + len(id) }

func appendAssetKey(k []byte, tenant, id string) []byte {
	return append(append(append(append(k, prefixAsset...), tenant...), '/'), id...)
}

func assetPrefix(tenant string) []byte { return []byte(prefixAsset + tenant + "/") }

// splitAssetKey returns the tenant and id of an asset key.
func splitAssetKey(k []byte) (tenant, id string, ok bool) {
	rest, found := bytes.CutPrefix(k, []byte(prefixAsset))
	if !found {
		return "", "", false
	}
	t, i, found := bytes.Cut(rest, []byte{'/'})
	return string(t), string(i), found
}

func historyPrefix(tenant, id string) []byte {
	return []byte(prefixHistory + tenant + "/" + id + "/")
}

func historyKey(tenant, id string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(historyPrefix(tenant, id), version)
}

func ipPrefix(tenant string) []byte { return []byte(prefixIP + tenant + "/") }

func ipKey(tenant string, ip netip.Addr) []byte {
	return appendIPKey(make([]byte, 0, ipKeySize(tenant)), tenant, ip)
}

func ipKeySize(tenant string) int { return len(prefixIP) + len(tenant) + 1 + 16 }

func appendIPKey(k []byte, tenant string, ip netip.Addr) []byte {
	a := ip.As16() // IPv4 as ::ffff:a.b.c.d keeps a CIDR one contiguous key range
	return append(append(append(append(k, prefixIP...), tenant...), '/'), a[:]...)
}

func identityKey(tenant string, k model.IdentityKey) []byte {
	return []byte(prefixIdentity + tenant + "/" + k.Kind + "/" + k.Value)
}

func deviationKey(tenant, id string) []byte { return []byte(prefixDeviation + tenant + "/" + id) }

func deviationPrefix(tenant string) []byte { return []byte(prefixDeviation + tenant + "/") }

func assetDevsKey(tenant, assetID string) []byte {
	return []byte(prefixAssetDevs + tenant + "/" + assetID)
}

func runPrefix(tenant, job string) []byte { return []byte(prefixRun + tenant + "/" + job + "/") }

func runKey(tenant, job string, startNanos int64, id string) []byte {
	k := binary.BigEndian.AppendUint64(runPrefix(tenant, job), uint64(startNanos))
	return append(k, id...)
}

func jobKey(tenant, job string) []byte { return []byte(prefixJob + tenant + "/" + job) }

// prefixEnd returns the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
