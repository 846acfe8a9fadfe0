package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
	"google.golang.org/grpc"
)

// emitSource emits obs in Emit calls of the given sizes, then returns.
type emitSource struct {
	obs   []Observation
	sizes []int
}

func (emitSource) Describe(context.Context) (Description, error)   { return Description{}, nil }
func (emitSource) Validate(context.Context, json.RawMessage) error { return nil }
func (s emitSource) Discover(ctx context.Context, _ DiscoverRequest, emit Emitter) (Result, error) {
	rest := s.obs
	for _, n := range s.sizes {
		n = min(n, len(rest))
		if err := emit.Emit(ctx, rest[:n]); err != nil {
			return Result{}, err
		}
		rest = rest[n:]
	}
	return Result{Scope: Scope{Ports: map[Protocol]PortRanges{TCP: {{1, 1024}}}}, Warnings: []string{"w"}}, nil
}

// oldHost is the Discover loop of the sdk before wire.go: Recv into the
// generated types and observationFromPB.
func oldHost(t *testing.T, rpc pb.SourceClient, emit func([]Observation)) {
	t.Helper()
	stream, err := rpc.Discover(context.Background(), &pb.DiscoverRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if b := ev.GetBatch(); b != nil {
			var batch []Observation
			for _, p := range b.GetObservations() {
				o, err := observationFromPB(p)
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, o)
			}
			emit(batch)
		}
	}
}

func TestDiscoverStreamsBetweenOldAndNewEnds(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	obs := genObservations(r, 1234, false)
	src := emitSource{obs: obs, sizes: []int{0, 1, 1000, 233}}
	want := emptyNil(obs)
	for _, plugin := range []string{"new", "old"} {
		for _, host := range []string{"new", "old"} {
			t.Run("a "+plugin+" plugin and a "+host+" host", func(t *testing.T) {
				s, wire := grpcServer(nil), true
				if plugin == "old" {
					s, wire = grpc.NewServer(), false
				}
				remote := serveWith(t, s, &sourceServer{impl: src, log: hclog.NewNullLogger(), wire: wire})
				var got []Observation
				var sizes []int
				emit := func(batch []Observation) {
					got, sizes = append(got, batch...), append(sizes, len(batch))
				}
				if host == "old" {
					oldHost(t, remote.rpc, emit)
				} else {
					res, err := remote.Discover(context.Background(), DiscoverRequest{},
						EmitterFunc(func(_ context.Context, b []Observation) error { emit(b); return nil }))
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(res.Warnings, []string{"w"}) || !res.Scope.Ports[TCP].Contains(80) {
						t.Errorf("result %+v", res)
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatal("the host got other observations than the plugin emitted")
				}
				// batchLimit splits what the plugin hands over at once.
				if !reflect.DeepEqual(sizes, []int{1, batchLimit, 1000 - batchLimit, 233}) {
					t.Errorf("batches of %v", sizes)
				}
			})
		}
	}
}

// rawSource sends the given events and returns.
type rawSource struct {
	pb.UnimplementedSourceServer
	events []*pb.DiscoverEvent
}

func (s rawSource) Discover(_ *pb.DiscoverRequest, stream pb.Source_DiscoverServer) error {
	for _, e := range s.events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return nil
}

func TestDiscoverRefusesWhatItRefusedBefore(t *testing.T) {
	good := observationToPB(&Observation{Addresses: []Address{{Addr: "198.18.0.1", Type: "ipv4"}}})
	bad := observationToPB(&Observation{Addresses: []Address{{Addr: "198.18.0.1", Type: "ipv4"}}, Services: []Service{{Protocol: TCP, Port: 1, State: "open"}}})
	bad.Services[0].Port = 70000
	batch := func(o ...*pb.Observation) *pb.DiscoverEvent {
		return &pb.DiscoverEvent{Event: &pb.DiscoverEvent_Batch{Batch: &pb.ObservationBatch{Observations: o}}}
	}
	result := &pb.DiscoverEvent{Event: &pb.DiscoverEvent_Result{Result: &pb.Result{}}}
	for _, c := range []struct {
		name   string
		events []*pb.DiscoverEvent
		want   string
	}{
		{"a malformed observation", []*pb.DiscoverEvent{batch(good, good), batch(good, bad), result},
			"plugin inprocess: discover: observation 4 is malformed: service 0: port 70000 is outside 1-65535"},
		{"more after the result", []*pb.DiscoverEvent{batch(good), result, batch(good)},
			"plugin inprocess: discover: sent more after its result"},
		{"no result", []*pb.DiscoverEvent{batch(good)},
			"plugin inprocess: discover ended without a result: the run did not finish"},
		{"an empty event", []*pb.DiscoverEvent{{}},
			"plugin inprocess: discover: an event of a kind this sollwert does not know"},
		{"a bad scope", []*pb.DiscoverEvent{{Event: &pb.DiscoverEvent_Result{Result: &pb.Result{Scope: &pb.Scope{Prefixes: []string{"x"}}}}}},
			`plugin inprocess: discover: scope: "x" is not a CIDR prefix`},
	} {
		t.Run(c.name, func(t *testing.T) {
			remote := serveWith(t, grpc.NewServer(), rawSource{events: c.events})
			_, err := remote.Discover(context.Background(), DiscoverRequest{}, EmitterFunc(func(context.Context, []Observation) error { return nil }))
			if err == nil || err.Error() != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
}

func TestPluginRefusesInvalidUTF8AsBefore(t *testing.T) {
	src := emitSource{obs: []Observation{{Addresses: []Address{{Addr: "198.18.0.1", Type: "ipv4"}}, Hostnames: []string{"\xff"}}}, sizes: []int{1}}
	for _, wire := range []bool{true, false} {
		s := grpc.NewServer()
		if wire {
			s = grpcServer(nil)
		}
		remote := serveWith(t, s, &sourceServer{impl: src, log: hclog.NewNullLogger(), wire: wire})
		_, err := remote.Discover(context.Background(), DiscoverRequest{}, EmitterFunc(func(context.Context, []Observation) error { return nil }))
		if err == nil || !strings.Contains(err.Error(), "error while marshaling") || !strings.Contains(err.Error(), "invalid UTF-8") {
			t.Errorf("wire %t: got %v", wire, err)
		}
	}
}

// endlessSource emits batches until its Emit fails, and reports how.
type endlessSource struct{ ended chan error }

func (endlessSource) Describe(context.Context) (Description, error)   { return Description{}, nil }
func (endlessSource) Validate(context.Context, json.RawMessage) error { return nil }
func (s endlessSource) Discover(ctx context.Context, _ DiscoverRequest, emit Emitter) (Result, error) {
	batch := genObservations(rand.New(rand.NewPCG(1, 1)), 100, false)
	for {
		if err := emit.Emit(ctx, batch); err != nil {
			s.ended <- err
			return Result{}, err
		}
	}
}

// The host decodes ahead of the Emitter; when the Emitter fails, Discover
// returns its error and the plugin's Emit fails too, so the run ends at
// both ends.
func TestDiscoverEndsWhenTheEmitterFails(t *testing.T) {
	src := endlessSource{ended: make(chan error, 1)}
	remote := serveWith(t, grpcServer(nil), &sourceServer{impl: src, log: hclog.NewNullLogger(), wire: true})
	full := errors.New("store is full")
	calls := 0
	_, err := remote.Discover(context.Background(), DiscoverRequest{}, EmitterFunc(func(context.Context, []Observation) error {
		if calls++; calls == 3 {
			return full
		}
		return nil
	}))
	if !errors.Is(err, full) || calls != 3 {
		t.Fatalf("error %v after %d batches", err, calls)
	}
	select {
	case err := <-src.ended:
		if err == nil {
			t.Fatal("the plugin's Emit did not fail")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin kept emitting after the host stopped")
	}
}
