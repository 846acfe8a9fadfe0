// Package alertmanager is the built-in Alertmanager sink: deviations become
// alerts through Alertmanager's API v2 (POST /api/v2/alerts), with labels
// for routing, the deviation's sentence as annotation, startsAt when it
// opened and endsAt when it resolved. Alertmanager ends an alert that is
// not posted again before its endsAt, so while a deviation stays active
// the notifier re-posts it (Resend) with an endsAt a few intervals ahead:
// if sollwert stops, the alerts end on their own instead of hanging on.
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// AlertName is the alertname label of every sollwert alert.
const AlertName = "SollwertDeviation"

// Config is an alertmanager sink block's own part.
type Config struct {
	// URL is Alertmanager's base URL, e.g. "http://127.0.0.1:9093".
	URL string `json:"url"`
	// Labels are added to every alert (e.g. team, env).
	Labels map[string]string `json:"labels"`
	// Resend is how often active deviations are posted again (default 1m);
	// each post lets the alert live four intervals.
	Resend  string `json:"resend"`
	Timeout string `json:"timeout"`
}

type parsed struct {
	Config
	resend, timeout time.Duration
}

func parse(raw json.RawMessage) (parsed, error) {
	var p parsed
	if err := sdk.DecodeConfig(raw, &p.Config); err != nil {
		return p, err
	}
	verr := &sdk.ValidationError{}
	if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		verr.Add("url", "%q is not an http or https URL", p.URL)
	}
	dur := func(field, s string, def time.Duration) time.Duration {
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			verr.Add(field, "%q is not a duration such as \"1m\"", s)
		}
		return d
	}
	p.resend = dur("resend", p.Resend, time.Minute)
	p.timeout = dur("timeout", p.Timeout, 10*time.Second)
	for k := range p.Labels {
		if !labelName(k) {
			verr.Add("labels", "%q is not a Prometheus label name", k)
		}
	}
	return p, verr.Err()
}

func labelName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// Sink is the alertmanager sink.
type Sink struct {
	log    hclog.Logger
	client *http.Client
	now    func() time.Time
}

// New returns the alertmanager sink.
func New(log hclog.Logger) *Sink {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Sink{log: log, client: &http.Client{}, now: time.Now}
}

// Describe implements sdk.Sink.
func (s *Sink) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "alertmanager", Version: "1", Fields: []sdk.Field{
		{Name: "url", Type: "string", Required: true, Description: "Alertmanager's base URL"},
		{Name: "labels", Type: "object", Description: "labels added to every alert"},
		{Name: "resend", Type: "duration", Description: "how often active deviations are posted again (default 1m)"},
		{Name: "timeout", Type: "duration", Description: "per request (default 10s)"},
	}}, nil
}

// Validate implements sdk.Sink.
func (s *Sink) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parse(raw)
	return err
}

// ResendInterval implements notifier.Resender.
func (s *Sink) ResendInterval(raw json.RawMessage) time.Duration {
	p, err := parse(raw)
	if err != nil {
		return 0
	}
	return p.resend
}

type alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Deliver implements sdk.Sink: all events in one POST, acknowledged
// together; Alertmanager deduplicates alerts by their labels.
func (s *Sink) Deliver(ctx context.Context, req sdk.DeliverRequest) ([]sdk.Ack, error) {
	p, err := parse(req.Config)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	alerts := make([]alert, 0, len(req.Events))
	for i := range req.Events {
		alerts = append(alerts, s.alertOf(&req.Events[i], p, now))
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.URL, "/")+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	ack := sdk.Ack{}
	resp, err := s.client.Do(r)
	if err != nil {
		ack.Error = err.Error()
	} else {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			ack.Delivered = true
		case resp.StatusCode == http.StatusBadRequest:
			ack.Error, ack.Permanent = fmt.Sprintf("HTTP 400: %s", strings.TrimSpace(string(snippet))), true
		default:
			ack.Error = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(snippet)))
		}
	}
	acks := make([]sdk.Ack, len(req.Events))
	for i := range req.Events {
		acks[i] = ack
		acks[i].EventID = req.Events[i].ID
	}
	return acks, nil
}

func (s *Sink) alertOf(ev *sdk.Event, p parsed, now time.Time) alert {
	d := &ev.Deviation
	labels := map[string]string{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	for k, v := range map[string]string{
		"alertname": AlertName, "tenant": ev.Tenant, "deviation": d.ID, "rule": d.Rule, "kind": d.Kind,
		"severity": d.Severity, "host": d.Host,
	} {
		labels[k] = v
	}
	if d.Port != 0 {
		labels["port"] = strconv.Itoa(int(d.Port))
		labels["protocol"] = string(d.Protocol)
	}
	a := alert{Labels: labels, Annotations: map[string]string{"summary": d.Detail}, StartsAt: d.FirstSeen}
	if d.AckedBy != "" {
		a.Annotations["acknowledged_by"] = d.AckedBy
		a.Annotations["acknowledgement"] = d.AckComment
	}
	if ev.Kind == sdk.EventResolved || d.State == "resolved" {
		a.EndsAt = ev.Time
	} else {
		a.EndsAt = now.Add(4 * p.resend)
	}
	if a.StartsAt.IsZero() {
		a.StartsAt = ev.Time
	}
	return a
}
