// Package nagios is the built-in sink for Nagios 4 and Icinga 2's command
// pipe: each deviation event becomes a passive check result
// (PROCESS_SERVICE_CHECK_RESULT) of the service "sollwert RULE" on the
// host named by the deviation's address, and acknowledgements become
// ACKNOWLEDGE_SVC_PROBLEM / REMOVE_SVC_ACKNOWLEDGEMENT. The service shows
// the state of all active deviations of that host under that rule, so
// resolving one of two keeps it red.
package nagios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/plugins/internal/passive"
	"github.com/sollwert/sollwert/sdk"
)

// Config is a nagios sink block's own part.
type Config struct {
	// CommandFile is the external command file, e.g.
	// /var/lib/nagios4/rw/nagios.cmd or /var/run/icinga2/cmd/icinga2.cmd.
	CommandFile string `json:"command_file"`
	// ServicePrefix starts each service name (default "sollwert"): the
	// service is "PREFIX RULE", or "PREFIX" per host.
	ServicePrefix string `json:"service_prefix"`
	// Services is "per_rule" (default) or "per_host".
	Services string `json:"services"`
}

func parse(raw json.RawMessage) (Config, error) {
	c := Config{ServicePrefix: "sollwert", Services: string(passive.PerRule)}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return c, err
	}
	verr := &sdk.ValidationError{}
	if c.CommandFile == "" {
		verr.Add("command_file", "the external command file is required, e.g. /var/lib/nagios4/rw/nagios.cmd")
	}
	if strings.ContainsAny(c.ServicePrefix, ";\n") {
		verr.Add("service_prefix", "must not contain ';' or a newline")
	}
	if c.Services != string(passive.PerRule) && c.Services != string(passive.PerHost) {
		verr.Add("services", "%q is neither %q nor %q", c.Services, passive.PerRule, passive.PerHost)
	}
	return c, verr.Err()
}

// Sink is the nagios sink.
type Sink struct {
	log hclog.Logger
	now func() time.Time
}

// New returns the nagios sink.
func New(log hclog.Logger) *Sink {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Sink{log: log, now: time.Now}
}

// Describe implements sdk.Sink.
func (s *Sink) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "nagios", Version: "1", Fields: []sdk.Field{
		{Name: "command_file", Type: "string", Required: true, Description: "Nagios 4 or Icinga 2 external command file"},
		{Name: "service_prefix", Type: "string", Description: `services are "PREFIX RULE" (default "sollwert")`},
		{Name: "services", Type: "string", Description: `"per_rule" (default) or "per_host"`},
	}}, nil
}

// Validate implements sdk.Sink.
func (s *Sink) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parse(raw)
	return err
}

// Deliver implements sdk.Sink: the lines of all events in one write each,
// in order. A pipe nobody reads (the monitoring daemon is down) is a
// failure to retry, not a hang.
func (s *Sink) Deliver(ctx context.Context, req sdk.DeliverRequest) ([]sdk.Ack, error) {
	c, err := parse(req.Config)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(c.CommandFile, os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ENXIO) {
		err = fmt.Errorf("nothing reads %s: is the monitoring daemon running?", c.CommandFile)
	}
	acks := make([]sdk.Ack, len(req.Events))
	if err != nil {
		for i := range req.Events {
			acks[i] = sdk.Ack{EventID: req.Events[i].ID, Error: err.Error()}
		}
		return acks, nil
	}
	defer f.Close()
	now := s.now().Unix()
	for i := range req.Events {
		ev := &req.Events[i]
		acks[i].EventID = ev.ID
		if err := ctx.Err(); err != nil {
			acks[i].Error = err.Error()
			continue
		}
		var b strings.Builder
		for _, line := range Lines(ev, passive.Scope(c.Services), c.ServicePrefix, now) {
			b.WriteString(line)
			b.WriteByte('\n')
		}
		// Lines below PIPE_BUF are written whole, never interleaved.
		if _, err := f.WriteString(b.String()); err != nil {
			acks[i].Error = err.Error()
			continue
		}
		acks[i].Delivered = true
	}
	return acks, nil
}

// Lines are the external commands for one event.
func Lines(ev *sdk.Event, scope passive.Scope, prefix string, now int64) []string {
	d := &ev.Deviation
	host, svc := clean(d.Host), clean(passive.Service(ev, scope, prefix))
	var out []string
	switch ev.Kind {
	case sdk.EventAcknowledged:
		// sticky=1 (normal): Nagios lifts the acknowledgement when the
		// state changes, so a worse deviation under the same service
		// alerts again; notify=0, persistent=1.
		return []string{fmt.Sprintf("[%d] ACKNOWLEDGE_SVC_PROBLEM;%s;%s;1;0;1;%s;%s", now, host, svc, clean(d.AckedBy), clean(d.AckComment))}
	case sdk.EventUnacknowledged:
		out = append(out, fmt.Sprintf("[%d] REMOVE_SVC_ACKNOWLEDGEMENT;%s;%s", now, host, svc))
	}
	r := passive.Of(ev, scope)
	return append(out, fmt.Sprintf("[%d] PROCESS_SERVICE_CHECK_RESULT;%s;%s;%d;%s|%s", now, host, svc, r.State, clean(r.Output), strings.Join(r.Perf, " ")))
}

// clean keeps a field from ending the command or starting perfdata.
func clean(s string) string { return passive.OneLine(s, 1000) }
