package model

import (
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// RunRef names the run whose result is being merged.
type RunRef struct {
	Source string
	Job    string
	RunID  string
	// Baseline is true while the job has never finished a run: hosts it
	// finds then are the starting inventory, not unknown hosts.
	Baseline bool
}

// Merge returns the asset after obs, seen inside scope, and the changes
// that make a new history version. prev is nil for a host never seen;
// the new asset then shares obs's label and fact maps, which neither
// side may modify afterwards.
//
// Absence only counts inside the scope: a port of a scanned protocol that
// lies in the scope's range and is not reported open is closed now; ports
// outside the scope keep what earlier runs said.
func Merge(prev *Asset, tenant, id string, obs sdk.Observation, scope sdk.Scope, run RunRef, now time.Time) (Asset, []Change) {
	if prev == nil {
		return mergeNew(tenant, id, &obs, scope, run, now)
	}
	return merge(prev, tenant, id, obs, scope, run, now)
}

// merge is Merge in general, for a new asset too; mergeNew must give
// what it gives (TestMergeNewIsMerge).
func merge(prev *Asset, tenant, id string, obs sdk.Observation, scope sdk.Scope, run RunRef, now time.Time) (Asset, []Change) {
	var next Asset
	var changes []Change
	if prev == nil {
		next = Asset{ID: id, Tenant: tenant, FirstSeen: now, Unknown: !run.Baseline}
		changes = append(changes, Change{Field: "asset", To: "discovered"})
	} else {
		next = prev.clone()
	}

	status := obs.Status
	if status == "" {
		status = sdk.StatusUp
	}
	if next.Status != status {
		if prev != nil {
			changes = append(changes, Change{Field: "status", From: next.Status, To: status})
		}
		next.Status = status
	}

	for _, a := range obs.Addresses {
		a = canonicalAddress(a)
		if !slices.ContainsFunc(next.Addresses, func(b sdk.Address) bool { return sameAddress(a, b) }) {
			next.Addresses = append(next.Addresses, a)
			if prev != nil {
				changes = append(changes, Change{Field: "address", To: a.Addr})
			}
		}
	}
	if len(obs.Hostnames) > 0 && !slices.Equal(next.Hostnames, obs.Hostnames) {
		changes = append(changes, Change{Field: "hostnames", From: listString(next.Hostnames), To: listString(obs.Hostnames)})
		next.Hostnames = slices.Clone(obs.Hostnames)
	}
	if obs.OS != "" && obs.OS != next.OS {
		changes = append(changes, Change{Field: "os", From: next.OS, To: obs.OS})
		next.OS = obs.OS
	}
	next.Facts, changes = mergeMap("fact", next.Facts, obs.Facts, changes)
	if obs.InstanceID != "" {
		src := run.Source
		if obs.Source != "" {
			src = obs.Source
		}
		next.Facts, changes = mergeMap("fact", next.Facts, map[string]string{instanceFact(obs.InstanceID, src): obs.InstanceID}, changes)
	}
	next.Labels, changes = mergeMap("label", next.Labels, obs.Labels, changes)

	at := observedAt(&obs)
	if status == sdk.StatusUp {
		// A new asset's first version lists its services in the snapshot;
		// describing each as a change would only cost time and bytes.
		next.Services, changes = mergeServicesAt(next.Services, obs.Services, at, scope, now, changes, prev != nil)
		next.LastSeen = now
	} else {
		next.Services, changes = closeInScope(next.Services, scope, func(s *Service) bool { return servedAt(s, at) }, changes)
	}
	next.Scanned = unionScanned(next.Scanned, scope.Ports)
	source := run.Source
	if obs.Source != "" {
		source = obs.Source
	}
	if source != "" && !slices.Contains(next.Sources, source) {
		next.Sources = append(next.Sources, source)
		sort.Strings(next.Sources)
	}
	next.LastScanned = now
	next.LastScannedBy = run.Job
	return next, changes
}

// mergeNew is Merge of a host never seen. A first run of a job meets
// only such hosts, a million of them for a large provider, so this builds
// the asset and its changes directly, each slice and map in one
// allocation, instead of diffing against an empty asset.
func mergeNew(tenant, id string, obs *sdk.Observation, scope sdk.Scope, run RunRef, now time.Time) (Asset, []Change) {
	next := Asset{ID: id, Tenant: tenant, FirstSeen: now, Unknown: !run.Baseline, Status: obs.Status, OS: obs.OS}
	if next.Status == "" {
		next.Status = sdk.StatusUp
	}
	source := run.Source
	if obs.Source != "" {
		source = obs.Source
	}
	instKey := ""
	if obs.InstanceID != "" {
		instKey = instanceFact(obs.InstanceID, source)
	}

	n := 1 + len(obs.Facts) + len(obs.Labels)
	if len(obs.Hostnames) > 0 {
		n++
	}
	if obs.OS != "" {
		n++
	}
	if instKey != "" {
		n++
	}
	changes := make([]Change, 1, n)
	changes[0] = Change{Field: "asset", To: "discovered"}

	if len(obs.Addresses) > 0 {
		next.Addresses = make([]sdk.Address, 0, len(obs.Addresses))
		for _, a := range obs.Addresses {
			a = canonicalAddress(a)
			if !slices.ContainsFunc(next.Addresses, func(b sdk.Address) bool { return sameAddress(a, b) }) {
				next.Addresses = append(next.Addresses, a)
			}
		}
	}
	// Hostnames and Sources share one array, each capped at its length.
	nh, ns := len(obs.Hostnames), len(obs.Hostnames)
	if source != "" {
		ns++
	}
	if ns > 0 {
		strs := make([]string, ns)
		copy(strs, obs.Hostnames)
		if nh > 0 {
			next.Hostnames = strs[:nh:nh]
			changes = append(changes, Change{Field: "hostnames", From: "[]", To: listString(obs.Hostnames)})
		}
		if source != "" {
			strs[nh] = source
			next.Sources = strs[nh : nh+1 : nh+1]
		}
	}
	if obs.OS != "" {
		changes = append(changes, Change{Field: "os", To: obs.OS})
	}
	next.Facts, changes = newMap("fact", obs.Facts, changes)
	if instKey != "" {
		if next.Facts == nil {
			next.Facts = map[string]string{instKey: obs.InstanceID}
			changes = append(changes, Change{Field: "fact", Key: instKey, To: obs.InstanceID})
		} else if old, ok := next.Facts[instKey]; !ok || old != obs.InstanceID {
			changes = append(changes, Change{Field: "fact", Key: instKey, From: old, To: obs.InstanceID})
			next.Facts = maps.Clone(next.Facts) // it is the observation's
			next.Facts[instKey] = obs.InstanceID
		}
	}
	next.Labels, changes = newMap("label", obs.Labels, changes)

	if next.Status == sdk.StatusUp {
		// A new asset's first version lists its services in the snapshot,
		// not as changes (see merge).
		next.Services = newServices(obs.Services, observedAt(obs), now)
		next.LastSeen = now
	}
	next.Scanned = newScanned(scope.Ports)
	next.LastScanned = now
	next.LastScannedBy = run.Job
	return next, changes
}

// newServices is mergeServices into an asset without services: the open
// ones seen, in order, each port once.
func newServices(seen []sdk.Service, at string, now time.Time) []Service {
	open := openServices(seen)
	if len(open) == 0 {
		return nil
	}
	out := make([]Service, 0, len(open))
	for i := range open {
		s := &open[i]
		if n := len(out); n > 0 && out[n-1].Protocol == s.Protocol && out[n-1].Port == s.Port {
			continue // reported twice
		}
		out = append(out, Service{Protocol: s.Protocol, Port: s.Port, State: s.State, Name: s.Name, Product: s.Product, Version: s.Version, Since: now, Address: at})
	}
	return out
}

// newScanned is unionScanned into an asset that has scanned nothing yet.
// A scope's ranges are mostly in order already: then they are copied
// rather than sorted.
func newScanned(add map[sdk.Protocol]sdk.PortRanges) map[sdk.Protocol]sdk.PortRanges {
	if len(add) == 0 || covers(nil, add) {
		return nil
	}
	out := make(map[sdk.Protocol]sdk.PortRanges, len(add))
	for p, r := range add {
		switch {
		case len(r) == 0:
			out[p] = nil
		case normalized(r):
			out[p] = slices.Clone(r)
		default:
			out[p] = r.Normalize()
		}
	}
	return out
}

// normalized reports whether r.Normalize() is r as it is: ranges in order
// of their first ports, apart and not adjacent.
func normalized(r sdk.PortRanges) bool {
	for i := 1; i < len(r); i++ {
		if r[i].First <= r[i-1].First || uint32(r[i].First) <= uint32(r[i-1].Last)+1 {
			return false
		}
	}
	return true
}

// newMap is mergeMap into an asset that has no such map yet: add, each
// entry a change, in key order. The map returned is add itself: a new
// asset shares its labels and facts with the observation it was made
// from (a copy per new host was a tenth of what a million of them
// allocated), and neither is written to after: a merge into an asset
// clones its maps first (Asset.clone).
func newMap(field string, add map[string]string, changes []Change) (map[string]string, []Change) {
	if len(add) == 0 {
		return nil, changes
	}
	var buf [8]Change
	cs := buf[:0]
	for k, v := range add {
		cs = append(cs, Change{Field: field, Key: k, To: v})
	}
	if len(cs) > 1 {
		slices.SortFunc(cs, func(a, b Change) int { return strings.Compare(a.Key, b.Key) })
	}
	return add, append(changes, cs...)
}

// MarkAbsent returns the asset after a run whose scope covered its address
// did not find it: it is down, and every port in scope is closed on the
// addresses the run covered.
func MarkAbsent(prev Asset, scope sdk.Scope, run RunRef, now time.Time) (Asset, []Change) {
	next := prev.clone()
	var changes []Change
	if next.Status != sdk.StatusDown {
		changes = append(changes, Change{Field: "status", From: next.Status, To: sdk.StatusDown})
		next.Status = sdk.StatusDown
	}
	next.Services, changes = closeInScope(next.Services, scope, func(s *Service) bool { return coveredBy(s, scope.Prefixes) }, changes)
	next.Scanned = unionScanned(next.Scanned, scope.Ports)
	next.LastScanned = now
	next.LastScannedBy = run.Job
	return next, changes
}

// observedAt is the one IP address of an observation, which the ports it
// reports were found on; "" when it has none or several (a provider
// reporting a machine), whose ports are then the machine's as a whole.
func observedAt(o *sdk.Observation) string {
	at := ""
	for _, a := range o.Addresses {
		if a.Type == "mac" {
			continue
		}
		if at != "" {
			return ""
		}
		at = a.Addr
	}
	return at
}

// servedAt reports whether s belongs to what an observation at address at
// says: a port of that address, or of no address in particular (one kept
// from before ports had addresses, or an observation without one).
func servedAt(s *Service, at string) bool {
	return at == "" || s.Address == "" || s.Address == at
}

// coveredBy reports whether a scan of prefixes covered s's address (one
// without an address counts as covered, as before ports had addresses).
func coveredBy(s *Service, prefixes []netip.Prefix) bool {
	if s.Address == "" || len(prefixes) == 0 {
		return true
	}
	ip, err := netip.ParseAddr(s.Address)
	if err != nil {
		return true
	}
	ip = ip.Unmap()
	return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// mergeServicesAt joins the ports seen at address at with the asset's: a
// machine with several addresses keeps each one's ports, and a scan of
// one address neither closes nor claims those of another.
func mergeServicesAt(have []Service, seen []sdk.Service, at string, scope sdk.Scope, now time.Time, changes []Change, record bool) ([]Service, []Change) {
	if at == "" || !slices.ContainsFunc(have, func(s Service) bool { return s.Address != at }) {
		return mergeServices(have, seen, at, scope, now, changes, record) // one address: the usual case
	}
	var mine, others []Service
	for i := range have {
		s := &have[i]
		switch {
		case s.Address == at:
			mine = append(mine, *s)
		case s.Address == "":
			// A port from before ports had addresses: this address's now,
			// unless it already has the port.
			if !slices.ContainsFunc(have, func(t Service) bool { return t.Address == at && t.Protocol == s.Protocol && t.Port == s.Port }) {
				mine = append(mine, *s)
			}
		default:
			others = append(others, *s)
		}
	}
	slices.SortFunc(mine, cmpService) // "" and at interleave by port
	mine, changes = mergeServices(mine, seen, at, scope, now, changes, record)
	out := append(slices.Clip(mine), others...)
	slices.SortFunc(out, cmpService)
	return out, changes
}

// cmpService orders an asset's services: by protocol and port, then by
// address.
func cmpService(a, b Service) int {
	if c := cmpSvc(sdk.Service{Protocol: a.Protocol, Port: a.Port}, sdk.Service{Protocol: b.Protocol, Port: b.Port}); c != 0 {
		return c
	}
	return strings.Compare(a.Address, b.Address)
}

// mergeServices joins the asset's services with the open ones seen, both
// sorted by (protocol, port), in one pass: this runs for every host of
// every scan, so it avoids maps.
// have holds one service per port (those of address at, when at is set).
func mergeServices(have []Service, seen []sdk.Service, at string, scope sdk.Scope, now time.Time, changes []Change, record bool) ([]Service, []Change) {
	open := openServices(seen)
	// A rescan mostly finds what the asset already has: the result is
	// then have itself, and a new slice is made only at the first
	// difference (copy on write; have is never modified).
	var out []Service
	n := 0 // length of the result so far while it is still have[:n]
	diverge := func() {
		if out == nil {
			out = make([]Service, n, max(len(have), len(open))+1)
			copy(out, have[:n])
		}
	}
	keep := func(s Service) {
		if out == nil && n < len(have) && have[n] == s {
			n++
			return
		}
		diverge()
		out = append(out, s)
	}
	last := func() *Service {
		if out != nil {
			if len(out) == 0 {
				return nil
			}
			return &out[len(out)-1]
		}
		if n == 0 {
			return nil
		}
		return &have[n-1]
	}
	i, j := 0, 0
	for i < len(have) || j < len(open) {
		switch {
		case j >= len(open) || (i < len(have) && lessSvc(have[i].Protocol, have[i].Port, open[j].Protocol, open[j].Port)):
			h := have[i]
			i++
			if inScope(scope, h.Protocol, h.Port) {
				diverge()
				changes = append(changes, Change{Field: "service", Key: svcKey{h.Protocol, h.Port}.String(), From: h.describe(), To: "closed"})
				continue
			}
			keep(h)
		case i >= len(have) || lessSvc(open[j].Protocol, open[j].Port, have[i].Protocol, have[i].Port):
			s := open[j]
			j++
			if l := last(); l != nil && l.Protocol == s.Protocol && l.Port == s.Port {
				continue // reported twice
			}
			svc := Service{Protocol: s.Protocol, Port: s.Port, State: s.State, Name: s.Name, Product: s.Product, Version: s.Version, Since: now, Address: at}
			if record {
				changes = append(changes, Change{Field: "service", Key: svcKey{s.Protocol, s.Port}.String(), From: "closed", To: svc.describe()})
			}
			keep(svc)
		default: // same port on both sides
			h, s := have[i], open[j]
			i++
			j++
			updated := h
			updated.State, updated.Name, updated.Product, updated.Version = s.State, s.Name, s.Product, s.Version
			if at != "" {
				h.Address = at // a port kept from before ports had addresses takes this one's, unrecorded
			}
			if updated.Address = h.Address; updated != h {
				changes = append(changes, Change{Field: "service", Key: svcKey{h.Protocol, h.Port}.String(), From: h.describe(), To: updated.describe()})
			}
			keep(updated)
		}
	}
	if out == nil {
		return have[:n:n], changes
	}
	return out, changes
}

// openServices returns the open services of seen in order.
func openServices(seen []sdk.Service) []sdk.Service {
	if !slices.ContainsFunc(seen, func(s sdk.Service) bool { return !s.Open() }) && slices.IsSortedFunc(seen, cmpSvc) {
		return seen // nmap reports open ports only, in order: then there is nothing to copy
	}
	open := make([]sdk.Service, 0, len(seen))
	for _, s := range seen {
		if s.Open() {
			open = append(open, s)
		}
	}
	slices.SortFunc(open, cmpSvc)
	return open
}

func cmpSvc(a, b sdk.Service) int {
	if a.Protocol != b.Protocol {
		return strings.Compare(string(a.Protocol), string(b.Protocol))
	}
	return int(a.Port) - int(b.Port)
}

func lessSvc(pa sdk.Protocol, a uint16, pb sdk.Protocol, b uint16) bool {
	if pa != pb {
		return pa < pb
	}
	return a < b
}

// closeInScope closes the ports in scope of the services that covered
// selects.
func closeInScope(have []Service, scope sdk.Scope, covered func(*Service) bool, changes []Change) ([]Service, []Change) {
	out := have[:0:0]
	for _, h := range have {
		if inScope(scope, h.Protocol, h.Port) && covered(&h) {
			changes = append(changes, Change{Field: "service", Key: svcKey{h.Protocol, h.Port}.String(), From: h.describe(), To: "closed"})
			continue
		}
		out = append(out, h)
	}
	return out, changes
}

func inScope(scope sdk.Scope, p sdk.Protocol, port uint16) bool {
	r, ok := scope.Ports[p]
	return ok && r.Contains(port)
}

func unionScanned(have map[sdk.Protocol]sdk.PortRanges, add map[sdk.Protocol]sdk.PortRanges) map[sdk.Protocol]sdk.PortRanges {
	if len(add) == 0 || covers(have, add) {
		return have // the usual case: the same job scanning the same ports again
	}
	out := make(map[sdk.Protocol]sdk.PortRanges, len(have)+len(add))
	maps.Copy(out, have)
	for p, r := range add {
		out[p] = out[p].Union(r)
	}
	return out
}

func covers(have, add map[sdk.Protocol]sdk.PortRanges) bool {
	for p, ranges := range add {
		h := have[p]
		for _, r := range ranges {
			i := sort.Search(len(h), func(i int) bool { return h[i].Last >= r.First })
			if i == len(h) || h[i].First > r.First || h[i].Last < r.Last {
				return false
			}
		}
	}
	return true
}

// mergeMap sets the entries of add in have, which belongs to the asset
// being built (Merge clones it from the previous version), recording a
// change for each entry that is new or different, in key order.
func mergeMap(field string, have, add map[string]string, changes []Change) (map[string]string, []Change) {
	if len(add) == 0 {
		return have, changes
	}
	var buf [8]string
	keys := buf[:0]
	for k := range add {
		keys = append(keys, k)
	}
	if len(keys) > 1 {
		slices.Sort(keys)
	}
	if have == nil { // a new asset or a first fact: every entry is a change
		for _, k := range keys {
			changes = append(changes, Change{Field: field, Key: k, To: add[k]})
		}
		return maps.Clone(add), changes
	}
	for _, k := range keys {
		v := add[k]
		if old, ok := have[k]; !ok || old != v {
			changes = append(changes, Change{Field: field, Key: k, From: old, To: v})
			have[k] = v
		}
	}
	return have, changes
}

// listString formats a list as fmt.Sprint does ("[a b]"), for less.
func listString(l []string) string {
	n := 2 + len(l)
	for _, s := range l {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('[')
	for i, s := range l {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	b.WriteByte(']')
	return b.String()
}

type svcKey struct {
	proto sdk.Protocol
	port  uint16
}

func (k svcKey) String() string { return string(k.proto) + "/" + strconv.Itoa(int(k.port)) }

func (s Service) describe() string {
	d := s.State
	if s.Name != "" {
		d += " " + s.Name
	}
	if s.Product != "" {
		d += " " + s.Product
	}
	if s.Version != "" {
		d += " " + s.Version
	}
	return d
}

func sortServices(s []Service) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Protocol != s[j].Protocol {
			return s[i].Protocol < s[j].Protocol
		}
		return s[i].Port < s[j].Port
	})
}

func (a Asset) clone() Asset {
	b := a
	b.Addresses = slices.Clone(a.Addresses)
	b.Hostnames = slices.Clone(a.Hostnames)
	// Services are rebuilt by every merge, never modified in place.
	b.Sources = slices.Clone(a.Sources)
	b.Facts = maps.Clone(a.Facts)
	b.Labels = maps.Clone(a.Labels)
	b.Scanned = maps.Clone(a.Scanned)
	return b
}
