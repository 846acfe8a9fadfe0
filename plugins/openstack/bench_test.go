package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// genCloud fills a fake cloud with n servers, each with three addresses
// (a fixed IPv4, an IPv6 and a floating IPv4) on one port, and its own
// security group of five ingress rules.
func genCloud(b testing.TB, n int) *fakeCloud {
	b.Helper()
	f := &fakeCloud{
		username: fakeUser, password: fakePassword, project: fakeProject, domain: "Default",
		tokens: map[string]bool{}, requests: map[string]int{},
	}
	var err error
	if f.token, err = os.ReadFile(filepath.Join("testdata", "keystone-token.json")); err != nil {
		b.Fatal(err)
	}
	tcp, udp := "tcp", "udp"
	for i := range n {
		id := fmt.Sprintf("6e1d2c3b-4a59-4f68-8e7d-%012d", i)
		gid := fmt.Sprintf("c0ffee00-1111-4a00-9000-%012d", i)
		mac := fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		v4 := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
		fl := fmt.Sprintf("198.19.%d.%d", i/250, i%250+1)
		v6 := fmt.Sprintf("2001:db8:1::%x", i+1)
		srv := map[string]any{
			"id": id, "name": fmt.Sprintf("vm-%05d", i), "status": "ACTIVE", "tenant_id": "5c3e0f6a9b2d4e8f8a1b2c3d4e5f6a7b",
			"user_id": "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b", "created": "2026-03-02T10:15:00Z", "updated": "2026-03-02T10:15:00Z",
			"hostId": "a3f1c0de9b8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4f3e2", "key_name": "ops",
			"OS-EXT-AZ:availability_zone": "nova", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1,
			"flavor":   map[string]any{"original_name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0, "extra_specs": map[string]any{}},
			"image":    map[string]any{"id": "3f0b5c1e-7d2a-4c8e-9b6f-1a2b3c4d5e6f", "links": []any{}},
			"metadata": map[string]string{"env": "bench", "index": fmt.Sprint(i)},
			"tags":     []string{"bench"},
			"links":    []any{map[string]string{"href": "http://nova.example/v2.1/servers/" + id, "rel": "self"}},
			"addresses": map[string]any{"private": []any{
				map[string]any{"addr": v4, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac},
				map[string]any{"addr": v6, "version": 6, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac},
				map[string]any{"addr": fl, "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac},
			}},
			"security_groups": []any{map[string]string{"name": "sg-" + fmt.Sprint(i)}},
		}
		prt := map[string]any{
			"id": fmt.Sprintf("d0d0d0d0-0000-4000-8000-%012d", i), "device_id": id, "device_owner": "compute:nova",
			"network_id": "a1b2c3d4-0000-4000-8000-00000000f001", "mac_address": mac, "status": "ACTIVE", "admin_state_up": true,
			"fixed_ips":       []any{map[string]string{"subnet_id": "s4", "ip_address": v4}, map[string]string{"subnet_id": "s6", "ip_address": v6}},
			"security_groups": []string{gid}, "port_security_enabled": true,
		}
		rule := func(proto *string, lo, hi int) map[string]any {
			return map[string]any{"id": fmt.Sprintf("%s-%d", gid, lo), "direction": "ingress", "ethertype": "IPv4", "security_group_id": gid,
				"protocol": proto, "port_range_min": lo, "port_range_max": hi, "remote_ip_prefix": "0.0.0.0/0"}
		}
		grp := map[string]any{
			"id": gid, "name": "sg-" + fmt.Sprint(i), "project_id": "5c3e0f6a9b2d4e8f8a1b2c3d4e5f6a7b", "stateful": true,
			"security_group_rules": []any{rule(&tcp, 22, 22), rule(&tcp, 80, 80), rule(&tcp, 443, 443), rule(&tcp, 8000+i%100, 8100+i%100), rule(&udp, 53, 53)},
		}
		f.servers = append(f.servers, item{id: id, raw: mustJSON(b, srv)})
		f.ports = append(f.ports, item{id: prt["id"].(string), deviceID: id, raw: mustJSON(b, prt)})
		f.groups = append(f.groups, item{id: gid, raw: mustJSON(b, grp)})
	}
	f.index()
	f.start(b)
	return f
}

func mustJSON(b testing.TB, v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkPull10000 pulls 10,000 servers in pages of 200 from the fake
// cloud (in the same process) and reports instances per second and the
// peak heap above what the fake's own fixtures hold.
func BenchmarkPull10000(b *testing.B) {
	const n = 10000
	f := genCloud(b, n)
	pw := writeSecret(b, "pw", f.password)
	config := []byte(fmt.Sprintf(`{"auth_url": %q, "username": %q, "password_file": %q, "project_name": %q, "page_size": 200}`,
		f.authURL(), f.username, pw, f.project))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()

	ctx := hclog.WithContext(context.Background(), hclog.NewNullLogger())
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		got := 0
		_, err := (&source{}).Discover(ctx, sdk.DiscoverRequest{Config: config},
			sdk.EmitterFunc(func(_ context.Context, batch []sdk.Observation) error {
				got += len(batch)
				return nil
			}))
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("%d observations, want %d", got, n)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "instances/s")
	b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/(1<<20), "peak-heap-MB")
}
