package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/plugins/nmap"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkProviderPullAndScan: the real digitalocean plugin pulls 10,000
// droplets (3 addresses each, 5 firewall rules each) from a local server
// in DigitalOcean's API shape, in pages of 200; then an nmap scan of the
// same addresses (imported XML, so that the figure is the daemon's and not
// nmap's) is merged into the same assets, and an expect block judges
// their open ports by their firewalls (tcp_from = "security_groups").
// Timed: both runs, end to end. Target: under 5 s, peak RSS under 300 MB
// (the daemon's process; the plugin is a process of its own).
func BenchmarkProviderPullAndScan(b *testing.B) {
	const droplets, perPage = 10_000, 200
	dir := b.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, sdk.PluginPrefix+"digitalocean"), ".")
	build.Dir = filepath.Join("..", "..", "plugins", "digitalocean")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the digitalocean plugin: %v\n%s", err, out)
	}
	reg := plugins.NewRegistry()
	if err := (&Host{Dir: dir}).Register(reg); err != nil {
		b.Fatal(err)
	}
	api := httptest.NewServer(fakeDigitalOcean(droplets, perPage))
	defer api.Close()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("bench-token\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	pullCfg, _ := json.Marshal(map[string]any{"api_url": api.URL + "/", "token_file": token, "per_page": perPage})
	pull := config.Job{Name: "do", Source: "digitalocean", Tenant: model.DefaultTenant, SourceConfig: pullCfg}
	scanCfg, _ := json.Marshal(map[string]any{"targets": []string{"198.18.0.0/15"}, "ports": "1-1024,3306,8000-8200"})
	scan := config.Job{Name: "scan", Source: "nmap", Tenant: model.DefaultTenant, SourceConfig: scanCfg}
	xml := scanOfDroplets(droplets)
	eng, err := rules.Compile([]rules.Rule{{Name: "cloud", Tenant: model.DefaultTenant,
		CIDRs:      []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")},
		FromGroups: map[sdk.Protocol]bool{sdk.TCP: true}, Severity: model.SeverityCritical}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	var peak int64
	for b.Loop() {
		st, err := store.Open(filepath.Join(b.TempDir(), "data"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		applier := &ingest.Applier{Store: st, Engine: func() *rules.Engine { return eng }}
		puller := &daemon.Executor{Store: st, Sources: reg, Logger: hclog.NewNullLogger(), SpoolDir: b.TempDir(), Applier: applier}
		scanner := &daemon.Executor{Store: st, Sources: importOf{reg, xml}, Logger: hclog.NewNullLogger(), SpoolDir: b.TempDir(), Applier: applier}
		debug.FreeOSMemory()
		resetPeakRSS()
		start := time.Now()
		pulled, err := puller.Execute(context.Background(), pull, "bench")
		if err != nil || pulled.Run.Status != model.RunSucceeded {
			b.Fatalf("pull: %v %+v", err, pulled)
		}
		scanned, err := scanner.Execute(context.Background(), scan, "bench")
		if err != nil || scanned.Run.Status != model.RunSucceeded {
			b.Fatalf("scan: %v %+v", err, scanned)
		}
		took += time.Since(start)
		peak = max(peak, peakRSS())
		var n int
		if err := st.View(context.Background(), func(t *store.Txn) error {
			n, err = t.CountAssets(model.DefaultTenant)
			return err
		}); err != nil || n != droplets {
			b.Fatalf("%d assets after the pull and the scan, want one per droplet (%d): %v", n, droplets, err)
		}
		// Every tenth droplet has 3306 open, which its firewall does not allow.
		if scanned.Summary.Opened != droplets/10 {
			b.Fatalf("%d deviations opened, want %d: %+v", scanned.Summary.Opened, droplets/10, scanned.Summary)
		}
		st.Close()
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/pull+scan")
	b.ReportMetric(float64(peak)/(1<<20), "MB-peak-RSS")
}

// importOf hands the scan job the nmap XML instead of running nmap.
type importOf struct {
	daemon.SourceFinder
	xml []byte
}

func (i importOf) Source(name string, log hclog.Logger) (sdk.Source, error) {
	return nmap.NewImport(bytes.NewReader(i.xml), log), nil
}

// dropletAddrs are droplet i's private and public IPv4 addresses.
func dropletAddrs(i int) (private, public string) {
	return fmt.Sprintf("198.19.%d.%d", i/256, i%256), fmt.Sprintf("198.18.%d.%d", i/256, i%256)
}

// fakeDigitalOcean answers the droplet, firewall and VPC lists of
// DigitalOcean's API v2 with n droplets, perPage a page: two IPv4 and one
// IPv6 address each, and one firewall of 5 inbound rules per 100 droplets.
func fakeDigitalOcean(n, perPage int) http.Handler {
	pages := map[string][]byte{}
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		pages[key] = b
	}
	last := (n + perPage - 1) / perPage
	for pg := 1; pg <= last; pg++ {
		links := map[string]any{}
		if pg < last {
			links["pages"] = map[string]string{"next": fmt.Sprintf("https://api.digitalocean.com/v2/droplets?page=%d&per_page=%d", pg+1, perPage)}
		}
		var ds []map[string]any
		for i := (pg - 1) * perPage; i < min(pg*perPage, n); i++ {
			private, public := dropletAddrs(i)
			ds = append(ds, map[string]any{
				"id": 100000 + i, "name": fmt.Sprintf("bench-%05d", i), "status": "active", "size_slug": "s-1vcpu-1gb",
				"region": map[string]any{"slug": "nyc3"}, "image": map[string]any{"slug": "ubuntu-24-04-x64"},
				"networks": map[string]any{
					"v4": []map[string]any{{"ip_address": private, "type": "private"}, {"ip_address": public, "type": "public"}},
					"v6": []map[string]any{{"ip_address": fmt.Sprintf("2001:db8:%x::%x", i/256, i%256+1), "type": "public"}},
				},
				"tags": []string{"bench"}, "vpc_uuid": "00000000-0000-4000-8000-000000000001",
			})
		}
		put("droplets "+strconv.Itoa(pg), map[string]any{"droplets": ds, "links": links, "meta": map[string]int{"total": n}})
	}
	var fws []map[string]any
	anywhere := map[string]any{"addresses": []string{"0.0.0.0/0", "::/0"}}
	for f := 0; f*100 < n; f++ {
		var ids []int
		for i := f * 100; i < min(f*100+100, n); i++ {
			ids = append(ids, 100000+i)
		}
		fws = append(fws, map[string]any{"id": fmt.Sprintf("fw-%d", f), "name": fmt.Sprintf("web-%03d", f), "status": "succeeded",
			"inbound_rules": []map[string]any{
				{"protocol": "tcp", "ports": "22", "sources": anywhere}, {"protocol": "tcp", "ports": "443", "sources": anywhere},
				{"protocol": "tcp", "ports": "8000-8100", "sources": anywhere}, {"protocol": "udp", "ports": "161", "sources": anywhere},
				{"protocol": "icmp", "sources": anywhere},
			}, "droplet_ids": ids})
	}
	put("firewalls 1", map[string]any{"firewalls": fws, "links": map[string]any{}, "meta": map[string]int{"total": len(fws)}})
	put("vpcs 1", map[string]any{"vpcs": []map[string]any{{"id": "00000000-0000-4000-8000-000000000001", "name": "default", "region": "nyc3"}},
		"links": map[string]any{}, "meta": map[string]int{"total": 1}})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		if page == "" {
			page = "1"
		}
		b, ok := pages[strings.TrimPrefix(r.URL.Path, "/v2/")+" "+page]
		if !ok || r.Header.Get("Authorization") != "Bearer bench-token" {
			http.Error(w, `{"id":"not_found","message":"not here"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}

// scanOfDroplets is the nmap XML of a scan that finds every droplet on
// both its addresses with 22 and 443 open, and 3306 on every tenth.
func scanOfDroplets(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap -sS -p 1-1024,3306,8000-8200 198.18.0.0/15" start="1764590000" version="7.93" xmloutputversion="1.05">` + "\n")
	b.WriteString(`<scaninfo type="syn" protocol="tcp" numservices="1226" services="1-1024,3306,8000-8200"/>` + "\n")
	for i := 0; i < n; i++ {
		private, public := dropletAddrs(i)
		for _, ip := range []string{public, private} {
			fmt.Fprintf(&b, `<host><status state="up" reason="syn-ack"/><address addr="%s" addrtype="ipv4"/><ports>`, ip)
			for _, p := range []int{22, 443} {
				fmt.Fprintf(&b, `<port protocol="tcp" portid="%d"><state state="open" reason="syn-ack"/></port>`, p)
			}
			if i%10 == 0 {
				b.WriteString(`<port protocol="tcp" portid="3306"><state state="open" reason="syn-ack"/><service name="mysql"/></port>`)
			}
			b.WriteString("</ports></host>\n")
		}
	}
	// The scan covered the whole /15 the job targets.
	fmt.Fprintf(&b, `<runstats><finished time="1764590060" exit="success"/><hosts up="%d" down="%d" total="131072"/></runstats></nmaprun>`+"\n", 2*n, 131072-2*n)
	return b.Bytes()
}

func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM from /proc/self/status, in bytes; 0 if unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
