package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/sollwert/sollwert/sdk"
)

// novaMicroversion asks Nova for the flavor embedded in each server (2.47,
// Pike) and for server tags (2.26).
const novaMicroversion = "2.47"

// maxReauth bounds how often one pull authenticates again after a token
// was refused. gophercloud retries each refused request once with a fresh
// token; a cloud that keeps refusing fresh tokens fails the run instead of
// being asked for new ones page after page.
const maxReauth = 2

// logger is the part of sdk.Logger's logger the client uses.
type logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}

// cloud is an authenticated session: the compute and network endpoints of
// one region and interface.
type cloud struct {
	compute *gophercloud.ServiceClient
	network *gophercloud.ServiceClient
	region  string
	// project is the token's project, for logs.
	project string
}

// connect reads the secrets, authenticates and finds the endpoints. Its
// errors never hold a secret.
func connect(ctx context.Context, s settings) (*cloud, error) {
	log := sdk.Logger(ctx)
	c := s.c
	password, err := sdk.ReadSecret(c.PasswordFile, c.PasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	appSecret, err := sdk.ReadSecret(c.ApplicationCredentialSecretFile, c.ApplicationCredentialSecretEnv)
	if err != nil {
		return nil, fmt.Errorf("application credential secret: %w", err)
	}

	var (
		ao        gophercloud.AuthOptions
		eo        gophercloud.EndpointOpts
		tlsConfig *tls.Config
	)
	if c.CloudsYAML != "" {
		if ao, eo, tlsConfig, err = parseClouds(c, password, appSecret); err != nil {
			return nil, fmt.Errorf("clouds_yaml %s: %w", c.CloudsYAML, err)
		}
	} else {
		ao, eo = explicitAuth(s, password, appSecret)
		if c.CAFile != "" {
			if tlsConfig, err = caConfig(c.CAFile); err != nil {
				return nil, err
			}
		}
	}
	ao.AllowReauth = true

	provider, err := openstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("auth_url %q: %w", ao.IdentityEndpoint, err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.MaxIdleConnsPerHost = c.Concurrency + 2
	provider.HTTPClient = http.Client{Transport: transport, Timeout: s.requestTimeout}
	provider.UserAgent.Prepend("sollwert-plugin-openstack/" + version)
	provider.MaxBackoffRetries = uint(c.MaxRetries)
	provider.RetryBackoffFunc = retryAfter(log, s.maxRetryWait)

	if err := openstack.Authenticate(ctx, provider, ao); err != nil {
		return nil, explain(fmt.Sprintf("authenticate at %s", ao.IdentityEndpoint), err)
	}
	limitReauth(log, provider)

	cl := &cloud{}
	if tok, ok := provider.GetAuthResult().(tokens.CreateResult); ok {
		if p, err := tok.ExtractProject(); err == nil && p != nil {
			cl.project = p.Name
		}
		if cat, err := tok.ExtractServiceCatalog(); err == nil {
			cl.region = catalogRegion(cat, "compute", eo)
		}
	}
	if cl.compute, err = openstack.NewComputeV2(provider, eo); err != nil {
		return nil, endpointErr("compute", eo, err)
	}
	cl.compute.Microversion = novaMicroversion
	if cl.network, err = openstack.NewNetworkV2(provider, eo); err != nil {
		return nil, endpointErr("network", eo, err)
	}
	return cl, nil
}

func explicitAuth(s settings, password, appSecret string) (gophercloud.AuthOptions, gophercloud.EndpointOpts) {
	c := s.c
	eo := gophercloud.EndpointOpts{Region: c.Region, Availability: s.availability}
	if c.ApplicationCredentialID != "" {
		return gophercloud.AuthOptions{
			IdentityEndpoint:            c.AuthURL,
			ApplicationCredentialID:     c.ApplicationCredentialID,
			ApplicationCredentialSecret: appSecret,
		}, eo
	}
	domain := c.DomainName
	if domain == "" {
		domain = defaultDomain
	}
	scope := &gophercloud.AuthScope{ProjectID: c.ProjectID}
	if c.ProjectID == "" {
		scope = &gophercloud.AuthScope{ProjectName: c.ProjectName, DomainName: domain}
		if c.ProjectDomainName != "" {
			scope.DomainName = c.ProjectDomainName
		}
	}
	return gophercloud.AuthOptions{
		IdentityEndpoint: c.AuthURL,
		Username:         c.Username,
		Password:         password,
		DomainName:       domain,
		Scope:            scope,
	}, eo
}

func caConfig(file string) (*tls.Config, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", file)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// catalogRegion names the region of the endpoint gophercloud picks for a
// service: the configured one, else the first that matches.
func catalogRegion(cat *tokens.ServiceCatalog, typ string, eo gophercloud.EndpointOpts) string {
	if eo.Region != "" {
		return eo.Region
	}
	for _, entry := range cat.Entries {
		if entry.Type != typ {
			continue
		}
		for _, ep := range entry.Endpoints {
			if gophercloud.Availability(ep.Interface) == eo.Availability {
				if ep.Region != "" {
					return ep.Region
				}
				return ep.RegionID
			}
		}
	}
	return ""
}

func endpointErr(service string, eo gophercloud.EndpointOpts, err error) error {
	region := eo.Region
	if region == "" {
		region = "any region"
	}
	return fmt.Errorf("the service catalog has no %s endpoint for interface %q in %s: %w", service, eo.Availability, region, err)
}

// limitReauth wraps gophercloud's re-authentication: it is logged, and
// bounded per pull.
func limitReauth(log logger, provider *gophercloud.ProviderClient) {
	reauth := provider.ReauthFunc
	if reauth == nil {
		return
	}
	var n atomic.Int32
	provider.ReauthFunc = func(ctx context.Context) error {
		if n.Add(1) > maxReauth {
			return fmt.Errorf("the cloud refused its token %d times in one pull; not authenticating again", maxReauth+1)
		}
		log.Info("the cloud refused the token; authenticating again")
		return reauth(ctx)
	}
}

// retryAfter waits as a 429 answer's Retry-After asks (seconds or an HTTP
// date), or backs off exponentially from 1s when it says nothing, at most
// maxWait; gophercloud counts the retries against MaxBackoffRetries.
func retryAfter(log logger, maxWait time.Duration) gophercloud.RetryBackoffFunc {
	return func(ctx context.Context, resp *gophercloud.ErrUnexpectedResponseCode, _ error, retry uint) error {
		wait, ok := parseRetryAfter(resp.ResponseHeader.Get("Retry-After"), time.Now())
		if !ok {
			wait = time.Second << min(retry-1, 6)
			wait = min(wait, maxWait)
		}
		if wait > maxWait {
			return fmt.Errorf("rate limited (HTTP %d) on %s: the cloud asks to wait %s, longer than max_retry_wait %s",
				resp.Actual, resp.URL, wait, maxWait)
		}
		log.Warn("rate limited; waiting before retrying", "status", resp.Actual, "url", resp.URL, "wait", wait.String(), "retry", retry)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// explain turns gophercloud's errors into ones that say what to do. It
// keeps the original in the chain (%w); none of them holds a secret, since
// gophercloud puts only URLs and response bodies in its messages.
func explain(op string, err error) error {
	var after *gophercloud.ErrErrorAfterReauthentication
	if errors.As(err, &after) {
		if code, ok := statusOf(after.ErrOriginal); ok && code == http.StatusUnauthorized {
			return fmt.Errorf("%s: the cloud refused a fresh token too (HTTP 401 right after authenticating again); check the user's role assignment in the project: %w", op, err)
		}
		return fmt.Errorf("%s: failed after authenticating again: %w", op, err)
	}
	var unable *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &unable) {
		return fmt.Errorf("%s: the token expired and authenticating again failed: %w", op, err)
	}
	code, ok := statusOf(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch {
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%s: the credentials were refused (HTTP 401): check the user or application credential, its secret, the project and the domain: %w", op, err)
	case code == http.StatusForbidden:
		return fmt.Errorf("%s: forbidden (HTTP 403): the user needs at least the reader role in the project: %w", op, err)
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("%s: still rate limited (HTTP 429) after every retry: %w", op, err)
	}
	return fmt.Errorf("%s: HTTP %d: %w", op, code, err)
}

func statusOf(err error) (int, bool) {
	var v gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &v) {
		return v.Actual, true
	}
	var p *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &p) {
		return p.Actual, true
	}
	return 0, false
}
