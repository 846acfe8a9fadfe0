package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/zclconf/go-cty/cty"
)

// Defaults for optional settings.
const (
	DefaultListen            = "127.0.0.1:7400"
	DefaultTimeout           = 10 * time.Minute
	DefaultMaxConcurrentJobs = 4
	DefaultStaleAfter        = 3
	// DefaultMissingAfter scans in a row must miss a provider's machine
	// before it is missing: one lost packet is not an alert.
	DefaultMissingAfter = 3
)

// Config is a loaded, checked configuration.
type Config struct {
	Path              string
	DataDir           string
	API               API
	Log               Log
	MaxConcurrentJobs int
	// PluginDir holds plugin binaries, sollwert-plugin-NAME; "" = none.
	PluginDir string
	// Plugins holds the plugin blocks by plugin name.
	Plugins map[string]Plugin
	Jobs    []Job
	Rules   []rules.Rule
	Sinks   []Sink
	// Tenants names "default" and every tenant block, in order.
	Tenants []string
	// Retention limits how far back history goes; zero keeps everything.
	Retention Retention
	// Integrity signs checkpoints of the history's chains.
	Integrity Integrity
	// ScanRateBudget is the packets per second all nmap jobs together may
	// send; 0: no budget. Each job gets an equal share of it per slot of
	// max_concurrent_jobs, so the sum never exceeds it.
	ScanRateBudget int
	// Vault is the vault block; nil without one.
	Vault *Vault
}

// Plugin is one plugin block: what the daemon insists on before starting
// that plugin.
type Plugin struct {
	// SHA256 pins the binary; "" leaves it unpinned.
	SHA256 string
	Range  hcl.Range
}

// Pins maps plugin names to their pinned checksums.
func (c *Config) Pins() map[string]string {
	out := make(map[string]string, len(c.Plugins))
	for name, p := range c.Plugins {
		if p.SHA256 != "" {
			out[name] = p.SHA256
		}
	}
	return out
}

// API configures the HTTP API.
type API struct {
	Listen string
	// TokensFile holds the API tokens (hashed; `sollwert token` writes
	// it). Set, every route but /healthz needs a token.
	TokensFile string
	// TLSCertFile and TLSKeyFile serve HTTPS; ClientCAFile also requires
	// client certificates signed by that CA.
	TLSCertFile, TLSKeyFile, ClientCAFile string
	// Insecure allows listening beyond loopback without TLS and tokens.
	Insecure bool
	// ChatTokenFile or ChatTokenEnv hold the token Mattermost or Slack
	// sends with slash commands; neither set: no /v1/chat/command.
	ChatTokenFile, ChatTokenEnv string
}

// Retention is the retention block.
type Retention struct {
	// History: versions of assets older than this are dropped, but for
	// the one that was current at the limit.
	History time.Duration
}

// Log configures logging.
type Log struct{ Level, Format string }

// Job is one job block.
type Job struct {
	Name, Source, Schedule string
	Tenant                 string
	Timeout                time.Duration
	Jitter                 time.Duration
	// SourceConfig holds every attribute the job block does not know
	// itself, as one JSON object for the source.
	SourceConfig json.RawMessage
	// Maintenance windows: no runs, and events on the job's targets held.
	Maintenance []Window
	// VaultRefs are the NAME_vault attributes among SourceConfig's.
	VaultRefs  []VaultRef
	Range      hcl.Range
	AttrRanges map[string]hcl.Range
}

// Fingerprint changes whenever anything about the job changes; a reload
// restarts only jobs whose fingerprint differs.
func (j Job) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s", j.Source, j.Schedule, j.Timeout, j.Jitter, j.Tenant, j.SourceConfig)
	for _, w := range j.Maintenance {
		fmt.Fprintf(h, "\x00%s\x00%s", w.Schedule, w.Duration)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// JobNames lists the configured jobs.
func (c *Config) JobNames() []string {
	out := make([]string, len(c.Jobs))
	for i, j := range c.Jobs {
		out[i] = j.Name
	}
	return out
}

// Load reads and checks the file at path.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(src, path)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "data_dir", Required: true},
		{Name: "max_concurrent_jobs"},
		{Name: "plugin_dir"},
		{Name: "scan_rate_budget"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "api"},
		{Type: "log"},
		{Type: "retention"},
		{Type: "integrity"},
		{Type: "vault"},
		{Type: "job", LabelNames: []string{"name"}},
		{Type: "expect", LabelNames: []string{"name"}},
		{Type: "plugin", LabelNames: []string{"name"}},
		{Type: "sink", LabelNames: []string{"name"}},
		{Type: "tenant", LabelNames: []string{"name"}},
	},
}

// tenantSchema is what a tenant block holds: the jobs, expectations and
// sinks of one customer.
var tenantSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "job", LabelNames: []string{"name"}},
		{Type: "expect", LabelNames: []string{"name"}},
		{Type: "sink", LabelNames: []string{"name"}},
	},
}

// Parse checks src, read from filename.
func Parse(src []byte, filename string) (*Config, error) {
	file, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	content, diags := file.Body.Content(rootSchema)
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	cfg := &Config{
		Path:              filename,
		API:               API{Listen: DefaultListen},
		Log:               Log{Level: "info", Format: "text"},
		MaxConcurrentJobs: DefaultMaxConcurrentJobs,
	}
	d := &decoder{}
	if a := content.Attributes["data_dir"]; a != nil {
		if dir, ok := d.str(a); ok {
			if dir == "" {
				d.add(errorAt(a.Expr.Range(), "Invalid data_dir", "data_dir must not be empty"))
			} else if !filepath.IsAbs(dir) {
				dir = filepath.Join(filepath.Dir(filename), dir)
			}
			cfg.DataDir = dir
		}
	}
	if a := content.Attributes["max_concurrent_jobs"]; a != nil {
		if n, ok := d.integer(a); ok {
			if n < 1 {
				d.add(errorAt(a.Expr.Range(), "Invalid max_concurrent_jobs", "must be at least 1"))
			}
			cfg.MaxConcurrentJobs = n
		}
	}
	if a := content.Attributes["scan_rate_budget"]; a != nil {
		if n, ok := d.integer(a); ok {
			if n < 1 {
				d.add(errorAt(a.Expr.Range(), "Invalid scan_rate_budget", "must be a number of packets per second"))
			}
			cfg.ScanRateBudget = n
		}
	}
	if a := content.Attributes["plugin_dir"]; a != nil {
		if dir, ok := d.str(a); ok {
			if dir != "" && !filepath.IsAbs(dir) {
				dir = filepath.Join(filepath.Dir(filename), dir)
			}
			cfg.PluginDir = dir
		}
	}
	cfg.Plugins = map[string]Plugin{}
	// Job and sink names are one namespace for the whole daemon (runs and
	// queues are found by them); expect names are per tenant.
	seen := map[string]map[string]hcl.Range{"api": {}, "log": {}, "retention": {}, "integrity": {}, "vault": {}, "job": {}, "plugin": {}, "sink": {}, "tenant": {}}
	d.decodeBlocks(cfg, content.Blocks, model.DefaultTenant, seen, map[string]hcl.Range{})
	cfg.Tenants = []string{model.DefaultTenant}
	for _, b := range content.Blocks {
		if b.Type != "tenant" || !nameRE.MatchString(b.Labels[0]) {
			continue
		}
		name := b.Labels[0]
		if name == model.DefaultTenant {
			d.add(errorAt(b.LabelRanges[0], "Invalid tenant name", fmt.Sprintf("%q is the tenant of everything outside tenant blocks", name)))
			continue
		}
		body, diags := b.Body.Content(tenantSchema)
		if diags.HasErrors() {
			d.add(diags...)
			continue
		}
		cfg.Tenants = append(cfg.Tenants, name)
		d.decodeBlocks(cfg, body.Blocks, name, seen, map[string]hcl.Range{})
	}
	d.checkVaultRefs(cfg)
	if err := diagErr(d.diags); err != nil {
		return nil, err
	}
	if cfg.ScanRateBudget > 0 {
		share := max(1, cfg.ScanRateBudget/cfg.MaxConcurrentJobs)
		for i := range cfg.Jobs {
			if cfg.Jobs[i].Source == "nmap" {
				cfg.Jobs[i].SourceConfig = withRateShare(cfg.Jobs[i].SourceConfig, share)
			}
		}
	}
	return cfg, nil
}

// withRateShare caps an nmap job's max_rate at its share of the daemon's
// budget; a job that asks for less, or whose profile already sends less,
// keeps that.
func withRateShare(raw json.RawMessage, share int) json.RawMessage {
	var c map[string]json.RawMessage
	if json.Unmarshal(raw, &c) != nil {
		return raw
	}
	var own int
	if v, ok := c["max_rate"]; ok && json.Unmarshal(v, &own) == nil && own > 0 && own <= share {
		return raw
	}
	var profile string
	if v, ok := c["profile"]; ok && json.Unmarshal(v, &profile) == nil && profile == "ot_safe" && own == 0 && share >= 10 {
		return raw // the profile's own 10 packets per second
	}
	c["max_rate"] = json.RawMessage(strconv.Itoa(share))
	out, err := json.Marshal(c)
	if err != nil {
		return raw
	}
	return out
}

// decodeBlocks decodes the blocks of the top level or of one tenant.
func (d *decoder) decodeBlocks(cfg *Config, blocks hcl.Blocks, tenant string, seen map[string]map[string]hcl.Range, expects map[string]hcl.Range) {
	for _, b := range blocks {
		key := ""
		if len(b.Labels) > 0 {
			key = b.Labels[0]
			if !nameRE.MatchString(key) {
				d.add(errorAt(b.LabelRanges[0], fmt.Sprintf("Invalid %s name", b.Type), fmt.Sprintf("%q: names use letters, digits, '.', '_' and '-'", key)))
				continue
			}
		}
		names := seen[b.Type]
		if b.Type == "expect" {
			names = expects
		}
		if prev, dup := names[key]; dup {
			what := b.Type + " block"
			if key != "" {
				what = fmt.Sprintf("%s %q", b.Type, key)
			}
			d.add(errorAt(b.DefRange, "Duplicate "+b.Type, fmt.Sprintf("%s is already defined at %s:%d", what, prev.Filename, prev.Start.Line)))
			continue
		}
		names[key] = b.DefRange
		switch b.Type {
		case "api":
			d.decodeAPI(b, &cfg.API)
		case "log":
			d.decodeLog(b, &cfg.Log)
		case "retention":
			d.decodeRetention(b, &cfg.Retention)
		case "vault":
			cfg.Vault = d.decodeVault(b)
		case "integrity":
			d.decodeIntegrity(b, &cfg.Integrity)
		case "job":
			if j, ok := d.decodeJob(b); ok {
				j.Tenant = tenant
				cfg.Jobs = append(cfg.Jobs, j)
			}
		case "expect":
			if r, ok := d.decodeExpect(b); ok {
				r.Tenant = tenant
				cfg.Rules = append(cfg.Rules, r)
			}
		case "plugin":
			if p, ok := d.decodePlugin(b); ok {
				cfg.Plugins[b.Labels[0]] = p
			}
		case "sink":
			if s, ok := d.decodeSink(b); ok {
				if tenant != model.DefaultTenant {
					// A tenant's sink hears of that tenant only.
					s.Tenants = []string{tenant}
				}
				cfg.Sinks = append(cfg.Sinks, s)
			}
		}
	}
}

// decoder collects diagnostics while decoding blocks.
type decoder struct{ diags hcl.Diagnostics }

func (d *decoder) add(diag ...*hcl.Diagnostic) { d.diags = append(d.diags, diag...) }

func (d *decoder) value(a *hcl.Attribute) (cty.Value, bool) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		d.add(diags...)
		return cty.NilVal, false
	}
	if v.IsNull() || !v.IsWhollyKnown() {
		d.add(errorAt(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "a value is required"))
		return cty.NilVal, false
	}
	return v, true
}

func (d *decoder) str(a *hcl.Attribute) (string, bool) {
	v, ok := d.value(a)
	if !ok {
		return "", false
	}
	if v.Type() != cty.String {
		d.add(errorAt(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), fmt.Sprintf("must be a string, not %s", v.Type().FriendlyName())))
		return "", false
	}
	return v.AsString(), true
}

func (d *decoder) integer(a *hcl.Attribute) (int, bool) {
	v, ok := d.value(a)
	if !ok {
		return 0, false
	}
	if v.Type() != cty.Number {
		d.add(errorAt(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), fmt.Sprintf("must be a whole number, not %s", v.Type().FriendlyName())))
		return 0, false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != 0 || n > 1<<31 || n < -(1<<31) {
		d.add(errorAt(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "must be a whole number"))
		return 0, false
	}
	return int(n), true
}

func (d *decoder) duration(a *hcl.Attribute) (time.Duration, bool) {
	s, ok := d.str(a)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur < 0 {
		d.add(errorAt(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), fmt.Sprintf("%q is not a duration such as \"90s\", \"5m\" or \"1h30m\"", s)))
		return 0, false
	}
	return dur, true
}

// strList reads a list of strings, returning each element's range too so
// a bad element can be pointed at.
func (d *decoder) strList(a *hcl.Attribute) ([]string, []hcl.Range, bool) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		d.add(errorAt(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "must be a list of strings, such as [\"22\", \"443\"]"))
		return nil, nil, false
	}
	out := make([]string, 0, len(exprs))
	ranges := make([]hcl.Range, 0, len(exprs))
	for _, e := range exprs {
		v, diags := e.Value(nil)
		if diags.HasErrors() {
			d.add(diags...)
			return nil, nil, false
		}
		if v.IsNull() || v.Type() != cty.String {
			d.add(errorAt(e.Range(), fmt.Sprintf("Invalid %s", a.Name), "every element must be a string"))
			return nil, nil, false
		}
		out = append(out, v.AsString())
		ranges = append(ranges, e.Range())
	}
	return out, ranges, true
}

func (d *decoder) decodeAPI(b *hcl.Block, api *API) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "listen"}, {Name: "chat_token_file"}, {Name: "chat_token_env"},
		{Name: "tokens_file"}, {Name: "tls_cert_file"}, {Name: "tls_key_file"}, {Name: "client_ca_file"}, {Name: "insecure"}}})
	if diags.HasErrors() {
		d.add(diags...)
		return
	}
	if a := content.Attributes["listen"]; a != nil {
		if s, ok := d.str(a); ok {
			api.Listen = s
		}
	}
	for name, into := range map[string]*string{"tokens_file": &api.TokensFile, "tls_cert_file": &api.TLSCertFile,
		"tls_key_file": &api.TLSKeyFile, "client_ca_file": &api.ClientCAFile} {
		a := content.Attributes[name]
		if a == nil {
			continue
		}
		s, ok := d.str(a)
		if !ok {
			continue
		}
		if s != "" && !filepath.IsAbs(s) {
			s = filepath.Join(filepath.Dir(a.Expr.Range().Filename), s)
		}
		// A tokens file may not exist yet (`sollwert token create` makes
		// it); certificates must.
		if name != "tokens_file" {
			if _, err := os.Stat(s); err != nil {
				d.add(errorAt(a.Expr.Range(), "Invalid "+name, err.Error()))
			}
		}
		*into = s
	}
	if a := content.Attributes["insecure"]; a != nil {
		if v, ok := d.value(a); ok {
			if v.Type() != cty.Bool {
				d.add(errorAt(a.Expr.Range(), "Invalid insecure", "must be true or false"))
			} else {
				api.Insecure = v.True()
			}
		}
	}
	if (api.TLSCertFile == "") != (api.TLSKeyFile == "") {
		d.add(errorAt(b.DefRange, "Invalid api block", "set both tls_cert_file and tls_key_file, or neither"))
	}
	if api.ClientCAFile != "" && api.TLSCertFile == "" {
		d.add(errorAt(b.DefRange, "Invalid api block", "client_ca_file needs tls_cert_file and tls_key_file"))
	}
	if a := content.Attributes["listen"]; a != nil && !api.Insecure && !loopback(api.Listen) && (api.TLSCertFile == "" || api.TokensFile == "") {
		d.add(errorAt(a.Expr.Range(), "Insecure api listen address",
			fmt.Sprintf("%q is reachable beyond this machine: set tls_cert_file, tls_key_file and tokens_file, or insecure = true if something else protects it", api.Listen)))
	}
	if a := content.Attributes["chat_token_file"]; a != nil {
		if s, ok := d.str(a); ok {
			if _, err := os.Stat(s); err != nil {
				d.add(errorAt(a.Expr.Range(), "Invalid chat_token_file", err.Error()))
			}
			api.ChatTokenFile = s
		}
	}
	if a := content.Attributes["chat_token_env"]; a != nil {
		if s, ok := d.str(a); ok {
			if _, set := os.LookupEnv(s); !set {
				d.add(errorAt(a.Expr.Range(), "Invalid chat_token_env", fmt.Sprintf("the environment variable %s is not set", s)))
			}
			api.ChatTokenEnv = s
		}
	}
	if api.ChatTokenFile != "" && api.ChatTokenEnv != "" {
		d.add(errorAt(b.DefRange, "Invalid api block", "set chat_token_file or chat_token_env, not both"))
	}
}

// loopback reports whether a listen address only accepts connections
// from this machine.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ChatToken reads the slash-command token; "" when none is configured.
func (a API) ChatToken() (string, error) {
	switch {
	case a.ChatTokenFile != "":
		b, err := os.ReadFile(a.ChatTokenFile)
		if err != nil {
			return "", fmt.Errorf("chat token: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case a.ChatTokenEnv != "":
		return os.Getenv(a.ChatTokenEnv), nil
	}
	return "", nil
}

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func (d *decoder) decodePlugin(b *hcl.Block) (Plugin, bool) {
	p := Plugin{Range: b.DefRange}
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "sha256"}}})
	if diags.HasErrors() {
		d.add(diags...)
		return p, false
	}
	if a := content.Attributes["sha256"]; a != nil {
		s, ok := d.str(a)
		if !ok {
			return p, false
		}
		if !sha256RE.MatchString(s) {
			d.add(errorAt(a.Expr.Range(), "Invalid sha256", fmt.Sprintf("%q is not 64 hex digits; `sha256sum sollwert-plugin-%s` prints it", s, b.Labels[0])))
			return p, false
		}
		p.SHA256 = strings.ToLower(s)
	}
	return p, true
}

func (d *decoder) decodeRetention(b *hcl.Block, r *Retention) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "history", Required: true}}})
	if diags.HasErrors() {
		d.add(diags...)
		return
	}
	if a := content.Attributes["history"]; a != nil {
		if dur, ok := d.duration(a); ok {
			if dur < 24*time.Hour {
				d.add(errorAt(a.Expr.Range(), "Invalid history retention", "keep at least a day (\"24h\"); omit the block to keep everything"))
			}
			r.History = dur
		}
	}
}

func (d *decoder) decodeLog(b *hcl.Block, l *Log) {
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "level"}, {Name: "format"}}})
	if diags.HasErrors() {
		d.add(diags...)
		return
	}
	if a := content.Attributes["level"]; a != nil {
		if s, ok := d.str(a); ok {
			switch s {
			case "trace", "debug", "info", "warn", "error":
				l.Level = s
			default:
				d.add(errorAt(a.Expr.Range(), "Invalid log level", fmt.Sprintf("%q is not one of trace, debug, info, warn, error", s)))
			}
		}
	}
	if a := content.Attributes["format"]; a != nil {
		if s, ok := d.str(a); ok {
			if s != "text" && s != "json" {
				d.add(errorAt(a.Expr.Range(), "Invalid log format", fmt.Sprintf("%q is not text or json", s)))
			}
			l.Format = s
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
