package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file is the host's end of the protocol. The daemon uses it to run
// plugins, and sdktest uses it to check a plugin exactly as the daemon
// would run it.

// LaunchConfig says how to start one plugin binary.
type LaunchConfig struct {
	// Path is the plugin binary.
	Path string
	// SHA256, when set, pins the binary: a file whose checksum differs
	// is not started.
	SHA256 string
	// Logger receives the plugin's log lines, named after the plugin.
	// Nil discards them.
	Logger hclog.Logger
	// StartTimeout bounds the start and handshake (default 10s, and never
	// past ctx's deadline).
	StartTimeout time.Duration
}

// Client is one running plugin process.
type Client struct {
	name   string
	client *plugin.Client
	cmd    *exec.Cmd
	tail   *lineTail
	conn   *grpc.ClientConn
	info   *pb.InfoResponse
}

// A Launcher starts plugins and keeps between starts what need not be
// made again at every one: the host's TLS certificate (renewed after an
// hour, mtls.go) and the checksums of the binaries it verified, by file
// identity (checksum.go). A daemon keeps one for all its plugins; the
// zero value is ready, and it is safe for concurrent use.
type Launcher struct {
	mu   sync.Mutex
	cert *certificate
	sums map[string]verifiedFile

	// settle overrides settleTime in tests; hashed counts the binaries
	// read to compute a checksum.
	settle time.Duration
	hashed int
}

// maxMessage is what the host accepts in one gRPC message; the sdk sends
// batches far smaller, a plugin built otherwise gets a clear error.
const maxMessage = 64 << 20

// Launch starts the plugin at cfg.Path and completes the handshake, with
// a Launcher of its own: a fresh host certificate, and a pinned binary
// read in full. The caller must Close the client.
func Launch(ctx context.Context, cfg LaunchConfig) (*Client, error) {
	return new(Launcher).Launch(ctx, cfg)
}

// Launch starts the plugin at cfg.Path and completes the handshake. The
// caller must Close the client.
func (l *Launcher) Launch(ctx context.Context, cfg LaunchConfig) (*Client, error) {
	name := strings.TrimPrefix(filepath.Base(cfg.Path), PluginPrefix)
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.SHA256 != "" {
		// Checked here rather than by go-plugin's SecureConfig, which
		// reads the whole binary at every start (checksum.go).
		want, err := hex.DecodeString(cfg.SHA256)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("plugin %s: pinned sha256 %q is not 64 hex digits", name, cfg.SHA256)
		}
		got, err := l.checksum(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", name, err)
		}
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return nil, fmt.Errorf("plugin %s: %s has sha256 %x, but the config pins %s; not started", name, cfg.Path, got, cfg.SHA256)
		}
	} else if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	cert, err := l.hostCertificate()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("plugin %s: %w", name, context.DeadlineExceeded)
	}

	cmd := exec.Command(cfg.Path)
	// go-plugin adds its own variables after these (SkipHostEnv keeps it
	// from adding the environment a second time, after ours).
	cmd.Env = append(os.Environ(), envLogLevel+"="+log.GetLevel().String(), envClientCert+"="+string(cert.pem))
	dieWithHost(cmd)
	tail := &lineTail{max: 20}
	c := &Client{name: name, cmd: cmd, tail: tail}
	c.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: pluginSet(Plugin{}, nil, false)},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		// AutoMTLS, with the host's end done here (mtls.go): go-plugin's
		// own makes a new P-521 certificate at every start. go-plugin
		// still adds the plugin's certificate as the only root.
		TLSConfig:    hostTLS(cert),
		Logger:       log,
		Stderr:       tail,
		StartTimeout: timeout,
		// A Discover stream is bulk: a window of 1 MB per stream (instead
		// of gRPC's 64 KB, grown by estimates) lets a plugin send
		// batches without waiting for each to be read.
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)),
			grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(4 << 20)},
	})
	started := make(chan error, 1)
	go func() {
		rpc, err := c.client.Client()
		if err == nil {
			var raw any
			if raw, err = rpc.Dispense(kindInfo); err == nil {
				c.conn = raw.(*grpc.ClientConn)
			}
		}
		started <- err
	}()
	select {
	case err := <-started:
		if err != nil {
			c.client.Kill()
			return nil, c.startError(err)
		}
	case <-ctx.Done():
		c.client.Kill()
		return nil, fmt.Errorf("plugin %s: start: %w", name, ctx.Err())
	}
	info, err := pb.NewPluginClient(c.conn).Info(ctx, &pb.InfoRequest{})
	if err != nil {
		err = c.callError("info", ctx, err) // before Close, which would be its cause
		c.Close()
		return nil, err
	}
	c.info = info
	return c, nil
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

func (c *Client) startError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "incompatible API version"):
		theirs := "another"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			theirs = m[1]
		}
		return fmt.Errorf("plugin %s speaks sollwert plugin protocol version %s, this sollwert speaks version %d: rebuild the plugin against a matching sdk", c.name, theirs, ProtocolVersion)
	}
	return fmt.Errorf("plugin %s: start: %w%s", c.name, err, c.exitDetail())
}

// hostCertificate is the certificate the host presents to the plugins it
// starts, made at the first start and again once it is an hour old.
func (l *Launcher) hostCertificate() (*certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cert == nil || time.Since(l.cert.made) > hostCertLifetime {
		// Valid past its last hand-out by the handshake of that start.
		c, err := newCertificate(hostCertLifetime + time.Hour)
		if err != nil {
			return nil, err
		}
		l.cert = c
	}
	return l.cert, nil
}

// Name is the plugin's name: its file name without sollwert-plugin-.
func (c *Client) Name() string { return c.name }

// Kinds lists what the plugin serves.
func (c *Client) Kinds() []string { return c.info.GetKinds() }

// SDKVersion is the sdk version the plugin was built with.
func (c *Client) SDKVersion() string { return c.info.GetSdkVersion() }

// ProtocolVersion is the protocol version agreed in the handshake.
func (c *Client) ProtocolVersion() int { return c.client.NegotiatedVersion() }

// Close stops the plugin process: politely first, killed after two seconds.
func (c *Client) Close() { c.client.Kill() }

func (c *Client) serves(kind string) error {
	for _, k := range c.info.GetKinds() {
		if k == kind {
			return nil
		}
	}
	return fmt.Errorf("plugin %s serves %v, not a %s", c.name, c.info.GetKinds(), kind)
}

// Source returns the plugin's source.
func (c *Client) Source() (Source, error) {
	if err := c.serves(KindSource); err != nil {
		return nil, err
	}
	return &remoteSource{c: c, rpc: pb.NewSourceClient(c.conn)}, nil
}

// Sink returns the plugin's sink.
func (c *Client) Sink() (Sink, error) {
	if err := c.serves(KindSink); err != nil {
		return nil, err
	}
	return &remoteSink{c: c, rpc: pb.NewSinkClient(c.conn)}, nil
}

// callError turns a failed call into the error a user can act on: the
// caller's own deadline or cancellation as such, a crashed plugin with its
// exit status and last lines, else the plugin's message.
func (c *Client) callError(call string, ctx context.Context, err error) error {
	if st, ok := status.FromError(err); ok && (st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded) {
		// The plugin's end sees the propagated deadline first and resets
		// the stream a moment before the caller's own timer fires.
		if dl, has := ctx.Deadline(); has && time.Until(dl) < time.Second {
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(dl) + 100*time.Millisecond):
			}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("plugin %s: %s: %w", c.name, call, ctx.Err())
	}
	if c.waitExit(500 * time.Millisecond) {
		return fmt.Errorf("plugin %s: %s: the plugin process %s", c.name, call, strings.TrimPrefix(c.exitDetail(), ": "))
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable:
			return fmt.Errorf("plugin %s: %s: connection lost: %s", c.name, call, st.Message())
		default:
			return fmt.Errorf("plugin %s: %s: %s", c.name, call, st.Message())
		}
	}
	return fmt.Errorf("plugin %s: %s: %w", c.name, call, err)
}

// waitExit reports whether the plugin process has ended, waiting up to d:
// a broken stream is usually seen a moment before the exit is.
func (c *Client) waitExit(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !c.client.Exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// exitDetail describes how the process ended and what it last wrote.
func (c *Client) exitDetail() string {
	var b strings.Builder
	if c.client.Exited() && c.cmd.ProcessState != nil {
		b.WriteString(": exited (" + c.cmd.ProcessState.String() + ")")
	}
	if lines := c.tail.lines(); len(lines) > 0 {
		b.WriteString("; its last output:\n    " + strings.Join(lines, "\n    "))
	}
	return b.String()
}

type remoteSource struct {
	c   *Client
	rpc pb.SourceClient
}

func (s *remoteSource) Describe(ctx context.Context) (Description, error) {
	d, err := s.rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Description{}, s.c.callError("describe", ctx, err)
	}
	return descriptionFromPB(d), nil
}

func (s *remoteSource) Validate(ctx context.Context, config json.RawMessage) error {
	r, err := s.rpc.Validate(ctx, &pb.ValidateRequest{ConfigJson: config})
	if err != nil {
		return s.c.callError("validate", ctx, err)
	}
	return validationFromPB(r)
}

func (s *remoteSource) Discover(ctx context.Context, req DiscoverRequest, emit Emitter) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream on every early return
	// wireCodec decodes the events straight into Observations (wire.go);
	// the request it marshals as gRPC's proto codec does.
	stream, err := s.rpc.Discover(ctx, &pb.DiscoverRequest{ConfigJson: req.Config, Job: req.Job, Tenant: req.Tenant, RunId: req.RunID},
		grpc.ForceCodecV2(wireCodec{}))
	if err != nil {
		return Result{}, s.c.callError("discover", ctx, err)
	}
	// One goroutine receives, decodes and checks the stream while this
	// one hands the batches to emit, so that decoding the next message
	// overlaps with the host taking in the last. The channel holds one
	// batch: the decoder runs at most two ahead of emit.
	batches := make(chan []Observation, 1)
	var (
		res     *Result
		recvErr error
	)
	go func() {
		defer close(batches)
		res, recvErr = s.receive(ctx, stream, batches)
	}()
	for obs := range batches {
		if err := emit.Emit(ctx, obs); err != nil {
			cancel() // ends the stream, and so the receiver
			for range batches {
			}
			return Result{}, err
		}
	}
	if recvErr != nil {
		return Result{}, recvErr
	}
	if res == nil {
		return Result{}, fmt.Errorf("plugin %s: discover ended without a result: the run did not finish", s.c.name)
	}
	return *res, nil
}

// receive reads a Discover stream until it ends, handing each batch of
// checked observations to batches, and returns the run's result (nil
// when the plugin sent none).
func (s *remoteSource) receive(ctx context.Context, stream grpc.ServerStreamingClient[pb.DiscoverEvent], batches chan<- []Observation) (*Result, error) {
	var (
		res      *Result
		received int
		ev       incomingEvent
	)
	for {
		err := stream.RecvMsg(&ev)
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return nil, s.c.callError("discover", ctx, err)
		}
		if res != nil {
			return nil, fmt.Errorf("plugin %s: discover: sent more after its result", s.c.name)
		}
		switch ev.kind {
		case eventBatch:
			for i := range ev.obs {
				if err := ev.check(i); err != nil {
					return nil, fmt.Errorf("plugin %s: discover: observation %d is malformed: %w", s.c.name, received+1, err)
				}
				received++
			}
			// ev.obs is the emitter's now: the next message gets another.
			select {
			case batches <- ev.obs:
			case <-ctx.Done():
				return nil, s.c.callError("discover", ctx, ctx.Err())
			}
		case eventResult:
			scope, err := ev.result.scope()
			if err != nil {
				return nil, fmt.Errorf("plugin %s: discover: %w", s.c.name, err)
			}
			res = &Result{Scope: scope, Warnings: ev.result.warnings}
		default:
			return nil, fmt.Errorf("plugin %s: discover: an event of a kind this sollwert does not know", s.c.name)
		}
	}
}

type remoteSink struct {
	c   *Client
	rpc pb.SinkClient
}

func (s *remoteSink) Describe(ctx context.Context) (Description, error) {
	d, err := s.rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Description{}, s.c.callError("describe", ctx, err)
	}
	return descriptionFromPB(d), nil
}

func (s *remoteSink) Validate(ctx context.Context, config json.RawMessage) error {
	r, err := s.rpc.Validate(ctx, &pb.ValidateRequest{ConfigJson: config})
	if err != nil {
		return s.c.callError("validate", ctx, err)
	}
	return validationFromPB(r)
}

func (s *remoteSink) Deliver(ctx context.Context, req DeliverRequest) ([]Ack, error) {
	msg := &pb.DeliverRequest{ConfigJson: req.Config, Events: make([]*pb.Event, len(req.Events))}
	for i := range req.Events {
		msg.Events[i] = eventToPB(&req.Events[i])
	}
	r, err := s.rpc.Deliver(ctx, msg)
	if err != nil {
		return nil, s.c.callError("deliver", ctx, err)
	}
	acks := make([]Ack, len(r.GetAcks()))
	for i, a := range r.GetAcks() {
		acks[i] = Ack{EventID: a.GetEventId(), Delivered: a.GetDelivered(), Error: a.GetError(), Permanent: a.GetPermanent()}
	}
	return acks, nil
}

// lineTail keeps the last lines a plugin wrote to stderr, for the error
// of a run it crashed. JSON log lines are shortened to their message.
type lineTail struct {
	mu   sync.Mutex
	max  int
	buf  []string
	part bytes.Buffer
}

func (t *lineTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part.Write(p)
	for {
		line, err := t.part.ReadBytes('\n')
		if err != nil {
			t.part.Write(line) // keep the unfinished line for the next write
			break
		}
		t.add(string(bytes.TrimRight(line, "\r\n")))
	}
	return len(p), nil
}

func (t *lineTail) add(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	var entry struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
	}
	if json.Unmarshal([]byte(line), &entry) == nil && entry.Message != "" {
		line = "[" + strings.ToUpper(entry.Level) + "] " + entry.Message
	}
	t.buf = append(t.buf, line)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
}

func (t *lineTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}
