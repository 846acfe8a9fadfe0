package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAnswerBytes bounds one answer. A page of 5,000 nodes with large
// networking facts is tens of megabytes; an answer past this bound is not
// a page and fails the run rather than the plugin's memory.
const maxAnswerBytes = 256 << 20

// maxErrorText is how much of PuppetDB's error body an error quotes.
const maxErrorText = 300

// tuning holds what tests shorten: the first backoff after a 5xx or a
// network error, doubled per attempt up to backoffMax.
type tuning struct {
	backoff    time.Duration
	backoffMax time.Duration
}

var defaultTuning = tuning{backoff: time.Second, backoffMax: 30 * time.Second}

// request is a POST body for the root query endpoint: a query (PQL text
// or AST) and, for the node pages, PuppetDB's paging parameters.
type request struct {
	Query        any          `json:"query"`
	Limit        int          `json:"limit,omitempty"`
	Offset       int          `json:"offset,omitempty"`
	OrderBy      []orderField `json:"order_by,omitempty"`
	IncludeTotal bool         `json:"include_total,omitempty"`
}

type orderField struct {
	Field string `json:"field"`
}

// client asks one PuppetDB. Queries go as POST: a page of certnames does
// not fit in a URL Jetty accepts (8 KiB).
type client struct {
	hc       *http.Client
	endpoint string
	path     string // the endpoint's path, for errors
	token    string
	s        settings
	t        tuning
	log      logger
}

// logger is what the client logs through: the sdk's (sdk.Logger), seen
// as no more than it needs, so the plugin imports the sdk alone.
type logger interface {
	Debug(msg string, args ...any)
	Warn(msg string, args ...any)
}

func newClient(s settings, token string, t tuning, log logger) (*client, error) {
	tc, err := s.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("puppetdb: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = maxConcurrency
	hc := &http.Client{
		Timeout:   s.requestTimeout,
		Transport: tr,
		// PuppetDB answers queries without redirecting; a redirect means
		// url points elsewhere (a dashboard, a login page), and following
		// it would send the token there.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	path := queryPath
	if i := strings.Index(s.endpoint, "://"); i >= 0 {
		if j := strings.IndexByte(s.endpoint[i+3:], '/'); j >= 0 {
			path = s.endpoint[i+3+j:]
		}
	}
	return &client{hc: hc, endpoint: s.endpoint, path: path, token: token, s: s, t: t, log: log}, nil
}

// errAuth marks an answer no retry can change: PuppetDB (or PE's RBAC)
// refused the client.
var errAuth = errors.New("puppetdb refused the client")

// statusError is an HTTP answer other than 200, with PuppetDB's text.
type statusError struct {
	Status int
	Text   string
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// errMalformed marks an answer that is not the JSON PuppetDB sends.
var errMalformed = errors.New("the answer is not PuppetDB's JSON")

// query runs one query, retrying 429 and 503 (after Retry-After), other
// 5xx answers and network errors up to max_retries times, and decodes the
// answer into a fresh T. It returns PuppetDB's X-Records (the total the
// query would give without paging) or -1 without it. Its errors name
// what was asked ("nodes page 3"), the path and the answer.
func query[T any](ctx context.Context, c *client, what string, req request) (T, int, error) {
	var zero T
	body, err := json.Marshal(req)
	if err != nil {
		return zero, 0, fmt.Errorf("puppetdb: %s: %w", what, err)
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		v, total, wait, retry, err := once[T](ctx, c, what, body)
		if err == nil {
			c.log.Debug("puppetdb: fetched", "request", what, "attempts", attempt+1, "took", time.Since(start).Round(time.Millisecond).String())
			return v, total, nil
		}
		if ctx.Err() != nil {
			return zero, 0, fmt.Errorf("puppetdb: %s: %w", what, ctx.Err())
		}
		if !retry {
			return zero, 0, err
		}
		if attempt >= c.s.maxRetries {
			return zero, 0, fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		if wait < 0 {
			wait = min(c.t.backoff<<attempt, c.t.backoffMax)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return zero, 0, fmt.Errorf("%w: waiting %s to retry would pass the job's timeout", err, wait.Round(time.Millisecond))
		}
		c.log.Warn("puppetdb: retrying", "request", what, "error", redact(err, c.token).Error(), "wait", wait.String(), "attempt", attempt+1)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return zero, 0, fmt.Errorf("puppetdb: %s: waiting to retry: %w", what, ctx.Err())
		case <-timer.C:
		}
	}
}

// once sends one request. wait < 0 asks for the usual backoff.
func once[T any](ctx context.Context, c *client, what string, body []byte) (v T, total int, wait time.Duration, retry bool, err error) {
	wait = -1
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return v, 0, 0, false, fmt.Errorf("puppetdb: %s: %w", what, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sollwert-plugin-puppetdb/"+version)
	if c.token != "" {
		req.Header.Set("X-Authentication", c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// A refused connection, a reset, a timeout: worth another try.
		// A failed certificate check is not, and says what to check.
		if hint := tlsHint(err); hint != "" {
			return v, 0, 0, false, fmt.Errorf("puppetdb: %s: %w; %s", what, err, hint)
		}
		return v, 0, wait, true, fmt.Errorf("puppetdb: %s: %w", what, err)
	}
	defer resp.Body.Close()
	where := fmt.Sprintf("puppetdb: %s: POST %s", what, c.path)
	if resp.StatusCode != http.StatusOK {
		se := &statusError{Status: resp.StatusCode, Text: errorText(resp.Body, c.token)}
		switch code := resp.StatusCode; {
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return v, 0, 0, false, fmt.Errorf("%s: %w (%w): check token_file or token_env, or that PuppetDB's certificate-allowlist holds the client certificate's name", where, errAuth, se)
		case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
			// 503 is PuppetDB starting or in maintenance mode.
			if d, ok := retryAfter(resp.Header, time.Now()); ok {
				if d > c.s.maxRetryWait {
					return v, 0, 0, false, fmt.Errorf("%s: %w: PuppetDB asks to wait %s, longer than max_retry_wait %s", where, se, d, c.s.maxRetryWait)
				}
				wait = d
			}
			return v, 0, wait, true, fmt.Errorf("%s: %w", where, se)
		case code >= 500:
			return v, 0, wait, true, fmt.Errorf("%s: %w", where, se)
		case code >= 300 && code < 400:
			return v, 0, 0, false, fmt.Errorf("%s: %w: redirected to %q; set url to PuppetDB's base URL", where, se, resp.Header.Get("Location"))
		}
		return v, 0, 0, false, fmt.Errorf("%s: %w", where, se)
	}
	lr := &limitedReader{r: resp.Body, n: maxAnswerBytes}
	dec := json.NewDecoder(lr)
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, errTooLarge):
			return v, 0, 0, false, fmt.Errorf("%s: the answer is larger than %d MiB; lower page_size", where, maxAnswerBytes>>20)
		case errors.As(err, &syn) || errors.As(err, &typ):
			return v, 0, 0, false, fmt.Errorf("%s: %w (Content-Type %q): %v", where, errMalformed, resp.Header.Get("Content-Type"), err)
		}
		// Cut short: the connection broke or the request timed out.
		return v, 0, wait, true, fmt.Errorf("%s: reading the answer: %w", where, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, 0, 0, false, fmt.Errorf("%s: %w: data after the answer", where, errMalformed)
	}
	total = -1
	if h := resp.Header.Get("X-Records"); h != "" {
		if n, err := strconv.Atoi(h); err == nil && n >= 0 {
			total = n
		}
	}
	return v, total, 0, false, nil
}

// tlsHint says what to check when a certificate was not accepted, by
// this side or PuppetDB's; "" for any other error. No retry changes
// either.
func tlsHint(err error) string {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var alert tls.AlertError
	switch {
	case errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci):
		return "PuppetDB's certificate does not verify: set ca_file to the CA that signed it (on a Puppet server, the Puppet CA's certificate) and url to a name the certificate holds"
	case errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:"):
		return "PuppetDB refused the TLS connection: it wants a client certificate (cert_file, key_file) signed by the CA it trusts, whose name is in its certificate-allowlist if it has one"
	}
	return ""
}

// errorText reads the start of an error body as one trimmed line, with
// the token (should PuppetDB or a proxy echo it) taken out.
func errorText(r io.Reader, token string) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	s := strings.Join(strings.Fields(string(b)), " ")
	if token != "" {
		s = strings.ReplaceAll(s, token, "[token]")
	}
	if len(s) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// retryAfter reads how long a 429 or 503 asks to wait: Retry-After in
// seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

var errTooLarge = errors.New("answer too large")

// limitedReader is io.LimitReader that says when it cut.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
