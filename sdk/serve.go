package sdk

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// Plugin is what one plugin binary serves: a source, a sink, or both.
type Plugin struct {
	Source Source
	Sink   Sink
}

// Serve runs the plugin until the host stops it. It is all a plugin's
// main needs to call:
//
//	func main() { sdk.Serve(sdk.Plugin{Source: &inventory{}}) }
//
// Log through Logger(ctx) (or hclog.FromContext): the lines reach the
// daemon's log under the plugin's name, at the daemon's log level.
func Serve(p Plugin) {
	log := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.LevelFromString(os.Getenv(envLogLevel)),
		Output:     os.Stderr,
		JSONFormat: true, // go-plugin parses JSON lines back into the host's logger
	})
	if p.Source == nil && p.Sink == nil {
		fmt.Fprintln(os.Stderr, "sdk.Serve: the plugin serves neither a source nor a sink")
		os.Exit(1)
	}
	go exitWithHost(log, os.Getppid())
	cfg := &plugin.ServeConfig{
		HandshakeConfig:  handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(p, log, true)},
		GRPCServer:       grpcServer,
		Logger:           log,
	}
	if err := serveAutoMTLS(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sdk.Serve:", err)
		os.Exit(1)
	}
	plugin.Serve(cfg)
}

// serveAutoMTLS answers go-plugin's AutoMTLS with the sdk's own P-256
// certificate (mtls.go): a TLS configuration for the server, and the
// certificate filled into the handshake line go-plugin prints to stdout.
// A host that asks for no TLS gets none, as from go-plugin.
func serveAutoMTLS(cfg *plugin.ServeConfig) error {
	tlsCfg, der, err := pluginTLS(os.Getenv(envClientCert))
	if err != nil || tlsCfg == nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stdout for the handshake: %w", err)
	}
	// go-plugin prints the handshake line with fmt.Printf, then points
	// os.Stdout at its own stdio stream.
	stdout := os.Stdout
	go completeHandshakeLine(r, stdout, der)
	os.Stdout = w
	cfg.TLSProvider = func() (*tls.Config, error) { return tlsCfg, nil }
	return nil
}

// grpcServer is go-plugin's server with the sdk's codec (wire.go), which
// encodes observation batches itself and everything else as gRPC would.
// The sources of pluginSet(..., true) need it.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	return plugin.DefaultGRPCServer(append(opts, grpc.ForceServerCodecV2(wireCodec{})))
}

// envLogLevel carries the host's log level to the plugin, so a plugin
// does not format lines the host would drop.
const envLogLevel = "SOLLWERT_PLUGIN_LOG_LEVEL"

// exitWithHost ends the plugin when its host is gone, however the host
// ended: a host killed with SIGKILL cannot stop its plugins itself.
func exitWithHost(log hclog.Logger, host int) {
	for range time.Tick(time.Second) {
		if os.Getppid() != host {
			log.Error("the sollwert host process is gone; exiting")
			os.Exit(1)
		}
	}
}

// Logger returns the logger of the call ctx belongs to: inside a plugin,
// one whose lines reach the daemon's log; in process, the daemon's own.
func Logger(ctx context.Context) hclog.Logger { return hclog.FromContext(ctx) }

// pluginSet is the go-plugin view of p, for both ends: the server fills
// in the implementations, the host dispenses clients. wire says that the
// server is made by grpcServer, so its source may send batches encoded
// by wireCodec rather than as pb messages.
func pluginSet(p Plugin, log hclog.Logger, wire bool) plugin.PluginSet {
	kinds := []string{}
	if p.Source != nil {
		kinds = append(kinds, KindSource)
	}
	if p.Sink != nil {
		kinds = append(kinds, KindSink)
	}
	return plugin.PluginSet{
		kindInfo:   &grpcPlugin{server: func(s *grpc.Server) { pb.RegisterPluginServer(s, &infoServer{kinds: kinds}) }},
		KindSource: &grpcPlugin{server: func(s *grpc.Server) { pb.RegisterSourceServer(s, &sourceServer{impl: p.Source, log: log, wire: wire}) }},
		KindSink:   &grpcPlugin{server: func(s *grpc.Server) { pb.RegisterSinkServer(s, &sinkServer{impl: p.Sink, log: log}) }},
	}
}

// grpcPlugin adapts one service to go-plugin. On the host, GRPCClient
// returns the connection; the typed clients are made in launch.go.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	server func(*grpc.Server)
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.server != nil {
		p.server(s)
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

type infoServer struct {
	pb.UnimplementedPluginServer
	kinds []string
}

func (s *infoServer) Info(context.Context, *pb.InfoRequest) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{Kinds: s.kinds, SdkVersion: sdkVersion()}, nil
}

// DiscoverFinishedMessage is the debug line a plugin logs when its Discover
// has returned; the conformance kit watches for it.
const DiscoverFinishedMessage = "discover finished"

// batchLimit bounds the observations in one gRPC message, whatever the
// plugin hands to Emit at once, so messages stay far below gRPC's limit.
const batchLimit = 500

type sourceServer struct {
	pb.UnimplementedSourceServer
	impl Source
	log  hclog.Logger
	// wire: the server's codec is wireCodec (grpcServer).
	wire    bool
	buffers bufferPool
}

func (s *sourceServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.Description, error) {
	if s.impl == nil {
		return nil, errNotServed(KindSource)
	}
	d, err := s.impl.Describe(hclog.WithContext(ctx, s.log))
	if err != nil {
		return nil, err
	}
	return descriptionToPB(d), nil
}

func (s *sourceServer) Validate(ctx context.Context, req *pb.ValidateRequest) (*pb.ValidateResponse, error) {
	if s.impl == nil {
		return nil, errNotServed(KindSource)
	}
	return validationToPB(s.impl.Validate(hclog.WithContext(ctx, s.log), req.GetConfigJson()))
}

func (s *sourceServer) Discover(req *pb.DiscoverRequest, stream pb.Source_DiscoverServer) error {
	if s.impl == nil {
		return errNotServed(KindSource)
	}
	log := s.log.With("job", req.GetJob(), "run", req.GetRunId())
	ctx := hclog.WithContext(stream.Context(), log)
	// One outgoingBatch for the run, its scratch kept from batch to batch;
	// the lock keeps a source that emits from several goroutines from
	// encoding at once. Emit encodes a batch, which then holds nothing of
	// the source's, and a sender goroutine writes it to the stream while
	// the source builds the next (gRPC allows one sender at a time).
	var (
		mu   sync.Mutex
		out  = outgoingBatch{buffers: &s.buffers}
		send = newBatchSender(stream)
	)
	stop := func() error {
		mu.Lock()
		defer mu.Unlock()
		return send.stop()
	}
	defer stop()
	emit := EmitterFunc(func(ctx context.Context, batch []Observation) error {
		mu.Lock()
		defer mu.Unlock()
		for len(batch) > 0 {
			n := min(len(batch), batchLimit)
			var err error
			if s.wire {
				out.obs = batch[:n]
				var data mem.BufferSlice
				if data, err = out.marshal(); err == nil {
					err = send.send(ctx, data)
				} else {
					// What SendMsg said when it encoded the batch itself.
					err = status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
				}
				out.obs = nil
			} else {
				msg := &pb.ObservationBatch{Observations: make([]*pb.Observation, n)}
				for i := range batch[:n] {
					msg.Observations[i] = observationToPB(&batch[i])
				}
				err = send.sync(func() error {
					return stream.Send(&pb.DiscoverEvent{Event: &pb.DiscoverEvent_Batch{Batch: msg}})
				})
			}
			if err != nil {
				return fmt.Errorf("send observations to the host: %w", err)
			}
			batch = batch[n:]
		}
		return ctx.Err()
	})
	res, err := s.impl.Discover(ctx, DiscoverRequest{
		Config: req.GetConfigJson(), Job: req.GetJob(), Tenant: req.GetTenant(), RunID: req.GetRunId(),
	}, emit)
	// sdktest waits for this line to see that a cancelled Discover ended.
	log.Debug(DiscoverFinishedMessage, "error", err)
	if err != nil {
		return err
	}
	if err := stop(); err != nil {
		return fmt.Errorf("send observations to the host: %w", err)
	}
	return stream.Send(&pb.DiscoverEvent{Event: &pb.DiscoverEvent_Result{
		Result: &pb.Result{Scope: scopeToPB(res.Scope), Warnings: res.Warnings},
	}})
}

// batchSender writes encoded batches to a Discover stream from a
// goroutine of its own, one behind the Emit that encoded them.
type batchSender struct {
	stream  grpc.ServerStream
	batches chan mem.BufferSlice
	// failed is closed once a send has failed with err; done once the
	// goroutine has ended.
	failed, done chan struct{}
	err          error
	stopped      bool
}

func newBatchSender(stream grpc.ServerStream) *batchSender {
	b := &batchSender{stream: stream, batches: make(chan mem.BufferSlice, 1), failed: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *batchSender) run() {
	defer close(b.done)
	for data := range b.batches {
		if b.err != nil {
			data.Free()
			continue
		}
		// wireCodec passes the encoded batch through; gRPC frees it.
		if err := b.stream.SendMsg(encodedBatch{data}); err != nil {
			b.err = err
			close(b.failed)
		}
	}
}

// send queues data, or returns why the stream cannot take it.
func (b *batchSender) send(ctx context.Context, data mem.BufferSlice) error {
	select {
	case <-b.failed:
		data.Free()
		return b.err
	default:
	}
	select {
	case b.batches <- data:
		return nil
	case <-b.failed:
		data.Free()
		return b.err
	case <-ctx.Done():
		data.Free()
		return ctx.Err()
	}
}

// sync runs fn, which sends on the stream itself, once every queued batch
// has been sent.
func (b *batchSender) sync(fn func() error) error {
	if err := b.stop(); err != nil {
		return err
	}
	return fn()
}

// stop waits until the queued batches are sent and returns the first
// send that failed; nothing is sent through b afterwards.
func (b *batchSender) stop() error {
	if !b.stopped {
		b.stopped = true
		close(b.batches)
	}
	<-b.done
	return b.err
}

type sinkServer struct {
	pb.UnimplementedSinkServer
	impl Sink
	log  hclog.Logger
}

func (s *sinkServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.Description, error) {
	if s.impl == nil {
		return nil, errNotServed(KindSink)
	}
	d, err := s.impl.Describe(hclog.WithContext(ctx, s.log))
	if err != nil {
		return nil, err
	}
	return descriptionToPB(d), nil
}

func (s *sinkServer) Validate(ctx context.Context, req *pb.ValidateRequest) (*pb.ValidateResponse, error) {
	if s.impl == nil {
		return nil, errNotServed(KindSink)
	}
	return validationToPB(s.impl.Validate(hclog.WithContext(ctx, s.log), req.GetConfigJson()))
}

func (s *sinkServer) Deliver(ctx context.Context, req *pb.DeliverRequest) (*pb.DeliverResponse, error) {
	if s.impl == nil {
		return nil, errNotServed(KindSink)
	}
	events := make([]Event, len(req.GetEvents()))
	for i, e := range req.GetEvents() {
		events[i] = eventFromPB(e)
	}
	acks, err := s.impl.Deliver(hclog.WithContext(ctx, s.log), DeliverRequest{Config: req.GetConfigJson(), Events: events})
	if err != nil {
		return nil, err
	}
	out := &pb.DeliverResponse{Acks: make([]*pb.Ack, len(acks))}
	for i, a := range acks {
		out.Acks[i] = &pb.Ack{EventId: a.EventID, Delivered: a.Delivered, Error: a.Error, Permanent: a.Permanent}
	}
	return out, nil
}

func errNotServed(kind string) error { return fmt.Errorf("this plugin does not serve a %s", kind) }
