package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/sdk"
)

func TestTheIssueExampleLoads(t *testing.T) {
	cfg, err := Load("testdata/example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.Listen != "127.0.0.1:7400" || !strings.HasSuffix(cfg.DataDir, "testdata/data") {
		t.Fatalf("top level: %+v", cfg)
	}
	if len(cfg.Jobs) != 1 || len(cfg.Rules) != 1 {
		t.Fatalf("jobs %d rules %d", len(cfg.Jobs), len(cfg.Rules))
	}
	j := cfg.Jobs[0]
	if j.Name != "loopback" || j.Source != "nmap" || j.Schedule != "@every 5m" || j.Timeout != 2*time.Minute || j.Tenant != model.DefaultTenant {
		t.Fatalf("job: %+v", j)
	}
	var src map[string]any
	if err := json.Unmarshal(j.SourceConfig, &src); err != nil {
		t.Fatal(err)
	}
	if src["ports"] != "1-1024,8000-9000" || len(src["targets"].([]any)) != 1 || len(src) != 2 {
		t.Fatalf("source config: %s", j.SourceConfig)
	}
	if r := j.AttrRanges["ports"]; r.Start.Line != 10 {
		t.Fatalf("ports range: %+v", r)
	}
	r := cfg.Rules[0]
	if r.Name != "loopback-services" || r.Severity != model.SeverityCritical || r.UnknownHosts != model.SeverityWarning || r.StaleAfter != 3 {
		t.Fatalf("rule: %+v", r)
	}
	if len(r.CIDRs) != 1 || r.CIDRs[0] != netip.MustParsePrefix("127.0.0.0/8") {
		t.Fatalf("cidrs: %v", r.CIDRs)
	}
	if got := r.Allowed[sdk.TCP].String(); got != "22,8000-8100" {
		t.Fatalf("allowed tcp: %s", got)
	}
	if got := r.Required[sdk.TCP].String(); got != "22" {
		t.Fatalf("required tcp: %s", got)
	}
	if _, ok := r.Allowed[sdk.UDP]; ok {
		t.Fatal("udp must be unrestricted when not given")
	}
}

const head = "data_dir = \"d\"\n"

func TestInvalidConfigsNameTheirPosition(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"syntax error", head + "job \"x\" {\n  source = \n}\n", "c.hcl:3:12: Invalid expression"},
		{"unknown block", head + "jobs \"x\" {\n}\n", "c.hcl:2:1: Unsupported block type"},
		{"unknown top-level attribute", head + "datadir = 1\n", "c.hcl:2:1: Unsupported argument"},
		{"missing data_dir", "api {}\n", "c.hcl:1:1: Missing required argument"},
		{"duplicate job", head + "job \"a\" {\n source = \"nmap\"\n schedule = \"@hourly\"\n}\njob \"a\" {\n source = \"nmap\"\n schedule = \"@hourly\"\n}\n", "c.hcl:6:1: Duplicate job: job \"a\" is already defined at c.hcl:2"},
		{"duplicate expect", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n}\nexpect \"e\" {\n cidrs = [\"127.0.0.1\"]\n}\n", "c.hcl:5:1: Duplicate expect"},
		{"job without source", head + "job \"a\" {\n schedule = \"@hourly\"\n}\n", "c.hcl:2:9: Missing required argument"},
		{"bad cron", head + "job \"a\" {\n source = \"nmap\"\n schedule = \"61 * * * *\"\n}\n", "c.hcl:4:13: Invalid schedule"},
		{"bad duration", head + "job \"a\" {\n source = \"nmap\"\n schedule = \"@hourly\"\n timeout = \"5 minutes\"\n}\n", "c.hcl:5:12: Invalid timeout"},
		{"bad cidr element", head + "expect \"e\" {\n cidrs = [\"127.0.0.0/8\", \"10.0.0.300/8\"]\n}\n", "c.hcl:3:26: Invalid CIDR in cidrs: \"10.0.0.300/8\""},
		{"cidr with host bits", head + "expect \"e\" {\n cidrs = [\"127.0.0.1/8\"]\n}\n", "did you mean \"127.0.0.0/8\""},
		{"reversed port range", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n tcp = [\"22\", \"10-5\"]\n}\n", "c.hcl:4:15: Invalid port range in tcp"},
		{"port out of range", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n required_tcp = [\"70000\"]\n}\n", "outside 1-65535"},
		{"port by name", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n tcp = [\"ssh\"]\n}\n", "\"ssh\" is not a port number"},
		{"bad severity", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n severity = \"high\"\n}\n", "c.hcl:4:13: Invalid severity"},
		{"bad name", head + "job \"a/b\" {\n source = \"nmap\"\n schedule = \"@hourly\"\n}\n", "c.hcl:2:5: Invalid job name"},
		{"max concurrent below one", head + "max_concurrent_jobs = 0\n", "c.hcl:2:23: Invalid max_concurrent_jobs"},
		{"short plugin pin", head + "plugin \"hostsfile\" {\n sha256 = \"abc\"\n}\n", "c.hcl:3:11: Invalid sha256: \"abc\" is not 64 hex digits"},
		{"unknown plugin attribute", head + "plugin \"hostsfile\" {\n md5 = \"abc\"\n}\n", "c.hcl:3:2: Unsupported argument"},
		{"duplicate plugin", head + "plugin \"p\" {\n}\nplugin \"p\" {\n}\n", "c.hcl:4:1: Duplicate plugin"},
		{"bad fact regexp", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n fact \"sys_descr\" {\n  match = \"(Cisco\"\n }\n}\n", "c.hcl:5:11: Invalid regular expression in match"},
		{"fact with match and equals", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n fact \"x\" {\n  match = \"a\"\n  equals = \"b\"\n }\n}\n", "c.hcl:6:3: Invalid fact: set match or equals, not both"},
		{"fact without a test", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n fact \"x\" {\n }\n}\n", "c.hcl:4:2: Invalid fact"},
		{"duplicate fact", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n fact \"x\" {\n  equals = \"a\"\n }\n fact \"x\" {\n  equals = \"b\"\n }\n}\n", "c.hcl:7:2: Duplicate fact"},
		{"api beyond loopback without tls or tokens", head + "api {\n listen = \"0.0.0.0:7400\"\n}\n", "c.hcl:3:11: Insecure api listen address"},
		{"api on all addresses by port only", head + "api {\n listen = \":7400\"\n}\n", "Insecure api listen address"},
		{"tls cert without key", head + "api {\n tls_cert_file = \"config_test.go\"\n}\n", "set both tls_cert_file and tls_key_file"},
		{"tls cert that does not exist", head + "api {\n tls_cert_file = \"/nonexistent/api.crt\"\n tls_key_file = \"config_test.go\"\n}\n", "c.hcl:3:18: Invalid tls_cert_file"},
		{"insecure not a bool", head + "api {\n insecure = \"yes\"\n}\n", "c.hcl:3:13: Invalid insecure"},
		{"flap threshold without window", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n flap_threshold = 4\n}\n", "c.hcl:2:1: Invalid flap damping"},
		{"open after zero", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n open_after = 0\n}\n", "c.hcl:4:15: Invalid open_after"},
		{"retention under a day", head + "retention {\n history = \"1h\"\n}\n", "c.hcl:3:12: Invalid history retention"},
		{"unmanaged without managed_by", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n unmanaged = \"warning\"\n}\n", "c.hcl:4:14: Invalid unmanaged: name the providers that know the managed hosts in managed_by"},
		{"managed_by not a source name", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n managed_by = [\"puppet db\"]\n unmanaged = \"warning\"\n}\n", "c.hcl:4:16: Invalid managed_by"},
		{"missing without managed_by", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n missing = \"critical\"\n}\n", "c.hcl:4:12: Invalid missing: name the providers whose machines must answer in managed_by"},
		{"missing after zero scans", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n managed_by = [\"aws\"]\n missing = \"critical\"\n missing_after = 0\n}\n", "c.hcl:6:18: Invalid missing_after"},
		{"unknown hosts bad severity", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n unknown_hosts = \"loud\"\n}\n", "c.hcl:4:18: Invalid unknown_hosts"},
		{"identity conflicts bad severity", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n identity_conflicts = \"loud\"\n}\n", "c.hcl:4:23: Invalid identity_conflicts"},
		{"bad interface pattern", head + "expect \"e\" {\n cidrs = [\"127.0.0.1\"]\n interfaces_up = [\"eth0\", \"Gi[0\"]\n}\n", "c.hcl:4:27: Invalid interface pattern in interfaces_up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src), "c.hcl")
			if err == nil {
				t.Fatal("accepted")
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Fatalf("want one problem, got %d:\n%s", n, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestFactRules(t *testing.T) {
	cfg, err := Parse([]byte(head+`expect "switches" {
  cidrs         = ["198.18.77.0/24"]
  interfaces_up = ["eth*", "uplink"]
  fact "sys_descr" {
    match = "^sollwert"
  }
  fact "serial" {
    equals   = "X1"
    required = true
  }
}
`), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Rules[0]
	if len(r.Facts) != 2 || r.Facts[0].Name != "sys_descr" || r.Facts[0].Match.String() != "^sollwert" ||
		r.Facts[1].Equals != "X1" || !r.Facts[1].Required || r.Facts[0].Required {
		t.Fatalf("facts %+v", r.Facts)
	}
	if len(r.InterfacesUp) != 2 || r.InterfacesUp[0] != "eth*" {
		t.Fatalf("interfaces_up %v", r.InterfacesUp)
	}
}

func TestPluginSettings(t *testing.T) {
	pin := strings.Repeat("AB", 32)
	cfg, err := Parse([]byte(head+"plugin_dir = \"plugins\"\nplugin \"hostsfile\" {\n sha256 = \""+pin+"\"\n}\nplugin \"open\" {\n}\n"), "/etc/sollwert/c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PluginDir != "/etc/sollwert/plugins" {
		t.Errorf("plugin_dir %q: a relative path is relative to the config file", cfg.PluginDir)
	}
	pins := cfg.Pins()
	if len(pins) != 1 || pins["hostsfile"] != strings.ToLower(pin) {
		t.Errorf("pins %v", pins)
	}
	if _, ok := cfg.Plugins["open"]; !ok {
		t.Error("a plugin block without a pin is kept")
	}
}

func TestFieldErrorPointsAtTheAttribute(t *testing.T) {
	cfg, err := Load("testdata/example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := &sdk.ValidationError{}
	v.Add("ports", "port 99999 is outside 1-65535")
	v.Add("scan_type", "required")
	err = cfg.Jobs[0].FieldError(v)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "testdata/example.hcl:10:14: Invalid nmap attribute \"ports\"") || !strings.HasPrefix(lines[1], "testdata/example.hcl:5:1:") {
		t.Fatalf("field errors:\n%s", err)
	}
}

func TestFingerprintFollowsChanges(t *testing.T) {
	a, _ := Parse([]byte(head+"job \"a\" {\n source = \"nmap\"\n schedule = \"@hourly\"\n ports = \"22\"\n}\n"), "c.hcl")
	b, _ := Parse([]byte(head+"\n\njob \"a\" {\n source = \"nmap\"\n schedule = \"@hourly\"\n ports = \"22\"\n}\n"), "c.hcl")
	c, _ := Parse([]byte(head+"job \"a\" {\n source = \"nmap\"\n schedule = \"@hourly\"\n ports = \"23\"\n}\n"), "c.hcl")
	if a.Jobs[0].Fingerprint() != b.Jobs[0].Fingerprint() {
		t.Fatal("moving a block changed its fingerprint")
	}
	if a.Jobs[0].Fingerprint() == c.Jobs[0].Fingerprint() {
		t.Fatal("a changed attribute kept the fingerprint")
	}
}

func TestEmptyAllowListForbidsEverything(t *testing.T) {
	cfg, err := Parse([]byte(head+"expect \"e\" {\n cidrs = [\"::1\"]\n tcp = []\n}\n"), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Rules[0]
	if pr, ok := r.Allowed[sdk.TCP]; !ok || len(pr) != 0 {
		t.Fatalf("allowed: %#v", r.Allowed)
	}
	if r.CIDRs[0].String() != "::1/128" {
		t.Fatalf("cidr %s", r.CIDRs[0])
	}
}

func TestScanRateBudgetIsShared(t *testing.T) {
	src := head + `scan_rate_budget = 300
max_concurrent_jobs = 3
job "fast" {
  source   = "nmap"
  schedule = "@hourly"
  targets  = ["127.0.0.1"]
}
job "slow" {
  source   = "nmap"
  schedule = "@hourly"
  targets  = ["127.0.0.1"]
  max_rate = 20
}
job "greedy" {
  source   = "nmap"
  schedule = "@hourly"
  targets  = ["127.0.0.1"]
  max_rate = 5000
}
job "plant" {
  source   = "nmap"
  schedule = "@hourly"
  targets  = ["127.0.0.1"]
  profile  = "ot_safe"
}
job "switches" {
  source    = "snmp"
  schedule  = "@hourly"
  targets   = ["127.0.0.1"]
}
`
	cfg, err := Parse([]byte(src), "c.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fast": `"max_rate":100`, "slow": `"max_rate":20`, "greedy": `"max_rate":100`, "plant": `"profile":"ot_safe"`}
	for _, j := range cfg.Jobs {
		got := string(j.SourceConfig)
		if w, ok := want[j.Name]; ok && !strings.Contains(got, w) {
			t.Errorf("%s: %s lacks %s", j.Name, got, w)
		}
		if j.Name == "plant" && strings.Contains(got, "max_rate") {
			t.Errorf("plant: the profile's own rate is lower than the share: %s", got)
		}
		if j.Name == "switches" && strings.Contains(got, "max_rate") {
			t.Errorf("switches: not an nmap job: %s", got)
		}
	}
}

func TestRetentionBlock(t *testing.T) {
	cfg, err := Parse([]byte(head+"retention {\n history = \"8760h\"\n}\n"), "c.hcl")
	if err != nil || cfg.Retention.History != 8760*time.Hour {
		t.Fatalf("%+v %v", cfg.Retention, err)
	}
}

func TestIntegrityBlock(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "checkpoint.key")
	if err := os.WriteFile(key, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(head+fmt.Sprintf("integrity {\n signing_key_file = %q\n export_file = \"/var/log/cp.jsonl\"\n}\n", key)), "c.hcl")
	if err != nil || cfg.Integrity.SigningKeyFile != key || cfg.Integrity.CheckpointInterval != DefaultCheckpointInterval || cfg.Integrity.ExportFile != "/var/log/cp.jsonl" {
		t.Fatalf("%+v %v", cfg.Integrity, err)
	}
	for _, c := range []struct{ name, body, want string }{
		{"key readable by others", fmt.Sprintf("signing_key_file = %q", open), "c.hcl:3:21: Invalid signing_key_file: " + open + " has mode 0644"},
		{"no key file", `signing_key_file = "/nonexistent/k"`, "c.hcl:3:21: Invalid signing_key_file: stat /nonexistent/k: no such file or directory (make a key with: sollwert keygen /nonexistent/k)"},
		{"interval too short", fmt.Sprintf("signing_key_file = %q\n checkpoint_interval = \"10ms\"", key), "c.hcl:4:24: Invalid checkpoint_interval"},
		{"no key at all", `export_file = "x"`, `c.hcl:2:11: Missing required argument: The argument "signing_key_file" is required`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(head+"integrity {\n "+c.body+"\n}\n"), "c.hcl")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
