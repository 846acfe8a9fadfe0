package snmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// fakeAgent answers SNMPv2c on 127.0.0.1 from a table of OIDs, or
// misbehaves on purpose: the faults a real snmpd cannot be made to show.
type fakeAgent struct {
	port  int
	table []gosnmp.SnmpPDU // sorted by OID
	// respond, when set, replaces the normal answer to a request.
	respond func(req *gosnmp.SnmpPacket, normal []byte) []byte
}

func startFakeAgent(t testing.TB, table []gosnmp.SnmpPDU, respond func(*gosnmp.SnmpPacket, []byte) []byte) *fakeAgent {
	return startFakeAgentAt(t, "127.0.0.1:0", table, respond)
}

func startFakeAgentAt(t testing.TB, addr string, table []gosnmp.SnmpPDU, respond func(*gosnmp.SnmpPacket, []byte) []byte) *fakeAgent {
	t.Helper()
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sort.Slice(table, func(i, j int) bool { return oidLess(table[i].Name, table[j].Name) })
	a := &fakeAgent{port: conn.LocalAddr().(*net.UDPAddr).Port, table: table, respond: respond}
	go a.serve(conn)
	return a
}

func (a *fakeAgent) serve(conn net.PacketConn) {
	buf := make([]byte, 65535)
	dec := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Community: "fake", Logger: gosnmp.NewLogger(nil)}
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req, err := dec.SnmpDecodePacket(buf[:n])
		if err != nil {
			continue
		}
		resp := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: req.Community, PDUType: gosnmp.GetResponse, RequestID: req.RequestID}
		switch req.PDUType {
		case gosnmp.GetRequest:
			for _, v := range req.Variables {
				resp.Variables = append(resp.Variables, a.get(v.Name))
			}
		case gosnmp.GetBulkRequest, gosnmp.GetNextRequest:
			reps := int(req.MaxRepetitions)
			if reps == 0 || req.PDUType == gosnmp.GetNextRequest {
				reps = 1
			}
			for _, v := range req.Variables {
				resp.Variables = append(resp.Variables, a.next(v.Name, reps)...)
			}
		}
		// Like a real agent, answer a bulk request with what fits into one
		// datagram.
		size := 0
		for i, v := range resp.Variables {
			if b, ok := v.Value.([]byte); ok {
				size += len(b) + len(v.Name) + 8
			}
			if size > 60000 && i > 0 {
				resp.Variables = resp.Variables[:i]
				break
			}
		}
		out, err := resp.MarshalMsg()
		if err != nil {
			continue
		}
		if a.respond != nil {
			out = a.respond(req, out)
		}
		if out != nil {
			_, _ = conn.WriteTo(out, from)
		}
	}
}

func (a *fakeAgent) get(oid string) gosnmp.SnmpPDU {
	for _, v := range a.table {
		if v.Name == oid {
			return v
		}
	}
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.NoSuchObject}
}

func (a *fakeAgent) next(oid string, n int) []gosnmp.SnmpPDU {
	i := sort.Search(len(a.table), func(i int) bool { return oidLess(oid, a.table[i].Name) })
	var out []gosnmp.SnmpPDU
	for ; i < len(a.table) && len(out) < n; i++ {
		out = append(out, a.table[i])
	}
	if len(out) == 0 {
		out = append(out, gosnmp.SnmpPDU{Name: oid, Type: gosnmp.EndOfMibView})
	}
	return out
}

func oidLess(a, b string) bool {
	as, bs := strings.Split(strings.TrimPrefix(a, "."), "."), strings.Split(strings.TrimPrefix(b, "."), ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

func str(oid, s string) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.OctetString, Value: []byte(s)}
}

func integer(oid string, n int) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Integer, Value: n}
}

// switchTable is a small switch with LLDP and ENTITY-MIB, which snmpd does
// not serve: one neighbour whose management address is 198.18.90.7.
func switchTable() []gosnmp.SnmpPDU {
	return []gosnmp.SnmpPDU{
		str(oidSysDescr, "Fake Switch OS 1.0"),
		{Name: oidSysObjectID, Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.4.1.99999.1"},
		str(oidSysName, "fake-1"),
		str(oidIfDescr+".1", "GigabitEthernet0/1"), str(oidIfName+".1", "Gi0/1"), integer(oidIfOperStatus+".1", 1), integer(oidIfAdminStatus+".1", 1),
		str(oidIfDescr+".2", "GigabitEthernet0/2"), str(oidIfName+".2", "Gi0/2"), integer(oidIfOperStatus+".2", 2), integer(oidIfAdminStatus+".2", 1),
		str(oidLldpLocPortDesc+".1", "Gi0/1"),
		str(oidLldpRemChassisID+".0.1.1", "chassis-42"), str(oidLldpRemPortID+".0.1.1", "eth0"), str(oidLldpRemSysName+".0.1.1", "server-7"),
		integer(oidLldpRemManAddrIfSub+".0.1.1.1.4.198.18.90.7", 2),
		str(oidEntPhysicalModelName+".1", "FS-2400"), str(oidEntPhysicalSerialNum+".1", "SN123"),
	}
}

func fakeConfig(t *testing.T, port int) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"targets": []string{"127.0.0.1"}, "port": port, "community_file": secretFile(t, "fake"),
		"timeout": "3s", "retries": 0})
	return b
}

func TestLLDPAndEntityFromAFixture(t *testing.T) {
	a := startFakeAgent(t, switchTable(), nil)
	obs, _, err := discover(t, fakeConfig(t, a.port))
	if err != nil {
		t.Fatal(err)
	}
	self, nb := find(obs, "127.0.0.1"), find(obs, "198.18.90.7")
	if self == nil || nb == nil {
		t.Fatalf("observations %+v", obs)
	}
	for k, want := range map[string]string{"model": "FS-2400", "serial": "SN123", "sys_object_id": ".1.3.6.1.4.1.99999.1",
		"if.Gi0/1.oper_status": "up", "if.Gi0/2.oper_status": "down"} {
		if self.Facts[k] != want {
			t.Errorf("fact %s = %q, want %q", k, self.Facts[k], want)
		}
	}
	if nb.Source != NeighbourSource || len(nb.Hostnames) != 1 || nb.Hostnames[0] != "server-7" ||
		nb.Facts["lldp_chassis_id"] != "chassis-42" || nb.Facts["lldp_seen_by.127.0.0.1"] != "Gi0/1 <-> eth0" {
		t.Errorf("neighbour %+v", nb)
	}
}

func TestMisbehavingAgentsEndTheirWalk(t *testing.T) {
	huge := strings.Repeat("x", 60_000)
	cases := []struct {
		name    string
		table   func() []gosnmp.SnmpPDU
		respond func(*gosnmp.SnmpPacket, []byte) []byte
		want    string
	}{
		{"oversized strings", func() []gosnmp.SnmpPDU {
			t := switchTable()
			for i := 0; i < 400; i++ {
				t = append(t, str(fmt.Sprintf("%s.%d", oidIfAlias, i+1), huge))
			}
			return t
		}, nil, "more than 16 MB"},
		{"truncated answers", switchTable, func(_ *gosnmp.SnmpPacket, out []byte) []byte { return out[:len(out)/2] }, "malformed answer"},
		{"a table that never ends", switchTable, func(req *gosnmp.SnmpPacket, out []byte) []byte {
			if req.PDUType != gosnmp.GetBulkRequest || !strings.HasPrefix(req.Variables[0].Name, oidIfDescr) {
				return out
			}
			// Always the next index, forever.
			last := req.Variables[0].Name
			idx := 0
			if i := strings.LastIndex(last, "."); i >= 0 && last != oidIfDescr {
				idx, _ = strconv.Atoi(last[i+1:])
			}
			resp := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: req.Community, PDUType: gosnmp.GetResponse, RequestID: req.RequestID}
			for k := 1; k <= int(req.MaxRepetitions); k++ {
				resp.Variables = append(resp.Variables, str(fmt.Sprintf("%s.%d", oidIfDescr, idx+k), "if"))
			}
			b, _ := resp.MarshalMsg()
			return b
		}, "more than 100000 rows"},
		{"a table that loops back", switchTable, func(req *gosnmp.SnmpPacket, out []byte) []byte {
			if req.PDUType != gosnmp.GetBulkRequest || !strings.HasPrefix(req.Variables[0].Name, oidIfDescr) {
				return out
			}
			resp := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: req.Community, PDUType: gosnmp.GetResponse, RequestID: req.RequestID,
				Variables: []gosnmp.SnmpPDU{str(oidIfDescr+".1", "again")}}
			b, _ := resp.MarshalMsg()
			return b
		}, "OID not increasing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := startFakeAgent(t, c.table(), c.respond)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var got int
			_, err := New(nil).Discover(ctx, discoverRequest(fakeConfig(t, a.port)), emitCount(&got))
			if err == nil || !strings.Contains(err.Error(), c.want) || got != 0 {
				t.Fatalf("got %d observations, error %v; want %q", got, err, c.want)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoAnswer) {
				t.Errorf("error %v is neither malformed nor no answer", err)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}
