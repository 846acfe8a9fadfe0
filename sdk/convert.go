package sdk

import (
	"fmt"
	"net/netip"
	"time"

	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
)

// Conversions between the Go types plugin authors use and the wire types
// of sdk/proto. Everything that comes off the wire is checked here or in
// Observation.Validate before the host uses it.

func observationToPB(o *Observation) *pb.Observation {
	out := &pb.Observation{
		Hostnames: o.Hostnames, Status: o.Status, Os: o.OS,
		Facts: o.Facts, Labels: o.Labels, InstanceId: o.InstanceID, Source: o.Source,
	}
	if len(o.Addresses) > 0 {
		out.Addresses = make([]*pb.Address, len(o.Addresses))
		for i, a := range o.Addresses {
			out.Addresses[i] = &pb.Address{Addr: a.Addr, Type: a.Type, Vendor: a.Vendor}
		}
	}
	if len(o.Services) > 0 {
		out.Services = make([]*pb.Service, len(o.Services))
		for i, s := range o.Services {
			out.Services[i] = &pb.Service{Protocol: string(s.Protocol), Port: uint32(s.Port), State: s.State,
				Name: s.Name, Product: s.Product, Version: s.Version}
		}
	}
	return out
}

func observationFromPB(p *pb.Observation) (Observation, error) {
	o := Observation{
		Hostnames: p.GetHostnames(), Status: p.GetStatus(), OS: p.GetOs(),
		Facts: p.GetFacts(), Labels: p.GetLabels(), InstanceID: p.GetInstanceId(), Source: p.GetSource(),
	}
	if n := len(p.GetAddresses()); n > 0 {
		o.Addresses = make([]Address, n)
		for i, a := range p.GetAddresses() {
			o.Addresses[i] = Address{Addr: a.GetAddr(), Type: a.GetType(), Vendor: a.GetVendor()}
		}
	}
	if n := len(p.GetServices()); n > 0 {
		o.Services = make([]Service, n)
		for i, s := range p.GetServices() {
			if s.GetPort() > 65535 {
				return o, fmt.Errorf("service %d: port %d is outside 1-65535", i, s.GetPort())
			}
			o.Services[i] = Service{Protocol: Protocol(s.GetProtocol()), Port: uint16(s.GetPort()), State: s.GetState(),
				Name: s.GetName(), Product: s.GetProduct(), Version: s.GetVersion()}
		}
	}
	return o, o.Validate()
}

func scopeToPB(s Scope) *pb.Scope {
	out := &pb.Scope{}
	for _, p := range s.Prefixes {
		out.Prefixes = append(out.Prefixes, p.String())
	}
	if len(s.Ports) > 0 {
		out.Ports = make(map[string]*pb.PortRanges, len(s.Ports))
		for proto, ranges := range s.Ports {
			pr := &pb.PortRanges{}
			for _, r := range ranges {
				pr.Ranges = append(pr.Ranges, &pb.PortRange{First: uint32(r.First), Last: uint32(r.Last)})
			}
			out.Ports[string(proto)] = pr
		}
	}
	return out
}

func scopeFromPB(p *pb.Scope) (Scope, error) {
	var s Scope
	for _, text := range p.GetPrefixes() {
		pfx, err := netip.ParsePrefix(text)
		if err != nil {
			return s, fmt.Errorf("scope: %q is not a CIDR prefix", text)
		}
		s.Prefixes = append(s.Prefixes, pfx.Masked())
	}
	for proto, ranges := range p.GetPorts() {
		if !knownProtocol(Protocol(proto)) {
			return s, fmt.Errorf("scope: unknown protocol %q", proto)
		}
		var out PortRanges
		for _, r := range ranges.GetRanges() {
			if r.GetFirst() < 1 || r.GetLast() > 65535 || r.GetFirst() > r.GetLast() {
				return s, fmt.Errorf("scope: %s port range %d-%d is not within 1-65535", proto, r.GetFirst(), r.GetLast())
			}
			out = append(out, PortRange{First: uint16(r.GetFirst()), Last: uint16(r.GetLast())})
		}
		if s.Ports == nil {
			s.Ports = make(map[Protocol]PortRanges)
		}
		s.Ports[Protocol(proto)] = out.Normalize()
	}
	return s, nil
}

func descriptionToPB(d Description) *pb.Description {
	out := &pb.Description{Name: d.Name, Version: d.Version, Observes: d.Observes}
	for _, f := range d.Fields {
		out.Fields = append(out.Fields, &pb.Field{Name: f.Name, Type: f.Type, Required: f.Required, Description: f.Description})
	}
	return out
}

func descriptionFromPB(p *pb.Description) Description {
	d := Description{Name: p.GetName(), Version: p.GetVersion(), Observes: p.GetObserves()}
	for _, f := range p.GetFields() {
		d.Fields = append(d.Fields, Field{Name: f.GetName(), Type: f.GetType(), Required: f.GetRequired(), Description: f.GetDescription()})
	}
	return d
}

func validationToPB(err error) (*pb.ValidateResponse, error) {
	if err == nil {
		return &pb.ValidateResponse{}, nil
	}
	ve, ok := err.(*ValidationError)
	if !ok {
		// A plain error from Validate still names no field; report it
		// against the block as a whole rather than failing the RPC.
		return &pb.ValidateResponse{Errors: []*pb.FieldError{{Message: err.Error()}}}, nil
	}
	out := &pb.ValidateResponse{}
	for _, f := range ve.Fields {
		out.Errors = append(out.Errors, &pb.FieldError{Field: f.Field, Message: f.Message})
	}
	return out, nil
}

func validationFromPB(p *pb.ValidateResponse) error {
	if len(p.GetErrors()) == 0 {
		return nil
	}
	ve := &ValidationError{}
	for _, f := range p.GetErrors() {
		ve.Fields = append(ve.Fields, FieldError{Field: f.GetField(), Message: f.GetMessage()})
	}
	return ve
}

func eventToPB(e *Event) *pb.Event {
	d := &e.Deviation
	return &pb.Event{
		Id: e.ID, Kind: e.Kind, TimeUnixNano: unixNano(e.Time), Tenant: e.Tenant,
		Deviation: &pb.Deviation{
			Id: d.ID, Rule: d.Rule, Kind: d.Kind, Severity: d.Severity, State: d.State, AssetId: d.AssetID,
			Host: d.Host, Protocol: string(d.Protocol), Port: uint32(d.Port), Detail: d.Detail,
			FirstSeenUnixNano: unixNano(d.FirstSeen), LastSeenUnixNano: unixNano(d.LastSeen),
			AckedBy: d.AckedBy, AckComment: d.AckComment, RuleActive: int32(d.RuleActive), RuleWorst: d.RuleWorst,
			HostActive: int32(d.HostActive), HostWorst: d.HostWorst,
		},
	}
}

func eventFromPB(p *pb.Event) Event {
	d := p.GetDeviation()
	return Event{
		ID: p.GetId(), Kind: p.GetKind(), Time: fromUnixNano(p.GetTimeUnixNano()), Tenant: p.GetTenant(),
		Deviation: DeviationEvent{
			ID: d.GetId(), Rule: d.GetRule(), Kind: d.GetKind(), Severity: d.GetSeverity(), State: d.GetState(),
			AssetID: d.GetAssetId(), Host: d.GetHost(), Protocol: Protocol(d.GetProtocol()), Port: uint16(d.GetPort()),
			Detail: d.GetDetail(), FirstSeen: fromUnixNano(d.GetFirstSeenUnixNano()), LastSeen: fromUnixNano(d.GetLastSeenUnixNano()),
			AckedBy: d.GetAckedBy(), AckComment: d.GetAckComment(), RuleActive: int(d.GetRuleActive()), RuleWorst: d.GetRuleWorst(),
			HostActive: int(d.GetHostActive()), HostWorst: d.GetHostWorst(),
		},
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
