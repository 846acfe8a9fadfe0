package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

const version = "0.1.0"

// source is the OpenStack adapter. It holds no state between calls: each
// Discover authenticates, pulls and forgets.
type source struct{}

func (*source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:     "openstack",
		Version:  version,
		Fields:   fields,
		Observes: []string{"instances", "addresses", "hostnames", "labels", "facts", "security_groups"},
	}, nil
}

// Validate checks the configuration, that the secret files or variables
// it names can be read and, in the clouds.yaml form, that the file holds
// the cloud; it does not contact the cloud.
func (*source) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parseConfig(raw)
	return err
}

// Discover authenticates, then emits the servers page by page. A page or a
// request that fails ends the run with an error, and the host then applies
// nothing of it.
func (*source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	log := sdk.Logger(ctx)
	s, err := parseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	start := time.Now()
	cl, err := connect(ctx, s)
	if err != nil {
		return sdk.Result{}, err
	}
	st, warnings, err := pull(ctx, cl, s, emit)
	if err != nil {
		return sdk.Result{}, err
	}
	log.Info("openstack pulled", "auth", s.describeAuth(), "project", cl.project, "region", cl.region,
		"servers", st.servers, "reported", st.reported, "ports", st.ports, "security_groups", st.groups,
		"pages", st.pages, "took", time.Since(start).Round(time.Millisecond).String())
	// A project knows its own servers, not everything on the networks
	// they share: the run claims no address range.
	return sdk.Result{Warnings: warnings}, nil
}
