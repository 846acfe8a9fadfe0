package nmap

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sollwert/sollwert/sdk"
)

func TestChunksOf(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	for _, tc := range []struct {
		in   []netip.Prefix
		size int
		want string
	}{
		{p("198.18.0.0/26"), 16, "[198.18.0.0/28] [198.18.0.16/28] [198.18.0.32/28] [198.18.0.48/28]"},
		{p("198.18.0.0/28"), 16, "[198.18.0.0/28]"},
		{p("198.18.0.1/32", "198.18.0.2/32", "198.18.0.8/29", "198.18.0.16/30", "198.18.0.32/29"), 16, "[198.18.0.1/32 198.18.0.2/32 198.18.0.8/29 198.18.0.16/30] [198.18.0.32/29]"},
		{p("198.18.0.0/30", "198.19.0.0/27"), 16, "[198.18.0.0/30] [198.19.0.0/28] [198.19.0.16/28]"},
		{p("2001:db8::/123"), 16, "[2001:db8::/124] [2001:db8::10/124]"},
		{p("255.255.255.224/27"), 16, "[255.255.255.224/28] [255.255.255.240/28]"},
	} {
		if got := fmt.Sprint(chunksOf(tc.in, tc.size)); got != "["+tc.want+"]" {
			t.Errorf("chunksOf(%v, %d) = %s, want %s", tc.in, tc.size, got, tc.want)
		}
	}
}

// parts collects finished parts, as the executor does.
type parts struct {
	collector
	mu     sync.Mutex
	scopes []string
	open   map[string][]uint16
}

func (p *parts) EmitPart(_ context.Context, obs []sdk.Observation, scope sdk.Scope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scopes = append(p.scopes, fmt.Sprint(scope.Prefixes))
	if p.open == nil {
		p.open = map[string][]uint16{}
	}
	for _, o := range obs {
		ip, _ := o.IP()
		for port := range openOf(o) {
			p.open[ip.String()] = append(p.open[ip.String()], port)
		}
	}
	return nil
}

// TestRealChunkedScan: a /27 of loopback in chunks of 16, with the real
// nmap: two parts, each with its own scope, each holding its listener.
func TestRealChunkedScan(t *testing.T) {
	requireNmap(t)
	a, b := listen(t, "127.0.0.1"), listen(t, "127.0.0.17")
	col := &parts{}
	res, err := New(nil).Discover(t.Context(), sdk.DiscoverRequest{Job: "test", RunID: "r1",
		Config: []byte(fmt.Sprintf(`{"targets":["127.0.0.0/27"],"ports":"%d,%d","skip_host_discovery":true,"scan_type":"connect","chunk_size":16}`, a, b))}, col)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(col.scopes)
	if strings.Join(col.scopes, " ") != "[127.0.0.0/28] [127.0.0.16/28]" || fmt.Sprint(col.open) != fmt.Sprint(map[string][]uint16{"127.0.0.1": {a}, "127.0.0.17": {b}}) {
		t.Fatalf("parts %v open %v", col.scopes, col.open)
	}
	if len(res.Scope.Prefixes) != 0 || len(col.all()) != 0 {
		t.Fatalf("chunks must go as parts only: result scope %v, emitted %v", res.Scope.Prefixes, col.all())
	}
}
