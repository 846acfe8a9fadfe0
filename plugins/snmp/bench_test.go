package snmp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/sollwert/sollwert/internal/testsnmpd"
	"github.com/sollwert/sollwert/sdk"
)

// walkOIDs are the IF-MIB columns and the neighbour table this source
// reads, walked the same way by both sides of BenchmarkWalk.
var walkOIDs = []string{oidIfDescr, oidIfType, oidIfSpeed, oidIfPhysAddress, oidIfAdminStatus, oidIfOperStatus,
	oidIfName, oidIfHighSpeed, oidIfAlias, oidIPNetToPhysicalPhysAddr, oidIPNetToMediaPhysAddress}

// BenchmarkWalk walks IF-MIB and the ARP tables of a real snmpd whose
// namespace has 200 interfaces and 2,000 neighbours, once with net-snmp's
// snmpbulkwalk (one run per OID, as a script would) and once with this
// source's walker, in the same run; both ask for 25 repetitions.
func BenchmarkWalk(b *testing.B) {
	a := testsnmpd.Start(b, "bench")
	a.Populate(b, 200, 2000)
	bulkwalk, err := exec.LookPath("snmpbulkwalk")
	if err != nil {
		b.Fatal("snmpbulkwalk is not installed (Debian package snmp)")
	}
	var netsnmp time.Duration
	varbinds := 0
	b.Run("snmpbulkwalk", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			varbinds = 0
			for _, oid := range walkOIDs {
				cmd := exec.Command(bulkwalk, "-v2c", "-c", testsnmpd.Community, "-Cr25", "-On", "-Oq", "-t", "2", "-r", "0",
					fmt.Sprintf("%s:%d", a.Addr, a.Port), oid)
				cmd.Env = append(os.Environ(), "MIBS=")
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("snmpbulkwalk %s: %v", oid, err)
				}
				varbinds += strings.Count(string(out), "\n")
			}
		}
		netsnmp = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(varbinds), "varbinds")
	})
	b.Run("sollwert", func(b *testing.B) {
		got := 0
		for n := 0; n < b.N; n++ {
			g := &gosnmp.GoSNMP{Target: a.Addr.String(), Port: uint16(a.Port), Transport: "udp", Community: testsnmpd.Community,
				Version: gosnmp.Version2c, Timeout: 2 * time.Second, MaxRepetitions: 25, Context: context.Background()}
			if err := g.Connect(); err != nil {
				b.Fatal(err)
			}
			w := &walker{g: g}
			got = 0
			for _, oid := range walkOIDs {
				if err := w.walk(oid, func([]int, gosnmp.SnmpPDU) { got++ }); err != nil {
					b.Fatal(err)
				}
			}
			g.Conn.Close()
		}
		if varbinds > 0 && got != varbinds {
			b.Fatalf("walked %d varbinds, snmpbulkwalk %d", got, varbinds)
		}
		per := b.Elapsed() / time.Duration(b.N)
		if netsnmp > 0 {
			b.ReportMetric(float64(per)/float64(netsnmp), "x-snmpbulkwalk")
		}
	})
}

// BenchmarkManyTargets asks 256 agents in one run with a concurrency of
// 256 and compares the run with asking one of them alone, twice:
//   - snmpd: one real snmpd answering on 256 loopback addresses. snmpd
//     handles one request at a time, so this measures snmpd's CPU;
//   - slow-agents: 256 fixture agents on loopback that each take 20 ms per
//     answer, as agents across a WAN do. This measures the source: the
//     whole run should take about as long as one agent.
func BenchmarkManyTargets(b *testing.B) {
	b.Run("snmpd", benchSnmpdTargets)
	b.Run("slow-agents", benchSlowAgents)
}

func benchSlowAgents(b *testing.B) {
	for i := 0; i < 256; i++ {
		startFakeAgentAt(b, fmt.Sprintf("127.0.2.%d:16163", i), switchTable(), func(_ *gosnmp.SnmpPacket, out []byte) []byte {
			time.Sleep(20 * time.Millisecond)
			return out
		})
	}
	oneAgainstAll(b, 16163, testsnmpd.SecretFile(b, b.TempDir(), "fake"), "127.0.2.7", "127.0.2.0/24")
}

// oneAgainstAll times a run of one agent and a run of all 256 and reports
// both and their ratio.
func oneAgainstAll(b *testing.B, port int, secret, one, all string) {
	config := func(targets string) json.RawMessage {
		c, _ := json.Marshal(map[string]any{"targets": []string{targets}, "port": port, "community_file": secret,
			"concurrency": 256, "timeout": "5s", "retries": 0})
		return c
	}
	run := func(targets string, want int) time.Duration {
		start := time.Now()
		n := 0
		res, err := New(nil).Discover(context.Background(), sdk.DiscoverRequest{Config: config(targets)}, countAgents(&n))
		if err != nil || n != want || len(res.Warnings) != 0 {
			b.Fatalf("%s: %d agents, warnings %v, error %v", targets, n, res.Warnings, err)
		}
		return time.Since(start)
	}
	var tOne, tAll time.Duration
	for n := 0; n < b.N; n++ {
		tOne += run(one, 1)
		tAll += run(all, 256)
	}
	b.ReportMetric(float64(tOne.Milliseconds())/float64(b.N), "ms-one-target")
	b.ReportMetric(float64(tAll.Milliseconds())/float64(b.N), "ms-256-targets")
	b.ReportMetric(float64(tAll)/float64(tOne), "x-one-target")
}

func countAgents(n *int) sdk.Emitter {
	return sdk.EmitterFunc(func(_ context.Context, o []sdk.Observation) error {
		for i := range o {
			if o[i].Source == "" {
				*n++
			}
		}
		return nil
	})
}

func benchSnmpdTargets(b *testing.B) {
	bin := testsnmpd.Path(b)
	dir := b.TempDir()
	var listen []string
	for i := 0; i < 256; i++ {
		listen = append(listen, fmt.Sprintf("udp:127.0.1.%d:16162", i))
	}
	conf := filepath.Join(dir, "snmpd.conf")
	if err := os.WriteFile(conf, []byte("[snmp] persistentDir "+dir+"\nrocommunity "+testsnmpd.Community+" 127.0.0.0/8\nsysDescr many\nsysName many\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(dir, "pid"), strings.Join(listen, ","))
	cmd.Env = append(os.Environ(), "MIBS=")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	secret := testsnmpd.SecretFile(b, dir, testsnmpd.Community)
	// snmpd takes a moment to bind 256 sockets.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _ := json.Marshal(map[string]any{"targets": []string{"127.0.1.255"}, "port": 16162, "community_file": secret, "timeout": "1s"})
		if _, err := New(nil).Discover(context.Background(), sdk.DiscoverRequest{Config: c}, countAgents(new(int))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("snmpd did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	oneAgainstAll(b, 16162, secret, "127.0.1.7", "127.0.1.0/24")
}
