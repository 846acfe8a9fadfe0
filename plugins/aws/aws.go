package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

const version = "0.1.0"

// source is the EC2 adapter. It holds no state between calls: each
// Discover loads credentials, pulls and forgets.
type source struct{}

func (*source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:     "aws",
		Version:  version,
		Fields:   fields,
		Observes: []string{"instances", "addresses", "hostnames", "interfaces", "labels", "facts", "security_groups"},
	}, nil
}

// Validate checks the configuration and that a named secret can be read;
// it calls no AWS API.
func (*source) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parseConfig(raw)
	return err
}

// Discover pulls every configured region and emits each page of instances
// as it is read. Any failure (a page that fails after the SDK's retries,
// credentials that are refused, a cancelled context) returns an error, and
// the host then applies nothing of the run.
func (*source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	log := sdk.Logger(ctx)
	s, err := parseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	cfg, err := loadAWSConfig(ctx, s)
	if err != nil {
		return sdk.Result{}, err
	}
	stats, err := pullAll(ctx, s, func(region string) ec2API { return ec2Client(cfg, s, region) }, emit)
	if err != nil {
		return sdk.Result{}, err
	}
	var warnings []string
	for _, st := range stats {
		log.Info("aws region pulled", "region", st.region, "instances", st.instances, "emitted", st.emitted, "security_groups", st.groups)
		if len(st.skipped) > 0 {
			warnings = append(warnings, fmt.Sprintf("region %s: %d instance(s) without any address left out: %s",
				st.region, len(st.skipped), strings.Join(st.skipped[:min(len(st.skipped), 10)], ", ")))
		}
	}
	// An account knows its own instances, not everything in the address
	// ranges they use: the run claims no address range.
	return sdk.Result{Warnings: warnings}, nil
}
