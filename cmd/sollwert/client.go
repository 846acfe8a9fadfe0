package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// apiClient is how the commands that talk to a running daemon (check,
// deviations, ack) reach it: its URL, a token and, for HTTPS with a
// private CA, that CA.
type apiClient struct {
	base, tokenFile, caFile string
}

func addClientFlags(fs *flag.FlagSet) *apiClient {
	c := &apiClient{}
	base := os.Getenv("SOLLWERT_URL")
	if base == "" {
		base = "http://127.0.0.1:7400"
	}
	fs.StringVar(&c.base, "url", base, "daemon API base URL (default $SOLLWERT_URL or http://127.0.0.1:7400)")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding an API token (default: $SOLLWERT_TOKEN)")
	fs.StringVar(&c.caFile, "ca-file", "", "CA certificate that signed the daemon's TLS certificate")
	return c
}

// client returns an HTTP client and the token to send ("" for none).
func (c *apiClient) client() (*http.Client, string, error) {
	token := os.Getenv("SOLLWERT_TOKEN")
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if c.caFile == "" {
		return http.DefaultClient, token, nil
	}
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, "", fmt.Errorf("ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("ca-file %s: no PEM certificate in it", c.caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, token, nil
}

// get fetches path?q and returns the body of a 200 answer; any other
// answer is an error that says the status and the daemon's message.
func (c *apiClient) get(path string, q url.Values, timeout time.Duration) ([]byte, error) {
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	status, body, err := c.send(http.MethodGet, path, "", nil, timeout)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// send makes a request of path with body (of contentType, nil for none)
// and returns the answer's status and body.
func (c *apiClient) send(method, path, contentType string, body io.Reader, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, body)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, b, err
}

// apiError is the message of the daemon's error answer {"error": ...}.
func apiError(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return strings.TrimSpace(string(body))
	}
	return e.Error
}

// do sends req with the token.
func (c *apiClient) do(req *http.Request) (*http.Response, error) {
	hc, token, err := c.client()
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return hc.Do(req)
}
