package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

const version = "0.1.0"

// source is the PuppetDB adapter. It holds no state between calls: each
// Discover reads its secrets, pulls and forgets.
type source struct {
	tuning tuning
}

func (*source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:     "puppetdb",
		Version:  version,
		Fields:   fields,
		Observes: []string{"instances", "addresses", "hostnames", "os", "facts"},
	}, nil
}

// Validate checks the configuration, that the secrets' files or variables
// are there and that the TLS files load; it does not contact PuppetDB.
func (*source) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parseConfig(raw)
	return err
}

// Discover pulls every node page by page and streams the observations.
// Anything that fails part-way fails the run, so the host applies
// nothing of it.
func (s *source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	st, err := parseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	token, err := sdk.ReadSecret(st.tokenFile, st.tokenEnv)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("puppetdb: token: %w", err)
	}
	token = strings.TrimSpace(token)
	if token == "" && (st.tokenFile != "" || st.tokenEnv != "") {
		return sdk.Result{}, errors.New("puppetdb: the token is empty; check token_file or token_env")
	}
	res, err := s.pull(ctx, st, token, emit)
	if err != nil {
		// Nothing sends the token anywhere but in a header; an error that
		// came back from anywhere is scrubbed before it leaves the plugin.
		return sdk.Result{}, redact(err, token)
	}
	return res, nil
}

func (s *source) pull(ctx context.Context, st settings, token string, emit sdk.Emitter) (sdk.Result, error) {
	log := sdk.Logger(ctx)
	t := s.tuning
	if t.backoff <= 0 {
		t = defaultTuning
	}
	c, err := newClient(st, token, t, log)
	if err != nil {
		return sdk.Result{}, err
	}
	p := &puller{c: c, s: st, ob: &observer{exclude: st.excludeInterfaces}, nq: nodesQuery(st)}
	sm := &summary{seen: map[string]bool{}, states: map[string]int{}, totals: map[int]bool{}}
	err = p.pages(ctx, func(pg page) error {
		sm.pages++
		if pg.total >= 0 {
			sm.totals[pg.total] = true
		}
		batch := make([]sdk.Observation, 0, len(pg.items))
		for i := range pg.items {
			it := &pg.items[i]
			// Pages are offsets: a node added or removed during the pull
			// shifts the rest, and one may come twice.
			if sm.seen[it.certname] {
				continue
			}
			sm.seen[it.certname] = true
			if len(it.problems) > 0 {
				sm.problems = append(sm.problems, it.certname+": "+strings.Join(it.problems, ", "))
			}
			if it.obs == nil {
				sm.noAddress = append(sm.noAddress, it.certname)
				continue
			}
			sm.states[it.obs.Facts["instance_state"]]++
			batch = append(batch, *it.obs)
		}
		if len(batch) == 0 {
			return nil
		}
		sm.reported += len(batch)
		return emit.Emit(ctx, batch)
	})
	if err != nil {
		return sdk.Result{}, err
	}
	// Pages arrive in any order; warnings list nodes by name.
	sort.Strings(sm.noAddress)
	sort.Strings(sm.problems)
	log.Info("puppetdb pulled", "nodes", len(sm.seen), "reported", sm.reported,
		"active", sm.states[stateActive], "deactivated", sm.states[stateDeactivated], "expired", sm.states[stateExpired],
		"without_address", len(sm.noAddress), "pages", sm.pages)
	// PuppetDB knows the machines Puppet manages, not every host on their
	// networks, so the run claims no address range.
	return sdk.Result{Warnings: sm.warnings()}, nil
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
