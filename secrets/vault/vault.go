package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/sollwert/sollwert/secrets"
)

// Config is where Vault is and how to log in.
type Config struct {
	// Address is Vault's URL, such as "https://vault.example:8200".
	Address string
	// CAFile holds the CA certificates (PEM) Vault's certificate must
	// chain to; "" uses the system's.
	CAFile string
	// Namespace is sent as X-Vault-Namespace (Vault Enterprise); "" none.
	Namespace string
	// Auth is "token" or "approle".
	Auth string
	// TokenFile or TokenEnv hold the token (auth "token").
	TokenFile, TokenEnv string
	// RoleID or RoleIDFile, and SecretIDFile or SecretIDEnv (optional for
	// a role without bind_secret_id), log in with AppRole.
	RoleID, RoleIDFile        string
	SecretIDFile, SecretIDEnv string
	// AppRoleMount is where the AppRole method is mounted; "" is "approle".
	AppRoleMount string
	// Timeout bounds one request; 0 is 30s.
	Timeout time.Duration
}

// Errors a read can be checked against with errors.Is.
var (
	// ErrDenied: Vault answered 403: the token is revoked, expired or
	// unknown, or its policies do not allow the path.
	ErrDenied = errors.New("permission denied")
	// ErrNotFound: there is no secret at the path (or it was deleted).
	ErrNotFound = errors.New("no secret at this path")
	// ErrNoKey: the secret exists but has no such key.
	ErrNoKey = errors.New("the secret has no such key")
)

// Client reads KV v2 secrets. It is safe for concurrent use.
type Client struct {
	cfg Config
	api *api.Client
	log hclog.Logger

	loginMu sync.Mutex // one login at a time
	mu      sync.Mutex
	auth    *api.SecretAuth // the current token's lease, as the watcher needs it
	gen     int             // counts logins, so concurrent 403s log in once
	changed chan struct{}   // closed when a login replaced the token

	cancel context.CancelFunc
	done   chan struct{}
}

// New logs in (AppRole) or checks the token (lookup-self), and keeps the
// token alive until Close.
func New(ctx context.Context, cfg Config, log hclog.Logger) (*Client, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.AppRoleMount == "" {
		cfg.AppRoleMount = "approle"
	}
	if cfg.Auth == "" {
		cfg.Auth = "token"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	ac, err := newAPIClient(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, api: ac, log: log, changed: make(chan struct{})}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go func() {
		defer close(c.done)
		c.keepAlive(bg)
	}()
	return c, nil
}

// newAPIClient builds the api client from cfg alone. api.DefaultConfig
// reads VAULT_* variables (VAULT_SKIP_VERIFY, VAULT_CACERT, VAULT_TOKEN,
// VAULT_NAMESPACE, VAULT_AGENT_ADDR, ...); the vault block is the one
// place that says where Vault is, whom to trust and who we are, so those
// are overridden here.
func newAPIClient(cfg Config) (*api.Client, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("vault: address %q is not an https URL", cfg.Address)
	}
	conf := api.DefaultConfig()
	if conf.Error != nil {
		return nil, fmt.Errorf("vault: client configuration from VAULT_* environment variables: %w", conf.Error)
	}
	conf.Address, conf.AgentAddress, conf.SRVLookup = cfg.Address, "", false
	conf.Timeout = cfg.Timeout
	tr, ok := conf.HttpClient.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("vault: unexpected HTTP transport %T", conf.HttpClient.Transport)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tr.TLSClientConfig != nil {
		tlsCfg.NextProtos = tr.TLSClientConfig.NextProtos
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("vault: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vault: ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	ac, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	ac.ClearToken()
	ac.ClearNamespace()
	if cfg.Namespace != "" {
		ac.SetNamespace(cfg.Namespace)
	}
	return ac, nil
}

// Origin implements secrets.Resolver.
func (c *Client) Origin() string { return c.cfg.Address + "\x00" + c.cfg.Namespace }

// Close stops keeping the token alive.
func (c *Client) Close() error {
	if c == nil || c.cancel == nil {
		return nil
	}
	c.cancel()
	<-c.done
	return nil
}

// Read implements secrets.Resolver: the field ref.Key of the latest
// version of the KV v2 secret ref.Path in the mount ref.Mount. A 403 is
// tried once more after a new login, for a token revoked or replaced
// behind the daemon's back.
func (c *Client) Read(ctx context.Context, ref secrets.Ref) (secrets.Value, error) {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	v, err := c.read(ctx, ref)
	if errors.Is(err, ErrDenied) && ctx.Err() == nil {
		if again, lerr := c.relogin(ctx, gen); lerr != nil {
			c.log.Warn("vault refused a read and logging in again failed", "ref", ref.String(), "error", lerr)
		} else if again {
			v, err = c.read(ctx, ref)
		}
	}
	return v, err
}

func (c *Client) read(ctx context.Context, ref secrets.Ref) (secrets.Value, error) {
	kv, err := c.api.KVv2(ref.Mount).Get(ctx, ref.Path)
	if err != nil {
		return secrets.Value{}, c.kvError(ref, err)
	}
	if kv.Data == nil {
		// The latest version was deleted; its metadata is all there is.
		return secrets.Value{}, fmt.Errorf("%s: %w (its latest version is deleted)", kvPath(ref), ErrNotFound)
	}
	raw, ok := kv.Data[ref.Key]
	if !ok {
		return secrets.Value{}, fmt.Errorf("%s: %w %q (it has %s)", kvPath(ref), ErrNoKey, ref.Key, keyList(kv.Data))
	}
	s, ok := raw.(string)
	if !ok {
		// Say the type, never the value.
		return secrets.Value{}, fmt.Errorf("%s: key %q holds %s, not a string", kvPath(ref), ref.Key, jsonType(raw))
	}
	var lease time.Duration
	if kv.Raw != nil {
		lease = time.Duration(kv.Raw.LeaseDuration) * time.Second
	}
	return secrets.Value{Secret: s, Lease: lease}, nil
}

func (c *Client) kvError(ref secrets.Ref, err error) error {
	if errors.Is(err, api.ErrSecretNotFound) {
		return fmt.Errorf("%s: %w", kvPath(ref), ErrNotFound)
	}
	return describe(err)
}

// kvPath is the request a reference makes.
func kvPath(ref secrets.Ref) string {
	return "GET /v1/" + ref.Mount + "/data/" + ref.Path
}

// login gets a token: AppRole logs in; token auth reads the token and asks
// Vault about it, so a bad token stops the start, not the first read.
func (c *Client) login(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	var auth *api.SecretAuth
	switch c.cfg.Auth {
	case "approle":
		a, err := c.appRoleLogin(ctx)
		if err != nil {
			return err
		}
		auth = a
	case "token":
		token, err := readCredential("token", c.cfg.TokenFile, c.cfg.TokenEnv)
		if err != nil {
			return err
		}
		a, err := c.lookupSelf(ctx, token)
		if err != nil {
			return err
		}
		auth = a
	default:
		return fmt.Errorf("vault: auth %q is not token or approle", c.cfg.Auth)
	}
	c.api.SetToken(auth.ClientToken)
	// Read for the log line before the watcher may renew (and write) it.
	ttl, renewable := time.Duration(auth.LeaseDuration)*time.Second, auth.Renewable
	c.mu.Lock()
	c.auth = auth
	c.gen++
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.log.Debug("vault token ready", "auth", c.cfg.Auth, "ttl", ttl, "renewable", renewable)
	return nil
}

// relogin logs in again unless someone did since gen; it reports whether
// the token is another one now. Token auth can only read the token again:
// an unchanged token is not worth another try.
func (c *Client) relogin(ctx context.Context, gen int) (bool, error) {
	c.mu.Lock()
	if c.gen != gen {
		c.mu.Unlock()
		return true, nil
	}
	old := c.auth.ClientToken
	c.mu.Unlock()
	if c.cfg.Auth == "token" {
		token, err := readCredential("token", c.cfg.TokenFile, c.cfg.TokenEnv)
		if err != nil || token == old {
			return false, err
		}
	}
	if err := c.login(ctx); err != nil {
		return false, err
	}
	return true, nil
}

func (c *Client) appRoleLogin(ctx context.Context) (*api.SecretAuth, error) {
	roleID := c.cfg.RoleID
	if c.cfg.RoleIDFile != "" {
		var err error
		if roleID, err = readCredential("role_id", c.cfg.RoleIDFile, ""); err != nil {
			return nil, err
		}
	}
	body := map[string]any{"role_id": roleID}
	if c.cfg.SecretIDFile != "" || c.cfg.SecretIDEnv != "" {
		secretID, err := readCredential("secret_id", c.cfg.SecretIDFile, c.cfg.SecretIDEnv)
		if err != nil {
			return nil, err
		}
		body["secret_id"] = secretID
	}
	// A login carries no token: a clone without one, with the namespace.
	lc, err := c.api.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	lc.ClearToken()
	path := "auth/" + strings.Trim(c.cfg.AppRoleMount, "/") + "/login"
	s, err := lc.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return nil, fmt.Errorf("vault: AppRole login: %w", describe(err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault: AppRole login: PUT /v1/%s: the answer holds no token", path)
	}
	return s.Auth, nil
}

// lookupSelf checks token and learns its lease.
func (c *Client) lookupSelf(ctx context.Context, token string) (*api.SecretAuth, error) {
	lc, err := c.api.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	lc.SetToken(token)
	s, err := lc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: checking the token: %w", describe(err))
	}
	if s == nil || s.Data == nil {
		return nil, errors.New("vault: checking the token: GET /v1/auth/token/lookup-self: empty answer")
	}
	ttl, err := s.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("vault: checking the token: ttl: %w", err)
	}
	renewable, err := s.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("vault: checking the token: renewable: %w", err)
	}
	lease := int(ttl / time.Second)
	if exp, _ := s.Data["expire_time"].(string); lease == 0 && exp != "" {
		// Less than a second left: not a token without a TTL.
		lease = 1
	}
	return &api.SecretAuth{ClientToken: token, LeaseDuration: lease, Renewable: renewable}, nil
}

// keepAlive renews the token while Vault lets it, and gets a new one when
// it will not: at the token's max TTL, when it is not renewable, or after
// a refused renewal. A login that fails is retried with backoff; reads
// meanwhile fail with Vault's reason, and the secret files keep their
// values.
func (c *Client) keepAlive(ctx context.Context) {
	for {
		c.mu.Lock()
		auth, changed := *c.auth, c.changed
		c.mu.Unlock()
		switch {
		case auth.LeaseDuration <= 0:
			// A token without a TTL (a root or periodic-less token) never
			// expires; wait for a login that replaces it.
			select {
			case <-ctx.Done():
				return
			case <-changed:
				continue
			}
		default:
			if !c.watch(ctx, &auth, changed) {
				return
			}
		}
		c.mu.Lock()
		replaced := c.changed != changed
		c.mu.Unlock()
		if replaced {
			continue
		}
		c.reauth(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}

// watch runs a LifetimeWatcher on the token until it says renewal is over
// (true), a login replaced the token (true), or ctx ends (false).
func (c *Client) watch(ctx context.Context, auth *api.SecretAuth, changed <-chan struct{}) bool {
	w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{
		Secret:        &api.Secret{Auth: auth},
		RenewBehavior: api.RenewBehaviorIgnoreErrors,
	})
	if err != nil {
		c.log.Error("vault: cannot watch the token's lifetime", "error", err)
		select {
		case <-ctx.Done():
			return false
		case <-changed:
			return true
		}
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-changed:
			return true
		case err := <-w.DoneCh():
			if err != nil {
				c.log.Warn("vault token renewal ended", "error", describe(err))
			} else {
				c.log.Debug("vault token cannot be renewed any further")
			}
			return true
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				c.mu.Lock()
				if c.auth.ClientToken == auth.ClientToken {
					c.auth.LeaseDuration, c.auth.Renewable = r.Secret.Auth.LeaseDuration, r.Secret.Auth.Renewable
				}
				c.mu.Unlock()
				c.log.Debug("vault token renewed", "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
			}
		}
	}
}

// reauth gets a new token, trying until it works or ctx ends.
func (c *Client) reauth(ctx context.Context) {
	wait := time.Second
	for {
		c.mu.Lock()
		old := c.auth.ClientToken
		c.mu.Unlock()
		err := c.login(ctx)
		if err == nil {
			c.mu.Lock()
			same := c.auth.ClientToken == old
			c.mu.Unlock()
			if !same || c.cfg.Auth == "approle" {
				c.log.Info("vault: new token", "auth", c.cfg.Auth)
				return
			}
			// Token auth: the same token, still valid but at the end of
			// its renewals. Only a new token in token_file can help.
			err = errors.New("the token cannot be renewed any more and expires soon: put a new one in token_file (Vault Agent can keep it there)")
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Error("vault: cannot get a new token; trying again", "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Minute)
	}
}

// readCredential reads a token, role ID or secret ID from its file or
// environment variable. Its errors name where, never what.
func readCredential(what, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("vault: %s: %w", what, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("vault: %s: %s is empty", what, file)
		}
		return v, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("vault: %s: the environment variable %s is not set", what, env)
		}
		return strings.TrimSpace(v), nil
	}
	return "", fmt.Errorf("vault: no %s: set %s_file or %s_env", what, what, what)
}

// apiError is an answer of Vault that is not a success, on one line:
// "GET /v1/secret/data/x: 403 permission denied".
type apiError struct {
	method, path string
	status       int
	errs         []string
	err          *api.ResponseError
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, http.StatusText(e.status))
	if len(e.errs) > 0 {
		msg += ": " + strings.Join(e.errs, "; ")
	}
	if e.status == http.StatusForbidden {
		msg += " (the token is revoked, expired or unknown, or its policies do not allow this path)"
	}
	return msg
}

func (e *apiError) Unwrap() []error {
	if e.status == http.StatusForbidden {
		return []error{e.err, ErrDenied}
	}
	return []error{e.err}
}

// describe shortens the api's multi-line errors and keeps them checkable
// (errors.As *api.ResponseError, errors.Is ErrDenied).
func describe(err error) error {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	path := re.URL
	if u, perr := url.Parse(re.URL); perr == nil {
		path = u.Path
	}
	var errs []string
	for _, e := range re.Errors {
		if e = strings.TrimSpace(e); e != "" && !re.RawError {
			errs = append(errs, e)
		}
	}
	return &apiError{method: re.HTTPMethod, path: path, status: re.StatusCode, errs: errs, err: re}
}

func keyList(data map[string]any) string {
	if len(data) == 0 {
		return "no keys"
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	slices.Sort(keys)
	return "keys " + strings.Join(keys, ", ")
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
