package sdk

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	pb "github.com/sollwert/sollwert/sdk/proto/pluginv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// serveInProcess serves src as Serve would, on a Unix socket of this
// process, and returns the host's view of it as Launch would: what the
// stream benchmark and tests need without a plugin process.
func serveInProcess(tb testing.TB, src Source) Source {
	return serveWith(tb, grpcServer(nil), &sourceServer{impl: src, log: hclog.NewNullLogger(), wire: true})
}

// serveWith serves srv on s (closed at cleanup) and dials it.
func serveWith(tb testing.TB, s *grpc.Server, srv pb.SourceServer) *remoteSource {
	tb.Helper()
	pb.RegisterSourceServer(s, srv)
	l, err := net.Listen("unix", filepath.Join(tb.TempDir(), "plugin.sock"))
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	conn, err := grpc.NewClient("unix://"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(); s.Stop() })
	return &remoteSource{c: &Client{name: "inprocess", client: &plugin.Client{}, tail: &lineTail{max: 1}}, rpc: pb.NewSourceClient(conn)}
}
