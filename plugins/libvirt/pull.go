package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/digitalocean/go-libvirt"
	"github.com/sollwert/sollwert/sdk"
)

// workers bounds the domains asked about at once. Calls share one
// connection (go-libvirt multiplexes them), so this hides round trips to
// a remote daemon without loading it.
const workers = 8

// inventory is what one pull saw.
type inventory struct {
	hypervisor string
	domains    []domain
	networks   []network
}

// domain is one libvirt domain as the plugin reports it.
type domain struct {
	name, uuid, title, typ string
	state                  libvirt.DomainState
	vcpus                  uint16
	memoryMiB              uint64
	labels                 map[string]string
	ifaces                 []iface
}

// iface is one network interface of a domain.
type iface struct {
	// key names the interface in facts: "net0", "net1"... in the order of
	// the domain's XML, which libvirt keeps.
	key                              string
	typ, mac, network, bridge, model string
	addrs                            []netip.Prefix
	// addrSource says where addrs came from: lease, agent, arp or
	// dhcp-host (the network's static reservation for the MAC).
	addrSource string
}

// pull reads the hypervisor's networks and domains. Any failure fails the
// whole pull: a partial inventory must never look complete. Only a domain
// that disappears while it is read is left out, since it is gone.
func pull(ctx context.Context, c *conn, t target) (inventory, error) {
	log := sdk.Logger(ctx)
	var inv inventory
	host, err := c.lv.ConnectGetHostname()
	if err != nil {
		return inv, callErr(ctx, "hostname", err)
	}
	inv.hypervisor = host

	nets, _, err := c.lv.ConnectListAllNetworks(1, 0)
	switch {
	case isCode(err, libvirt.ErrNoSupport):
		log.Debug("the driver has no networks", "uri", t.remote)
	case err != nil:
		return inv, callErr(ctx, "list networks", err)
	}
	for _, n := range nets {
		net, err := readNetwork(c, n)
		if isCode(err, libvirt.ErrNoNetwork) {
			continue // removed while we listed
		}
		if err != nil {
			return inv, callErr(ctx, fmt.Sprintf("network %q", n.Name), err)
		}
		inv.networks = append(inv.networks, net)
	}
	slices.SortFunc(inv.networks, func(a, b network) int { return cmpStr(a.name, b.name) })

	doms, _, err := c.lv.ConnectListAllDomains(1, 0)
	if err != nil {
		return inv, callErr(ctx, "list domains", err)
	}
	doms = slices.DeleteFunc(doms, func(d libvirt.Domain) bool { return !wanted(t.domains, d.Name) })
	slices.SortFunc(doms, func(a, b libvirt.Domain) int { return cmpStr(a.Name, b.Name) })

	out := make([]*domain, len(doms))
	err = forEach(ctx, len(doms), func(i int) error {
		d, err := readDomain(ctx, c, t, doms[i], inv.networks)
		if isCode(err, libvirt.ErrNoDomain) {
			log.Debug("domain went away during the pull", "domain", doms[i].Name)
			return nil
		}
		if err != nil {
			return callErr(ctx, fmt.Sprintf("domain %q", doms[i].Name), err)
		}
		out[i] = &d
		return nil
	})
	if err != nil {
		return inv, err
	}
	for _, d := range out {
		if d != nil {
			inv.domains = append(inv.domains, *d)
		}
	}
	return inv, nil
}

func wanted(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok { // patterns are checked in parseConfig
			return true
		}
	}
	return false
}

func readNetwork(c *conn, n libvirt.Network) (network, error) {
	doc, err := c.lv.NetworkGetXMLDesc(n, 0)
	if err != nil {
		return network{}, err
	}
	active, err := c.lv.NetworkIsActive(n)
	if err != nil {
		return network{}, err
	}
	net, err := parseNetwork(doc)
	net.active = active == 1
	return net, err
}

func readDomain(ctx context.Context, c *conn, t target, d libvirt.Domain, nets []network) (domain, error) {
	state, maxMem, _, vcpus, _, err := c.lv.DomainGetInfo(d)
	if err != nil {
		return domain{}, err
	}
	doc, err := c.lv.DomainGetXMLDesc(d, 0)
	if err != nil {
		return domain{}, err
	}
	var x domainXML
	if err := xml.Unmarshal([]byte(doc), &x); err != nil {
		return domain{}, fmt.Errorf("domain XML: %w", err)
	}
	dom := domain{
		name: d.Name, uuid: formatUUID(d.UUID), title: x.Title, typ: x.Type,
		state: libvirt.DomainState(state), vcpus: vcpus, memoryMiB: maxMem / 1024,
	}
	for _, ls := range x.Metadata.Labels {
		for _, l := range ls.Label {
			if l.Name == "" {
				continue
			}
			if dom.labels == nil {
				dom.labels = map[string]string{}
			}
			dom.labels[l.Name] = strings.TrimSpace(l.Value)
		}
	}
	byMAC := map[string]int{}
	for i, xi := range x.Interfaces {
		if xi.MAC.Address == "" {
			continue // libvirt gives every NIC a MAC; one without is not on a network
		}
		mac, err := normalMAC(xi.MAC.Address)
		if err != nil {
			return domain{}, fmt.Errorf("interface %d: %w", i, err)
		}
		byMAC[mac] = len(dom.ifaces)
		dom.ifaces = append(dom.ifaces, iface{
			key: "net" + strconv.Itoa(i), typ: xi.Type, mac: mac, network: xi.Source.Network,
			bridge: firstOf(xi.Source.Bridge, xi.Source.Dev, bridgeOf(nets, xi.Source.Network)), model: xi.Model.Type,
		})
	}
	if active(dom.state) && len(dom.ifaces) > 0 {
		if err := liveAddresses(ctx, c, t, d, &dom, byMAC); err != nil {
			return domain{}, err
		}
	}
	// A network's static DHCP reservation is the address the domain has
	// or will get: the fallback for a domain that is off or whose
	// lease no source could tell.
	for i := range dom.ifaces {
		f := &dom.ifaces[i]
		if len(f.addrs) > 0 {
			continue
		}
		for _, n := range nets {
			if a, ok := n.static[f.mac]; ok && (f.network == "" || f.network == n.name) {
				f.addrs = []netip.Prefix{netip.PrefixFrom(a, n.bitsFor(a))}
				f.addrSource = "dhcp-host"
				break
			}
		}
	}
	return dom, nil
}

// liveAddresses asks the address sources in the configured order; each
// fills the interfaces still without an address. A source the domain
// cannot answer (no guest agent, an unsupported source) is skipped; a
// broken connection fails the pull.
func liveAddresses(ctx context.Context, c *conn, t target, d libvirt.Domain, dom *domain, byMAC map[string]int) error {
	log := sdk.Logger(ctx)
	for _, src := range t.addressSources {
		missing := false
		for _, f := range dom.ifaces {
			missing = missing || len(f.addrs) == 0
		}
		if !missing {
			return nil
		}
		code := map[string]libvirt.DomainInterfaceAddressesSource{
			sourceLease: libvirt.DomainInterfaceAddressesSrcLease,
			sourceAgent: libvirt.DomainInterfaceAddressesSrcAgent,
			sourceARP:   libvirt.DomainInterfaceAddressesSrcArp,
		}[src]
		got, err := c.lv.DomainInterfaceAddresses(d, uint32(code), 0)
		var lerr libvirt.Error
		if errors.As(err, &lerr) && lerr.Code != uint32(libvirt.ErrNoDomain) {
			log.Debug("address source did not answer", "domain", d.Name, "source", src, "error", lerr.Message)
			continue
		}
		if err != nil {
			return fmt.Errorf("addresses from %s: %w", src, err)
		}
		for _, gi := range got {
			if len(gi.Hwaddr) == 0 {
				continue
			}
			mac, err := normalMAC(gi.Hwaddr[0])
			if err != nil {
				continue
			}
			// The agent reports every interface inside the guest (lo,
			// bridges of containers...): only the domain's own NICs count.
			i, ok := byMAC[mac]
			if !ok || len(dom.ifaces[i].addrs) > 0 {
				continue
			}
			var addrs []netip.Prefix
			for _, a := range gi.Addrs {
				ip, err := netip.ParseAddr(a.Addr)
				if err != nil || int(a.Prefix) > ip.BitLen() || !usable(ip) {
					continue
				}
				addrs = append(addrs, netip.PrefixFrom(ip.WithZone(""), int(a.Prefix)))
			}
			if len(addrs) > 0 {
				dom.ifaces[i].addrs = addrs
				dom.ifaces[i].addrSource = src
			}
		}
	}
	return nil
}

// usable reports whether an address identifies the guest on a network:
// not loopback, not link-local, not unspecified.
func usable(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() && !ip.IsMulticast()
}

// active reports whether a domain runs (or is paused or suspended): only
// then can it hold addresses.
func active(s libvirt.DomainState) bool {
	switch s {
	case libvirt.DomainRunning, libvirt.DomainBlocked, libvirt.DomainPaused, libvirt.DomainShutdown, libvirt.DomainPmsuspended:
		return true
	}
	return false
}

func (n network) bitsFor(a netip.Addr) int {
	for _, p := range n.addrs {
		if p.Masked().Contains(a) {
			return p.Bits()
		}
	}
	return a.BitLen()
}

func bridgeOf(nets []network, name string) string {
	for _, n := range nets {
		if n.name == name {
			return n.bridge
		}
	}
	return ""
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func formatUUID(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// forEach runs fn for 0..n-1 on up to workers goroutines and returns the
// first error; after one, or once ctx ends, no further fn starts.
func forEach(ctx context.Context, n int, fn func(int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	fail := func(err error) { once.Do(func() { first = err; cancel() }) }
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					fail(err)
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// isCode reports whether err is libvirt's error with the given number.
func isCode(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}

// callErr names the call that failed, and the context's reason when the
// context (which closes the socket) ended it.
func callErr(ctx context.Context, what string, err error) error {
	return fmt.Errorf("%s: %w", what, ctxErr(ctx, err))
}
