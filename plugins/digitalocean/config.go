package main

import (
	"encoding/json"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/sollwert/sollwert/sdk"
)

// DefaultAPIURL is DigitalOcean's public API, godo's own default.
const DefaultAPIURL = "https://api.digitalocean.com/"

// The API's limits: per_page is at most 200 (its documented maximum).
const (
	defaultPerPage     = 200
	maxPerPage         = 200
	defaultMaxRetries  = 4
	maxMaxRetries      = 10
	defaultConcurrency = 4
	maxConcurrency     = 16
)

// config is a job's configuration as the user writes it. The job's own
// "timeout" belongs to the daemon and reaches the plugin as ctx's deadline.
type config struct {
	// The API token is a secret: token_file or token_env (sdk.CheckSecret).
	TokenFile   string `json:"token_file"`
	TokenEnv    string `json:"token_env"`
	Tag         string `json:"tag"`
	PerPage     int    `json:"per_page"`
	APIURL      string `json:"api_url"`
	MaxRetries  int    `json:"max_retries"`
	Concurrency int    `json:"concurrency"`
}

var fields = []sdk.Field{
	{Name: "token_file", Type: "string", Description: "file holding a DigitalOcean personal access token with read scope (droplet:read, vpc:read, firewall:read)"},
	{Name: "token_env", Type: "string", Description: "environment variable holding the token, instead of token_file"},
	{Name: "tag", Type: "string", Description: "report only droplets carrying this tag (default: all droplets)"},
	{Name: "per_page", Type: "number", Description: "items asked for per page, 1-200 (default 200)"},
	{Name: "api_url", Type: "string", Description: `API base URL (default "https://api.digitalocean.com/"); plain http only to a loopback address`},
	{Name: "max_retries", Type: "number", Description: "retries of one request after a 429, a 5xx or a network error, 0-10 (default 4)"},
	{Name: "concurrency", Type: "number", Description: "droplet pages fetched at once, 1-16 (default 4)"},
}

// settings is a checked configuration. It holds where the token is, never
// the token itself: Discover reads it just before use.
type settings struct {
	tokenFile, tokenEnv string
	tag                 string
	perPage             int
	apiURL              string
	maxRetries          int
	concurrency         int
}

// tagRE is what DigitalOcean accepts as a tag name: letters, digits,
// colons, dashes and underscores, at most 255 characters.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,255}$`)

// parseConfig decodes and checks a configuration without touching the
// network; every problem is a field error naming its attribute.
func parseConfig(raw json.RawMessage) (settings, error) {
	c := config{PerPage: defaultPerPage, APIURL: DefaultAPIURL, MaxRetries: defaultMaxRetries, Concurrency: defaultConcurrency}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return settings{}, err
	}
	verr := &sdk.ValidationError{}
	sdk.CheckSecret(verr, "token", c.TokenFile, c.TokenEnv, true)
	if c.Tag != "" && !tagRE.MatchString(c.Tag) {
		verr.Add("tag", "%q is not a DigitalOcean tag name (letters, digits, colons, dashes and underscores, at most 255)", c.Tag)
	}
	if c.PerPage < 1 || c.PerPage > maxPerPage {
		verr.Add("per_page", "%d is outside 1-%d", c.PerPage, maxPerPage)
	}
	if c.MaxRetries < 0 || c.MaxRetries > maxMaxRetries {
		verr.Add("max_retries", "%d is outside 0-%d", c.MaxRetries, maxMaxRetries)
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		verr.Add("concurrency", "%d is outside 1-%d", c.Concurrency, maxConcurrency)
	}
	api, msg := checkAPIURL(c.APIURL)
	if msg != "" {
		verr.Add("api_url", "%s", msg)
	}
	if err := verr.Err(); err != nil {
		return settings{}, err
	}
	return settings{
		tokenFile: c.TokenFile, tokenEnv: c.TokenEnv, tag: c.Tag, perPage: c.PerPage,
		apiURL: api, maxRetries: c.MaxRetries, concurrency: c.Concurrency,
	}, nil
}

// checkAPIURL returns the URL with the trailing slash godo resolves its
// paths against, or what is wrong with it. The token travels in every
// request's header, so plain http is allowed only to this machine.
func checkAPIURL(raw string) (string, string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", strings.TrimPrefix(err.Error(), "parse ")
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "\"" + raw + "\" is not an http(s) URL such as \"" + DefaultAPIURL + "\""
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "\"" + raw + "\" must be a base URL without user, query or fragment"
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", "\"" + raw + "\": the token would travel unencrypted; use https (plain http only to a loopback address)"
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
