// Package webhook is the built-in webhook sink: each deviation event is
// POSTed to a URL, either as generic JSON signed with HMAC-SHA256, or as a
// Mattermost/Slack incoming-webhook message a person can read.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// Headers of the generic JSON format.
const (
	SignatureHeader = "X-Sollwert-Signature" // sha256=HEX of the HMAC of the body
	EventHeader     = "X-Sollwert-Event"     // the event id, stable across retries
)

// Config is a webhook sink block's own part.
type Config struct {
	URL string `json:"url"`
	// Format is "json" (default) or "mattermost" (also right for Slack).
	Format     string `json:"format"`
	SecretFile string `json:"secret_file"`
	SecretEnv  string `json:"secret_env"`
	// APIURL, when set, links each chat message to the deviation in the API.
	APIURL  string `json:"api_url"`
	Timeout string `json:"timeout"`
	// Parallel bounds the requests in flight (default 8).
	Parallel int `json:"parallel"`
}

func parse(raw json.RawMessage) (Config, time.Duration, error) {
	c := Config{Format: "json", Parallel: 8}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return c, 0, err
	}
	verr := &sdk.ValidationError{}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		verr.Add("url", "%q is not an http or https URL", c.URL)
	}
	switch c.Format {
	case "json", "mattermost", "slack":
	default:
		verr.Add("format", `%q is not "json" or "mattermost"`, c.Format)
	}
	sdk.CheckSecret(verr, "secret", c.SecretFile, c.SecretEnv, false)
	timeout := 10 * time.Second
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			verr.Add("timeout", "%q is not a duration such as \"10s\"", c.Timeout)
		}
		timeout = d
	}
	if c.Parallel < 1 || c.Parallel > 256 {
		verr.Add("parallel", "%d is not within 1-256", c.Parallel)
	}
	return c, timeout, verr.Err()
}

// Sink is the webhook sink. One value serves every webhook block.
type Sink struct {
	log    hclog.Logger
	client *http.Client
}

// New returns the webhook sink.
func New(log hclog.Logger) *Sink {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Sink{log: log, client: &http.Client{Transport: tr}}
}

// Describe implements sdk.Sink.
func (s *Sink) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "webhook", Version: "1", Fields: []sdk.Field{
		{Name: "url", Type: "string", Required: true, Description: "where events are POSTed"},
		{Name: "format", Type: "string", Description: `"json" (signed) or "mattermost" (chat text; Slack too)`},
		{Name: "secret_file", Type: "string", Description: "file holding the HMAC-SHA256 key for the json format"},
		{Name: "secret_env", Type: "string", Description: "environment variable holding the HMAC key"},
		{Name: "api_url", Type: "string", Description: "base URL of sollwert's API, for links in chat messages"},
		{Name: "timeout", Type: "duration", Description: "per request (default 10s)"},
		{Name: "parallel", Type: "number", Description: "requests in flight (default 8)"},
	}}, nil
}

// Validate implements sdk.Sink.
func (s *Sink) Validate(_ context.Context, raw json.RawMessage) error {
	_, _, err := parse(raw)
	return err
}

// Deliver implements sdk.Sink: one request per event, in parallel, each
// acknowledged on its own. 2xx is delivered; 408, 429 and 5xx are worth a
// retry; any other 4xx means the receiver will never take the event.
func (s *Sink) Deliver(ctx context.Context, req sdk.DeliverRequest) ([]sdk.Ack, error) {
	c, timeout, err := parse(req.Config)
	if err != nil {
		return nil, err
	}
	secret, err := sdk.ReadSecret(c.SecretFile, c.SecretEnv)
	if err != nil {
		return nil, err
	}
	key := []byte(secret)
	acks := make([]sdk.Ack, len(req.Events))
	sem := make(chan struct{}, c.Parallel)
	var wg sync.WaitGroup
	for i := range req.Events {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			acks[i] = s.post(ctx, c, timeout, key, &req.Events[i])
		}(i)
	}
	wg.Wait()
	return acks, nil
}

func (s *Sink) post(ctx context.Context, c Config, timeout time.Duration, key []byte, ev *sdk.Event) sdk.Ack {
	ack := sdk.Ack{EventID: ev.ID}
	var body []byte
	var err error
	if c.Format == "json" {
		body, err = json.Marshal(ev)
	} else {
		body, err = json.Marshal(map[string]string{"text": ChatText(ev, c.APIURL)})
	}
	if err != nil {
		ack.Error, ack.Permanent = err.Error(), true
		return ack
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		ack.Error, ack.Permanent = err.Error(), true
		return ack
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(EventHeader, ev.ID)
	r.Header.Set("Idempotency-Key", ev.ID)
	if len(key) > 0 {
		r.Header.Set(SignatureHeader, Sign(key, body))
	}
	resp, err := s.client.Do(r)
	if err != nil {
		ack.Error = redact(err.Error(), c.URL)
		return ack
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if s := strings.TrimSpace(string(snippet)); s != "" {
		status += ": " + s
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		ack.Delivered = true
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		ack.Error = status
	default:
		ack.Error, ack.Permanent = status, true
	}
	return ack
}

// redact keeps a webhook URL's path (Mattermost and Slack put their token
// there) out of error messages.
func redact(msg, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return msg
	}
	return strings.ReplaceAll(msg, raw, u.Scheme+"://"+u.Host+"/...")
}

// Sign is the value of the signature header for body.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ChatText is the readable line a chat channel gets for ev.
func ChatText(ev *sdk.Event, apiURL string) string {
	d := &ev.Deviation
	icon := map[string]string{"critical": ":red_circle:", "warning": ":large_orange_diamond:", "info": ":information_source:"}[d.Severity]
	verb := map[string]string{
		sdk.EventOpened: "opened", sdk.EventResolved: "resolved", sdk.EventAcknowledged: "acknowledged",
		sdk.EventUnacknowledged: "no longer acknowledged", sdk.EventSeverityChanged: "changed severity",
	}[ev.Kind]
	if ev.Kind == sdk.EventResolved {
		icon = ":white_check_mark:"
	}
	subject := d.Host
	if d.Port != 0 {
		subject = fmt.Sprintf("%s %s/%d", d.Host, d.Protocol, d.Port)
	}
	text := fmt.Sprintf("%s **%s** %s `%s` — %s (rule `%s`, %s, since %s)", icon, strings.ToUpper(d.Severity), verb, subject,
		d.Detail, d.Rule, d.Kind, d.FirstSeen.UTC().Format(time.RFC3339))
	if d.AckedBy != "" && ev.Kind == sdk.EventAcknowledged {
		text += fmt.Sprintf(" by %s: %s", d.AckedBy, d.AckComment)
	}
	if apiURL != "" {
		text += fmt.Sprintf(" [details](%s/v1/deviations/%s)", strings.TrimRight(apiURL, "/"), d.ID)
	}
	return text
}
