package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sollwert/sollwert/plugins/alertmanager"
	"github.com/sollwert/sollwert/plugins/webhook"
	"github.com/sollwert/sollwert/sdk"
	"github.com/sollwert/sollwert/store"
)

// flaky is a webhook receiver that answers 503 until it is told to
// recover, counting what it took by event id.
type flaky struct {
	mu   sync.Mutex
	up   atomic.Bool
	got  map[string]int
	hits atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	b, _ := io.ReadAll(r.Body)
	if !f.up.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev sdk.Event
	if json.Unmarshal(b, &ev) != nil || ev.Deviation.Rule == "rejected" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.got[ev.ID]++
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func queue(t *testing.T, st *store.Store, sink string, events ...sdk.Event) {
	t.Helper()
	if err := st.Update(context.Background(), func(tx *store.Txn) error {
		for i := range events {
			if err := tx.Enqueue(sink, &events[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func ev(i int, rule string) sdk.Event {
	return sdk.Event{ID: fmt.Sprintf("ev-%03d", i), Kind: sdk.EventOpened, Time: time.Unix(1_700_000_000, int64(i)), Tenant: "default",
		Deviation: sdk.DeviationEvent{ID: "d", Rule: rule, Kind: "unexpected_port", Severity: "critical", Host: "198.18.0.1"}}
}

func TestOutageDeliversEverythingOnceAndKeepsRefusals(t *testing.T) {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rcv := &flaky{got: map[string]int{}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	cfg, _ := json.Marshal(map[string]string{"url": srv.URL})

	m := New(st, Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Poll: 50 * time.Millisecond, Batch: 10})
	t.Cleanup(m.Stop)
	m.Update([]Sink{{Name: "hook", Type: "webhook", Impl: webhook.New(nil), Config: cfg, Fingerprint: "1",
		Filter: Filter{Severities: []string{"critical"}}}})

	var events []sdk.Event
	for i := 0; i < 25; i++ {
		events = append(events, ev(i, "dmz"))
	}
	events = append(events, ev(99, "rejected"))
	queue(t, st, "hook", events...)
	m.Wake()
	// The receiver is down: attempts happen, nothing is lost.
	waitFor(t, func() bool { return rcv.hits.Load() >= 20 })
	sts, err := m.Statuses(context.Background(), false)
	if err != nil || len(sts) != 1 || sts[0].Queued != 26 || sts[0].Failures == 0 || sts[0].LastError != "HTTP 503" {
		t.Fatalf("during the outage: %+v %v", sts, err)
	}
	rcv.up.Store(true)
	waitFor(t, func() bool {
		sts, _ := m.Statuses(context.Background(), false)
		return sts[0].Queued == 0
	})
	for _, e := range events[:25] {
		if n := rcv.got[e.ID]; n != 1 {
			t.Errorf("%s delivered %d times", e.ID, n)
		}
	}
	sts, _ = m.Statuses(context.Background(), true)
	if sts[0].DeadLetters != 1 || len(sts[0].Dead) != 1 || sts[0].Dead[0].Event.ID != "ev-099" || sts[0].Delivered != 25 {
		t.Fatalf("after the outage: %+v", sts[0])
	}
	// Routing follows the filter.
	warn := ev(1, "dmz")
	warn.Deviation.Severity = "warning"
	if got := m.Route(&warn); len(got) != 0 {
		t.Fatalf("a warning went to %v", got)
	}
	if got := m.Route(&events[0]); len(got) != 1 || got[0] != "hook" {
		t.Fatalf("a critical event went to %v", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResendKeepsAlertsAlive: a Resender sink (Alertmanager) gets the
// active deviations again and again, without anything queued.
func TestResendKeepsAlertsAlive(t *testing.T) {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var alerts []map[string]any
		if json.NewDecoder(r.Body).Decode(&alerts) == nil && len(alerts) == 2 {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	active := func(context.Context) ([]sdk.Event, error) { return []sdk.Event{ev(1, "dmz"), ev(2, "dmz")}, nil }
	m := New(st, Options{Active: active, Poll: time.Hour})
	t.Cleanup(m.Stop)
	cfg, _ := json.Marshal(map[string]string{"url": srv.URL, "resend": "30ms"})
	m.Update([]Sink{{Name: "am", Type: "alertmanager", Impl: alertmanager.New(nil), Config: cfg, Fingerprint: "1"}})
	waitFor(t, func() bool { return posts.Load() >= 3 })
}

// TestHeldEventsWaitForTheirWindow: events of a host in a maintenance
// window stay queued while others go out; they follow once it ends.
func TestHeldEventsWaitForTheirWindow(t *testing.T) {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rcv := &flaky{got: map[string]int{}}
	rcv.up.Store(true)
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	cfg, _ := json.Marshal(map[string]string{"url": srv.URL})
	var windowEnd atomic.Int64
	windowEnd.Store(time.Now().Add(time.Hour).UnixNano())
	hold := func(e *sdk.Event) time.Time {
		if e.Deviation.Host != "198.18.0.1" {
			return time.Time{}
		}
		return time.Unix(0, windowEnd.Load())
	}
	m := New(st, Options{Poll: 20 * time.Millisecond, Hold: hold})
	t.Cleanup(m.Stop)
	held, free := ev(1, "r"), ev(2, "r")
	free.Deviation.Host = "198.18.0.2"
	queue(t, st, "hook", held, free)
	m.Update([]Sink{{Name: "hook", Type: "webhook", Impl: webhook.New(nil), Config: cfg, Fingerprint: "1"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		rcv.mu.Lock()
		n := rcv.got[free.ID]
		rcv.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the free event was not delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	rcv.mu.Lock()
	early := rcv.got[held.ID]
	rcv.mu.Unlock()
	if early != 0 {
		t.Fatal("a held event went out during its window")
	}
	windowEnd.Store(time.Now().UnixNano()) // the window ends
	for {
		rcv.mu.Lock()
		n := rcv.got[held.ID]
		rcv.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held event was not delivered after its window")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
