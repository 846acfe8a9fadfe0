package main

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestGroupRulesReadInboundPermissions(t *testing.T) {
	anywhere := []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}
	perm := func(proto string, from, to *int32) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String(proto), FromPort: from, ToPort: to, IpRanges: anywhere}
	}
	p := aws.Int32
	tests := []struct {
		name     string
		perms    []types.IpPermission
		tcp, udp string
	}{
		{"no permission opens nothing", nil, "", ""},
		{"one tcp port", []types.IpPermission{perm("tcp", p(22), p(22))}, "22", ""},
		{"overlapping and adjacent ranges merge", []types.IpPermission{perm("tcp", p(80), p(90)), perm("tcp", p(85), p(100)), perm("tcp", p(101), p(101))}, "80-101", ""},
		{"numbered protocols 6 and 17", []types.IpPermission{perm("6", p(443), p(443)), perm("17", p(53), p(53))}, "443", "53"},
		{"-1 opens every port of both", []types.IpPermission{perm("-1", nil, nil)}, "1-65535", "1-65535"},
		{"tcp 0-65535 is every port", []types.IpPermission{perm("tcp", p(0), p(65535))}, "1-65535", ""},
		{"tcp -1 is every port", []types.IpPermission{perm("tcp", p(-1), p(-1))}, "1-65535", ""},
		{"icmp and esp open no port", []types.IpPermission{perm("icmp", p(-1), p(-1)), perm("50", nil, nil), perm("icmpv6", p(-1), p(-1))}, "", ""},
		{"a range ending at port 0 opens nothing", []types.IpPermission{perm("udp", p(0), p(0))}, "", ""},
		{"a permission with no source admits nothing", []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: p(8080), ToPort: p(8080)}}, "", ""},
		{"a source by prefix list or group counts", []types.IpPermission{
			{IpProtocol: aws.String("tcp"), FromPort: p(1), ToPort: p(2), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String("pl-1")}}},
			{IpProtocol: aws.String("udp"), FromPort: p(3), ToPort: p(4), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String("sg-1")}}},
			{IpProtocol: aws.String("tcp"), FromPort: p(5), ToPort: p(5), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}},
		}, "1-2,5", "3-4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newGroupRules(types.SecurityGroup{GroupId: aws.String("sg-1"), IpPermissions: tc.perms})
			if r.tcp.String() != tc.tcp || r.udp.String() != tc.udp {
				t.Errorf("tcp %q udp %q, want %q %q", r.tcp, r.udp, tc.tcp, tc.udp)
			}
			if r.name != "sg-1" {
				t.Errorf("a group without a name is named by its ID; got %q", r.name)
			}
		})
	}
}

func TestObserveEdgeCases(t *testing.T) {
	t.Run("an instance with no address is left out", func(t *testing.T) {
		if _, ok := observe("us-east-1", "1", &types.Instance{InstanceId: aws.String("i-1")}, nil); ok {
			t.Error("observed an instance without any address")
		}
	})
	t.Run("addresses the host could not take are dropped, the rest kept", func(t *testing.T) {
		o, ok := observe("us-east-1", "1", &types.Instance{
			InstanceId: aws.String("i-2"), PrivateIpAddress: aws.String("not-an-ip"), PublicIpAddress: aws.String("198.19.9.9"),
			NetworkInterfaces: []types.InstanceNetworkInterface{{MacAddress: aws.String("zz:zz"), Ipv6Addresses: []types.InstanceIpv6Address{{Ipv6Address: aws.String("fe80::1%eth0")}}}},
		}, nil)
		if !ok || len(o.Addresses) != 1 || o.Addresses[0].Addr != "198.19.9.9" {
			t.Errorf("addresses %+v", o.Addresses)
		}
		if err := o.Validate(); err != nil {
			t.Error(err)
		}
	})
	t.Run("a group unknown to the region keeps its name and opens nothing", func(t *testing.T) {
		o, _ := observe("us-east-1", "1", &types.Instance{
			InstanceId: aws.String("i-3"), PrivateIpAddress: aws.String("198.18.9.9"),
			SecurityGroups: []types.GroupIdentifier{{GroupId: aws.String("sg-gone"), GroupName: aws.String("deleted")}},
		}, map[string]*groupRules{})
		if o.Facts["security_groups"] != "deleted" || o.Facts["expected_tcp"] != "" || o.Facts["expected_tcp_from"] != "" {
			t.Errorf("facts %v", o.Facts)
		}
	})
}
