package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/digitalocean/godo"
	"github.com/sollwert/sollwert/sdk"
)

const version = "0.1.0"

// source is the DigitalOcean adapter. It holds no state between calls:
// each Discover reads the token, pulls and forgets.
type source struct {
	tuning tuning
}

func (*source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:     "digitalocean",
		Version:  version,
		Fields:   fields,
		Observes: []string{"instances", "addresses", "hostnames", "labels", "facts", "firewalls"},
	}, nil
}

// Validate checks the configuration and that the token's file or variable
// is there; it does not contact the API.
func (*source) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parseConfig(raw)
	return err
}

// Discover reads the VPCs and firewalls, then streams the droplets page by
// page. Anything that fails part-way fails the run, so the host applies
// nothing of it.
func (s *source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	st, err := parseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	token, err := sdk.ReadSecret(st.tokenFile, st.tokenEnv)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("digitalocean: token: %w", err)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return sdk.Result{}, errors.New("digitalocean: the token is empty; check token_file or token_env")
	}
	res, err := s.pull(ctx, st, token, emit)
	if err != nil {
		// The API does not echo the token, but an error that came back
		// from anywhere is scrubbed before it leaves the plugin.
		return sdk.Result{}, redact(err, token)
	}
	return res, nil
}

func (s *source) pull(ctx context.Context, st settings, token string, emit sdk.Emitter) (sdk.Result, error) {
	log := sdk.Logger(ctx)
	c, err := newClient(st, token)
	if err != nil {
		return sdk.Result{}, err
	}
	t := s.tuning
	if t.backoff <= 0 {
		t = defaultTuning
	}
	p := &puller{c: c, s: st, t: t, log: log, token: token}

	// VPCs and firewalls first, side by side: every droplet needs both.
	// The first to fail stops the other and is the run's error.
	var (
		vpcs      []*godo.VPC
		fws       []godo.Firewall
		wg        sync.WaitGroup
		firstErr  error
		errOnce   sync.Once
		setupCtx  context.Context
		setupStop context.CancelFunc
	)
	setupCtx, setupStop = context.WithCancel(ctx)
	defer setupStop()
	fail := func(err error) {
		if err != nil {
			errOnce.Do(func() { firstErr = err; setupStop() })
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		var err error
		vpcs, err = listAll(setupCtx, p, "vpcs", c.VPCs.List)
		fail(err)
	}()
	go func() {
		defer wg.Done()
		var err error
		fws, err = listAll(setupCtx, p, "firewalls", c.Firewalls.List)
		fail(err)
	}()
	wg.Wait()
	if firstErr != nil {
		return sdk.Result{}, firstErr
	}
	idx, warnings := newIndex(vpcs, fws)

	seen := map[int]bool{}
	total, changed := -1, false
	emitted := 0
	err = p.droplets(ctx, func(dp dropletPage) error {
		if total < 0 {
			total = dp.total
		} else if dp.total != total {
			changed = true
		}
		batch := make([]sdk.Observation, 0, len(dp.droplets))
		for i := range dp.droplets {
			d := &dp.droplets[i]
			// Pages are offsets: a droplet created or deleted during
			// the pull shifts the rest, and one may come twice.
			if seen[d.ID] {
				continue
			}
			seen[d.ID] = true
			o, w := idx.observation(d)
			if w != "" {
				warnings = append(warnings, w)
			}
			if len(o.Addresses) > 0 {
				batch = append(batch, o)
			}
		}
		if len(batch) == 0 {
			return nil
		}
		emitted += len(batch)
		return emit.Emit(ctx, batch)
	})
	if err != nil {
		return sdk.Result{}, err
	}
	if changed {
		warnings = append(warnings, "the droplet list changed during the pull; a droplet created or deleted meanwhile may be missing until the next run")
	}
	log.Info("digitalocean pulled", "droplets", len(seen), "reported", emitted, "firewalls", len(fws), "vpcs", len(vpcs), "tag", st.tag)
	// DigitalOcean knows its droplets, not every host on the networks
	// they share, so the run claims no address range.
	return sdk.Result{Warnings: warnings}, nil
}

// redactedError is an error whose text had a secret in it; its text no
// longer has, and it still unwraps to the cause for errors.Is and As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "[token]"), err: err}
}
