package scandiff

import (
	"fmt"
	"slices"
	"strings"
)

// Findings lists the differences one per line, in a fixed vocabulary,
// sorted: for scripts that check a diff, and for comparing with ndiff.
//
//	HOST appeared | HOST disappeared
//	HOST state OLD -> NEW
//	HOST address +ADDR | HOST address -ADDR
//	HOST hostname +NAME | HOST hostname -NAME
//	HOST extraports
//	HOST port 22/tcp state OLD -> NEW
//	HOST port 22/tcp service OLD -> NEW    (name|product|version|extrainfo)
//	HOST port 22/tcp script ID
//	HOST os
//	HOST script ID
//
// HOST is the old host's sorted addresses and sorted names ("a,b|n"), the
// new host's for one that appeared. A missing state is "none".
func (d *Diff) Findings() []string {
	var out []string
	for i := range d.Hosts {
		hd := &d.Hosts[i]
		key := hostKey(hd.a)
		switch hd.Change {
		case Appeared:
			out = append(out, hostKey(hd.b)+" appeared")
			continue
		case Disappeared:
			out = append(out, key+" disappeared")
			continue
		}
		if hd.OldState != hd.NewState {
			out = append(out, fmt.Sprintf("%s state %s -> %s", key, none(hd.OldState), none(hd.NewState)))
		}
		for _, a := range hd.AddressesAdded {
			out = append(out, key+" address +"+a)
		}
		for _, a := range hd.AddressesRemoved {
			out = append(out, key+" address -"+a)
		}
		for _, n := range hd.HostnamesAdded {
			out = append(out, key+" hostname +"+n)
		}
		for _, n := range hd.HostnamesRemoved {
			out = append(out, key+" hostname -"+n)
		}
		if hd.ExtraPorts {
			out = append(out, key+" extraports")
		}
		for _, p := range hd.Ports {
			spec := fmt.Sprintf("%s port %d/%s", key, p.Port, p.Protocol)
			if p.OldState != p.NewState {
				out = append(out, fmt.Sprintf("%s state %s -> %s", spec, none(p.OldState), none(p.NewState)))
			}
			sa, sb := p.OldService, p.NewService
			if sa == nil {
				sa = &Service{}
			}
			if sb == nil {
				sb = &Service{}
			}
			if !sa.equal(sb) {
				out = append(out, fmt.Sprintf("%s service %s -> %s", spec, ServiceKey(*sa), ServiceKey(*sb)))
			}
			for _, s := range p.Scripts {
				out = append(out, spec+" script "+s.ID)
			}
		}
		if hd.OSChanged {
			out = append(out, key+" os")
		}
		for _, s := range hd.Scripts {
			out = append(out, key+" script "+s.ID)
		}
	}
	slices.Sort(out)
	return out
}

// hostKey names a host in Findings.
func hostKey(h *host) string {
	addrs := make([]string, len(h.addrs))
	for i, a := range h.addrs {
		addrs[i] = a.s
	}
	return FormatHostKey(addrs, h.names())
}

// FormatHostKey is HostKey from addresses and names in any order.
func FormatHostKey(addrs, names []string) string {
	addrs, names = slices.Clone(addrs), slices.Clone(names)
	slices.Sort(addrs)
	slices.Sort(names)
	return strings.Join(addrs, ",") + "|" + strings.Join(names, ",")
}

// ServiceKey formats a service in Findings.
func ServiceKey(s Service) string {
	return s.Name + "|" + s.Product + "|" + s.Version + "|" + s.ExtraInfo
}

func none(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
