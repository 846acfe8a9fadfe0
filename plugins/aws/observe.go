package main

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/sollwert/sollwert/sdk"
)

// provider is the prefix of every instance ID and the value of the
// provider fact.
const provider = "aws"

// allPorts is what a rule for every protocol ("-1") or every port opens.
var allPorts = sdk.PortRanges{{First: 1, Last: 65535}}

// groupRules is what one security group allows inbound, by protocol.
type groupRules struct {
	id, name string
	tcp, udp sdk.PortRanges
}

// newGroupRules reads a group's inbound permissions. A permission for
// protocol "-1" (all traffic) opens every TCP and UDP port; one for tcp
// or udp opens FromPort-ToPort, port 0 read as 1 and -1 as every port.
// ICMP and other protocols open no port. A permission naming no source
// (no CIDR, prefix list or group) admits nothing and is skipped.
func newGroupRules(g types.SecurityGroup) *groupRules {
	r := &groupRules{id: aws.ToString(g.GroupId), name: aws.ToString(g.GroupName)}
	if r.name == "" {
		r.name = r.id
	}
	for _, p := range g.IpPermissions {
		if len(p.IpRanges)+len(p.Ipv6Ranges)+len(p.PrefixListIds)+len(p.UserIdGroupPairs) == 0 {
			continue
		}
		switch strings.ToLower(aws.ToString(p.IpProtocol)) {
		case "-1", "all":
			r.tcp = r.tcp.Union(allPorts)
			r.udp = r.udp.Union(allPorts)
		case "tcp", "6":
			r.tcp = r.tcp.Union(permissionPorts(p))
		case "udp", "17":
			r.udp = r.udp.Union(permissionPorts(p))
		}
	}
	return r
}

// permissionPorts is the port range of a tcp or udp permission.
func permissionPorts(p types.IpPermission) sdk.PortRanges {
	if p.FromPort == nil || p.ToPort == nil || *p.FromPort == -1 || *p.ToPort == -1 {
		return allPorts
	}
	from, to := max(*p.FromPort, 1), min(*p.ToPort, 65535)
	if to < from {
		return nil
	}
	return sdk.PortRanges{{First: uint16(from), Last: uint16(to)}}
}

// addrSet collects an instance's addresses in order, once each.
type addrSet struct {
	list []sdk.Address
	seen map[string]bool
}

func (a *addrSet) ip(s *string) {
	ip, err := netip.ParseAddr(aws.ToString(s))
	if err != nil || ip.Zone() != "" {
		return // absent, or nothing the host could take
	}
	ip = ip.Unmap()
	typ := "ipv4"
	if ip.Is6() {
		typ = "ipv6"
	}
	a.add(ip.String(), typ)
}

func (a *addrSet) mac(s *string) {
	hw, err := net.ParseMAC(aws.ToString(s))
	if err != nil {
		return
	}
	a.add(hw.String(), "mac")
}

func (a *addrSet) add(addr, typ string) {
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	if !a.seen[addr] {
		a.seen[addr] = true
		a.list = append(a.list, sdk.Address{Addr: addr, Type: typ})
	}
}

// observe turns one instance into an observation. It reports false for an
// instance with no address at all (a terminated one, typically), which the
// host could not take.
func observe(region, owner string, in *types.Instance, rules map[string]*groupRules) (sdk.Observation, bool) {
	id := aws.ToString(in.InstanceId)
	state := ""
	if in.State != nil {
		state = string(in.State.Name)
	}
	o := sdk.Observation{
		InstanceID: provider + ":" + id,
		Status:     sdk.StatusDown,
		Labels:     make(map[string]string, len(in.Tags)),
	}
	if in.State != nil && in.State.Name == types.InstanceStateNameRunning {
		o.Status = sdk.StatusUp
	}
	for _, t := range in.Tags {
		o.Labels[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if name := o.Labels["Name"]; name != "" {
		o.Hostnames = []string{name}
	}

	// ENIs in the order of their attachment: network card, then device.
	enis := make([]*types.InstanceNetworkInterface, len(in.NetworkInterfaces))
	for i := range in.NetworkInterfaces {
		enis[i] = &in.NetworkInterfaces[i]
	}
	sort.SliceStable(enis, func(i, j int) bool {
		ci, di := attachmentOrder(enis[i])
		cj, dj := attachmentOrder(enis[j])
		return ci < cj || (ci == cj && di < dj)
	})

	// The primary private address first: it is the one the host treats as
	// the instance's address when it needs one.
	var addrs addrSet
	addrs.ip(in.PrivateIpAddress)
	addrs.ip(in.PublicIpAddress)
	addrs.ip(in.Ipv6Address)
	facts := map[string]string{
		"provider":       provider,
		"region":         region,
		"instance_state": state,
		"instance_type":  string(in.InstanceType),
		"image":          aws.ToString(in.ImageId),
		"vpc":            aws.ToString(in.VpcId),
		"subnet":         aws.ToString(in.SubnetId),
	}
	groupIDs := map[string]string{} // id -> name
	for _, g := range in.SecurityGroups {
		groupIDs[aws.ToString(g.GroupId)] = aws.ToString(g.GroupName)
	}
	for n, e := range enis {
		prefix := "eni." + strconv.Itoa(n) + "."
		var private, public, v6, names []string
		if e.Association != nil {
			addrs.ip(e.Association.PublicIp)
		}
		for _, p := range e.PrivateIpAddresses {
			addrs.ip(p.PrivateIpAddress)
			private = appendNonEmpty(private, aws.ToString(p.PrivateIpAddress))
			if p.Association != nil {
				addrs.ip(p.Association.PublicIp)
				public = appendNonEmpty(public, aws.ToString(p.Association.PublicIp))
			}
		}
		if len(private) == 0 {
			addrs.ip(e.PrivateIpAddress)
			private = appendNonEmpty(private, aws.ToString(e.PrivateIpAddress))
		}
		if len(public) == 0 && e.Association != nil {
			public = appendNonEmpty(public, aws.ToString(e.Association.PublicIp))
		}
		for _, a := range e.Ipv6Addresses {
			addrs.ip(a.Ipv6Address)
			v6 = appendNonEmpty(v6, aws.ToString(a.Ipv6Address))
		}
		for _, g := range e.Groups {
			groupIDs[aws.ToString(g.GroupId)] = aws.ToString(g.GroupName)
			names = append(names, aws.ToString(g.GroupName))
		}
		sort.Strings(names)
		setNonEmpty(facts, prefix+"id", aws.ToString(e.NetworkInterfaceId))
		setNonEmpty(facts, prefix+"mac", strings.ToLower(aws.ToString(e.MacAddress)))
		setNonEmpty(facts, prefix+"subnet", aws.ToString(e.SubnetId))
		setNonEmpty(facts, prefix+"private_ips", strings.Join(private, ","))
		setNonEmpty(facts, prefix+"public_ips", strings.Join(public, ","))
		setNonEmpty(facts, prefix+"ipv6", strings.Join(v6, ","))
		setNonEmpty(facts, prefix+"security_groups", strings.Join(names, ","))
	}
	for _, e := range enis {
		addrs.mac(e.MacAddress)
	}
	if len(addrs.list) == 0 {
		return sdk.Observation{}, false
	}
	o.Addresses = addrs.list

	// What the attached groups allow inbound, together.
	var tcp, udp sdk.PortRanges
	var names, ids, tcpFrom, udpFrom []string
	for gid, gname := range groupIDs {
		ids = append(ids, gid)
		r := rules[gid]
		if r == nil {
			// Not among the region's groups (deleted meanwhile): its name
			// from the instance, and no ports.
			r = &groupRules{id: gid, name: gname}
			if r.name == "" {
				r.name = gid
			}
		}
		names = append(names, r.name)
		if len(r.tcp) > 0 {
			tcp = tcp.Union(r.tcp)
			tcpFrom = append(tcpFrom, r.name)
		}
		if len(r.udp) > 0 {
			udp = udp.Union(r.udp)
			udpFrom = append(udpFrom, r.name)
		}
	}
	for _, l := range [][]string{names, ids, tcpFrom, udpFrom} {
		sort.Strings(l)
	}
	facts["security_groups"] = strings.Join(names, ",")
	facts["security_group_ids"] = strings.Join(ids, ",")
	facts["expected_tcp"] = tcp.String()
	facts["expected_udp"] = udp.String()
	facts["expected_tcp_from"] = strings.Join(tcpFrom, ",")
	facts["expected_udp_from"] = strings.Join(udpFrom, ",")

	if in.Placement != nil {
		setNonEmpty(facts, "availability_zone", aws.ToString(in.Placement.AvailabilityZone))
	}
	if in.LaunchTime != nil {
		facts["created"] = in.LaunchTime.UTC().Format(time.RFC3339)
	}
	setNonEmpty(facts, "owner", owner)
	setNonEmpty(facts, "private_dns", aws.ToString(in.PrivateDnsName))
	setNonEmpty(facts, "public_dns", aws.ToString(in.PublicDnsName))
	setNonEmpty(facts, "key_name", aws.ToString(in.KeyName))
	setNonEmpty(facts, "platform", aws.ToString(in.PlatformDetails))
	setNonEmpty(facts, "architecture", string(in.Architecture))
	setNonEmpty(facts, "lifecycle", string(in.InstanceLifecycle))
	o.Facts = facts
	return o, true
}

func attachmentOrder(e *types.InstanceNetworkInterface) (card, device int32) {
	if e.Attachment == nil {
		return 1 << 30, 1 << 30
	}
	return aws.ToInt32(e.Attachment.NetworkCardIndex), aws.ToInt32(e.Attachment.DeviceIndex)
}

func appendNonEmpty(l []string, s string) []string {
	if s == "" {
		return l
	}
	return append(l, s)
}

func setNonEmpty(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}
