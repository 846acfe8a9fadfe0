// testplugin is a source plugin for the host's tests. Its configuration
// picks how many hosts it reports and which fault it shows:
//
//	{"hosts": 3}                 three hosts in 198.18.0.0/24, then success
//	{"hosts": 3, "fault": "panic"}      panics after the first batch
//	{"hosts": 3, "fault": "hang"}       blocks forever, ignoring cancellation
//	{"hosts": 3, "fault": "malformed"}  sends an address that is not one
//	{"hosts": 3, "fault": "exit"}       exits with status 3 mid-run
//	{"hosts": 3, "fault": "error"}      returns an error
//
// It also serves a sink that takes events whose id ends in "-ok", answers
// "busy" (to retry) for "-busy" and rejects "-bad" for good.
//
// Built with -ldflags "-X main.protocol=2" it speaks another protocol
// version. The addresses are data only; nothing is contacted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/go-plugin"
	"github.com/sollwert/sollwert/sdk"
)

var protocol string // set with -ldflags to build a plugin of another protocol version

type config struct {
	Hosts int    `json:"hosts"`
	Fault string `json:"fault"`
}

type testSource struct{}

func (testSource) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "testplugin", Version: "1.2.3", Observes: []string{"hosts"},
		Fields: []sdk.Field{{Name: "hosts", Type: "number", Required: true}, {Name: "fault", Type: "string"}}}, nil
}

func parse(raw json.RawMessage) (config, error) {
	var c config
	verr := &sdk.ValidationError{}
	if err := json.Unmarshal(raw, &c); err != nil {
		verr.Add("hosts", "cannot read the configuration: %v", err)
		return c, verr
	}
	if c.Hosts < 0 || c.Hosts > 1<<20 {
		verr.Add("hosts", "must be between 0 and %d", 1<<20)
	}
	switch c.Fault {
	case "", "panic", "hang", "malformed", "exit", "error":
	default:
		verr.Add("fault", "%q is not a fault this plugin knows", c.Fault)
	}
	return c, verr.Err()
}

func (testSource) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parse(raw)
	return err
}

func (testSource) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	c, err := parse(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	log := sdk.Logger(ctx)
	log.Info("discovering", "hosts", c.Hosts, "fault", c.Fault)
	base := netip.MustParseAddr("198.18.0.0").As4()
	// The hosts share their labels, and a batch's lists come from one
	// array each, as a provider's plugin would build them: what this
	// plugin spends making hosts is not what the benchmarks measure.
	labels := map[string]string{"team": "test"}
	const batchSize = 1000
	batch := make([]sdk.Observation, 0, batchSize)
	var addrs []sdk.Address
	var names []string
	var text []byte
	for i := 0; i < c.Hosts; i++ {
		if len(batch) == 0 {
			addrs, names = make([]sdk.Address, batchSize), make([]string, batchSize)
		}
		ip := netip.AddrFrom4([4]byte{base[0], base[1] + byte(i>>16), byte(i >> 8), byte(i)})
		j := len(batch)
		addrs[j] = sdk.Address{Addr: ip.String(), Type: "ipv4"}
		text = append(strconv.AppendInt(append(text[:0], "host-"...), int64(i), 10), ".test"...)
		names[j] = string(text)
		o := sdk.Observation{Status: sdk.StatusUp, Addresses: addrs[j : j+1 : j+1], Hostnames: names[j : j+1 : j+1], Labels: labels}
		if c.Fault == "malformed" && i == 1 {
			o.Addresses[0].Addr = "999.1.1.1"
		}
		batch = append(batch, o)
		if len(batch) == cap(batch) || i == c.Hosts-1 {
			if err := emit.Emit(ctx, batch); err != nil {
				return sdk.Result{}, err
			}
			batch = batch[:0]
		}
	}
	switch c.Fault {
	case "panic":
		log.Error("about to fail badly")
		panic("testplugin: the fault you asked for")
	case "hang":
		log.Info("hanging now")
		select {}
	case "exit":
		log.Error("exiting with status 3")
		os.Exit(3)
	case "error":
		return sdk.Result{}, errors.New("the provider answered 503")
	}
	return sdk.Result{Scope: sdk.Scope{Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}}}, nil
}

type testSink struct{}

func (testSink) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "testsink", Version: "1.2.3"}, nil
}

func (testSink) Validate(context.Context, json.RawMessage) error { return nil }

func (testSink) Deliver(ctx context.Context, req sdk.DeliverRequest) ([]sdk.Ack, error) {
	acks := make([]sdk.Ack, 0, len(req.Events))
	for _, e := range req.Events {
		a := sdk.Ack{EventID: e.ID}
		switch {
		case strings.HasSuffix(e.ID, "-ok"):
			a.Delivered = true
		case strings.HasSuffix(e.ID, "-busy"):
			a.Error = "receiver busy"
		default:
			a.Error, a.Permanent = fmt.Sprintf("rejected %s event for %s", e.Kind, e.Deviation.Host), true
		}
		acks = append(acks, a)
	}
	sdk.Logger(ctx).Info("delivered", "events", len(req.Events))
	return acks, nil
}

func main() {
	if protocol == "2" {
		// What a plugin built against a future sdk looks like to this host.
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: 2, MagicCookieKey: "SOLLWERT_PLUGIN",
				MagicCookieValue: "d3b07384d113edec49eaa6238ad5ff00"},
			VersionedPlugins: map[int]plugin.PluginSet{2: {}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return
	}
	sdk.Serve(sdk.Plugin{Source: testSource{}, Sink: testSink{}})
}
