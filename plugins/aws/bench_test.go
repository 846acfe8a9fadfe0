package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// benchPages builds a region of n instances served in pages of size, each
// instance with three addresses (private and public IPv4 and the MAC of
// its ENI) and two security groups holding five inbound rules together.
func benchPages(region string, n, size int) map[string][]byte {
	pages := map[string][]byte{}
	const groups = 100
	var sg strings.Builder
	sg.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<DescribeSecurityGroupsResponse xmlns=\"" + ec2NS + "\"><requestId>bench</requestId><securityGroupInfo>")
	rule := func(proto string, from, to int) string {
		return fmt.Sprintf(`<item><ipProtocol>%s</ipProtocol><fromPort>%d</fromPort><toPort>%d</toPort><groups/><ipRanges><item><cidrIp>198.18.0.0/15</cidrIp></item></ipRanges><ipv6Ranges/><prefixListIds/></item>`, proto, from, to)
	}
	for g := range groups {
		var rules string
		if g%2 == 0 { // three rules
			rules = rule("tcp", 22, 22) + rule("tcp", 8000+g, 8000+g) + rule("udp", 161, 161)
		} else { // two rules
			rules = rule("tcp", 443, 443) + rule("tcp", 9000, 9100)
		}
		fmt.Fprintf(&sg, `<item><ownerId>123456789012</ownerId><groupId>sg-%017x</groupId><groupName>group-%d</groupName><groupDescription>bench</groupDescription><vpcId>vpc-0b00000000000001</vpcId><ipPermissions>%s</ipPermissions><ipPermissionsEgress/><tagSet/></item>`, g, g, rules)
	}
	sg.WriteString("</securityGroupInfo></DescribeSecurityGroupsResponse>\n")
	pages[region+"/DescribeSecurityGroups/"] = []byte(sg.String())

	for p := 0; p*size < n; p++ {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<DescribeInstancesResponse xmlns=\"" + ec2NS + "\"><requestId>bench</requestId><reservationSet>")
		for i := p * size; i < min((p+1)*size, n); i++ {
			priv := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
			pub := fmt.Sprintf("198.19.%d.%d", i/250, i%250+1)
			mac := fmt.Sprintf("0e:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
			g1, g2 := (i*2)%groups, (i*2+1)%groups
			groupSet := fmt.Sprintf(`<groupSet><item><groupId>sg-%017x</groupId><groupName>group-%d</groupName></item><item><groupId>sg-%017x</groupId><groupName>group-%d</groupName></item></groupSet>`, g1, g1, g2, g2)
			fmt.Fprintf(&b, `<item><reservationId>r-%017x</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet><item>`+
				`<instanceId>i-%017x</instanceId><imageId>ami-0b00000000000001</imageId><instanceState><code>16</code><name>running</name></instanceState>`+
				`<privateDnsName>ip-%s.ec2.internal</privateDnsName><dnsName/><instanceType>m7g.large</instanceType><launchTime>2024-01-01T00:00:00.000Z</launchTime>`+
				`<placement><availabilityZone>%sa</availabilityZone><tenancy>default</tenancy></placement><subnetId>subnet-0b00000000000001</subnetId><vpcId>vpc-0b00000000000001</vpcId>`+
				`<privateIpAddress>%s</privateIpAddress><ipAddress>%s</ipAddress>%s<architecture>arm64</architecture>`+
				`<tagSet><item><key>Name</key><value>node-%d</value></item><item><key>env</key><value>bench</value></item></tagSet>`+
				`<networkInterfaceSet><item><networkInterfaceId>eni-%017x</networkInterfaceId><subnetId>subnet-0b00000000000001</subnetId><vpcId>vpc-0b00000000000001</vpcId>`+
				`<status>in-use</status><macAddress>%s</macAddress><privateIpAddress>%s</privateIpAddress>%s`+
				`<attachment><deviceIndex>0</deviceIndex><networkCardIndex>0</networkCardIndex><status>attached</status></attachment>`+
				`<association><publicIp>%s</publicIp><ipOwnerId>amazon</ipOwnerId></association>`+
				`<privateIpAddressesSet><item><privateIpAddress>%s</privateIpAddress><primary>true</primary><association><publicIp>%s</publicIp></association></item></privateIpAddressesSet>`+
				`<ipv6AddressesSet/></item></networkInterfaceSet></item></instancesSet></item>`,
				i, i, priv, region, priv, pub, groupSet, i, i, mac, priv, groupSet, pub, priv, pub)
		}
		b.WriteString("</reservationSet>")
		if (p+1)*size < n {
			fmt.Fprintf(&b, "<nextToken>page-%d</nextToken>", p+1)
		}
		b.WriteString("</DescribeInstancesResponse>\n")
		token := ""
		if p > 0 {
			token = fmt.Sprintf("page-%d", p)
		}
		pages[region+"/DescribeInstances/"+token] = []byte(b.String())
	}
	return pages
}

// heapPeak samples the heap's live objects until stop is closed.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// BenchmarkPull10kInstances pulls 10,000 instances in pages of 200 from
// the fake EC2 endpoint through the real SDK, and reports instances per
// second and the peak heap (the fake's pages, about 20 MB, included).
func BenchmarkPull10kInstances(b *testing.B) {
	const n, pageSize = 10000, 200
	awsEnv(b)
	f := &fakeEC2{pages: benchPages("us-east-1", n, pageSize)}
	srv := startFake(b, f)
	cfg := jobConfig(srv.URL, map[string]any{"regions": []string{"us-east-1"}})
	runtime.GC()
	stop := make(chan struct{})
	peak := heapPeak(stop)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		var got atomic.Int64
		_, err := (&source{}).Discover(context.Background(), sdk.DiscoverRequest{Config: cfg},
			sdk.EmitterFunc(func(_ context.Context, batch []sdk.Observation) error {
				got.Add(int64(len(batch)))
				return nil
			}))
		if err != nil {
			b.Fatal(err)
		}
		if got.Load() != n {
			b.Fatalf("emitted %d observations, want %d", got.Load(), n)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "instances/s")
	b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MB")
}
