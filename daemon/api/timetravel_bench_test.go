package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/sollwert/sollwert/internal/testhistory"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/store"
)

// BenchmarkAssetsAt answers GET /v1/assets?at=T for 100,000 assets with
// 10 versions each:
//   - all/mid-history: T between the 5th and 6th version, so every asset
//     is found in its history, not in its current record (the worst case),
//     all of them in one answer. Target: under 1 s.
//   - all/after-last-change: T after the 10th version (the current state
//     through the time-travel path).
//   - first-page/mid-history: the default page of 1,000.
func BenchmarkAssetsAt(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{ValueLogGCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const assets = 100_000
	testhistory.Write(b, st, assets, 10)
	h, err := New(Options{Store: st, Jobs: fakeJobs{}})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		at            time.Time
		limit         string
		want, version int
	}{
		{"all/mid-history", testhistory.VersionTime(5).Add(30 * time.Minute), "1000000", assets, 5},
		{"all/after-last-change", testhistory.VersionTime(10).Add(time.Hour), "1000000", assets, 10},
		{"first-page/mid-history", testhistory.VersionTime(5).Add(30 * time.Minute), "", 1000, 5},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := url.Values{"at": {c.at.Format(time.RFC3339)}}
			if c.limit != "" {
				q.Set("limit", c.limit)
			}
			target := "/v1/assets?" + q.Encode()
			// The answer is checked once; the timed requests write to a sink
			// that counts, as a socket would take them, rather than a
			// growing buffer.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			var got []model.Asset
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
				b.Fatalf("%d %v %.200s", rec.Code, err, rec.Body.String())
			}
			if len(got) != c.want || got[0].Version != uint64(c.version) || got[len(got)-1].Version != uint64(c.version) {
				b.Fatalf("%d assets, first at version %d", len(got), got[0].Version)
			}
			b.ResetTimer()
			var sink countingWriter
			for i := 0; i < b.N; i++ {
				sink = countingWriter{header: http.Header{}}
				h.ServeHTTP(&sink, httptest.NewRequest(http.MethodGet, target, nil))
				if sink.code != http.StatusOK || sink.n != int64(rec.Body.Len()) {
					b.Fatalf("HTTP %d, %d bytes (want %d)", sink.code, sink.n, rec.Body.Len())
				}
			}
			b.StopTimer()
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/request")
			b.ReportMetric(float64(sink.n)/(1<<20), "MB/answer")
		})
	}
}

// countingWriter is a ResponseWriter that keeps only how much it got.
type countingWriter struct {
	header http.Header
	code   int
	n      int64
}

func (c *countingWriter) Header() http.Header  { return c.header }
func (c *countingWriter) WriteHeader(code int) { c.code = code }
func (c *countingWriter) Write(p []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	c.n += int64(len(p))
	return len(p), nil
}
