// Package snmp is the built-in SNMP source: it asks agents (switches,
// routers, printers, appliances) for their system group, interfaces,
// addresses, ENTITY-MIB model and serial, and their ARP and LLDP
// neighbours, over SNMPv2c or SNMPv3 (USM, authNoPriv or authPriv).
//
// Each agent becomes an observation of its address; each neighbour one of
// its own, with source "snmp-neighbour", so that a host behind a switch is
// known even if nothing scanned it. One agent failing does not fail the
// others: its error is a warning of the run, and the run fails only when
// no agent answered.
package snmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gosnmp/gosnmp"
	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// NeighbourSource names the observations of neighbours.
const NeighbourSource = "snmp-neighbour"

// Source is the snmp source.
type Source struct {
	log hclog.Logger
}

// New returns the snmp source.
func New(log hclog.Logger) *Source {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Source{log: log}
}

// Describe implements sdk.Source.
func (s *Source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "snmp", Version: "1", Fields: fields(),
		Observes: []string{"system", "interfaces", "addresses", "neighbours", "model", "serial"}}, nil
}

// Validate implements sdk.Source: it checks the configuration and that
// the secret files and variables it names exist, without reading them
// into anything that could be shown.
func (s *Source) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := ParseConfig(raw)
	return err
}

// credentials are the secrets of one run, read once.
type credentials struct {
	community, authKey, privKey string
}

func readCredentials(c Config) (credentials, error) {
	var cr credentials
	var err error
	if c.Version == "2c" {
		if cr.community, err = sdk.ReadSecret(c.CommunityFile, c.CommunityEnv); err != nil {
			return cr, fmt.Errorf("community: %w", err)
		}
		return cr, nil
	}
	if cr.authKey, err = sdk.ReadSecret(c.AuthKeyFile, c.AuthKeyEnv); err != nil {
		return cr, fmt.Errorf("auth key: %w", err)
	}
	if cr.privKey, err = sdk.ReadSecret(c.PrivKeyFile, c.PrivKeyEnv); err != nil {
		return cr, fmt.Errorf("priv key: %w", err)
	}
	if len(cr.authKey) < 8 || (c.PrivProtocol != "" && len(cr.privKey) < 8) {
		return cr, errors.New("SNMPv3 passphrases must have at least 8 characters")
	}
	return cr, nil
}

// Discover implements sdk.Source.
func (s *Source) Discover(ctx context.Context, req sdk.DiscoverRequest, emit sdk.Emitter) (sdk.Result, error) {
	c, err := ParseConfig(req.Config)
	if err != nil {
		return sdk.Result{}, err
	}
	cr, err := readCredentials(c)
	if err != nil {
		return sdk.Result{}, err
	}
	type outcome struct {
		addr netip.Addr
		obs  []sdk.Observation
		err  error
	}
	results := make(chan outcome)
	sem := make(chan struct{}, c.Concurrency)
	var wg sync.WaitGroup
	go func() {
		for _, addr := range c.targets {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func(addr netip.Addr) {
				defer wg.Done()
				defer func() { <-sem }()
				d, err := s.ask(ctx, c, cr, addr)
				o := outcome{addr: addr, err: err}
				if err == nil {
					o.obs = d.observations()
				}
				results <- o
			}(addr)
		}
		wg.Wait()
		close(results)
	}()

	var failed targetErrors
	answered, emitErr := 0, error(nil)
	for o := range results {
		if emitErr != nil {
			continue // drain
		}
		if o.err != nil {
			failed = append(failed, targetError{addr: o.addr, err: o.err})
			continue
		}
		answered++
		if err := emit.Emit(ctx, o.obs); err != nil {
			emitErr = err
		}
	}
	if emitErr != nil {
		return sdk.Result{}, emitErr
	}
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].addr.Less(failed[j].addr) })
	if answered == 0 {
		return sdk.Result{}, fmt.Errorf("no agent answered: %w", failed)
	}
	warnings := make([]string, len(failed))
	for i, f := range failed {
		warnings[i] = f.Error()
		s.log.Warn("agent failed", "agent", f.addr, "error", f.err)
	}
	// An agent that does not answer SNMP is not a host that is gone: the
	// run claims no address range, so nothing is marked absent.
	return sdk.Result{Warnings: warnings}, nil
}

// targetError is one agent's failure.
type targetError struct {
	addr netip.Addr
	err  error
}

func (e targetError) Error() string { return e.addr.String() + ": " + e.err.Error() }
func (e targetError) Unwrap() error { return e.err }

// targetErrors are the failures of every agent of a run.
type targetErrors []targetError

func (es targetErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (es targetErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ask walks one agent and explains a failure.
func (s *Source) ask(ctx context.Context, c Config, cr credentials, addr netip.Addr) (*device, error) {
	g := session(ctx, c, cr, addr)
	if err := g.Connect(); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer g.Conn.Close()
	d, err := collect(ctx, g, addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, explain(ctx, c, cr, addr, err)
	}
	return d, nil
}

func session(ctx context.Context, c Config, cr credentials, addr netip.Addr) *gosnmp.GoSNMP {
	g := &gosnmp.GoSNMP{
		Target: addr.String(), Port: uint16(c.Port), Transport: "udp", Context: ctx,
		Timeout: c.timeout, Retries: c.Retries, MaxRepetitions: uint32(c.MaxRepetitions), MaxOids: gosnmp.MaxOids,
		Version: gosnmp.Version2c, Community: cr.community,
	}
	if c.Version == "3" {
		auth := gosnmp.SHA
		if strings.EqualFold(c.AuthProtocol, "sha256") {
			auth = gosnmp.SHA256
		}
		usm := &gosnmp.UsmSecurityParameters{UserName: c.User, AuthenticationProtocol: auth, AuthenticationPassphrase: cr.authKey,
			PrivacyProtocol: gosnmp.NoPriv}
		g.MsgFlags = gosnmp.AuthNoPriv
		if c.PrivProtocol != "" {
			usm.PrivacyProtocol, usm.PrivacyPassphrase = gosnmp.AES, cr.privKey
			g.MsgFlags = gosnmp.AuthPriv
		}
		g.Version, g.SecurityModel, g.SecurityParameters, g.Community = gosnmp.Version3, gosnmp.UserSecurityModel, usm, ""
	}
	return g
}

// Errors a job reports per agent. Each names what the user can do.
var (
	ErrNoAnswer      = errors.New("no answer")
	ErrRefused       = errors.New("nothing listens")
	ErrCommunity     = errors.New("wrong community")
	ErrUnknownUser   = errors.New("unknown SNMPv3 user")
	ErrWrongAuthKey  = errors.New("wrong SNMPv3 authentication key")
	ErrWrongPrivKey  = errors.New("wrong SNMPv3 privacy key")
	ErrSecurityLevel = errors.New("security level not allowed for this user")
	ErrMalformed     = errors.New("malformed answer")
)

// explain turns a failed exchange into one of the errors above. SNMPv2c
// has no "wrong community" answer: an agent drops such requests. When a
// v2c agent is silent, an SNMPv3 discovery probe (which any v3-capable
// agent answers, credentials or not) tells a wrong community from a dead
// host.
func explain(ctx context.Context, c Config, cr credentials, addr netip.Addr, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return fmt.Errorf("%w %q", ErrUnknownUser, c.User)
	case errors.Is(err, gosnmp.ErrWrongDigest):
		return fmt.Errorf("%w for user %q", ErrWrongAuthKey, c.User)
	case errors.Is(err, gosnmp.ErrDecryption):
		return fmt.Errorf("%w for user %q", ErrWrongPrivKey, c.User)
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return fmt.Errorf("%w %q", ErrSecurityLevel, c.User)
	case errors.Is(err, errTooMuch):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case strings.Contains(msg, "connection refused"):
		return fmt.Errorf("%w on udp/%d (port unreachable)", ErrRefused, c.Port)
	case c.Version == "3" && strings.Contains(msg, "not authentic"):
		if why := diagnoseV3(ctx, c, cr, addr); why != nil {
			return why
		}
	case strings.Contains(msg, "request timeout") || strings.Contains(msg, "i/o timeout") || errors.Is(err, gosnmp.ErrMaxRetriesExceeded):
		if c.Version == "2c" && answersV3(ctx, c, addr) {
			return fmt.Errorf("%w: the agent answers SNMP, but not to the configured community", ErrCommunity)
		}
		if c.Version == "3" {
			if why := diagnoseV3(ctx, c, cr, addr); why != nil {
				return why
			}
		}
		return fmt.Errorf("%w within %v × %d tries (host down, filtered, or not an SNMP agent)", ErrNoAnswer, c.timeout, c.Retries+1)
	case strings.Contains(msg, "decrypt") && c.Version == "3":
		return fmt.Errorf("%w for user %q", ErrWrongPrivKey, c.User)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// answersV3 reports whether an SNMPv3 agent answers at addr: engine
// discovery needs no credentials.
func answersV3(ctx context.Context, c Config, addr netip.Addr) bool {
	g := &gosnmp.GoSNMP{Target: addr.String(), Port: uint16(c.Port), Transport: "udp", Context: ctx,
		Timeout: c.timeout, Retries: 0, Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
		MsgFlags: gosnmp.NoAuthNoPriv, SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "sollwert-probe"}}
	if err := g.Connect(); err != nil {
		return false
	}
	defer g.Conn.Close()
	_, err := g.Get([]string{oidSysDescr})
	return err == nil || errors.Is(err, gosnmp.ErrUnknownUsername) || errors.Is(err, gosnmp.ErrUnknownSecurityLevel)
}

// diagnoseV3 explains a silent SNMPv3 agent. An agent reports a wrong
// digest or a failed decryption without authentication, and gosnmp rightly
// drops such reports, so the exchange only times out. Two probes at lower
// security levels tell the cases apart: without authentication the agent
// says whether the user exists; with authentication only, an
// authenticated answer proves the authentication key right, which leaves
// the privacy key.
func diagnoseV3(ctx context.Context, c Config, cr credentials, addr netip.Addr) error {
	probe := func(flags gosnmp.SnmpV3MsgFlags, usm *gosnmp.UsmSecurityParameters) error {
		g := &gosnmp.GoSNMP{Target: addr.String(), Port: uint16(c.Port), Transport: "udp", Context: ctx,
			Timeout: c.timeout, Retries: 0, Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
			MsgFlags: flags, SecurityParameters: usm}
		if err := g.Connect(); err != nil {
			return err
		}
		defer g.Conn.Close()
		_, err := g.Get([]string{oidSysDescr})
		return err
	}
	err := probe(gosnmp.NoAuthNoPriv, &gosnmp.UsmSecurityParameters{UserName: c.User})
	switch {
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return fmt.Errorf("%w %q", ErrUnknownUser, c.User)
	case !errors.Is(err, gosnmp.ErrUnknownSecurityLevel) && err != nil:
		return nil // the agent does not answer v3 at all
	}
	auth := gosnmp.SHA
	if strings.EqualFold(c.AuthProtocol, "sha256") {
		auth = gosnmp.SHA256
	}
	err = probe(gosnmp.AuthNoPriv, &gosnmp.UsmSecurityParameters{UserName: c.User, AuthenticationProtocol: auth,
		AuthenticationPassphrase: cr.authKey, PrivacyProtocol: gosnmp.NoPriv})
	if err == nil || errors.Is(err, gosnmp.ErrUnknownSecurityLevel) {
		if c.PrivProtocol != "" {
			return fmt.Errorf("%w for user %q", ErrWrongPrivKey, c.User)
		}
		return nil
	}
	return fmt.Errorf("%w for user %q", ErrWrongAuthKey, c.User)
}

// observations turns what an agent said into the agent's own observation
// and one per neighbour.
func (d *device) observations() []sdk.Observation {
	self := sdk.Observation{Status: sdk.StatusUp, Addresses: []sdk.Address{address(d.addr)}, Facts: map[string]string{}}
	for k, v := range d.sys {
		self.Facts[k] = v
	}
	if n := d.sys["sys_name"]; n != "" {
		self.Hostnames = []string{n}
	}
	if d.model != "" {
		self.Facts["model"] = d.model
	}
	if d.serial != "" {
		self.Facts["serial"] = d.serial
	}
	own := map[netip.Addr]bool{d.addr: true}
	for _, ip := range d.addrs {
		if !own[ip] && !ip.IsLoopback() {
			own[ip] = true
			self.Addresses = append(self.Addresses, address(ip))
		}
	}
	names := map[int]string{}
	for index, i := range d.ifaces {
		name := i.name
		if name == "" {
			name = i.descr
		}
		if name == "" {
			name = strconv.Itoa(index)
		}
		names[index] = name
		p := "if." + name + "."
		self.Facts[p+"index"] = strconv.Itoa(index)
		self.Facts[p+"admin_status"] = ifStatus(i.admin)
		self.Facts[p+"oper_status"] = ifStatus(i.oper)
		if i.typ != 0 {
			self.Facts[p+"type"] = strconv.Itoa(i.typ)
		}
		if i.mac != "" {
			self.Facts[p+"mac"] = i.mac
		}
		if i.alias != "" {
			self.Facts[p+"alias"] = i.alias
		}
		if i.speedMbps > 0 {
			self.Facts[p+"speed_mbps"] = strconv.FormatUint(i.speedMbps, 10)
		}
	}
	out := []sdk.Observation{self}

	// Neighbours: one observation per address, the MAC with it. The facts
	// name the agent and its interface, keyed by the agent, so that two
	// switches seeing the same host do not overwrite each other.
	byIP := map[netip.Addr]int{} // index into out: out grows, pointers would not survive
	neighbour := func(ip netip.Addr) *sdk.Observation {
		i, ok := byIP[ip]
		if !ok {
			i = len(out)
			byIP[ip] = i
			out = append(out, sdk.Observation{Source: NeighbourSource, Addresses: []sdk.Address{address(ip)}, Facts: map[string]string{}})
		}
		return &out[i]
	}
	for _, e := range d.arp {
		if own[e.ip] || !e.ip.IsValid() || e.ip.IsUnspecified() || e.ip.IsMulticast() {
			continue
		}
		o := neighbour(e.ip)
		if e.mac != "" && !hasAddr(o, e.mac) {
			o.Addresses = append(o.Addresses, sdk.Address{Addr: e.mac, Type: "mac"})
		}
		o.Facts["arp_seen_by."+d.addr.String()] = names[e.ifIndex]
	}
	for _, e := range d.lldp {
		for _, ip := range e.addrs {
			if own[ip] {
				continue
			}
			o := neighbour(ip)
			if e.sys != "" && len(o.Hostnames) == 0 {
				o.Hostnames = []string{e.sys}
			}
			if e.chassis != "" {
				o.Facts["lldp_chassis_id"] = e.chassis
			}
			port := d.localPorts[e.localPort]
			if port == "" {
				port = strconv.Itoa(e.localPort)
			}
			o.Facts["lldp_seen_by."+d.addr.String()] = port + " <-> " + e.port
		}
	}
	return out
}

func hasAddr(o *sdk.Observation, a string) bool {
	for _, x := range o.Addresses {
		if x.Addr == a {
			return true
		}
	}
	return false
}

func address(ip netip.Addr) sdk.Address {
	if ip.Is4() {
		return sdk.Address{Addr: ip.String(), Type: "ipv4"}
	}
	return sdk.Address{Addr: ip.String(), Type: "ipv6"}
}

// ifStatus names IF-MIB's ifAdminStatus and ifOperStatus values.
func ifStatus(n int) string {
	names := []string{1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "not_present", 7: "lower_layer_down"}
	if n > 0 && n < len(names) {
		return names[n]
	}
	return "unknown"
}
