package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/ingest"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/plugins/nmap"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkScanRun compares one full sollwert run (nmap, streaming parse,
// store, history, rules, deviations) with running nmap alone on the same
// 127.0.0.1 ports, in the same benchmark run: what sollwert adds on top of
// the scan users would otherwise run by hand.
func BenchmarkScanRun(b *testing.B) {
	bin, err := exec.LookPath("nmap")
	if err != nil {
		b.Skip("nmap not installed")
	}
	const nListeners = 50
	var ports string
	for i := 0; i < nListeners; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		if i > 0 {
			ports += ","
		}
		ports += fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	}
	ports += ",1-1024"
	args := []string{"-n", "-Pn", "-sT", "-T4", "-p", ports, "127.0.0.1", "-oX", "-"}

	var nmapAlone time.Duration
	b.Run("nmap-alone", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		}
		nmapAlone = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("sollwert", func(b *testing.B) {
		st, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		eng, err := rules.Compile([]rules.Rule{{Name: "lo", CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Allowed: map[sdk.Protocol]sdk.PortRanges{sdk.TCP: {{First: 22, Last: 22}}}}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		reg := plugins.NewRegistry()
		_ = reg.Register("nmap", func(l hclog.Logger) sdk.Source { return nmap.New(l) })
		exe := &Executor{Store: st, Sources: reg, Logger: hclog.NewNullLogger(),
			Applier: &ingest.Applier{Store: st, Engine: func() *rules.Engine { return eng }}}
		src, _ := json.Marshal(map[string]any{"targets": []string{"127.0.0.1"}, "ports": ports, "scan_type": "connect", "skip_host_discovery": true})
		job := config.Job{Name: "bench", Source: "nmap", Tenant: model.DefaultTenant, SourceConfig: src}
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			out, err := exe.Execute(context.Background(), job, "bench")
			if err != nil {
				b.Fatal(err)
			}
			if out.Summary.Hosts != 1 {
				b.Fatalf("summary %+v", out.Summary)
			}
		}
		per := b.Elapsed() / time.Duration(b.N)
		if nmapAlone > 0 {
			b.ReportMetric(float64(per)/float64(nmapAlone), "x-nmap-alone")
		}
	})
}
