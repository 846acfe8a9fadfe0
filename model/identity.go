package model

import (
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// One machine is one asset, whichever sources see it. An observation is
// matched to an asset by its identity keys, strongest first, and only
// then by its address (docs/providers.md, "One asset per machine"):
//
//  1. a provider's instance id ("aws:i-0abc", "puppetdb:web1");
//  2. the machine's UUID (DMI / SMBIOS system UUID; a libvirt domain's
//     UUID is the one its guest reads);
//  3. its serial number;
//  4. a MAC address;
//  5. an IP address, within the tenant.
const (
	KeyInstance = "instance"
	KeyUUID     = "uuid"
	KeySerial   = "serial"
	KeyMAC      = "mac"
)

// FactInstancePrefix starts the fact that keeps a provider's instance id
// on the asset: "instance_id:aws" = "aws:i-0abc" (one per provider, since
// a machine may be known to several).
const FactInstancePrefix = "instance_id:"

// FactIdentityConflict holds, while it lasts, why an address an
// observation claimed was left with another live machine.
const FactIdentityConflict = "identity_conflict"

// IdentityKey is one identity of a machine.
type IdentityKey struct {
	Kind  string
	Value string
}

// ObservationKeys returns the identity keys an observation carries,
// strongest first.
func ObservationKeys(o *sdk.Observation) []IdentityKey {
	var keys []IdentityKey
	if o.InstanceID != "" {
		keys = append(keys, IdentityKey{KeyInstance, o.InstanceID})
	}
	return appendFactAndMACKeys(keys, o.Facts, o.Addresses)
}

// AssetKeys returns the identity keys an asset holds, strongest first.
func AssetKeys(a *Asset) []IdentityKey {
	var keys []IdentityKey
	for k, v := range a.Facts {
		if strings.HasPrefix(k, FactInstancePrefix) && v != "" {
			keys = append(keys, IdentityKey{KeyInstance, v})
		}
	}
	return appendFactAndMACKeys(keys, a.Facts, a.Addresses)
}

func appendFactAndMACKeys(keys []IdentityKey, facts map[string]string, addrs []sdk.Address) []IdentityKey {
	for _, f := range []string{"dmi_uuid", "uuid"} {
		if u := normalUUID(facts[f]); u != "" && !containsKey(keys, IdentityKey{KeyUUID, u}) {
			keys = append(keys, IdentityKey{KeyUUID, u})
		}
	}
	if s := strings.TrimSpace(facts["serial_number"]); usableSerial(s) {
		keys = append(keys, IdentityKey{KeySerial, s})
	}
	for _, a := range addrs {
		if a.Type != "mac" {
			continue
		}
		if hw, err := net.ParseMAC(a.Addr); err == nil && !allZero(hw) {
			keys = append(keys, IdentityKey{KeyMAC, hw.String()})
		}
	}
	return keys
}

// HasKey reports whether a holds k.
func HasKey(a *Asset, k IdentityKey) bool { return containsKey(AssetKeys(a), k) }

// Contradicts reports whether a is known as another machine than keys
// describe: an instance id of the same provider, a UUID or a serial that
// differs, with none of keys in common. MACs alone prove nothing (a
// machine has several, and they move with cards and VMs).
func Contradicts(a *Asset, keys []IdentityKey) bool {
	have := AssetKeys(a)
	for _, k := range keys {
		if containsKey(have, k) {
			return false
		}
	}
	for _, k := range keys {
		for _, h := range have {
			if h.Kind != k.Kind || k.Kind == KeyMAC {
				continue
			}
			if k.Kind != KeyInstance || provider(h.Value) == provider(k.Value) {
				return true
			}
		}
	}
	return false
}

// StrongKeys reports whether keys hold more than MACs.
func StrongKeys(keys []IdentityKey) bool {
	for _, k := range keys {
		if k.Kind != KeyMAC {
			return true
		}
	}
	return false
}

func provider(instanceID string) string {
	if i := strings.IndexByte(instanceID, ':'); i > 0 {
		return instanceID[:i]
	}
	return ""
}

// instanceFact is the fact that keeps an instance id on its asset: named
// by the id's provider prefix ("aws:i-0abc"), or by the source that
// reported it when the id has none (libvirt's bare UUIDs).
func instanceFact(instanceID, source string) string {
	p := provider(instanceID)
	if p == "" {
		p = source
	}
	if p == "" {
		p = "instance"
	}
	return FactInstancePrefix + p
}

// canonicalAddress writes a MAC one way (lower case, colons): nmap
// reports them upper case, most providers lower case.
func canonicalAddress(a sdk.Address) sdk.Address {
	if a.Type == "mac" {
		if hw, err := net.ParseMAC(a.Addr); err == nil {
			a.Addr = hw.String()
		}
	}
	return a
}

// sameAddress compares addresses as the machine has them: a MAC in any
// spelling is one MAC.
func sameAddress(a, b sdk.Address) bool {
	if a.Type == "mac" && b.Type == "mac" {
		return canonicalAddress(a).Addr == canonicalAddress(b).Addr
	}
	return a.Addr == b.Addr
}

func containsKey(keys []IdentityKey, k IdentityKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func normalUUID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 32 || strings.Trim(s, "0-") == "" || strings.Trim(s, "f-") == "" {
		return "" // empty, or the all-zero / all-ones placeholders of cheap boards
	}
	return s
}

// usableSerial leaves out the placeholders firmware ships with.
func usableSerial(s string) bool {
	switch strings.ToLower(s) {
	case "", "0", "none", "n/a", "not specified", "to be filled by o.e.m.", "default string", "system serial number", "0123456789":
		return false
	}
	return true
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// StatusMerged is the status of an asset found to be another one's
// machine: its history stays, and it points at the asset it went into.
const StatusMerged = "merged"

// FactMergedInto names, on a merged asset, the asset it went into.
const FactMergedInto = "merged_into"

// FactConflictWith names the other asset of an identity conflict.
const FactConflictWith = "identity_conflict_with"

// Absorb folds from, an asset known only by an address, into into (a
// copy the caller owns): addresses, services, sources and what was
// scanned join; the earlier first sighting and the later last one win.
func Absorb(into *Asset, from *Asset) []Change {
	for _, a := range from.Addresses {
		if !slices.ContainsFunc(into.Addresses, func(b sdk.Address) bool { return sameAddress(a, b) }) {
			into.Addresses = append(into.Addresses, a)
		}
	}
	for _, s := range from.Services {
		if !slices.ContainsFunc(into.Services, func(t Service) bool { return t.Protocol == s.Protocol && t.Port == s.Port && t.Address == s.Address }) {
			into.Services = append(into.Services, s)
		}
	}
	slices.SortFunc(into.Services, cmpService)
	for _, s := range from.Sources {
		if !slices.Contains(into.Sources, s) {
			into.Sources = append(into.Sources, s)
		}
	}
	sort.Strings(into.Sources)
	into.Scanned = unionScanned(into.Scanned, from.Scanned)
	if !from.FirstSeen.IsZero() && (into.FirstSeen.IsZero() || from.FirstSeen.Before(into.FirstSeen)) {
		into.FirstSeen = from.FirstSeen
	}
	if from.LastSeen.After(into.LastSeen) {
		into.LastSeen = from.LastSeen
	}
	into.Unknown = into.Unknown && from.Unknown
	return []Change{{Field: "merged", From: from.ID, To: into.ID}}
}

// Retire is what an absorbed asset becomes: merged into another, with
// no services left to judge.
func Retire(prev Asset, into string) (Asset, []Change) {
	next := prev.clone()
	next.Status = StatusMerged
	next.Services = nil
	next.Unknown = false
	if next.Facts == nil {
		next.Facts = map[string]string{}
	}
	next.Facts[FactMergedInto] = into
	return next, []Change{{Field: "status", From: prev.Status, To: StatusMerged}, {Field: "merged", From: prev.ID, To: into}}
}

// SetConflict records an identity conflict with the asset with on a (a
// copy the caller owns), returning the changes; none if it was recorded.
func SetConflict(a *Asset, detail, with string) []Change {
	if a.Facts[FactIdentityConflict] == detail && a.Facts[FactConflictWith] == with {
		return nil
	}
	var changes []Change
	a.Facts, changes = mergeMap("fact", a.Facts, map[string]string{FactIdentityConflict: detail, FactConflictWith: with}, nil)
	return changes
}

// ClearConflict ends a's identity conflict, returning the changes.
func ClearConflict(a *Asset) []Change {
	if a.Facts[FactIdentityConflict] == "" && a.Facts[FactConflictWith] == "" {
		return nil
	}
	var changes []Change
	a.Facts, changes = mergeMap("fact", a.Facts, map[string]string{FactIdentityConflict: "", FactConflictWith: ""}, nil)
	return changes
}

// FactScanMisses counts the successful scans in a row that covered a
// provider's machine and did not find it (kept only while it is not 0,
// and only up to what a rule asks).
const FactScanMisses = "scan_misses"

// ScanMisses is a's count of scans in a row that missed it.
func ScanMisses(a *Asset) int {
	n, _ := strconv.Atoi(a.Facts[FactScanMisses])
	return n
}

// InstanceRunning reports whether the providers that know a say it runs
// (their instance_state: running, active); a provider that says nothing
// leaves it running.
func InstanceRunning(a *Asset) bool {
	switch strings.ToLower(a.Facts["instance_state"]) {
	case "", "running", "active":
		return true
	}
	return false
}

// knownToProvider reports whether a provider reported a.
func knownToProvider(a *Asset) bool {
	for k, v := range a.Facts {
		if strings.HasPrefix(k, FactInstancePrefix) && v != "" {
			return true
		}
	}
	return false
}

// MissedByScan counts one more scan that covered a (a copy the caller
// owns) and did not find it, up to limit, for a machine a provider knows;
// the changes are empty when nothing moved.
func MissedByScan(a *Asset, limit int) []Change {
	if limit <= 0 || !knownToProvider(a) {
		return nil
	}
	n := ScanMisses(a)
	if n >= limit {
		return nil
	}
	var changes []Change
	a.Facts, changes = mergeMap("fact", a.Facts, map[string]string{FactScanMisses: strconv.Itoa(n + 1)}, nil)
	return changes
}

// FoundByScan resets a's count of missed scans, returning the changes.
func FoundByScan(a *Asset) []Change {
	if a.Facts[FactScanMisses] == "" {
		return nil
	}
	var changes []Change
	a.Facts, changes = mergeMap("fact", a.Facts, map[string]string{FactScanMisses: ""}, nil)
	return changes
}

// FactAddressesPrefix starts the fact that keeps, per provider, the IP
// addresses it reported for its machine last ("addresses:aws" =
// "198.18.0.4,198.18.0.5"): a provider is the authority on its
// machines' addresses, and one it stops reporting leaves the asset.
const FactAddressesPrefix = "addresses:"

// ReleaseAddresses applies what a provider's observation obs says about
// its machine's addresses to next, the asset merged from it (a copy the
// caller owns): an address that provider reported before and reports no
// longer, and that no other provider of the machine still reports,
// leaves next, and so do the ports found open on it. What answers there
// next is another asset, split off (see Unmerge). An observation with no
// address at all says nothing about them. source names the provider
// when the instance id does not.
func ReleaseAddresses(next *Asset, obs *sdk.Observation, source string) []Change {
	if obs.InstanceID == "" {
		return nil
	}
	fact := FactAddressesPrefix + strings.TrimPrefix(instanceFact(obs.InstanceID, source), FactInstancePrefix)
	var reported []netip.Addr
	for _, a := range obs.Addresses {
		if ip, err := netip.ParseAddr(a.Addr); err == nil && a.Type != "mac" {
			reported = append(reported, ip.Unmap())
		}
	}
	if len(reported) == 0 {
		return nil // a VM shut off, a guest agent that does not answer: no word on its addresses
	}
	slices.SortFunc(reported, netip.Addr.Compare)
	reported = slices.Compact(reported)
	now := joinAddrs(reported)
	before, ok := next.Facts[fact]
	if ok && before == now {
		return nil
	}
	var changes []Change
	for _, s := range strings.Split(before, ",") {
		ip, err := netip.ParseAddr(s)
		if err != nil || slices.Contains(reported, ip) || reportedByOther(next, fact, s) {
			continue
		}
		next.Addresses = slices.DeleteFunc(slices.Clone(next.Addresses), func(a sdk.Address) bool {
			if a.Type != "mac" && a.Addr == s {
				changes = append(changes, Change{Field: "address", From: s})
				return true
			}
			return false
		})
		if slices.ContainsFunc(next.Services, func(sv Service) bool { return sv.Address == s }) {
			next.Services = slices.DeleteFunc(slices.Clone(next.Services), func(sv Service) bool {
				if sv.Address == s {
					changes = append(changes, Change{Field: "service", Key: svcKey{sv.Protocol, sv.Port}.String(), From: sv.describe(), To: "left with " + s})
					return true
				}
				return false
			})
		}
	}
	next.Facts, changes = mergeMap("fact", next.Facts, map[string]string{fact: now}, changes)
	return changes
}

func joinAddrs(ips []netip.Addr) string {
	var b []byte
	for i, ip := range ips {
		if i > 0 {
			b = append(b, ',')
		}
		b = ip.AppendTo(b)
	}
	return string(b)
}

// reportedByOther reports whether a provider other than the one whose
// fact is except still reports addr for a.
func reportedByOther(a *Asset, except, addr string) bool {
	for k, v := range a.Facts {
		if k != except && strings.HasPrefix(k, FactAddressesPrefix) && slices.Contains(strings.Split(v, ","), addr) {
			return true
		}
	}
	return false
}

// Holds reports whether a lists ip among its addresses.
func Holds(a *Asset, ip netip.Addr) bool {
	var buf [48]byte
	s := ip.AppendTo(buf[:0])
	for i := range a.Addresses {
		if a.Addresses[i].Addr == string(s) { // the usual spelling, without a parse
			return true
		}
	}
	return slices.ContainsFunc(a.Addresses, func(ad sdk.Address) bool {
		p, err := netip.ParseAddr(ad.Addr)
		return err == nil && ad.Type != "mac" && p.Unmap() == ip
	})
}

// Unmerge makes next (a copy the caller owns of an asset that was merged
// into another, found again on its own) a machine of its own again: it
// returns the asset it had gone into ("" if none) and the changes, among
// them "split", which the other asset's history gets too.
func Unmerge(next *Asset) (from string, changes []Change) {
	from = next.Facts[FactMergedInto]
	if from == "" {
		return "", nil
	}
	next.Facts, changes = mergeMap("fact", next.Facts, map[string]string{FactMergedInto: ""}, nil)
	return from, append(changes, Change{Field: "split", From: from, To: next.ID})
}
