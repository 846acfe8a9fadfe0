package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// DefaultURI is libvirt's own default for a system hypervisor: the local
// daemon's socket.
const DefaultURI = "qemu:///system"

// defaultConnectTimeout bounds the dial, the TLS handshake and the
// connection's opening; the whole pull is bounded by the job's timeout.
const defaultConnectTimeout = 10 * time.Second

// The libvirt defaults a client without pkipath reads its TLS files from.
const (
	defaultSocket   = "/var/run/libvirt/libvirt-sock"
	defaultTLSPort  = "16514"
	defaultCAFile   = "/etc/pki/CA/cacert.pem"
	defaultCertFile = "/etc/pki/libvirt/clientcert.pem"
	defaultKeyFile  = "/etc/pki/libvirt/private/clientkey.pem"
)

// The address sources of virDomainInterfaceAddresses, by their virsh names.
const (
	sourceLease = "lease"
	sourceAgent = "agent"
	sourceARP   = "arp"
)

var defaultAddressSources = []string{sourceLease, sourceARP}

// config is a job's configuration as the user writes it. The job's own
// "timeout" attribute belongs to the daemon (it bounds the whole run and
// reaches the plugin as ctx's deadline), so the dial's bound has its own
// name.
type config struct {
	URI            string   `json:"uri"`
	ConnectTimeout string   `json:"connect_timeout"`
	Domains        []string `json:"domains"`
	AddressSources []string `json:"address_sources"`
	CAFile         string   `json:"ca_file"`
	CertFile       string   `json:"cert_file"`
	// The private key is a secret: key_file or key_env (sdk.CheckSecret).
	KeyFile string `json:"key_file"`
	KeyEnv  string `json:"key_env"`
}

var fields = []sdk.Field{
	{Name: "uri", Type: "string", Description: `libvirt connection URI (default "qemu:///system"): DRIVER:///PATH, DRIVER+unix:///PATH?socket=SOCKET, DRIVER+tls://HOST[:PORT]/PATH[?pkipath=DIR]`},
	{Name: "connect_timeout", Type: "duration", Description: `bound on dialling and opening the connection (default "10s"); the job's timeout bounds the whole pull`},
	{Name: "domains", Type: "list(string)", Description: "domain names or path.Match patterns to report (default: all)"},
	{Name: "address_sources", Type: "list(string)", Description: `where running domains' IP addresses come from, tried in order until one answers: "lease", "agent", "arp" (default ["lease", "arp"])`},
	{Name: "ca_file", Type: "string", Description: "tls: CA certificate(s) the daemon's certificate must chain to (default PKIPATH/cacert.pem or /etc/pki/CA/cacert.pem)"},
	{Name: "cert_file", Type: "string", Description: "tls: client certificate (default PKIPATH/clientcert.pem or /etc/pki/libvirt/clientcert.pem)"},
	{Name: "key_file", Type: "string", Description: "tls: client private key file (default PKIPATH/clientkey.pem or /etc/pki/libvirt/private/clientkey.pem)"},
	{Name: "key_env", Type: "string", Description: "tls: environment variable holding the client private key in PEM, instead of key_file"},
}

// target is a checked configuration: how to reach the daemon and what to
// ask it.
type target struct {
	// transport is "unix" or "tls".
	transport string
	// socket is the Unix socket's path (unix).
	socket string
	// addr is host:port and serverName the name the daemon's certificate
	// must carry (tls).
	addr       string
	serverName string
	// caFile, certFile, keyFile and keyEnv locate the TLS material.
	caFile, certFile, keyFile, keyEnv string
	// remote is the URI the daemon opens once connected, e.g.
	// "qemu:///system" or "test:///srv/node.xml".
	remote string
	// display is the URI as the user wrote it, for logs and errors; it
	// holds no secret (TLS material is in files).
	display        string
	connectTimeout time.Duration
	domains        []string
	addressSources []string
}

var driverRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// parseConfig decodes and checks a configuration without touching the
// network; every problem is a field error naming its attribute. It does
// not read the TLS files: checkFiles does.
func parseConfig(raw json.RawMessage) (target, error) {
	c := config{URI: DefaultURI, ConnectTimeout: defaultConnectTimeout.String()}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return target{}, err
	}
	verr := &sdk.ValidationError{}
	t := target{display: c.URI, domains: c.Domains, addressSources: c.AddressSources}

	if d, err := time.ParseDuration(c.ConnectTimeout); err != nil {
		verr.Add("connect_timeout", "%q is not a duration such as \"10s\"", c.ConnectTimeout)
	} else if d <= 0 {
		verr.Add("connect_timeout", "must be longer than 0s")
	} else {
		t.connectTimeout = d
	}
	for _, p := range c.Domains {
		if p == "" {
			verr.Add("domains", "an empty name matches no domain")
		} else if _, err := path.Match(p, ""); err != nil {
			verr.Add("domains", "%q is not a valid pattern: %v", p, err)
		}
	}
	if c.AddressSources == nil {
		t.addressSources = defaultAddressSources
	}
	seen := map[string]bool{}
	for _, s := range t.addressSources {
		switch s {
		case sourceLease, sourceAgent, sourceARP:
		default:
			verr.Add("address_sources", "%q is not lease, agent or arp", s)
		}
		if seen[s] {
			verr.Add("address_sources", "%q is listed twice", s)
		}
		seen[s] = true
	}

	parseURI(&t, c.URI, verr)
	if t.transport == "tls" {
		pki, _ := url.Parse(c.URI)
		dir := ""
		if pki != nil {
			dir = pki.Query().Get("pkipath")
		}
		t.caFile = orDefault(c.CAFile, dir, "cacert.pem", defaultCAFile)
		t.certFile = orDefault(c.CertFile, dir, "clientcert.pem", defaultCertFile)
		t.keyEnv = c.KeyEnv
		if c.KeyEnv == "" {
			t.keyFile = orDefault(c.KeyFile, dir, "clientkey.pem", defaultKeyFile)
		}
		// The one rule for secrets: key_file or key_env, not both, readable now.
		sdk.CheckSecret(verr, "key", c.KeyFile, c.KeyEnv, false)
	} else if t.transport != "" {
		for name, v := range map[string]string{"ca_file": c.CAFile, "cert_file": c.CertFile, "key_file": c.KeyFile, "key_env": c.KeyEnv} {
			if v != "" {
				verr.Add(name, "applies to a tls URI only (DRIVER+tls://HOST/PATH), not to %q", c.URI)
			}
		}
	}
	return t, verr.Err()
}

func orDefault(set, dir, name, def string) string {
	switch {
	case set != "":
		return set
	case dir != "":
		return filepath.Join(dir, name)
	}
	return def
}

// parseURI reads a libvirt URI the way libvirt's own client does, for the
// transports this plugin speaks: unix (the default when no host is given)
// and tls (the default when one is).
func parseURI(t *target, raw string, verr *sdk.ValidationError) {
	u, err := url.Parse(raw)
	if err != nil {
		verr.Add("uri", "%q is not a URI: %v", raw, errUnwrapURL(err))
		return
	}
	if u.Opaque != "" || u.Scheme == "" {
		verr.Add("uri", "%q is not a libvirt URI such as %q or %q", raw, DefaultURI, "qemu+tls://host.example/system")
		return
	}
	if u.User != nil {
		verr.Add("uri", "%q: a user name applies to ssh transports, which this plugin does not speak", raw)
		return
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if !driverRE.MatchString(driver) {
		verr.Add("uri", "%q: %q is not a libvirt driver name", raw, driver)
		return
	}
	if transport == "" {
		transport = "unix"
		if u.Host != "" {
			transport = "tls" // libvirt's rule: a host and no transport means tls
		}
	}
	q := u.Query()
	known := map[string]bool{}
	switch transport {
	case "unix":
		if u.Host != "" {
			verr.Add("uri", "%q: a unix URI names no host; use %s+tls://%s%s for a remote daemon", raw, driver, u.Host, u.Path)
			return
		}
		known["socket"] = true
		t.socket = q.Get("socket")
		switch {
		case t.socket == "" && u.Path == "/session":
			// A session daemon listens in the user's runtime directory.
			if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
				t.socket = filepath.Join(dir, "libvirt", "libvirt-sock")
			} else if home, err := os.UserHomeDir(); err == nil {
				t.socket = filepath.Join(home, ".cache", "libvirt", "libvirt-sock")
			} else {
				verr.Add("uri", "%q: cannot tell the session daemon's socket; add ?socket=PATH", raw)
				return
			}
		case t.socket == "":
			t.socket = defaultSocket
		case !filepath.IsAbs(t.socket):
			verr.Add("uri", "%q: socket %q must be an absolute path", raw, t.socket)
			return
		}
	case "tls":
		if u.Hostname() == "" {
			verr.Add("uri", "%q: a tls URI names the daemon's host: %s+tls://HOST%s", raw, driver, u.Path)
			return
		}
		known["pkipath"] = true
		port := u.Port()
		if port == "" {
			port = defaultTLSPort
		}
		t.addr = net.JoinHostPort(u.Hostname(), port)
		t.serverName = u.Hostname()
	case "tcp":
		verr.Add("uri", "%q: the tcp transport is neither encrypted nor authenticated; use %s+tls://%s%s", raw, driver, u.Host, u.Path)
		return
	default:
		verr.Add("uri", "%q: transport %q is not supported by this plugin (unix or tls)", raw, transport)
		return
	}
	for k := range q {
		if !known[k] {
			verr.Add("uri", "%q: parameter %q is not supported here (known: %s)", raw, k, strings.Join(keys(known), ", "))
			return
		}
	}
	t.transport = transport
	// Once connected, every connection is local to the daemon: it opens
	// the URI without the transport and host.
	t.remote = (&url.URL{Scheme: driver, Path: u.Path}).String()
	if u.Path == "" {
		t.remote = driver + ":///"
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// errUnwrapURL drops net/url's repetition of the whole input.
func errUnwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// checkFiles reads what Validate can check before any connection: the TLS
// files exist, parse and belong together.
func checkFiles(t target) error {
	if t.transport != "tls" {
		return nil
	}
	verr := &sdk.ValidationError{}
	if _, err := t.tlsConfig(); err != nil {
		var fe *fileError
		if errors.As(err, &fe) {
			verr.Add(fe.field, "%v", fe.err)
		} else {
			verr.Add("cert_file", "%v", err)
		}
	}
	return verr.Err()
}

// fileError names the attribute a TLS file came from.
type fileError struct {
	field string
	err   error
}

func (e *fileError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// tlsConfig loads the client's TLS material. Its errors name files, never
// the key's content.
func (t target) tlsConfig() (*tls.Config, error) {
	caPEM, err := os.ReadFile(t.caFile)
	if err != nil {
		return nil, &fileError{"ca_file", err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, &fileError{"ca_file", fmt.Errorf("%s holds no PEM certificate", t.caFile)}
	}
	certPEM, err := os.ReadFile(t.certFile)
	if err != nil {
		return nil, &fileError{"cert_file", err}
	}
	var keyPEM []byte
	keyField := "key_file"
	if t.keyEnv != "" {
		keyField = "key_env"
		s, err := sdk.ReadSecret("", t.keyEnv)
		if err != nil {
			return nil, &fileError{keyField, err}
		}
		keyPEM = []byte(s)
	} else if keyPEM, err = os.ReadFile(t.keyFile); err != nil {
		return nil, &fileError{keyField, err}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's messages name neither file nor key material.
		return nil, &fileError{keyField, fmt.Errorf("client certificate %s and its key do not load: %w", t.certFile, err)}
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{pair},
		ServerName:   t.serverName,
	}, nil
}
