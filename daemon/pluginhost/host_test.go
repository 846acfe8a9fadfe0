package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/internal/testproc"
	"github.com/sollwert/sollwert/plugins"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/sdk/sdktest"
)

// buildTestPlugin builds testdata/testplugin into dir as
// sollwert-plugin-NAME, stripped as `make examples` builds plugins, with
// extra linker flags.
func buildTestPlugin(t testing.TB, dir, name string, ldflags ...string) string {
	t.Helper()
	out := filepath.Join(dir, sdk.PluginPrefix+name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", strings.Join(append([]string{"-s", "-w"}, ldflags...), " "), "-o", out, "./testdata/testplugin")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test plugin: %v\n%s", err, b)
	}
	return out
}

func testHost(t *testing.T) (*Host, *plugins.Registry) {
	t.Helper()
	dir := t.TempDir()
	buildTestPlugin(t, dir, "testplugin")
	h := &Host{Dir: dir, Pins: map[string]string{}, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})}
	reg := plugins.NewRegistry()
	if err := h.Register(reg); err != nil {
		t.Fatal(err)
	}
	return h, reg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func discover(t *testing.T, reg *plugins.Registry, timeout time.Duration, config string) (int, sdk.Result, error) {
	t.Helper()
	src, err := reg.Source("testplugin", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n := 0
	res, err := src.Discover(ctx, sdk.DiscoverRequest{Config: json.RawMessage(config), Job: "j", RunID: "r"},
		sdk.EmitterFunc(func(_ context.Context, b []sdk.Observation) error { n += len(b); return nil }))
	return n, res, err
}

func TestDiscoverStreamsEveryHost(t *testing.T) {
	_, reg := testHost(t)
	n, res, err := discover(t, reg, 30*time.Second, `{"hosts": 2500}`)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2500 {
		t.Fatalf("received %d observations, want 2500", n)
	}
	if len(res.Scope.Prefixes) != 1 || res.Scope.Prefixes[0].String() != "198.18.0.0/15" {
		t.Fatalf("scope %+v", res.Scope)
	}
	assertNoPluginProcess(t, "testplugin")
}

func TestFaultsFailTheRunAndLeaveNoProcess(t *testing.T) {
	_, reg := testHost(t)
	cases := []struct {
		fault   string
		timeout time.Duration
		want    []string
		is      error
	}{
		{"panic", 30 * time.Second, []string{"exit status 2", "panic: testplugin: the fault you asked for", "about to fail badly"}, nil},
		{"exit", 30 * time.Second, []string{"exit status 3", "exiting with status 3"}, nil},
		{"malformed", 30 * time.Second, []string{"observation 2 is malformed", `"999.1.1.1" is not an IP address`}, nil},
		{"error", 30 * time.Second, []string{"the provider answered 503"}, nil},
		{"hang", 2 * time.Second, []string{"deadline exceeded"}, context.DeadlineExceeded},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			start := time.Now()
			_, _, err := discover(t, reg, c.timeout, `{"hosts": 3, "fault": "`+c.fault+`"}`)
			if err == nil {
				t.Fatal("the run succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error is not %v: %v", c.is, err)
			}
			if took := time.Since(start); took > c.timeout+5*time.Second {
				t.Errorf("the run took %v", took)
			}
			assertNoPluginProcess(t, "testplugin")
		})
	}
}

func TestSinkAcksEachEvent(t *testing.T) {
	dir := t.TempDir()
	bin := buildTestPlugin(t, dir, "testplugin")
	h := &Host{Dir: dir}
	ctx := context.Background()
	c, err := h.Launch(ctx, Plugin{Name: "testplugin", Path: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sink, err := c.Sink()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	events := []sdk.Event{
		{ID: "e1-ok", Kind: sdk.EventOpened, Time: when, Deviation: sdk.DeviationEvent{Host: "198.18.0.1", Port: 23, Protocol: sdk.TCP}},
		{ID: "e2-busy", Kind: sdk.EventResolved, Time: when},
		{ID: "e3-bad", Kind: sdk.EventAcknowledged, Time: when, Deviation: sdk.DeviationEvent{Host: "198.18.0.2"}},
	}
	acks, err := sink.Deliver(ctx, sdk.DeliverRequest{Config: json.RawMessage(`{}`), Events: events})
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Ack{
		{EventID: "e1-ok", Delivered: true},
		{EventID: "e2-busy", Error: "receiver busy"},
		{EventID: "e3-bad", Error: "rejected acknowledged event for 198.18.0.2", Permanent: true},
	}
	if len(acks) != len(want) {
		t.Fatalf("acks %+v", acks)
	}
	for i := range want {
		if acks[i] != want[i] {
			t.Errorf("ack %d: got %+v, want %+v", i, acks[i], want[i])
		}
	}
	if kinds := c.Kinds(); len(kinds) != 2 || kinds[0] != sdk.KindSource || kinds[1] != sdk.KindSink {
		t.Errorf("kinds %v", kinds)
	}
}

func TestValidateReportsFields(t *testing.T) {
	_, reg := testHost(t)
	src, _ := reg.Source("testplugin", hclog.NewNullLogger())
	ctx := context.Background()
	if err := src.Validate(ctx, json.RawMessage(`{"hosts": 1}`)); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	err := src.Validate(ctx, json.RawMessage(`{"hosts": -1, "fault": "gremlins"}`))
	var verr *sdk.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 2 || verr.Fields[0].Field != "hosts" || verr.Fields[1].Field != "fault" {
		t.Fatalf("got %#v", err)
	}
}

func TestRefusedPlugins(t *testing.T) {
	dir := t.TempDir()
	buildTestPlugin(t, dir, "future", "-X main.protocol=2")
	good := buildTestPlugin(t, dir, "pinned")
	h := &Host{Dir: dir, Pins: map[string]string{"pinned": strings.Repeat("ab", 32)}}
	ctx := context.Background()

	_, err := h.Launch(ctx, Plugin{Name: "future", Path: filepath.Join(dir, sdk.PluginPrefix+"future")})
	if err == nil || !strings.Contains(err.Error(), "plugin future speaks sollwert plugin protocol version 2, this sollwert speaks version 1") {
		t.Errorf("other protocol version: %v", err)
	}
	_, err = h.Launch(ctx, Plugin{Name: "pinned", Path: good})
	if err == nil || !strings.Contains(err.Error(), "but the config pins "+strings.Repeat("ab", 32)+"; not started") {
		t.Errorf("pin mismatch: %v", err)
	}
	assertNoPluginProcess(t, "future")
	assertNoPluginProcess(t, "pinned")

	sum, err := fileSHA256(good)
	if err != nil {
		t.Fatal(err)
	}
	h.Pins["pinned"] = sum
	c, err := h.Launch(ctx, Plugin{Name: "pinned", Path: good})
	if err != nil {
		t.Fatalf("matching pin refused: %v", err)
	}
	c.Close()
}

// TestReplacedBinaryIsRefusedAfterItsChecksumWasRemembered: the host
// remembers a pinned binary's checksum by file identity (sdk/checksum.go);
// a binary changed afterwards must still be refused, whether a new file
// took its path or the file was rewritten in place.
func TestReplacedBinaryIsRefusedAfterItsChecksumWasRemembered(t *testing.T) {
	dir := t.TempDir()
	built := buildTestPlugin(t, t.TempDir(), "testplugin")
	b, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSHA256(built)
	h := &Host{Dir: dir, Pins: map[string]string{}}
	changes := map[string]func(path string) error{
		"renamed": func(path string) error { // a new file at the same path
			testproc.WriteExecutable(t, path+".new", flipLast(b))
			return os.Rename(path+".new", path)
		},
		"inplace": func(path string) error { // same inode, same size
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt(flipLast(b), 0)
			return err
		},
	}
	for name := range changes {
		testproc.WriteExecutable(t, filepath.Join(dir, sdk.PluginPrefix+name), b)
		h.Pins[name] = sum
	}
	// Only a file that has not changed for 3 s has its checksum remembered.
	time.Sleep(3500 * time.Millisecond)
	ctx := context.Background()
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			p := Plugin{Name: name, Path: filepath.Join(dir, sdk.PluginPrefix+name)}
			for range 2 { // the second start takes the remembered checksum
				c, err := h.Launch(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			if err := change(p.Path); err != nil {
				t.Fatal(err)
			}
			_, err := h.Launch(ctx, p)
			if err == nil || !strings.Contains(err.Error(), "but the config pins "+sum+"; not started") {
				t.Fatalf("the changed binary was not refused: %v", err)
			}
			assertNoPluginProcess(t, name)
		})
	}
}

func flipLast(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)-1] ^= 0xff
	return b
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	bin := buildTestPlugin(t, dir, "testplugin")
	buildTestPlugin(t, dir, "future", "-X main.protocol=2")
	if err := os.WriteFile(filepath.Join(dir, "sollwert-plugin-notes.txt"), []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSHA256(bin)
	h := &Host{Dir: dir, Pins: map[string]string{"testplugin": sum}}
	list, err := h.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("found %+v", list)
	}
	future, tp := list[0], list[1]
	if tp.Name != "testplugin" || tp.Version != "1.2.3" || tp.ProtocolVersion != 1 || tp.Checksum != "pinned" ||
		len(tp.Kinds) != 2 || tp.Kinds[0] != sdk.KindSource || tp.Error != "" || tp.SDKVersion == "" {
		t.Errorf("testplugin: %+v", tp)
	}
	if future.Checksum != "unpinned" || !strings.Contains(future.Error, "protocol version 2") {
		t.Errorf("future: %+v", future)
	}
}

// assertNoPluginProcess fails if a process of the named test plugin is
// still running once the call that started it has returned.
func assertNoPluginProcess(t *testing.T, name string) {
	t.Helper()
	testproc.WaitGone(t, sdk.PluginPrefix+name, 5*time.Second)
}
func TestTestPluginPassesTheConformanceKit(t *testing.T) {
	bin := buildTestPlugin(t, t.TempDir(), "testplugin")
	sdktest.Run(t, sdktest.Config{
		Binary:          bin,
		Valid:           json.RawMessage(`{"hosts": 10}`),
		Invalid:         json.RawMessage(`{"hosts": -1}`),
		MinObservations: 10,
		Slow:            json.RawMessage(`{"hosts": 1000000}`),
	})
}
