package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
	"google.golang.org/protobuf/proto"
)

// benchSource emits n observations shaped like a provider pull's (one
// IPv4 address, one hostname, one label, every third with two services)
// in batches of 1000, made before the run so that making them is not
// measured.
type benchSource struct{ obs []Observation }

func newBenchSource(n int) *benchSource {
	obs := make([]Observation, n)
	for i := range obs {
		obs[i] = Observation{
			Addresses: []Address{{Addr: fmt.Sprintf("198.%d.%d.%d", 18+i>>16&1, i>>8&255, i&255), Type: "ipv4"}},
			Hostnames: []string{fmt.Sprintf("host-%d.test", i)}, Status: StatusUp,
			Labels: map[string]string{"team": "test"}, InstanceID: fmt.Sprintf("i-%08x", i),
		}
		if i%3 == 0 {
			obs[i].Services = []Service{{Protocol: TCP, Port: 22, State: "open", Name: "ssh"}, {Protocol: TCP, Port: 443, State: "open", Name: "https"}}
		}
	}
	return &benchSource{obs: obs}
}

func (*benchSource) Describe(context.Context) (Description, error) {
	return Description{Name: "bench"}, nil
}
func (*benchSource) Validate(context.Context, json.RawMessage) error { return nil }

func (s *benchSource) Discover(ctx context.Context, _ DiscoverRequest, emit Emitter) (Result, error) {
	// A CPU profile tells the ends apart by this label (-tagfocus).
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("end", "plugin")))
	for i := 0; i < len(s.obs); i += 1000 {
		if err := emit.Emit(ctx, s.obs[i:min(i+1000, len(s.obs))]); err != nil {
			return Result{}, err
		}
	}
	return Result{}, nil
}

// BenchmarkDiscoverStream streams 100,000 observations from a source
// served over gRPC on a Unix socket in this process (serveInProcess) to
// a host Emitter that discards them: both ends of the protocol, without
// the plugin process and TLS. cpu-ns/obs is the CPU of both ends (and of
// gRPC's transport) per observation; in a CPU profile, the label "end"
// tells the plugin's goroutine from the host's.
func BenchmarkDiscoverStream(b *testing.B) {
	const n = 100_000
	src := serveInProcess(b, newBenchSource(n))
	ctx := context.Background()
	got := 0
	emit := EmitterFunc(func(_ context.Context, batch []Observation) error { got += len(batch); return nil })
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	runtime.ReadMemStats(&ms0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	pprof.Do(ctx, pprof.Labels("end", "host"), func(ctx context.Context) {
		for range b.N {
			got = 0
			if _, err := src.Discover(ctx, DiscoverRequest{Job: "bench"}, emit); err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("the host got %d observations, want %d", got, n)
			}
		}
	})
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&ms1)
	total := float64(n) * float64(b.N)
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(total/b.Elapsed().Seconds(), "obs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/obs")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/total, "allocs/obs")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/total, "B/obs")
}

// BenchmarkDiscoverCodec measures each end's share apart: encoding a
// batch of 500 of the benchmark's observations into a DiscoverEvent (the
// plugin) and decoding and checking it (the host), as the generated code
// does it (proto) and as wire.go does (wire).
func BenchmarkDiscoverCodec(b *testing.B) {
	obs := newBenchSource(batchLimit).obs
	msg, err := oldEncode(obs)
	if err != nil {
		b.Fatal(err)
	}
	perObs := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(obs)), "ns/obs")
	}
	b.Run("plugin/proto", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := oldEncode(obs); err != nil {
				b.Fatal(err)
			}
		}
		perObs(b)
	})
	b.Run("plugin/wire", func(b *testing.B) {
		b.ReportAllocs()
		out := &outgoingBatch{obs: obs}
		for range b.N {
			data, err := out.marshal()
			if err != nil {
				b.Fatal(err)
			}
			data.Free()
		}
		perObs(b)
	})
	b.Run("host/proto", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var ev pb.DiscoverEvent
			if err := proto.Unmarshal(msg, &ev); err != nil {
				b.Fatal(err)
			}
			batch := make([]Observation, 0, len(obs))
			for _, p := range ev.GetBatch().GetObservations() {
				o, err := observationFromPB(p)
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, o)
			}
		}
		perObs(b)
	})
	b.Run("host/wire", func(b *testing.B) {
		b.ReportAllocs()
		var ev incomingEvent
		for range b.N {
			if err := ev.decode(msg); err != nil {
				b.Fatal(err)
			}
			for i := range ev.obs {
				if err := ev.check(i); err != nil {
					b.Fatal(err)
				}
			}
		}
		perObs(b)
	})
}
