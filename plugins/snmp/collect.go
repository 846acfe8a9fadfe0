package snmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"
)

// OIDs this source reads, all numeric: Debian ships no MIB files.
const (
	oidSysDescr    = ".1.3.6.1.2.1.1.1.0"
	oidSysObjectID = ".1.3.6.1.2.1.1.2.0"
	oidSysContact  = ".1.3.6.1.2.1.1.4.0"
	oidSysName     = ".1.3.6.1.2.1.1.5.0"
	oidSysLocation = ".1.3.6.1.2.1.1.6.0"

	oidIfDescr       = ".1.3.6.1.2.1.2.2.1.2"
	oidIfType        = ".1.3.6.1.2.1.2.2.1.3"
	oidIfSpeed       = ".1.3.6.1.2.1.2.2.1.5"
	oidIfPhysAddress = ".1.3.6.1.2.1.2.2.1.6"
	oidIfAdminStatus = ".1.3.6.1.2.1.2.2.1.7"
	oidIfOperStatus  = ".1.3.6.1.2.1.2.2.1.8"
	oidIfName        = ".1.3.6.1.2.1.31.1.1.1.1"
	oidIfHighSpeed   = ".1.3.6.1.2.1.31.1.1.1.15"
	oidIfAlias       = ".1.3.6.1.2.1.31.1.1.1.18"

	oidIPAdEntIfIndex          = ".1.3.6.1.2.1.4.20.1.2"
	oidIPNetToPhysicalPhysAddr = ".1.3.6.1.2.1.4.35.1.4"
	oidIPNetToMediaPhysAddress = ".1.3.6.1.2.1.4.22.1.2"

	oidLldpLocPortDesc     = ".1.0.8802.1.1.2.1.3.7.1.4"
	oidLldpRemChassisID    = ".1.0.8802.1.1.2.1.4.1.1.5"
	oidLldpRemPortID       = ".1.0.8802.1.1.2.1.4.1.1.7"
	oidLldpRemSysName      = ".1.0.8802.1.1.2.1.4.1.1.9"
	oidLldpRemManAddrIfSub = ".1.0.8802.1.1.2.1.4.2.1.3"

	oidEntPhysicalSerialNum = ".1.3.6.1.2.1.47.1.1.1.1.11"
	oidEntPhysicalModelName = ".1.3.6.1.2.1.47.1.1.1.1.13"
)

// Limits that keep a broken or hostile agent from holding the run: every
// walk ends after maxRows answers, and an agent may send maxBytes of
// string values in all.
const (
	maxRows   = 100_000
	maxBytes  = 16 << 20
	maxString = 1024 // longer values are cut: facts are for reading, not storage
)

// device is what one agent said about itself and its neighbours.
type device struct {
	addr       netip.Addr
	sys        map[string]string
	ifaces     map[int]*iface
	addrs      []netip.Addr
	arp        []arpEntry
	lldp       map[string]*lldpEntry // by the remote table's index
	localPorts map[int]string        // LLDP local port number -> description
	model      string
	serial     string
}

type iface struct {
	name, descr, alias, mac string
	typ, admin, oper        int
	speedMbps               uint64
}

type arpEntry struct {
	ifIndex int
	ip      netip.Addr
	mac     string
}

type lldpEntry struct {
	localPort          int
	chassis, port, sys string
	addrs              []netip.Addr
}

// walker walks one agent, counting what it sends.
type walker struct {
	g     *gosnmp.GoSNMP
	bytes int
}

var errTooMuch = errors.New("too much data")

func (w *walker) walk(root string, fn func(index []int, v gosnmp.SnmpPDU)) error {
	rows := 0
	err := w.g.BulkWalk(root, func(p gosnmp.SnmpPDU) error {
		rows++
		if rows > maxRows {
			return fmt.Errorf("%w: the table at %s has more than %d rows; the agent's table does not end", errTooMuch, root, maxRows)
		}
		if b, ok := p.Value.([]byte); ok {
			w.bytes += len(b)
			if w.bytes > maxBytes {
				return fmt.Errorf("%w: the agent sent more than %d MB of values", errTooMuch, maxBytes>>20)
			}
		}
		index, err := parseIndex(p.Name, root)
		if err != nil {
			return err
		}
		fn(index, p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	return nil
}

// collect asks one agent everything this source reads.
func collect(ctx context.Context, g *gosnmp.GoSNMP, addr netip.Addr) (*device, error) {
	d := &device{addr: addr, sys: map[string]string{}, ifaces: map[int]*iface{}, lldp: map[string]*lldpEntry{}, localPorts: map[int]string{}}
	res, err := g.Get([]string{oidSysDescr, oidSysObjectID, oidSysContact, oidSysName, oidSysLocation})
	if err != nil {
		return nil, err
	}
	for _, v := range res.Variables {
		name := map[string]string{oidSysDescr: "sys_descr", oidSysObjectID: "sys_object_id", oidSysContact: "sys_contact",
			oidSysName: "sys_name", oidSysLocation: "sys_location"}[v.Name]
		if s, ok := text(v); ok && name != "" && s != "" {
			d.sys[name] = s
		}
	}
	if len(d.sys) == 0 {
		return nil, errors.New("the agent answered without its system group")
	}
	w := &walker{g: g}
	ifc := func(index []int) *iface {
		if len(index) != 1 {
			return nil
		}
		i := d.ifaces[index[0]]
		if i == nil {
			i = &iface{}
			d.ifaces[index[0]] = i
		}
		return i
	}
	walks := []struct {
		oid string
		fn  func([]int, gosnmp.SnmpPDU)
	}{
		{oidIfDescr, func(ix []int, p gosnmp.SnmpPDU) { setText(ifc(ix), p, func(i *iface, s string) { i.descr = s }) }},
		{oidIfName, func(ix []int, p gosnmp.SnmpPDU) { setText(ifc(ix), p, func(i *iface, s string) { i.name = s }) }},
		{oidIfAlias, func(ix []int, p gosnmp.SnmpPDU) { setText(ifc(ix), p, func(i *iface, s string) { i.alias = s }) }},
		{oidIfType, func(ix []int, p gosnmp.SnmpPDU) { setInt(ifc(ix), p, func(i *iface, n int) { i.typ = n }) }},
		{oidIfAdminStatus, func(ix []int, p gosnmp.SnmpPDU) { setInt(ifc(ix), p, func(i *iface, n int) { i.admin = n }) }},
		{oidIfOperStatus, func(ix []int, p gosnmp.SnmpPDU) { setInt(ifc(ix), p, func(i *iface, n int) { i.oper = n }) }},
		{oidIfSpeed, func(ix []int, p gosnmp.SnmpPDU) {
			setInt(ifc(ix), p, func(i *iface, n int) {
				if i.speedMbps == 0 {
					i.speedMbps = uint64(n) / 1_000_000
				}
			})
		}},
		{oidIfHighSpeed, func(ix []int, p gosnmp.SnmpPDU) {
			setInt(ifc(ix), p, func(i *iface, n int) {
				if n > 0 {
					i.speedMbps = uint64(n)
				}
			})
		}},
		{oidIfPhysAddress, func(ix []int, p gosnmp.SnmpPDU) {
			if i := ifc(ix); i != nil {
				i.mac = mac(p)
			}
		}},
		{oidIPAdEntIfIndex, func(ix []int, _ gosnmp.SnmpPDU) {
			if ip, ok := ipv4(ix); ok {
				d.addrs = append(d.addrs, ip)
			}
		}},
		{oidLldpLocPortDesc, func(ix []int, p gosnmp.SnmpPDU) {
			if s, ok := text(p); ok && len(ix) == 1 {
				d.localPorts[ix[0]] = s
			}
		}},
		{oidLldpRemChassisID, func(ix []int, p gosnmp.SnmpPDU) { d.lldpText(ix, p, func(e *lldpEntry, s string) { e.chassis = s }) }},
		{oidLldpRemPortID, func(ix []int, p gosnmp.SnmpPDU) { d.lldpText(ix, p, func(e *lldpEntry, s string) { e.port = s }) }},
		{oidLldpRemSysName, func(ix []int, p gosnmp.SnmpPDU) { d.lldpText(ix, p, func(e *lldpEntry, s string) { e.sys = s }) }},
		{oidLldpRemManAddrIfSub, func(ix []int, _ gosnmp.SnmpPDU) {
			// index: timeMark.localPort.remIndex.addrSubtype.addrLen.addr...
			if len(ix) < 5 {
				return
			}
			e := d.lldpEntry(ix[:3])
			if ip, ok := inetAddress(ix[3], ix[4:]); ok {
				e.addrs = append(e.addrs, ip)
			}
		}},
		{oidEntPhysicalModelName, func(_ []int, p gosnmp.SnmpPDU) {
			if s, ok := text(p); ok && s != "" && d.model == "" {
				d.model = s
			}
		}},
		{oidEntPhysicalSerialNum, func(_ []int, p gosnmp.SnmpPDU) {
			if s, ok := text(p); ok && s != "" && d.serial == "" {
				d.serial = s
			}
		}},
	}
	for _, wk := range walks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := w.walk(wk.oid, wk.fn); err != nil {
			return nil, err
		}
	}
	// The neighbour table: the newer ipNetToPhysicalTable first (it also
	// holds IPv6 neighbours and is cheaper for snmpd to serve), the older
	// ipNetToMediaTable when the agent has none.
	if err := w.walk(oidIPNetToPhysicalPhysAddr, func(ix []int, p gosnmp.SnmpPDU) {
		// index: ifIndex.addrType.addrLen.addr...
		if len(ix) < 3 {
			return
		}
		if ip, ok := inetAddress(ix[1], ix[2:]); ok {
			d.arp = append(d.arp, arpEntry{ifIndex: ix[0], ip: ip, mac: mac(p)})
		}
	}); err != nil {
		return nil, err
	}
	if len(d.arp) == 0 {
		if err := w.walk(oidIPNetToMediaPhysAddress, func(ix []int, p gosnmp.SnmpPDU) {
			if len(ix) != 5 {
				return
			}
			if ip, ok := ipv4(ix[1:]); ok {
				d.arp = append(d.arp, arpEntry{ifIndex: ix[0], ip: ip, mac: mac(p)})
			}
		}); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *device) lldpEntry(ix []int) *lldpEntry {
	key := fmt.Sprint(ix)
	e := d.lldp[key]
	if e == nil {
		e = &lldpEntry{localPort: ix[1]}
		d.lldp[key] = e
	}
	return e
}

func (d *device) lldpText(ix []int, p gosnmp.SnmpPDU, set func(*lldpEntry, string)) {
	if len(ix) != 3 {
		return
	}
	if s, ok := text(p); ok {
		set(d.lldpEntry(ix), s)
	}
}

func setText(i *iface, p gosnmp.SnmpPDU, set func(*iface, string)) {
	if s, ok := text(p); ok && i != nil {
		set(i, s)
	}
}

func setInt(i *iface, p gosnmp.SnmpPDU, set func(*iface, int)) {
	if i == nil {
		return
	}
	switch v := p.Value.(type) {
	case int:
		set(i, v)
	case uint:
		set(i, int(min(v, 1<<31)))
	case uint32:
		set(i, int(v))
	case uint64:
		set(i, int(min(v, 1<<31)))
	}
}

// text reads a printable value: strings are cut at maxString and stripped
// of control characters; OIDs keep their leading dot.
func text(p gosnmp.SnmpPDU) (string, bool) {
	switch v := p.Value.(type) {
	case []byte:
		if len(v) > maxString {
			v = v[:maxString]
		}
		return strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r == 0xfffd {
				return -1
			}
			return r
		}, strings.ToValidUTF8(string(v), "")), true
	case string:
		if p.Type == gosnmp.ObjectIdentifier {
			return v, true
		}
		if len(v) > maxString {
			v = v[:maxString]
		}
		return v, true
	}
	return "", false
}

// mac formats a six-byte physical address; anything else is "".
func mac(p gosnmp.SnmpPDU) string {
	b, ok := p.Value.([]byte)
	if !ok || len(b) != 6 {
		return ""
	}
	return net.HardwareAddr(b).String()
}

// parseIndex returns the sub-identifiers of name below root.
func parseIndex(name, root string) ([]int, error) {
	rest, ok := strings.CutPrefix(name, root+".")
	if !ok {
		return nil, fmt.Errorf("the agent answered %s outside the table %s", name, root)
	}
	parts := strings.Split(rest, ".")
	out := make([]int, len(parts))
	for i, s := range parts {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("the agent answered a malformed OID %s", name)
		}
		out[i] = int(n)
	}
	return out, nil
}

func ipv4(ix []int) (netip.Addr, bool) {
	if len(ix) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, n := range ix {
		if n > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// inetAddress decodes an InetAddressType and a length-prefixed
// InetAddress from an index: 1 = IPv4, 2 = IPv6.
func inetAddress(typ int, rest []int) (netip.Addr, bool) {
	if len(rest) < 1 || rest[0] != len(rest)-1 {
		return netip.Addr{}, false
	}
	raw := make([]byte, 0, len(rest)-1)
	for _, n := range rest[1:] {
		if n > 255 {
			return netip.Addr{}, false
		}
		raw = append(raw, byte(n))
	}
	switch {
	case typ == 1 && len(raw) == 4:
		return netip.AddrFrom4([4]byte(raw)), true
	case typ == 2 && len(raw) == 16:
		return netip.AddrFrom16([16]byte(raw)), true
	}
	return netip.Addr{}, false
}
