package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// queryPath is PuppetDB's root query endpoint (API v4), below url.
const queryPath = "/pdb/query/v4"

// Defaults and bounds. PuppetDB sets no maximum page size; 5,000 nodes
// with their networking facts are a few megabytes per answer, and more
// per request only makes one slow request slower.
const (
	defaultPageSize       = 500
	maxPageSize           = 5000
	defaultConcurrency    = 2
	maxConcurrency        = 8
	defaultMaxRetries     = 4
	maxMaxRetries         = 10
	defaultRequestTimeout = 60 * time.Second
	defaultMaxRetryWait   = 60 * time.Second
)

// defaultExcludeInterfaces are interfaces whose addresses many machines
// share: loopback, container and VM bridges, veth ends, overlay tunnels.
// Reported as a machine's addresses they would merge unrelated machines
// into one asset (every Docker host has 172.17.0.1 on docker0, every
// libvirt host 192.168.122.1 on virbr0).
var defaultExcludeInterfaces = []string{"lo*", "docker*", "veth*", "br-*", "virbr*", "cni*", "flannel*", "cali*", "tunl*", "vxlan*", "kube-*", "cilium*", "weave*", "podman*"}

// config is a job's configuration as the user writes it. The job's own
// "timeout" belongs to the daemon (it bounds the whole pull and reaches
// the plugin as ctx's deadline), so the bound on one request has its own
// name.
type config struct {
	URL      string `json:"url"`
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	// The client key and the PE RBAC token are secrets: NAME_file or
	// NAME_env (sdk.CheckSecret).
	KeyFile            string   `json:"key_file"`
	KeyEnv             string   `json:"key_env"`
	TokenFile          string   `json:"token_file"`
	TokenEnv           string   `json:"token_env"`
	Query              string   `json:"query"`
	IncludeDeactivated bool     `json:"include_deactivated"`
	PageSize           int      `json:"page_size"`
	Concurrency        int      `json:"concurrency"`
	MaxRetries         int      `json:"max_retries"`
	MaxRetryWait       string   `json:"max_retry_wait"`
	RequestTimeout     string   `json:"request_timeout"`
	ExcludeInterfaces  []string `json:"exclude_interfaces"`
}

var fields = []sdk.Field{
	{Name: "url", Type: "string", Required: true, Description: `PuppetDB's base URL, e.g. "https://puppetdb.example.com:8081" (queries go to URL/pdb/query/v4)`},
	{Name: "ca_file", Type: "string", Description: "https: CA certificate(s) PuppetDB's certificate must chain to, e.g. the Puppet CA (default: the system's roots)"},
	{Name: "cert_file", Type: "string", Description: "https: client certificate PuppetDB checks against its certificate-allowlist; needs key_file or key_env"},
	{Name: "key_file", Type: "string", Description: "https: the client certificate's private key"},
	{Name: "key_env", Type: "string", Description: "https: environment variable holding the client key in PEM, instead of key_file"},
	{Name: "token_file", Type: "string", Description: "file holding a Puppet Enterprise RBAC token, sent as X-Authentication"},
	{Name: "token_env", Type: "string", Description: "environment variable holding the RBAC token, instead of token_file"},
	{Name: "query", Type: "string", Description: `PQL condition on nodes, e.g. 'facts_environment = "production"' (default: every node)`},
	{Name: "include_deactivated", Type: "bool", Description: "report deactivated and expired nodes too, as down with their state (default true)"},
	{Name: "page_size", Type: "number", Description: "nodes asked for per page, 1-5000 (default 500)"},
	{Name: "concurrency", Type: "number", Description: "pages fetched at once, 1-8 (default 2)"},
	{Name: "max_retries", Type: "number", Description: "retries of one request after a 429, a 5xx or a network error, 0-10 (default 4)"},
	{Name: "max_retry_wait", Type: "duration", Description: `longest Retry-After the pull waits for (default "60s"); a longer one fails the run`},
	{Name: "request_timeout", Type: "duration", Description: `bound on one request, answer included (default "60s"); the job's timeout bounds the whole pull`},
	{Name: "exclude_interfaces", Type: "list(string)", Description: `interface names or path.Match patterns whose addresses and MACs are not reported (default: loopback, docker*, veth*, virbr*, ... see the README); [] reports every interface`},
}

// settings is a checked configuration. It holds where the secrets are,
// never the secrets: Discover reads them just before use.
type settings struct {
	base                string // url without a trailing slash
	endpoint            string // base + queryPath
	caFile, certFile    string
	keyFile, keyEnv     string
	tokenFile, tokenEnv string
	query               string // the user's condition, trimmed; "" for none
	includeDeactivated  bool
	pageSize            int
	concurrency         int
	maxRetries          int
	maxRetryWait        time.Duration
	requestTimeout      time.Duration
	excludeInterfaces   []string
}

// parseConfig decodes and checks a configuration without touching the
// network; every problem is a field error naming its attribute.
func parseConfig(raw json.RawMessage) (settings, error) {
	c := config{
		IncludeDeactivated: true,
		PageSize:           defaultPageSize,
		Concurrency:        defaultConcurrency,
		MaxRetries:         defaultMaxRetries,
		MaxRetryWait:       defaultMaxRetryWait.String(),
		RequestTimeout:     defaultRequestTimeout.String(),
		// A copy: decoding a list reuses the backing array of the one
		// it replaces.
		ExcludeInterfaces: slices.Clone(defaultExcludeInterfaces),
	}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return settings{}, err
	}
	verr := &sdk.ValidationError{}
	s := settings{
		caFile: c.CAFile, certFile: c.CertFile, keyFile: c.KeyFile, keyEnv: c.KeyEnv,
		tokenFile: c.TokenFile, tokenEnv: c.TokenEnv,
		query: strings.TrimSpace(c.Query), includeDeactivated: c.IncludeDeactivated,
		pageSize: c.PageSize, concurrency: c.Concurrency, maxRetries: c.MaxRetries,
		excludeInterfaces: c.ExcludeInterfaces,
	}

	u, msg := checkURL(c.URL)
	if msg != "" {
		verr.Add("url", "%s", msg)
	} else {
		s.base = strings.TrimSuffix(u.String(), "/")
		s.endpoint = s.base + queryPath
	}
	sdk.CheckSecret(verr, "token", c.TokenFile, c.TokenEnv, false)
	sdk.CheckSecret(verr, "key", c.KeyFile, c.KeyEnv, false)
	hasKey := c.KeyFile != "" || c.KeyEnv != ""
	switch {
	case c.CertFile != "" && !hasKey:
		verr.Add("key_file", "cert_file needs its private key: set key_file or key_env")
	case c.CertFile == "" && hasKey:
		verr.Add("cert_file", "a client key needs its certificate: set cert_file")
	}
	if u != nil && u.Scheme == "http" {
		for _, f := range []struct{ name, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}} {
			if f.v != "" {
				verr.Add(f.name, "%s is only used over https, and url %q is plain http", f.name, c.URL)
			}
		}
		if (c.TokenFile != "" || c.TokenEnv != "") && !isLoopback(u.Hostname()) {
			verr.Add("url", "%q: the token would travel unencrypted; use https (plain http only to a loopback address)", c.URL)
		}
	}
	if c.CAFile != "" {
		if _, err := loadCA(c.CAFile); err != nil {
			verr.Add("ca_file", "%v", err)
		}
	}
	if c.CertFile != "" && hasKey && len(verr.Fields) == 0 {
		// Load the pair now: a certificate that does not match its key
		// is a configuration error, better named here than at 3 a.m.
		if _, field, err := loadKeyPair(c.CertFile, c.KeyFile, c.KeyEnv); err != nil {
			verr.Add(field, "%v", err)
		}
	}
	if s.query != "" {
		if msg := checkQuery(s.query); msg != "" {
			verr.Add("query", "%s", msg)
		}
	}
	if c.PageSize < 1 || c.PageSize > maxPageSize {
		verr.Add("page_size", "%d is outside 1-%d", c.PageSize, maxPageSize)
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		verr.Add("concurrency", "%d is outside 1-%d", c.Concurrency, maxConcurrency)
	}
	if c.MaxRetries < 0 || c.MaxRetries > maxMaxRetries {
		verr.Add("max_retries", "%d is outside 0-%d", c.MaxRetries, maxMaxRetries)
	}
	s.maxRetryWait = duration(verr, "max_retry_wait", c.MaxRetryWait, false)
	s.requestTimeout = duration(verr, "request_timeout", c.RequestTimeout, true)
	for _, p := range c.ExcludeInterfaces {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			verr.Add("exclude_interfaces", "%q is not an interface name or path.Match pattern", p)
		}
	}
	if err := verr.Err(); err != nil {
		return settings{}, err
	}
	return s, nil
}

func duration(verr *sdk.ValidationError, field, v string, positive bool) time.Duration {
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		verr.Add(field, "%q is not a duration such as \"60s\"", v)
	case d < 0 || (positive && d == 0):
		verr.Add(field, "must be longer than 0s")
	}
	return d
}

// checkURL returns PuppetDB's base URL or what is wrong with it. A URL
// that already names the query endpoint is taken for its base.
func checkURL(raw string) (*url.URL, string) {
	if strings.TrimSpace(raw) == "" {
		return nil, `is required: PuppetDB's base URL, e.g. "https://puppetdb.example.com:8081"`
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, strings.TrimPrefix(err.Error(), "parse ")
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Sprintf("%q is not an http(s) URL such as \"https://puppetdb.example.com:8081\"", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Sprintf("%q must be a base URL without user, query or fragment", raw)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), queryPath)
	u.RawPath = ""
	return u, ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// wholeQueryRE matches the start of a whole PQL query ("nodes[...] {"),
// which query must not be: it is a condition the plugin wraps.
var wholeQueryRE = regexp.MustCompile(`^[A-Za-z_]+\s*\[`)

// checkQuery finds what would break the query the plugin builds around
// the user's condition: unbalanced brackets or quotes, a whole query, or
// paging and ordering of its own. Whether PQL accepts the condition only
// PuppetDB can say; the first run names its answer.
func checkQuery(q string) string {
	if wholeQueryRE.MatchString(q) {
		return fmt.Sprintf("%q is a whole query; write only the condition on nodes, e.g. 'facts_environment = \"production\"'", q)
	}
	var stack []byte
	closer := map[byte]byte{'(': ')', '[': ']', '{': '}'}
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch ch {
		case '"', '\'':
			j := i + 1
			for ; j < len(q) && q[j] != ch; j++ {
				if q[j] == '\\' {
					j++
				}
			}
			if j >= len(q) {
				return fmt.Sprintf("the string starting at character %d is not closed", i+1)
			}
			i = j
		case '(', '[', '{':
			stack = append(stack, closer[ch])
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != ch {
				return fmt.Sprintf("%q at character %d closes nothing", string(ch), i+1)
			}
			stack = stack[:len(stack)-1]
		default:
			if len(stack) > 0 || !isWordByte(ch) || (i > 0 && isWordByte(q[i-1])) {
				continue
			}
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			switch w := strings.ToLower(q[i:j]); w {
			case "limit", "offset", "order", "group":
				return fmt.Sprintf("%q: the plugin pages through the nodes itself (ordered by certname); remove the %s clause", q, w)
			}
			i = j - 1
		}
	}
	if len(stack) > 0 {
		return fmt.Sprintf("%q is missing %q", q, string(stack[len(stack)-1]))
	}
	return ""
}

func isWordByte(b byte) bool {
	return b == '_' || b == '.' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// loadCA reads a PEM bundle into a pool.
func loadCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// loadKeyPair reads the client certificate and its key; on failure it
// names the field to blame. Its errors never hold key material.
func loadKeyPair(certFile, keyFile, keyEnv string) (tls.Certificate, string, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, "cert_file", err
	}
	keyField := "key_file"
	if keyEnv != "" {
		keyField = "key_env"
	}
	key, err := sdk.ReadSecret(keyFile, keyEnv)
	if err != nil {
		return tls.Certificate{}, keyField, err
	}
	pair, err := tls.X509KeyPair(certPEM, []byte(key))
	if err != nil {
		return tls.Certificate{}, keyField, fmt.Errorf("the client certificate and key do not load as a pair: %v", err)
	}
	return pair, "", nil
}

// tlsConfig is the client's TLS configuration: PuppetDB's CA and the
// client certificate when configured, the system's roots otherwise.
func (s settings) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.caFile != "" {
		pool, err := loadCA(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if s.certFile != "" {
		pair, field, err := loadKeyPair(s.certFile, s.keyFile, s.keyEnv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
