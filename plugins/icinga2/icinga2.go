// Package icinga2 is the built-in Icinga 2 sink: deviation events become
// passive check results through Icinga's API
// (/v1/actions/process-check-result) on a service per (host, rule) or per
// host, acknowledgements become Icinga acknowledgements
// (/v1/actions/acknowledge-problem, /v1/actions/remove-acknowledgement),
// and, if asked to, the sink creates the host and service objects Icinga
// does not know yet. Events of one service are sent in order; different
// services in parallel.
package icinga2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/plugins/internal/passive"
	"github.com/sollwert/sollwert/sdk"
)

// parallel bounds the services delivered to at once: enough to hide
// the round trip, few enough not to crowd Icinga's API threads.
const parallel = 8

// hostCacheTTL is how long a host found by address is remembered.
const hostCacheTTL = 5 * time.Minute

// Sink is the icinga2 sink.
type Sink struct {
	log hclog.Logger
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*http.Client // by TLS settings, for keep-alive
	hosts   map[string]cachedHost   // by API URL + address, for host_lookup = "address"
}

type cachedHost struct {
	name    string
	expires time.Time
}

// New returns the icinga2 sink.
func New(log hclog.Logger) *Sink {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Sink{log: log, now: time.Now, clients: map[string]*http.Client{}, hosts: map[string]cachedHost{}}
}

// Describe implements sdk.Sink.
func (s *Sink) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "icinga2", Version: "1", Fields: []sdk.Field{
		{Name: "url", Type: "string", Required: true, Description: "the Icinga 2 API, https://HOST:5665"},
		{Name: "user", Type: "string", Required: true, Description: "ApiUser name"},
		{Name: "password_file", Type: "string", Description: "file holding the ApiUser's password"},
		{Name: "password_env", Type: "string", Description: "environment variable holding the password"},
		{Name: "ca_file", Type: "string", Description: "CA certificate that signed Icinga's certificate"},
		{Name: "server_name", Type: "string", Description: "name in Icinga's certificate, when url names an address"},
		{Name: "services", Type: "string", Description: `"per_rule" (default) or "per_host"`},
		{Name: "service_prefix", Type: "string", Description: `service names start with it (default "sollwert")`},
		{Name: "host_lookup", Type: "string", Description: `"name" (default): host named by the address; "address": the host with that address`},
		{Name: "create_objects", Type: "bool", Description: "create missing hosts and services"},
		{Name: "host_templates", Type: "list(string)", Description: "templates of created hosts"},
		{Name: "service_templates", Type: "list(string)", Description: "templates of created services"},
		{Name: "resend", Type: "duration", Description: `re-post active states this often (default 5m, "0" off)`},
		{Name: "timeout", Type: "duration", Description: "per request (default 10s)"},
	}}, nil
}

// Validate implements sdk.Sink.
func (s *Sink) Validate(_ context.Context, raw json.RawMessage) error {
	_, err := parse(raw, false)
	return err
}

// ResendInterval implements notifier.Resender: Icinga keeps check results
// in memory and writes them out every few minutes, so after a crash it
// has forgotten states sollwert delivered.
func (s *Sink) ResendInterval(raw json.RawMessage) time.Duration {
	c, err := parse(raw, false)
	if err != nil {
		return 0
	}
	return c.resend
}

// Deliver implements sdk.Sink.
func (s *Sink) Deliver(ctx context.Context, req sdk.DeliverRequest) ([]sdk.Ack, error) {
	c, err := parse(req.Config, true)
	if err != nil {
		return nil, err
	}
	api := &client{Sink: s, c: c, http: s.client(c)}
	acks := make([]sdk.Ack, len(req.Events))
	// Events of one service keep their order; services go in parallel.
	var order []string
	groups := map[string][]int{}
	for i := range req.Events {
		ev := &req.Events[i]
		k := ev.Tenant + "\x00" + ev.Deviation.Host + "\x00" + passive.Service(ev, c.scope, c.ServicePrefix)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, k := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func(idx []int) {
			defer wg.Done()
			defer func() { <-sem }()
			failed := ""
			for _, i := range idx {
				ev := &req.Events[i]
				acks[i].EventID = ev.ID
				if failed != "" {
					// A later event of a service must not overtake an
					// earlier one that failed.
					acks[i].Error = "an earlier event of this service was not delivered: " + failed
					continue
				}
				if err := api.deliver(ctx, ev); err != nil {
					acks[i].Error = err.Error()
					var perm *permanentError
					acks[i].Permanent = errors.As(err, &perm)
					failed = acks[i].Error
					continue
				}
				acks[i].Delivered = true
			}
		}(groups[k])
	}
	wg.Wait()
	return acks, nil
}

// client returns a pooled HTTP client for c's TLS settings.
func (s *Sink) client(c *settings) *http.Client {
	key := c.CAFile + "\x00" + c.ServerName
	s.mu.Lock()
	defer s.mu.Unlock()
	if hc, ok := s.clients[key]; ok {
		return hc
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: c.tls, MaxIdleConnsPerHost: parallel, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: c.timeout, ResponseHeaderTimeout: c.timeout,
	}}
	s.clients[key] = hc
	return hc
}

// client is one delivery's view of the API.
type client struct {
	*Sink
	c    *settings
	http *http.Client
}

type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// errNotFound is Icinga's answer for an object it does not have.
var errNotFound = errors.New("not found")

func (a *client) deliver(ctx context.Context, ev *sdk.Event) error {
	host, err := a.hostName(ctx, ev.Deviation.Host)
	if err != nil {
		return err
	}
	svc := passive.Service(ev, a.c.scope, a.c.ServicePrefix)
	target := map[string]any{"type": "Service", "service": host + "!" + svc}
	switch ev.Kind {
	case sdk.EventUnacknowledged:
		if err := a.action(ctx, "remove-acknowledgement", target); err != nil && !errors.Is(err, errNotFound) {
			return err
		}
	}
	r := passive.Of(ev, a.c.scope)
	result := map[string]any{"type": "Service", "service": host + "!" + svc, "exit_status": r.State,
		"plugin_output": r.Output, "performance_data": r.Perf, "check_source": "sollwert"}
	err = a.action(ctx, "process-check-result", result)
	if errors.Is(err, errNotFound) && a.c.CreateObjects {
		if err = a.create(ctx, host, svc, ev); err == nil {
			err = a.action(ctx, "process-check-result", result)
		}
	}
	if errors.Is(err, errNotFound) {
		return fmt.Errorf("Icinga has no service %q: define it or set create_objects = true", host+"!"+svc)
	}
	if err != nil || ev.Kind != sdk.EventAcknowledged || r.State == passive.OK {
		return err
	}
	// Not sticky: Icinga lifts the acknowledgement when the state changes,
	// so a worse deviation under the same service alerts again.
	ack := map[string]any{"type": "Service", "service": host + "!" + svc, "author": ev.Deviation.AckedBy,
		"comment": ev.Deviation.AckComment, "sticky": false, "notify": false, "persistent": true}
	return a.action(ctx, "acknowledge-problem", ack)
}

// action posts to /v1/actions/NAME. Icinga answers per object; 409
// ("already acknowledged", "is OK") means there is nothing left to do.
func (a *client) action(ctx context.Context, name string, body map[string]any) error {
	code, results, err := a.call(ctx, http.MethodPost, "/v1/actions/"+name, body)
	if err != nil {
		return err
	}
	switch {
	case code == http.StatusNotFound:
		return errNotFound
	case code == http.StatusOK, code == http.StatusConflict && name != "process-check-result":
		return nil
	}
	return a.failure(name, code, results)
}

// create makes the host (unless it exists) and the service.
func (a *client) create(ctx context.Context, host, svc string, ev *sdk.Event) error {
	hostAttrs := map[string]any{"address": ev.Deviation.Host, "vars.created_by": "sollwert"}
	if len(a.c.HostTemplates) == 0 {
		// A host sollwert creates is UP by definition: it exists because
		// sollwert saw it; its own checks are sollwert's services.
		hostAttrs["check_command"] = "dummy"
		hostAttrs["vars.dummy_state"] = 0
		hostAttrs["vars.dummy_text"] = "host object created by sollwert"
	}
	if err := a.put(ctx, "/v1/objects/hosts/"+url.PathEscape(host), a.c.HostTemplates, hostAttrs); err != nil {
		return fmt.Errorf("create host %q: %w", host, err)
	}
	svcAttrs := map[string]any{"display_name": svc, "vars.created_by": "sollwert", "vars.sollwert_rule": ev.Deviation.Rule}
	if a.c.scope == passive.PerHost {
		delete(svcAttrs, "vars.sollwert_rule")
	}
	if len(a.c.ServiceTemplates) == 0 {
		svcAttrs["check_command"] = "passive"
		svcAttrs["enable_active_checks"] = false
	}
	if err := a.put(ctx, "/v1/objects/services/"+url.PathEscape(host+"!"+svc), a.c.ServiceTemplates, svcAttrs); err != nil {
		return fmt.Errorf("create service %q: %w", host+"!"+svc, err)
	}
	a.log.Info("created Icinga objects", "host", host, "service", svc)
	return nil
}

// put creates an object; one that exists already is fine (Icinga answers
// 500 "already exists" even with ignore_on_error).
func (a *client) put(ctx context.Context, path string, templates []string, attrs map[string]any) error {
	body := map[string]any{"attrs": attrs}
	if len(templates) > 0 {
		body["templates"] = templates
	}
	code, results, err := a.call(ctx, http.MethodPut, path, body)
	if err != nil {
		return err
	}
	if code == http.StatusOK {
		return nil
	}
	for _, r := range results.Results {
		for _, e := range r.Errors {
			if strings.Contains(e, "already exists") {
				return nil
			}
		}
	}
	return a.failure("PUT "+path, code, results)
}

// hostName is the Icinga host that stands for addr.
func (a *client) hostName(ctx context.Context, addr string) (string, error) {
	if a.c.HostLookup != "address" {
		return addr, nil
	}
	key := a.c.URL + "\x00" + addr
	now := a.now()
	a.mu.Lock()
	h, ok := a.hosts[key]
	a.mu.Unlock()
	if ok && now.Before(h.expires) {
		return h.name, nil
	}
	// GET with a body, as Icinga documents it, through the method
	// override: filter_vars keeps the address out of the filter's syntax.
	body := map[string]any{"filter": "host.address == addr || host.address6 == addr",
		"filter_vars": map[string]string{"addr": addr}, "attrs": []string{"name"}}
	code, results, err := a.call(ctx, http.MethodPost, "/v1/objects/hosts", body, "X-HTTP-Method-Override", "GET")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK && code != http.StatusNotFound {
		return "", a.failure("look up host by address", code, results)
	}
	name := addr // unknown to Icinga: created under its address, if at all
	if len(results.Results) > 0 {
		name = results.Results[0].Name
		if len(results.Results) > 1 {
			a.log.Warn("several Icinga hosts have this address; using the first", "address", addr, "host", name)
		}
		a.mu.Lock()
		a.hosts[key] = cachedHost{name: name, expires: now.Add(hostCacheTTL)}
		a.mu.Unlock()
	}
	return name, nil
}

// answer is the part of Icinga's answers the sink reads.
type answer struct {
	Error   float64 `json:"error"`
	Status  string  `json:"status"`
	Results []struct {
		Code   float64  `json:"code"`
		Status string   `json:"status"`
		Name   string   `json:"name"`
		Errors []string `json:"errors"`
	} `json:"results"`
}

func (a *client) call(ctx context.Context, method, path string, body any, header ...string) (int, answer, error) {
	var out answer
	b, err := json.Marshal(body)
	if err != nil {
		return 0, out, &permanentError{msg: fmt.Sprintf("encode request: %v", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, a.c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.c.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return 0, out, &permanentError{msg: err.Error()}
	}
	req.SetBasicAuth(a.c.User, a.c.password)
	// Icinga refuses non-GET requests without it (HTTP 400).
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, out, fmt.Errorf("icinga2 %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, out, fmt.Errorf("icinga2 %s: read answer: %w", path, err)
	}
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil && resp.StatusCode == http.StatusOK {
		return 0, out, fmt.Errorf("icinga2 %s: answer is not JSON: %.200q", path, raw)
	}
	return resp.StatusCode, out, nil
}

// failure describes an answer that is neither success nor "not found".
// A refused login or missing permission is retried (someone fixes the
// password or the ApiUser, and delivery goes on); a request Icinga
// calls malformed is not.
func (a *client) failure(what string, code int, ans answer) error {
	msg := ans.Status
	for _, r := range ans.Results {
		if msg == "" {
			msg = r.Status
		}
		if len(r.Errors) > 0 {
			msg += ": " + strings.Join(r.Errors, "; ")
		}
	}
	switch code {
	case http.StatusUnauthorized:
		return fmt.Errorf("icinga2 %s: HTTP 401: ApiUser %q and its password were refused", what, a.c.User)
	case http.StatusForbidden:
		return fmt.Errorf("icinga2 %s: HTTP 403: ApiUser %q lacks the permission: %s", what, a.c.User, msg)
	case http.StatusBadRequest:
		return &permanentError{msg: fmt.Sprintf("icinga2 %s: HTTP 400: %s", what, msg)}
	}
	return fmt.Errorf("icinga2 %s: HTTP %d: %s", what, code, msg)
}
