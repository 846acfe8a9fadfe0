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
// 10 versions each, T between the 5th and 6th version (so every asset is
// found in its history, not in its current record), all of them in one
// answer. Target: under 1 s.
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
	at := testhistory.VersionTime(5).Add(30 * time.Minute)
	target := "/v1/assets?" + url.Values{"at": {at.Format(time.RFC3339)}, "limit": {"1000000"}}.Encode()
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		size = rec.Body.Len()
		if i == 0 {
			var got []model.Asset
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				b.Fatal(err)
			}
			if len(got) != assets || got[0].Version != 5 || got[assets-1].Version != 5 {
				b.Fatalf("%d assets, first at version %d", len(got), got[0].Version)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/request")
	b.ReportMetric(float64(size)/(1<<20), "MB/answer")
}
