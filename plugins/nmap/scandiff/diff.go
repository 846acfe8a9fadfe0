// Package scandiff computes what changed between two nmap XML scans:
// hosts that appeared, disappeared, went up or down, changed addresses or
// names; ports that opened, closed or changed state; services that changed
// name, product or version; OS matches, extraports and script output. It
// finds what nmap's ndiff finds, with ndiff's rules (hosts paired by their
// first address and first host name; ports that are among a host's
// extraports states on both sides left out; service equality on name,
// product, version and extra info), and prints it as ndiff-like text or as
// JSON.
//
// Both scans are read at once, each host by host with nmapxml (in its Lean
// mode); what is kept of them is one encoded record per host, about 50
// bytes in a byte slice the garbage collector does not scan (arena.go), not
// the parsed documents. Hosts are decoded again only while they are paired,
// and only those that differ are kept as structs. The package does not know
// about the store or the rules: it compares two files.
package scandiff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
	"io"
	"slices"
	"sync"
)

// ScanInfo is what identifies a scan in the output.
type ScanInfo struct {
	File    string `json:"file"`
	Scanner string `json:"scanner,omitempty"`
	Version string `json:"version,omitempty"`
	Args    string `json:"args,omitempty"`
	Start   int64  `json:"start,omitempty"`
}

// Diff is what changed from Old to New.
type Diff struct {
	Old   ScanInfo   `json:"old"`
	New   ScanInfo   `json:"new"`
	Hosts []HostDiff `json:"hosts"`
}

// Change says how a host changed.
type Change string

// The kinds of host change.
const (
	Appeared    Change = "appeared"    // only in the new scan
	Disappeared Change = "disappeared" // only in the old scan
	Changed     Change = "changed"     // in both, with differences
)

// HostDiff is one host that differs. For hosts that appeared or
// disappeared, Ports lists their ports (as ndiff shows the whole host).
type HostDiff struct {
	Host     string `json:"host"` // "names (addresses)", as ndiff names it
	Change   Change `json:"change"`
	OldState string `json:"old_state,omitempty"`
	NewState string `json:"new_state,omitempty"`

	AddressesAdded   []string `json:"addresses_added,omitempty"`
	AddressesRemoved []string `json:"addresses_removed,omitempty"`
	HostnamesAdded   []string `json:"hostnames_added,omitempty"`
	HostnamesRemoved []string `json:"hostnames_removed,omitempty"`

	// Set when the extraports differ: "997 closed ports", as nmap says.
	OldExtraPorts string `json:"old_extraports,omitempty"`
	NewExtraPorts string `json:"new_extraports,omitempty"`
	ExtraPorts    bool   `json:"extraports_changed,omitempty"`

	Ports []PortDiff `json:"ports,omitempty"`

	OSChanged bool     `json:"os_changed,omitempty"`
	OldOS     []string `json:"old_os,omitempty"`
	NewOS     []string `json:"new_os,omitempty"`

	Scripts []ScriptDiff `json:"scripts,omitempty"`

	a, b *host
	cost int
}

// PortDiff is one port that differs. A state of "" means the port was not
// listed on that side (closed, filtered or not scanned: see the
// extraports).
type PortDiff struct {
	Port       uint16       `json:"port"`
	Protocol   string       `json:"protocol"`
	OldState   string       `json:"old_state,omitempty"`
	NewState   string       `json:"new_state,omitempty"`
	OldService *Service     `json:"old_service,omitempty"`
	NewService *Service     `json:"new_service,omitempty"`
	Scripts    []ScriptDiff `json:"scripts,omitempty"`

	// ndiff's table shows a side only if its state is not among that
	// host's extraports states.
	showOld, showNew bool
}

// Service is what nmap says runs on a port.
type Service struct {
	Name      string `json:"name,omitempty"`
	Product   string `json:"product,omitempty"`
	Version   string `json:"version,omitempty"`
	ExtraInfo string `json:"extrainfo,omitempty"`
	Tunnel    string `json:"tunnel,omitempty"`
}

// equal is ndiff's service equality: the tunnel does not count.
func (s *Service) equal(o *Service) bool {
	return s.Name == o.Name && s.Product == o.Product && s.Version == o.Version && s.ExtraInfo == o.ExtraInfo
}

// ScriptDiff is a script whose output appeared, disappeared or changed.
type ScriptDiff struct {
	ID  string  `json:"id"`
	Old *string `json:"old,omitempty"`
	New *string `json:"new,omitempty"`
}

// Files compares the scans in two files, reading both at once.
func Files(ctx context.Context, oldPath, newPath string) (*Diff, error) {
	var (
		wg       sync.WaitGroup
		a, b     *scan
		aErr     error
		bErr     error
		ctx2, cf = context.WithCancel(ctx)
	)
	defer cf()
	wg.Add(2)
	tab := newStrTable()
	go func() {
		defer wg.Done()
		if a, aErr = loadFile(ctx2, oldPath, "a", tab); aErr != nil {
			cf()
		}
	}()
	go func() {
		defer wg.Done()
		if b, bErr = loadFile(ctx2, newPath, "b", tab); bErr != nil {
			cf()
		}
	}()
	wg.Wait()
	// The first real error, not the cancellation it caused the other
	// reader.
	errs := []error{aErr, bErr}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("scandiff: %w", err)
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("scandiff: %w", err)
		}
	}
	return compare(a, b)
}

// Hosts compares two sets of hosts given as nmap would have written them
// (sollwert's history of a network at two times, say), as Files compares
// two files: the same findings, text and JSON.
func Hosts(ctx context.Context, oldInfo ScanInfo, old []nmapxml.Host, newInfo ScanInfo, new []nmapxml.Host) (*Diff, error) {
	tab := newStrTable()
	side := func(name string, hosts []nmapxml.Host, info ScanInfo) (*scan, error) {
		i := 0
		s, err := build(ctx, name, 0, tab, func(h *nmapxml.Host) error {
			if i == len(hosts) {
				return io.EOF
			}
			*h = hosts[i]
			i++
			return nil
		})
		if s != nil {
			s.info = info
		}
		return s, err
	}
	a, err := side("a", old, oldInfo)
	if err != nil {
		return nil, fmt.Errorf("scandiff: %w", err)
	}
	b, err := side("b", new, newInfo)
	if err != nil {
		return nil, fmt.Errorf("scandiff: %w", err)
	}
	return compare(a, b)
}

// Cost is ndiff's measure of difference: 0 when the scans agree.
func (d *Diff) Cost() int {
	n := 0
	for i := range d.Hosts {
		n += d.Hosts[i].cost
	}
	return n
}

// compare pairs the hosts of two scans sorted by id, as ndiff does.
func compare(a, b *scan) (*Diff, error) {
	d := &Diff{Old: a.info, New: b.info}
	// The heads of both lists are compared by id; a host whose record is
	// the same in both scans is the same host, and needs no decoding.
	// Otherwise it is decoded into ha or hb, whose memory is reused: a
	// host that differs is cloned.
	ha, hb := &host{}, &host{}
	var ia, ib []byte // the heads' ids
	var err error
	i, j := 0, 0
	okA, okB := a.len() > 0, b.len() > 0
	if okA {
		if ia, err = a.idAt(0, ha, ia[:0]); err != nil {
			return nil, err
		}
	}
	if okB {
		if ib, err = b.idAt(0, hb, ib[:0]); err != nil {
			return nil, err
		}
	}
	for okA || okB {
		var pa, pb *host
		c := bytes.Compare(ia, ib)
		switch {
		case !okB || (okA && c < 0):
			pa = ha
		case !okA || c > 0:
			pb = hb
		default:
			pa, pb = ha, hb
		}
		same := pa != nil && pb != nil && bytes.Equal(a.record(i), b.record(j))
		if !same {
			if pa != nil {
				if err := a.at(i, ha); err != nil {
					return nil, err
				}
			}
			if pb != nil {
				if err := b.at(j, hb); err != nil {
					return nil, err
				}
			}
			if hd := diffHosts(pa, pb); hd.cost > 0 {
				if pa != nil {
					hd.a = pa.clone()
				}
				if pb != nil {
					hd.b = pb.clone()
				}
				d.Hosts = append(d.Hosts, hd)
			}
		}
		if pa != nil {
			i++
			if okA = i < a.len(); okA {
				if ia, err = a.idAt(i, ha, ia[:0]); err != nil {
					return nil, err
				}
			}
		}
		if pb != nil {
			j++
			if okB = j < b.len(); okB {
				if ib, err = b.idAt(j, hb, ib[:0]); err != nil {
					return nil, err
				}
			}
		}
	}
	return d, nil
}

func diffHosts(a, b *host) HostDiff {
	if a == nil {
		a = &host{}
	}
	if b == nil {
		b = &host{}
	}
	hd := HostDiff{a: a, b: b, OldState: a.state, NewState: b.state}
	switch {
	case a.state == "" && b.state == "":
		// Neither side has a state: ndiff treats both as missing.
		hd.Change = Changed
		hd.Host = formatName(a)
	case a.state == "":
		hd.Change, hd.Host = Appeared, formatName(b)
	case b.state == "":
		hd.Change, hd.Host = Disappeared, formatName(a)
	default:
		hd.Change, hd.Host = Changed, formatName(a)
	}
	if a.state != b.state {
		hd.cost++
	}

	// Addresses and names.
	idChanged := false
	for _, ad := range b.addrs {
		if !slices.Contains(a.addrs, ad) {
			hd.AddressesAdded = append(hd.AddressesAdded, ad.s)
			idChanged = true
		}
	}
	for _, ad := range a.addrs {
		if !slices.Contains(b.addrs, ad) {
			hd.AddressesRemoved = append(hd.AddressesRemoved, ad.s)
			idChanged = true
		}
	}
	for _, n := range b.names() {
		if !slices.Contains(a.names(), n) {
			hd.HostnamesAdded = append(hd.HostnamesAdded, n)
			idChanged = true
		}
	}
	for _, n := range a.names() {
		if !slices.Contains(b.names(), n) {
			hd.HostnamesRemoved = append(hd.HostnamesRemoved, n)
			idChanged = true
		}
	}
	if idChanged {
		hd.cost++
	}
	if hd.Change != Changed {
		// The whole host is new or gone: no per-field lists.
		hd.AddressesAdded, hd.AddressesRemoved, hd.HostnamesAdded, hd.HostnamesRemoved = nil, nil, nil, nil
	}

	// Ports, merged in (number, protocol) order.
	pi, pj := 0, 0
	for pi < len(a.ports) || pj < len(b.ports) {
		var pa, pb *port
		switch {
		case pj == len(b.ports) || (pi < len(a.ports) && comparePorts(a.ports[pi], b.ports[pj]) < 0):
			pa, pi = &a.ports[pi], pi+1
		case pi == len(a.ports) || comparePorts(a.ports[pi], b.ports[pj]) > 0:
			pb, pj = &b.ports[pj], pj+1
		default:
			pa, pb, pi, pj = &a.ports[pi], &b.ports[pj], pi+1, pj+1
		}
		if pd, cost, ok := diffPorts(a, b, pa, pb); ok {
			hd.Ports = append(hd.Ports, pd)
			hd.cost += cost
		}
	}

	// OS matches: one unit of cost per differing stretch, like difflib.
	if ops := opcodes(a.os(), b.os()); countChanges(ops) > 0 {
		hd.cost += countChanges(ops)
		hd.OSChanged = true
		hd.OldOS, hd.NewOS = slices.Clone(a.os()), slices.Clone(b.os())
	}

	if !slices.Equal(a.extra, b.extra) {
		hd.cost++
		hd.ExtraPorts = true
		hd.OldExtraPorts, hd.NewExtraPorts = extraString(a.extra), extraString(b.extra)
	}

	hd.Scripts = diffScripts(a.scripts(), b.scripts())
	hd.cost += len(hd.Scripts)
	return hd
}

func isExtra(h *host, state string) bool {
	return state == "" || slices.ContainsFunc(h.extra, func(e extraPorts) bool { return e.state == state })
}

// diffPorts compares one port spec; ok is false when ndiff leaves it out.
func diffPorts(ha, hb *host, a, b *port) (PortDiff, int, bool) {
	spec := a
	if spec == nil {
		spec = b
	}
	if a == nil {
		a = &port{id: spec.id, proto: spec.proto}
	}
	if b == nil {
		b = &port{id: spec.id, proto: spec.proto}
	}
	if isExtra(ha, a.state) && isExtra(hb, b.state) {
		return PortDiff{}, 0, false
	}
	cost := 0
	if a.state != b.state {
		cost++
	}
	sa, sb := a.svc, b.svc
	if sa == nil {
		sa = &Service{}
	}
	if sb == nil {
		sb = &Service{}
	}
	if !sa.equal(sb) {
		cost++
	}
	scripts := diffScripts(a.scripts, b.scripts)
	cost += len(scripts)
	if cost == 0 {
		return PortDiff{}, 0, false
	}
	pd := PortDiff{Port: spec.id, Protocol: spec.proto, OldState: a.state, NewState: b.state, Scripts: scripts,
		showOld: !isExtra(ha, a.state), showNew: !isExtra(hb, b.state)}
	if a.state != "" {
		pd.OldService = sa
	}
	if b.state != "" {
		pd.NewService = sb
	}
	return pd, cost, true
}

// diffScripts merges two lists sorted by id, as ndiff's diff_lists does.
func diffScripts(a, b []script) []ScriptDiff {
	var out []ScriptDiff
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].id < b[j].id:
			out = append(out, ScriptDiff{ID: a[i].id, Old: ptr(a[i].output)})
			i++
		case a[i].id > b[j].id:
			out = append(out, ScriptDiff{ID: b[j].id, New: ptr(b[j].output)})
			j++
		default:
			if a[i].output != b[j].output {
				out = append(out, ScriptDiff{ID: a[i].id, Old: ptr(a[i].output), New: ptr(b[j].output)})
			}
			i++
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, ScriptDiff{ID: a[i].id, Old: ptr(a[i].output)})
	}
	for ; j < len(b); j++ {
		out = append(out, ScriptDiff{ID: b[j].id, New: ptr(b[j].output)})
	}
	return out
}

// ptr returns a pointer to a copy of s: the decoder reuses the memory
// the original lives in.
func ptr(s string) *string { return &s }
