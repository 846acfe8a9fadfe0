package main

import (
	"context"
	"encoding/json"

	"github.com/sollwert/sollwert/sdk"
)

const version = "0.1.0"

// batchSize is how many observations go to the host at once.
const batchSize = 500

// source is the libvirt adapter. It holds no state between calls: each
// Discover connects, pulls and closes.
type source struct{}

func (*source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:     "libvirt",
		Version:  version,
		Fields:   fields,
		Observes: []string{"instances", "addresses", "hostnames", "interfaces", "labels", "facts"},
	}, nil
}

// Validate checks the configuration and reads the TLS files it names; it
// does not contact the daemon.
func (*source) Validate(_ context.Context, raw json.RawMessage) error {
	t, err := parseConfig(raw)
	if err != nil {
		return err
	}
	return checkFiles(t)
}

// Discover reads the whole inventory before emitting anything: a pull that
// fails part-way returns an error and hands the host nothing to apply.
func (*source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	log := sdk.Logger(ctx)
	t, err := parseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	c, err := connect(ctx, t)
	if err != nil {
		return sdk.Result{}, err
	}
	defer c.Close()
	inv, err := pull(ctx, c, t)
	if err != nil {
		return sdk.Result{}, err
	}
	obs, warnings := observations(inv)
	for start := 0; start < len(obs); start += batchSize {
		if err := emit.Emit(ctx, obs[start:min(start+batchSize, len(obs))]); err != nil {
			return sdk.Result{}, err
		}
	}
	log.Info("libvirt pulled", "uri", t.display, "domains", len(inv.domains), "networks", len(inv.networks))
	// A hypervisor knows its own domains, not everything on the networks
	// they share: a host in a domain's subnet that no domain has is not
	// gone. So the run claims no address range.
	return sdk.Result{Warnings: warnings}, nil
}
