package ingest

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/rules"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// TestScenarios runs testdata/scenarios/*.txt: readable scripts of rules,
// scan results and the deviations expected after each step, so a failing
// case can be read without reading Go. The language:
//
//	rule NAME cidrs=CIDR[,CIDR] [tcp=PORTS] [udp=PORTS] [required_tcp=PORTS]
//	     [unknown_hosts=SEVERITY] [severity=SEVERITY] [stale_after=N]
//	     [open_after=N] [resolve_after=N] [flap_threshold=N flap_window=DURATION] [gone_after=N]
//	run [job=NAME] scope=CIDR[,CIDR] tcp=PORTS     a finished run; `host` lines follow
//	host IP [tcp=PORT,PORT] [down]                  one observed host
//	failed run ...                                  a run that did not finish: ignored
//	advance DURATION                                moves the clock
//	reevaluate                                      judges all assets again (reload)
//	expect                                          the active deviations, one per line:
//	  KIND SUBJECT RULE SEVERITY                    e.g. unexpected_port 127.0.0.1 tcp/80 web critical
//	expect none
//	events                                          the events queued for sinks since the last
//	  KIND SUBJECT                                  events statement, in any order: opened 127.0.0.1 tcp/80
//	events none
//
// Every job has an interval of 1h. Lines starting with # are comments.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScenario(t, file) })
	}
}

type scenario struct {
	t       *testing.T
	file    string
	line    int
	rules   []rules.Rule
	engine  *rules.Engine
	st      *store.Store
	app     *Applier
	now     time.Time
	run     *pendingRun
	runs    int
	devLine []string
	// events holds the ids of the queued events an events statement
	// has seen (the queue orders events of one instant by id).
	events map[string]bool
}

type pendingRun struct {
	job    string
	scope  sdk.Scope
	obs    []sdk.Observation
	failed bool
}

func runScenario(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &scenario{t: t, file: file, st: st, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.app = &Applier{Store: st, Engine: func() *rules.Engine { return s.engine }, Now: func() time.Time { return s.now },
		Route: func(*sdk.Event) []string { return []string{"scenario"} }}
	s.compile()
	sc := bufio.NewScanner(f)
	inExpect, inEvents := false, false
	for sc.Scan() {
		s.line++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if (inExpect || inEvents) && strings.HasPrefix(raw, " ") {
			s.devLine = append(s.devLine, strings.Join(strings.Fields(line), " "))
			continue
		}
		if inExpect {
			s.check()
			inExpect = false
		}
		if inEvents {
			s.checkEvents()
			inEvents = false
		}
		fields := strings.Fields(line)
		if fields[0] != "host" {
			s.flush()
		}
		switch fields[0] {
		case "rule":
			s.rules = append(s.rules, s.parseRule(fields[1:]))
			s.compile()
		case "run":
			s.run = &pendingRun{job: "scan"}
			s.parseRun(fields[1:])
		case "failed":
			s.run = &pendingRun{job: "scan", failed: true}
			s.parseRun(fields[2:])
		case "host":
			s.parseHost(fields[1:])
		case "advance":
			d, err := time.ParseDuration(fields[1])
			s.must(err)
			s.now = s.now.Add(d)
		case "reevaluate":
			_, err := s.app.Reevaluate(context.Background(), model.DefaultTenant)
			s.must(err)
		case "expect":
			inExpect, s.devLine = true, nil
			if len(fields) > 1 && fields[1] == "none" {
				s.check()
				inExpect = false
			}
		case "events":
			inEvents, s.devLine = true, nil
			if len(fields) > 1 && fields[1] == "none" {
				s.checkEvents()
				inEvents = false
			}
		default:
			s.fail("unknown statement %q", fields[0])
		}
	}
	s.flush()
	if inExpect {
		s.check()
	}
	if inEvents {
		s.checkEvents()
	}
}

// checkEvents compares the events queued since the last check.
func (s *scenario) checkEvents() {
	s.t.Helper()
	var got []string
	s.must(s.st.View(context.Background(), func(t *store.Txn) error {
		queued, err := t.Queue("scenario", 100000)
		if err != nil {
			return err
		}
		if s.events == nil {
			s.events = map[string]bool{}
		}
		for _, q := range queued {
			if s.events[q.Event.ID] {
				continue
			}
			s.events[q.Event.ID] = true
			d := model.Deviation{Host: q.Event.Deviation.Host, Protocol: q.Event.Deviation.Protocol, Port: q.Event.Deviation.Port,
				Kind: model.Kind(q.Event.Deviation.Kind)}
			got = append(got, q.Event.Kind+" "+d.Subject())
		}
		return nil
	}))
	want := append([]string(nil), s.devLine...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		s.fail("events differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (s *scenario) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func (s *scenario) must(err error) {
	s.t.Helper()
	if err != nil {
		s.fail("%v", err)
	}
}

func (s *scenario) compile() {
	intervals := map[string]time.Duration{}
	for _, j := range []string{"scan", "a", "b"} {
		intervals[j] = time.Hour
	}
	eng, err := rules.Compile(s.rules, intervals)
	s.must(err)
	s.engine = eng
}

func kv(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		out[k] = v
	}
	return out
}

func (s *scenario) ports(spec string) sdk.PortRanges {
	if spec == "none" {
		return sdk.PortRanges{}
	}
	r, err := sdk.ParsePortRanges(spec)
	s.must(err)
	return r
}

func (s *scenario) parseRule(args []string) rules.Rule {
	r := rules.Rule{Name: args[0], Tenant: model.DefaultTenant, Severity: model.SeverityWarning}
	for k, v := range kv(args[1:]) {
		switch k {
		case "cidrs":
			for _, c := range strings.Split(v, ",") {
				p, err := netip.ParsePrefix(c)
				s.must(err)
				r.CIDRs = append(r.CIDRs, p)
			}
		case "tcp", "udp":
			if r.Allowed == nil {
				r.Allowed = map[sdk.Protocol]sdk.PortRanges{}
			}
			r.Allowed[sdk.Protocol(k)] = s.ports(v)
		case "required_tcp", "required_udp":
			if r.Required == nil {
				r.Required = map[sdk.Protocol]sdk.PortRanges{}
			}
			r.Required[sdk.Protocol(strings.TrimPrefix(k, "required_"))] = s.ports(v)
		case "unknown_hosts":
			r.UnknownHosts = model.Severity(v)
		case "severity":
			r.Severity = model.Severity(v)
		case "stale_after":
			n, err := strconv.Atoi(v)
			s.must(err)
			r.StaleAfter = n
		case "open_after", "resolve_after", "flap_threshold", "gone_after":
			n, err := strconv.Atoi(v)
			s.must(err)
			*map[string]*int{"open_after": &r.Damping.OpenAfter, "resolve_after": &r.Damping.ResolveAfter,
				"flap_threshold": &r.Damping.FlapChanges, "gone_after": &r.GoneAfter}[k] = n
		case "flap_window":
			d, err := time.ParseDuration(v)
			s.must(err)
			r.Damping.FlapWindow = d
		default:
			s.fail("unknown rule attribute %q", k)
		}
	}
	return r
}

func (s *scenario) parseRun(args []string) {
	s.run.scope.Ports = map[sdk.Protocol]sdk.PortRanges{}
	for k, v := range kv(args) {
		switch k {
		case "job":
			s.run.job = v
		case "scope":
			for _, c := range strings.Split(v, ",") {
				p, err := netip.ParsePrefix(c)
				s.must(err)
				s.run.scope.Prefixes = append(s.run.scope.Prefixes, p)
			}
		case "tcp", "udp":
			s.run.scope.Ports[sdk.Protocol(k)] = s.ports(v)
		default:
			s.fail("unknown run attribute %q", k)
		}
	}
}

func (s *scenario) parseHost(args []string) {
	if s.run == nil {
		s.fail("host outside a run")
	}
	o := sdk.Observation{Addresses: []sdk.Address{{Addr: args[0], Type: "ipv4"}}, Status: sdk.StatusUp}
	for _, a := range args[1:] {
		if a == "down" {
			o.Status = sdk.StatusDown
			continue
		}
		proto, list, ok := strings.Cut(a, "=")
		if !ok {
			s.fail("bad host attribute %q", a)
		}
		for _, p := range strings.Split(list, ",") {
			n, err := strconv.Atoi(p)
			s.must(err)
			o.Services = append(o.Services, sdk.Service{Protocol: sdk.Protocol(proto), Port: uint16(n), State: "open"})
		}
	}
	s.run.obs = append(s.run.obs, o)
}

// flush applies the pending run the way the executor does: only a
// finished run reaches ingest, and it counts towards the job's baseline.
func (s *scenario) flush() {
	r := s.run
	s.run = nil
	if r == nil || r.failed {
		return
	}
	s.runs++
	run := &model.Run{ID: fmt.Sprintf("r%d", s.runs), Tenant: model.DefaultTenant, Job: r.job, Source: "nmap", Start: s.now}
	_, err := s.app.Apply(context.Background(), run, r.obs, r.scope)
	s.must(err)
	s.must(s.st.Update(context.Background(), func(t *store.Txn) error {
		end := s.now
		run.Status, run.End = model.RunSucceeded, &end
		if err := t.PutRun(run); err != nil {
			return err
		}
		js, err := t.JobState(run.Tenant, run.Job)
		if err != nil {
			return err
		}
		js.SucceededCount++
		return t.PutJobState(run.Tenant, run.Job, js)
	}))
}

func (s *scenario) check() {
	s.t.Helper()
	var got []string
	s.must(s.st.View(context.Background(), func(t *store.Txn) error {
		return t.ForEachDeviation(model.DefaultTenant, func(d *model.Deviation) error {
			if d.Active() {
				got = append(got, strings.Join([]string{string(d.Kind), d.Subject(), d.Rule, string(d.Severity)}, " "))
			}
			return nil
		})
	}))
	sort.Strings(got)
	want := append([]string(nil), s.devLine...)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		s.fail("active deviations differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
