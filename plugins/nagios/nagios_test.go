package nagios

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/plugins/internal/passive"
	"github.com/sollwert/sollwert/sdk"
)

// startNagios runs the real Nagios 4 (Debian nagios4-core) with a config
// of its own in a temporary folder: one host, one passive service
// "sollwert dmz". It returns the command file and the status file.
func startNagios(t *testing.T) (cmdFile, statusFile string) {
	t.Helper()
	bin, err := exec.LookPath("nagios4")
	if err != nil {
		bin = "/usr/sbin/nagios4"
	}
	if _, err := os.Stat(bin); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("nagios4 (Debian nagios4-core) and root are needed: run `make test` as root")
		}
		t.Skip("nagios4 not installed or not root")
	}
	dir := t.TempDir()
	for _, d := range []string{"rw", "checkresults"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	cfg := fmt.Sprintf(`log_file=%s
cfg_file=%s
object_cache_file=%s
precached_object_file=%s
resource_file=%s
status_file=%s
status_update_interval=1
nagios_user=root
nagios_group=root
check_external_commands=1
command_file=%s
lock_file=%s
temp_file=%s
temp_path=%s
state_retention_file=%s
retain_state_information=0
check_result_path=%s
execute_service_checks=0
execute_host_checks=0
accept_passive_service_checks=1
enable_notifications=0
`, p("nagios.log"), p("objects.cfg"), p("objects.cache"), p("objects.precache"), p("resource.cfg"), p("status.dat"),
		p("rw/nagios.cmd"), p("nagios.lock"), p("nagios.tmp"), dir, p("retention.dat"), p("checkresults"))
	objects := `define command {
  command_name dummy
  command_line /bin/true
}
define timeperiod {
  timeperiod_name always
  alias always
  monday 00:00-24:00
  tuesday 00:00-24:00
  wednesday 00:00-24:00
  thursday 00:00-24:00
  friday 00:00-24:00
  saturday 00:00-24:00
  sunday 00:00-24:00
}
define contact {
  contact_name nobody
  host_notifications_enabled 0
  service_notifications_enabled 0
  host_notification_period always
  service_notification_period always
  host_notification_options n
  service_notification_options n
  host_notification_commands dummy
  service_notification_commands dummy
}
define host {
  host_name 198.18.0.5
  address 198.18.0.5
  check_command dummy
  max_check_attempts 1
  check_period always
  contacts nobody
  notification_period always
  active_checks_enabled 0
}
define service {
  host_name 198.18.0.5
  service_description sollwert dmz
  check_command dummy
  max_check_attempts 1
  check_interval 5
  retry_interval 1
  check_period always
  notification_period always
  contacts nobody
  active_checks_enabled 0
}
`
	for name, body := range map[string]string{"nagios.cfg": cfg, "objects.cfg": objects, "resource.cfg": ""} {
		if err := os.WriteFile(p(name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, p("nagios.cfg"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, func() bool {
		st, err := os.Stat(p("rw/nagios.cmd"))
		_, serr := os.Stat(p("status.dat"))
		return err == nil && st.Mode()&os.ModeNamedPipe != 0 && serr == nil
	}, func() string { return out.String() })
	return p("rw/nagios.cmd"), p("status.dat")
}

func waitFor(t *testing.T, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", why())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// service reads the service's block from Nagios' status file.
func service(statusFile string) map[string]string {
	b, _ := os.ReadFile(statusFile)
	for _, block := range strings.Split(string(b), "servicestatus {") {
		fields := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				fields[k] = v
			}
			if strings.TrimSpace(line) == "}" {
				break
			}
		}
		if fields["service_description"] == "sollwert dmz" {
			return fields
		}
	}
	return nil
}

func event(kind string, active int, worst string) sdk.Event {
	return sdk.Event{ID: kind, Kind: kind, Time: time.Now(), Deviation: sdk.DeviationEvent{
		Rule: "dmz", Host: "198.18.0.5", Detail: "tcp/23 (telnet) is open but not allowed by rule \"dmz\"", Severity: "critical",
		AckedBy: "alice", AckComment: "change 4711", RuleActive: active, RuleWorst: worst,
	}}
}

func TestNagiosProcessesResults(t *testing.T) {
	cmdFile, status := startNagios(t)
	cfg, _ := json.Marshal(map[string]string{"command_file": cmdFile})
	s := New(nil)
	deliver := func(ev sdk.Event) {
		t.Helper()
		acks, err := s.Deliver(context.Background(), sdk.DeliverRequest{Config: cfg, Events: []sdk.Event{ev}})
		if err != nil || len(acks) != 1 || !acks[0].Delivered {
			t.Fatalf("deliver %s: %+v %v", ev.Kind, acks, err)
		}
	}
	deliver(event(sdk.EventOpened, 1, "critical"))
	waitFor(t, func() bool { f := service(status); return f["current_state"] == "2" }, func() string { return fmt.Sprint(service(status)) })
	if f := service(status); !strings.Contains(f["plugin_output"], "CRITICAL: tcp/23 (telnet) is open") {
		t.Fatalf("output %q", f["plugin_output"])
	}
	deliver(event(sdk.EventAcknowledged, 1, "critical"))
	waitFor(t, func() bool { return service(status)["problem_has_been_acknowledged"] == "1" }, func() string { return fmt.Sprint(service(status)) })
	deliver(event(sdk.EventResolved, 0, ""))
	waitFor(t, func() bool { return service(status)["current_state"] == "0" }, func() string { return fmt.Sprint(service(status)) })
}

func TestNobodyReadingIsARetry(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "nagios.cmd")
	if err := exec.Command("mkfifo", fifo).Run(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"command_file": fifo})
	acks, err := New(nil).Deliver(context.Background(), sdk.DeliverRequest{Config: cfg, Events: []sdk.Event{event(sdk.EventOpened, 1, "critical")}})
	if err != nil || acks[0].Delivered || acks[0].Permanent || !strings.Contains(acks[0].Error, "is the monitoring daemon running?") {
		t.Fatalf("acks %+v, %v", acks, err)
	}
}

func TestLinesPerRuleAndPerHost(t *testing.T) {
	two := event(sdk.EventOpened, 1, "critical")
	two.Deviation.HostActive, two.Deviation.HostWorst = 3, "critical"
	resolved := event(sdk.EventResolved, 0, "")
	resolved.Deviation.HostActive, resolved.Deviation.HostWorst = 1, "warning"
	for _, tc := range []struct {
		name  string
		ev    sdk.Event
		scope passive.Scope
		want  []string
	}{
		{"one deviation per rule", two, passive.PerRule, []string{
			"[7] PROCESS_SERVICE_CHECK_RESULT;198.18.0.5;sollwert dmz;2;CRITICAL: tcp/23 (telnet) is open but not allowed by rule \"dmz\"|'active'=1;;;0"}},
		{"the host's three", two, passive.PerHost, []string{
			"[7] PROCESS_SERVICE_CHECK_RESULT;198.18.0.5;sollwert;2;CRITICAL: 3 active deviations (host 198.18.0.5), latest: tcp/23 (telnet) is open but not allowed by rule \"dmz\"|'active'=3;;;0"}},
		{"the rule goes green", resolved, passive.PerRule, []string{
			"[7] PROCESS_SERVICE_CHECK_RESULT;198.18.0.5;sollwert dmz;0;OK: no active deviations (rule dmz), resolved: tcp/23 (telnet) is open but not allowed by rule \"dmz\"|'active'=0;;;0"}},
		{"the host stays warning", resolved, passive.PerHost, []string{
			"[7] PROCESS_SERVICE_CHECK_RESULT;198.18.0.5;sollwert;1;WARNING: 1 active deviation (host 198.18.0.5), resolved: tcp/23 (telnet) is open but not allowed by rule \"dmz\"|'active'=1;;;0"}},
		{"an acknowledgement", event(sdk.EventAcknowledged, 1, "critical"), passive.PerRule, []string{
			"[7] ACKNOWLEDGE_SVC_PROBLEM;198.18.0.5;sollwert dmz;1;0;1;alice;change 4711"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lines(&tc.ev, tc.scope, "sollwert", 7); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
