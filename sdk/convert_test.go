package sdk

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
)

func TestObservationRoundTrip(t *testing.T) {
	in := Observation{
		Addresses: []Address{{Addr: "198.18.0.1", Type: "ipv4"}, {Addr: "2001:db8::1", Type: "ipv6"}, {Addr: "52:54:00:12:34:56", Type: "mac", Vendor: "QEMU"}},
		Hostnames: []string{"a.test"}, Status: StatusUp, OS: "Linux",
		Services: []Service{{Protocol: TCP, Port: 22, State: "open", Name: "ssh", Product: "OpenSSH", Version: "9.2"}},
		Facts:    map[string]string{"serial": "X1"}, Labels: map[string]string{"team": "net"}, InstanceID: "i-1", Source: "snmp-neighbour",
	}
	out, err := observationFromPB(observationToPB(&in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the observation:\n in %+v\nout %+v", in, out)
	}
}

func TestScopeRoundTripAndChecks(t *testing.T) {
	in := Scope{Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, Ports: map[Protocol]PortRanges{TCP: {{1, 1024}, {8080, 8080}}}}
	out, err := scopeFromPB(scopeToPB(in))
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	bad := []struct {
		scope *pb.Scope
		want  string
	}{
		{&pb.Scope{Prefixes: []string{"198.18.0.0/33"}}, "is not a CIDR prefix"},
		{&pb.Scope{Ports: map[string]*pb.PortRanges{"icmp": {}}}, `unknown protocol "icmp"`},
		{&pb.Scope{Ports: map[string]*pb.PortRanges{"tcp": {Ranges: []*pb.PortRange{{First: 0, Last: 10}}}}}, "not within 1-65535"},
		{&pb.Scope{Ports: map[string]*pb.PortRanges{"tcp": {Ranges: []*pb.PortRange{{First: 10, Last: 70000}}}}}, "not within 1-65535"},
	}
	for _, c := range bad {
		if _, err := scopeFromPB(c.scope); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.scope, err, c.want)
		}
	}
}

func TestObservationValidate(t *testing.T) {
	ok := func() Observation {
		return Observation{Addresses: []Address{{Addr: "198.18.0.1", Type: "ipv4"}}, Services: []Service{{Protocol: TCP, Port: 22, State: "open"}}}
	}
	cases := []struct {
		name   string
		change func(*Observation)
		want   string
	}{
		{"valid", func(*Observation) {}, ""},
		{"no address", func(o *Observation) { o.Addresses = nil }, "no address"},
		{"bad ipv4", func(o *Observation) { o.Addresses[0].Addr = "198.18.0.300" }, "is not an IP address"},
		{"v6 typed as v4", func(o *Observation) { o.Addresses[0].Addr = "2001:db8::1" }, "is not an ipv4 address"},
		{"zone", func(o *Observation) { o.Addresses[0] = Address{Addr: "fe80::1%eth0", Type: "ipv6"} }, "is not an IP address"},
		{"bad mac", func(o *Observation) { o.Addresses[0] = Address{Addr: "52:54:00", Type: "mac"} }, "is not a MAC address"},
		{"unknown type", func(o *Observation) { o.Addresses[0].Type = "dns" }, `type "dns"`},
		{"bad status", func(o *Observation) { o.Status = "maybe" }, `status "maybe"`},
		{"bad protocol", func(o *Observation) { o.Services[0].Protocol = "icmp" }, `protocol "icmp"`},
		{"port zero", func(o *Observation) { o.Services[0].Port = 0 }, "port 0"},
		{"no state", func(o *Observation) { o.Services[0].State = "" }, "no state"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok()
			c.change(&o)
			err := o.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestEventRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	in := Event{ID: "e1", Kind: EventOpened, Time: now, Tenant: "default", Deviation: DeviationEvent{
		ID: "d1", Rule: "r", Kind: "unexpected_port", Severity: "critical", State: "open", AssetID: "a1", Host: "198.18.0.1",
		Protocol: TCP, Port: 23, Detail: "telnet open", FirstSeen: now, LastSeen: now.Add(time.Hour), AckedBy: "ops", AckComment: "known", RuleActive: 2, RuleWorst: "critical", HostActive: 3, HostWorst: "critical",
	}}
	if out := eventFromPB(eventToPB(&in)); !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
}

func TestLineTailKeepsTheLastLines(t *testing.T) {
	tail := &lineTail{max: 3}
	tail.Write([]byte(`{"@level":"error","@message":"first"}` + "\n" + "panic: boom\n"))
	tail.Write([]byte("goroutine 1 [running]:\nmain.main()\n\tmain.go:12 +0x1"))
	tail.Write([]byte("\n"))
	got := tail.lines()
	want := []string{"goroutine 1 [running]:", "main.main()", "\tmain.go:12 +0x1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	tail = &lineTail{max: 5}
	tail.Write([]byte(`{"@level":"error","@message":"disk full"}` + "\n"))
	if got := tail.lines(); len(got) != 1 || got[0] != "[ERROR] disk full" {
		t.Fatalf("JSON log line: %q", got)
	}
}
