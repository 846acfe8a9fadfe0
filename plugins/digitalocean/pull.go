package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/godo"
	"github.com/hashicorp/go-hclog"
)

// requestTimeout bounds one HTTP request; the job's timeout (ctx) bounds
// the whole pull.
const requestTimeout = 60 * time.Second

// maxRetryWait is the longest a pull waits for one rate-limited request.
// DigitalOcean's limits reset within a minute (250 requests per minute)
// or an hour (5,000); an answer asking for longer fails the run rather
// than holding the job.
const maxRetryWait = 5 * time.Minute

// tuning holds what tests shorten: the first backoff after a 5xx or a
// network error, doubled per attempt up to backoffMax.
type tuning struct {
	backoff    time.Duration
	backoffMax time.Duration
}

var defaultTuning = tuning{backoff: time.Second, backoffMax: 30 * time.Second}

// bearer adds the token to each request to the API's host, and to no
// other. godo's own NewFromToken wraps the client in go-retryablehttp,
// whose retries would neither log through the sdk nor know the job's
// deadline; the plugin retries itself (call).
type bearer struct {
	token string
	host  string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != b.host {
		return nil, fmt.Errorf("digitalocean: refusing to send the token to %s, which is not the API's host %s", r.URL.Host, b.host)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// newClient makes a godo client for one pull. The API does not redirect;
// a redirect is answered as the error it is rather than followed.
func newClient(s settings, token string) (*godo.Client, error) {
	u, err := url.Parse(s.apiURL)
	if err != nil {
		return nil, fmt.Errorf("digitalocean: api_url %q: %w", s.apiURL, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxConcurrency // the page workers share one host
	hc := &http.Client{
		Timeout:       requestTimeout,
		Transport:     &bearer{token: token, host: u.Host, base: tr},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c, err := godo.New(hc, godo.SetBaseURL(s.apiURL), godo.SetUserAgent("sollwert-plugin-digitalocean/"+version))
	if err != nil {
		return nil, fmt.Errorf("digitalocean: client for %s: %w", s.apiURL, err)
	}
	return c, nil
}

// puller runs one pull's requests.
type puller struct {
	c   *godo.Client
	s   settings
	t   tuning
	log hclog.Logger
	// token is scrubbed from what call logs.
	token string
}

// errAuth marks an answer no retry can change: a refused token or a
// missing scope.
var errAuth = errors.New("digitalocean: the API refused the token")

// call runs one request, retrying 429s (after Retry-After), 5xx answers
// and network errors up to max_retries times. Its errors name what was
// asked ("list droplets page 3").
func (p *puller) call(ctx context.Context, what string, fn func(context.Context) (*godo.Response, error)) (*godo.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := fn(ctx)
		if err == nil {
			p.log.Debug("digitalocean: fetched", "request", what, "attempts", attempt+1)
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("digitalocean: %s: %w", what, ctx.Err())
		}
		wait, retry, ferr := p.classify(what, err, attempt)
		if !retry {
			return nil, ferr
		}
		if attempt >= p.s.maxRetries {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", ferr, attempt+1)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, fmt.Errorf("%w: waiting %s to retry would pass the job's timeout", ferr, wait.Round(time.Millisecond))
		}
		p.log.Warn("digitalocean: retrying", "request", what, "error", redact(ferr, p.token).Error(), "wait", wait.String(), "attempt", attempt+1)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("digitalocean: %s: waiting to retry: %w", what, ctx.Err())
		case <-timer.C:
		}
	}
}

// classify says whether err is worth another try, and after how long.
func (p *puller) classify(what string, err error, attempt int) (time.Duration, bool, error) {
	backoff := min(p.t.backoff<<attempt, p.t.backoffMax)
	var er *godo.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		// A network error or a body that did not decode. The first is
		// worth retrying; a bad body is not, but cannot be told apart
		// reliably from a cut connection, and retries are bounded.
		return backoff, true, fmt.Errorf("digitalocean: %s: %w", what, err)
	}
	code := er.Response.StatusCode
	msg := er.Message
	if msg == "" {
		msg = http.StatusText(code)
	}
	switch {
	case code == http.StatusUnauthorized:
		return 0, false, fmt.Errorf("%w (%s: %d %s): the token is invalid, expired or revoked; check token_file or token_env", errAuth, what, code, msg)
	case code == http.StatusForbidden:
		return 0, false, fmt.Errorf("%w (%s: %d %s): the token lacks a read scope; it needs droplet:read, vpc:read and firewall:read", errAuth, what, code, msg)
	case code == http.StatusTooManyRequests:
		wait, ok := retryAfter(er.Response.Header, time.Now())
		if !ok {
			wait = backoff
		}
		ferr := fmt.Errorf("digitalocean: %s: rate limited (429 %s)", what, msg)
		if wait > maxRetryWait {
			return 0, false, fmt.Errorf("%w: the API asks to wait %s, more than %s", ferr, wait, maxRetryWait)
		}
		return wait, true, ferr
	case code >= 500:
		return backoff, true, fmt.Errorf("digitalocean: %s: %w", what, err)
	}
	return 0, false, fmt.Errorf("digitalocean: %s: %w", what, err)
}

// retryAfter reads how long a 429 asks to wait: Retry-After in seconds or
// as an HTTP date, else DigitalOcean's ratelimit-reset (a Unix time).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return time.Duration(n) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if v := strings.TrimSpace(h.Get("Ratelimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return max(time.Unix(n, 0).Sub(now), 0), true
		}
	}
	return 0, false
}

// listAll follows a list's pages one after another to the end.
func listAll[T any](ctx context.Context, p *puller, what string, list func(context.Context, *godo.ListOptions) ([]T, *godo.Response, error)) ([]T, error) {
	var all []T
	for page := 1; ; page++ {
		var items []T
		resp, err := p.call(ctx, fmt.Sprintf("list %s page %d", what, page), func(ctx context.Context) (*godo.Response, error) {
			var (
				resp *godo.Response
				err  error
			)
			items, resp, err = list(ctx, &godo.ListOptions{Page: page, PerPage: p.s.perPage})
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if resp.Links == nil || resp.Links.IsLastPage() {
			return all, nil
		}
	}
}

// dropletPage is one page of droplets as fetched.
type dropletPage struct {
	page     int
	droplets []godo.Droplet
	total    int
	last     bool
}

// droplets fetches every page of droplets and hands each to handle, from
// the calling goroutine, in no particular order. Page 1 tells the total;
// pages 2 to the last are fetched up to concurrency at a time; if the last
// one still links to a next page (droplets were created meanwhile), the
// rest follow one by one. The first error ends the pull.
func (p *puller) droplets(ctx context.Context, handle func(dropletPage) error) error {
	first, err := p.dropletPage(ctx, 1)
	if err != nil {
		return err
	}
	if err := handle(first); err != nil {
		return err
	}
	if first.last {
		return nil
	}
	lastPage := max((first.total+p.s.perPage-1)/p.s.perPage, 2)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan int)
	results := make(chan dropletPage)
	errc := make(chan error, p.s.concurrency)
	var wg sync.WaitGroup
	for range min(p.s.concurrency, lastPage-1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range pages {
				dp, err := p.dropletPage(ctx, n)
				if err != nil {
					errc <- err
					cancel()
					return
				}
				select {
				case results <- dp:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(pages)
		for n := 2; n <= lastPage; n++ {
			select {
			case pages <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	var tail *dropletPage
	var herr error
	for dp := range results {
		if herr != nil {
			continue // drain until the workers have stopped
		}
		if dp.page == lastPage {
			tail = &dp
		}
		if herr = handle(dp); herr != nil {
			cancel()
		}
	}
	// The handler's error (the host is gone) comes first: a worker's
	// error may only be the cancellation it caused.
	if herr != nil {
		return herr
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("digitalocean: list droplets: %w", err)
	}
	if tail == nil {
		return fmt.Errorf("digitalocean: list droplets: page %d did not arrive", lastPage)
	}
	for n := lastPage + 1; !tail.last; n++ {
		dp, err := p.dropletPage(ctx, n)
		if err != nil {
			return err
		}
		if err := handle(dp); err != nil {
			return err
		}
		tail = &dp
	}
	return nil
}

func (p *puller) dropletPage(ctx context.Context, page int) (dropletPage, error) {
	dp := dropletPage{page: page}
	opt := &godo.ListOptions{Page: page, PerPage: p.s.perPage}
	resp, err := p.call(ctx, fmt.Sprintf("list droplets page %d", page), func(ctx context.Context) (*godo.Response, error) {
		var (
			resp *godo.Response
			err  error
		)
		if p.s.tag != "" {
			dp.droplets, resp, err = p.c.Droplets.ListByTag(ctx, p.s.tag, opt)
		} else {
			dp.droplets, resp, err = p.c.Droplets.List(ctx, opt)
		}
		return resp, err
	})
	if err != nil {
		return dropletPage{}, err
	}
	if resp.Meta != nil {
		dp.total = resp.Meta.Total
	}
	dp.last = resp.Links == nil || resp.Links.IsLastPage()
	return dp, nil
}
