package icinga2

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sollwert/sollwert/plugins/internal/passive"
	"github.com/sollwert/sollwert/sdk"
)

// Config is an icinga2 sink block's own part.
type Config struct {
	// URL is the Icinga 2 API's base, e.g. "https://icinga.example:5665".
	URL string `json:"url"`
	// User is the ApiUser; its password comes from a file or the
	// environment, never from the configuration itself.
	User         string `json:"user"`
	PasswordFile string `json:"password_file"`
	PasswordEnv  string `json:"password_env"`
	// CAFile verifies Icinga's certificate (its CA, usually
	// /var/lib/icinga2/certs/ca.crt); ServerName is the name in that
	// certificate when the URL names an address (Icinga issues node
	// certificates to the node's name).
	CAFile     string `json:"ca_file"`
	ServerName string `json:"server_name"`
	// Services is "per_rule" (default: a service "PREFIX RULE" per host
	// and rule) or "per_host" (one service "PREFIX" per host).
	Services      string `json:"services"`
	ServicePrefix string `json:"service_prefix"`
	// HostLookup is "name" (default: the Icinga host is named by the
	// deviation's address) or "address" (the host whose address or
	// address6 attribute is the deviation's address, whatever its name).
	HostLookup string `json:"host_lookup"`
	// CreateObjects creates hosts and services Icinga does not know yet,
	// with the given templates.
	CreateObjects    bool     `json:"create_objects"`
	HostTemplates    []string `json:"host_templates"`
	ServiceTemplates []string `json:"service_templates"`
	// Resend posts the state of every active deviation again at this
	// interval ("0" turns it off; default 5m), so a restarted Icinga
	// that lost its state learns it again.
	Resend  string `json:"resend"`
	Timeout string `json:"timeout"`
}

// settings is a checked Config with what it names loaded.
type settings struct {
	Config
	base     *url.URL
	password string
	tls      *tls.Config
	scope    passive.Scope
	resend   time.Duration
	timeout  time.Duration
}

// parse checks a configuration; with load it also reads the password and
// the CA file, which Validate must not require to exist yet.
func parse(raw json.RawMessage, load bool) (*settings, error) {
	s := &settings{Config: Config{Services: string(passive.PerRule), ServicePrefix: "sollwert", HostLookup: "name"}}
	if err := sdk.DecodeConfig(raw, &s.Config); err != nil {
		return nil, err
	}
	verr := &sdk.ValidationError{}
	u, err := url.Parse(s.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		verr.Add("url", "%q is not an https URL: the Icinga 2 API speaks HTTPS only, e.g. https://icinga.example:5665", s.URL)
	}
	s.base = u
	if s.User == "" {
		verr.Add("user", "the ApiUser is required")
	}
	sdk.CheckSecret(verr, "password", s.PasswordFile, s.PasswordEnv, true)
	switch passive.Scope(s.Services) {
	case passive.PerRule, passive.PerHost:
		s.scope = passive.Scope(s.Services)
	default:
		verr.Add("services", "%q is neither %q nor %q", s.Services, passive.PerRule, passive.PerHost)
	}
	if s.ServicePrefix == "" || strings.Contains(s.ServicePrefix, "!") {
		verr.Add("service_prefix", "must be set and must not contain '!'")
	}
	if s.HostLookup != "name" && s.HostLookup != "address" {
		verr.Add("host_lookup", "%q is neither \"name\" nor \"address\"", s.HostLookup)
	}
	dur := func(field, v string, def time.Duration, zeroOK bool) time.Duration {
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d == 0 && !zeroOK {
			verr.Add(field, "%q is not a duration such as \"5m\"", v)
		}
		return d
	}
	s.resend = dur("resend", s.Resend, 5*time.Minute, true)
	s.timeout = dur("timeout", s.Timeout, 10*time.Second, false)
	if err := verr.Err(); err != nil || !load {
		return s, err
	}
	if s.password, err = sdk.ReadSecret(s.PasswordFile, s.PasswordEnv); err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", s.CAFile)
		}
		s.tls.RootCAs = pool
	}
	return s, nil
}
