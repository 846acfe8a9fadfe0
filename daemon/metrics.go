package daemon

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/notifier"
	"github.com/sollwert/sollwert/store"
)

// Metrics are the daemon's Prometheus metrics, registered into the
// registerer it is given rather than a global one.
type Metrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
}

// NewMetrics registers the daemon's metrics; the store is read on scrape
// for asset and deviation counts.
func NewMetrics(reg prometheus.Registerer, st *store.Store) (*Metrics, error) {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sollwert_job_runs_total", Help: "Job runs by job and final status.",
		}, []string{"job", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sollwert_job_run_duration_seconds", Help: "Duration of job runs.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
		}, []string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sollwert_job_last_success_timestamp_seconds", Help: "End of the last successful run of a job.",
		}, []string{"job"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.lastSuccess, &storeCollector{st: st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observeRun(r *model.Run) {
	m.runs.WithLabelValues(r.Job, string(r.Status)).Inc()
	if r.End != nil {
		m.duration.WithLabelValues(r.Job).Observe(r.End.Sub(r.Start).Seconds())
		if r.Status == model.RunSucceeded {
			m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.End.Unix()))
		}
	}
}

var (
	assetsDesc = prometheus.NewDesc("sollwert_assets", "Assets in the store.", []string{"tenant"}, nil)
	devsDesc   = prometheus.NewDesc("sollwert_deviations", "Active deviations by severity and state.", []string{"tenant", "severity", "state"}, nil)
)

// storeCollector reads counts from the store at scrape time, so the
// numbers are always those of the data, not of a counter that can drift.
type storeCollector struct{ st *store.Store }

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- assetsDesc; ch <- devsDesc }

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	tenant := model.DefaultTenant
	type key struct{ sev, state string }
	counts := map[key]int{}
	for _, sev := range []model.Severity{model.SeverityInfo, model.SeverityWarning, model.SeverityCritical} {
		for _, st := range []model.State{model.StateOpen, model.StateAcknowledged} {
			counts[key{string(sev), string(st)}] = 0
		}
	}
	var assets int
	err := c.st.View(context.Background(), func(t *store.Txn) error {
		var err error
		if assets, err = t.CountAssets(tenant); err != nil {
			return err
		}
		return t.ForEachDeviation(tenant, func(d *model.Deviation) error {
			if d.Active() {
				counts[key{string(d.Severity), string(d.State)}]++
			}
			return nil
		})
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(assetsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(assetsDesc, prometheus.GaugeValue, float64(assets), tenant)
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(devsDesc, prometheus.GaugeValue, float64(n), tenant, k.sev, k.state)
	}
}

var (
	sinkQueuedDesc    = prometheus.NewDesc("sollwert_sink_queued_events", "Events waiting for a sink.", []string{"sink"}, nil)
	sinkOldestDesc    = prometheus.NewDesc("sollwert_sink_oldest_undelivered_seconds", "Age of the oldest event waiting for a sink.", []string{"sink"}, nil)
	sinkDeadDesc      = prometheus.NewDesc("sollwert_sink_dead_letters", "Events a sink refused for good, kept for inspection.", []string{"sink"}, nil)
	sinkDeliveredDesc = prometheus.NewDesc("sollwert_sink_delivered_events_total", "Events a sink took since the daemon started.", []string{"sink"}, nil)
	sinkFailuresDesc  = prometheus.NewDesc("sollwert_sink_failed_deliveries_total", "Failed event deliveries since the daemon started.", []string{"sink"}, nil)
)

// notifierCollector reads the sinks' queues at scrape time.
type notifierCollector struct{ n *notifier.Manager }

func (c notifierCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sinkQueuedDesc, sinkOldestDesc, sinkDeadDesc, sinkDeliveredDesc, sinkFailuresDesc} {
		ch <- d
	}
}

func (c notifierCollector) Collect(ch chan<- prometheus.Metric) {
	sts, err := c.n.Statuses(context.Background(), false)
	if err != nil {
		return
	}
	for _, s := range sts {
		ch <- prometheus.MustNewConstMetric(sinkQueuedDesc, prometheus.GaugeValue, float64(s.Queued), s.Name)
		ch <- prometheus.MustNewConstMetric(sinkOldestDesc, prometheus.GaugeValue, s.OldestSeconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(sinkDeadDesc, prometheus.GaugeValue, float64(s.DeadLetters), s.Name)
		ch <- prometheus.MustNewConstMetric(sinkDeliveredDesc, prometheus.CounterValue, float64(s.Delivered), s.Name)
		ch <- prometheus.MustNewConstMetric(sinkFailuresDesc, prometheus.CounterValue, float64(s.Failures), s.Name)
	}
}
