package auth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkCheck measures what the token check and tenant scoping add to
// a request: 1,000 tokens in the file, a valid bearer token of one tenant
// asking for its own tenant, the principal put into the request context.
// It reports the 99th percentile of single checks.
func BenchmarkCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tokens.json")
	var secret string
	for i := range 1000 {
		s, _, err := Create(path, fmt.Sprintf("t%04d", i), []Scope{Read, Ack}, fmt.Sprintf("tenant%d", i%50), 0, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if i == 500 {
			secret = s
		}
	}
	g, err := NewGuard(path, "default", nil)
	if err != nil {
		b.Fatal(err)
	}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := g.Require(Read, next, func(w http.ResponseWriter, _ *http.Request, d *Denial) { b.Fatalf("refused: %v", d) })
	req := httptest.NewRequest(http.MethodGet, "/v1/deviations?tenant=tenant0", nil)
	req.RemoteAddr = "198.18.0.1:4000"
	req.Header.Set("Authorization", "Bearer "+secret)
	w := httptest.NewRecorder()
	took := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		start := time.Now()
		h.ServeHTTP(w, req)
		if len(took) < cap(took) {
			took = append(took, time.Since(start))
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds())/1000, "µs-p99")
}
