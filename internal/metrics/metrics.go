// Package metrics holds secretsync's Prometheus collectors, registered with
// controller-runtime's registry. No metric carries a per-object label: cardinality
// stays flat however many ExternalSecrets exist.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// SyncTotal counts ExternalSecret syncs by result (synced, unchanged, error).
	SyncTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "secretsync_sync_total",
		Help: "ExternalSecret sync attempts by result.",
	}, []string{"result"})

	// SyncDuration observes how long one sync takes, fetch included.
	SyncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "secretsync_sync_duration_seconds",
		Help:    "Duration of ExternalSecret syncs in seconds.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	})

	// Ready counts ExternalSecrets by Ready condition status (True, False, Unknown).
	Ready = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "secretsync_externalsecret_ready",
		Help: "ExternalSecrets by Ready condition status.",
	}, []string{"condition"})

	// ProviderRequests counts every HTTP request sent to a backend (pages, retries,
	// logins, renewals included): provider.CountRequests wraps each backend client's
	// transport. Label values come from fixed sets (docs/metrics.md).
	ProviderRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "secretsync_provider_requests_total",
		Help: "Backend requests by provider, operation and result.",
	}, []string{"provider", "operation", "result"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(SyncTotal, SyncDuration, Ready, ProviderRequests)
}
