// Package cost projects the backend API calls a fleet of ExternalSecrets makes per
// month, as the operator really makes them (shared keys read once per slot, the
// fetch layer's read-ahead batches, its batch limits), and their AWS price.
//
// The model, per store:
//   - Only periodic refreshes count (refreshPolicy Periodic and refreshInterval > 0);
//     spec edits, force-syncs and drift repairs are events, not a rate.
//   - Refs are deduplicated by (key, version): ExternalSecrets that read one key share
//     one read per slot. A ref read at several intervals is read at the shortest.
//   - Refs of one interval I are spread evenly over I; the read-ahead reads the ones
//     due within its horizon (fetch.Timing.Horizon of the cache window) in one call,
//     so a call carries min(batch limit, max(1, floor(N×horizon/I))) refs.
//   - Secrets Manager refs with a version are read one by one (GetSecretValue:
//     BatchGetSecretValue has no version field); Parameter Store batches versions too.
//   - Vault: one read per key, no API price.
//   - A find is at least one listing call per slot (more pages and the found keys'
//     reads depend on the backend's content): the projection is then a lower bound.
//   - Dynamic secrets (Vault) are renewed by lease, not refreshed: not counted.
package cost

import (
	"math"
	"sort"
	"time"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/controllers/externalsecret"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
)

// Month is the billing month of the projection: 30 days.
const Month = 30 * 24 * time.Hour

// PriceDate is when the price table below was last checked against AWS's pricing pages.
const PriceDate = "2026-11"

// Prices per 10,000 API calls in USD, as of PriceDate (us-east-1; most regions
// equal). They EXCLUDE per-secret storage fees (Secrets Manager $0.40 per secret per
// month, Parameter Store advanced parameters $0.05 per parameter per month).
//   - Secrets Manager: $0.05 per 10,000 API calls.
//   - Parameter Store: standard throughput is free; higher throughput $0.05 per 10,000.
//   - Vault / OpenBao: no per-call price.
var Prices = struct {
	SecretsManager, ParameterStoreStandard, ParameterStoreHigh float64
}{SecretsManager: 0.05, ParameterStoreStandard: 0, ParameterStoreHigh: 0.05}

// Backend is what a store talks to, for batching and pricing.
type Backend string

const (
	SecretsManager Backend = "SecretsManager"
	ParameterStore Backend = "ParameterStore"
	Vault          Backend = "Vault"
)

// BatchSize is the most refs one call of the backend takes, from the providers
// themselves (the limits the fetch layer batches with).
func BatchSize(b Backend) int {
	switch b {
	case SecretsManager:
		return (*secretsmanager.Client)(nil).MaxBatch()
	case ParameterStore:
		return (*parameterstore.Client)(nil).MaxBatch()
	}
	return 1
}

// BackendOf is the backend of a store spec.
func BackendOf(spec *v1alpha1.SecretStoreSpec) Backend {
	if a := spec.Provider.AWS; a != nil {
		if a.Service == v1alpha1.AWSServiceParameterStore {
			return ParameterStore
		}
		return SecretsManager
	}
	return Vault
}

// Read is one periodic read of a ref at an interval.
type Read struct {
	Key, Version string
	Interval     time.Duration
	Find         bool // a find listing: at least one call per slot
}

// Store is one store and every periodic read of the ExternalSecrets using it.
type Store struct {
	Kind, Namespace, Name string
	Backend               Backend
	Reads                 []Read
}

// Projection is a store's projected month.
type Projection struct {
	Kind         string  `json:"kind"`
	Namespace    string  `json:"namespace,omitempty"`
	Name         string  `json:"name"`
	Backend      Backend `json:"backend"`
	DistinctRefs int     `json:"distinctRefs"`
	ReadsPerMo   float64 `json:"readsPerMonth"`
	CallsPerMo   float64 `json:"callsPerMonth"`
	BatchSize    int     `json:"batchSize"`
	// USD is the price of CallsPerMo (Parameter Store: standard throughput, free);
	// USDHighThroughput is Parameter Store's price with higher throughput enabled.
	USD               float64 `json:"usdPerMonth"`
	USDHighThroughput float64 `json:"usdPerMonthHighThroughput,omitempty"`
	LowerBound        bool    `json:"lowerBound,omitempty"` // a find: pages and found keys not counted
}

type ref struct{ key, version string }

// Project computes s's month with the operator's timing model.
func Project(s Store) Projection {
	p := Projection{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name, Backend: s.Backend, BatchSize: BatchSize(s.Backend)}
	shortest := map[ref]time.Duration{}
	for _, r := range s.Reads {
		if r.Interval <= 0 {
			continue
		}
		if r.Find {
			p.LowerBound = true
			n := float64(Month / r.Interval)
			p.CallsPerMo += n
			continue
		}
		k := ref{r.Key, r.Version}
		if cur, ok := shortest[k]; !ok || r.Interval < cur {
			shortest[k] = r.Interval
		}
	}
	batched := map[time.Duration]int{} // interval -> refs read in batches
	for k, iv := range shortest {
		p.DistinctRefs++
		perMo := float64(Month / iv)
		p.ReadsPerMo += perMo
		if p.BatchSize == 1 || (s.Backend == SecretsManager && k.version != "") {
			p.CallsPerMo += perMo
			continue
		}
		batched[iv]++
	}
	for iv, n := range batched {
		p.CallsPerMo += float64(callsPerInterval(n, iv, p.BatchSize)) * float64(Month/iv)
	}
	switch s.Backend {
	case SecretsManager:
		p.USD = price(p.CallsPerMo, Prices.SecretsManager)
	case ParameterStore:
		p.USD = price(p.CallsPerMo, Prices.ParameterStoreStandard)
		p.USDHighThroughput = price(p.CallsPerMo, Prices.ParameterStoreHigh)
	}
	return p
}

// callsPerInterval: n refs spread evenly over interval, read ahead within the
// horizon, batch refs a call.
func callsPerInterval(n int, interval time.Duration, batch int) int {
	timing := fetch.DefaultTiming()
	horizon := timing.Horizon(externalsecret.CacheWindow(interval))
	fill := int(float64(n) * float64(horizon) / float64(interval))
	fill = min(batch, fill)
	if fill < 1 {
		fill = 1
	}
	return (n + fill - 1) / fill
}

func price(calls, per10k float64) float64 {
	return math.Round(calls/10000*per10k*100) / 100
}

// ReadsOf lists es's periodic reads (none when it does not refresh on an interval).
func ReadsOf(es *v1alpha1.ExternalSecret) []Read {
	if !externalsecret.Periodic(es) {
		return nil
	}
	iv := externalsecret.RefreshInterval(es)
	var out []Read
	for _, d := range es.Spec.Data {
		if d.RemoteRef != nil {
			out = append(out, Read{Key: d.RemoteRef.Key, Version: d.RemoteRef.Version, Interval: iv})
		}
	}
	for _, d := range es.Spec.DataFrom {
		switch {
		case d.Extract != nil:
			out = append(out, Read{Key: d.Extract.Key, Version: d.Extract.Version, Interval: iv})
		case d.Find != nil:
			out = append(out, Read{Key: d.Find.Path, Interval: iv, Find: true})
		}
	}
	return out
}

// Sort orders projections by kind, namespace, name.
func Sort(ps []Projection) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}
