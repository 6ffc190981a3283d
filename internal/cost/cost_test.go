package cost

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func keys(prefix string, n int, iv time.Duration) []Read {
	var out []Read
	for i := range n {
		out = append(out, Read{Key: fmt.Sprintf("%s%d", prefix, i), Interval: iv})
	}
	return out
}

// The expected numbers are computed by hand from the model in the package comment
// (30-day month; horizon = 0.75 × min(interval/2, 5m)).
func TestProjectMixedFleet(t *testing.T) {
	cases := []struct {
		name         string
		store        Store
		refs         int
		reads, calls float64
		usd, usdHigh float64
		lowerBound   bool
	}{{
		// a,b | b,c shared at 1h (3 distinct), d with a stage read alone. 1h: horizon
		// 3.75m, 3 refs → floor(3×3.75/60)=0 → 1 per call: 3 calls/h, +1 for d.
		// 4 × 720 h = 2880 calls → 2880/10000 × 0.05 = 0.0144 → $0.01.
		name: "secrets manager small, shared keys and a version",
		store: Store{Backend: SecretsManager, Reads: []Read{
			{Key: "a", Interval: time.Hour}, {Key: "b", Interval: time.Hour},
			{Key: "b", Interval: time.Hour}, {Key: "c", Interval: time.Hour},
			{Key: "d", Version: "AWSPREVIOUS", Interval: time.Hour},
		}},
		refs: 4, reads: 2880, calls: 2880, usd: 0.01,
	}, {
		// 400 refs every 10s: horizon 3.75s → floor(400×3.75/10)=150 → capped at 20:
		// 20 calls per 10s × 259200 = 5,184,000 calls → $25.92. Reads 400 × 259200.
		name:  "secrets manager large, full batches of 20",
		store: Store{Backend: SecretsManager, Reads: append(keys("k", 400, 10*time.Second), keys("k", 400, 10*time.Second)...)},
		refs:  400, reads: 103_680_000, calls: 5_184_000, usd: 25.92,
	}, {
		// 100 refs every minute: horizon 22.5s → 37 → capped at 10: 10 calls × 43200.
		// 50 refs hourly: horizon 225s → floor(50×225/3600)=3 → ceil(50/3)=17 × 720.
		// 432,000 + 12,240 = 444,240 calls: standard free, higher throughput $2.22.
		name:  "parameter store, batches of 10 and partial batches, two intervals",
		store: Store{Backend: ParameterStore, Reads: append(keys("/m/", 100, time.Minute), keys("/h/", 50, time.Hour)...)},
		refs:  150, reads: 100*43200 + 50*720, calls: 444_240, usd: 0, usdHigh: 2.22,
	}, {
		// 5 keys at 30m, one also read hourly by another ExternalSecret: the shorter
		// interval wins, one read per key: 5 × 1440 calls, no price.
		name:  "vault, one read per key",
		store: Store{Backend: Vault, Reads: append(keys("app/", 5, 30*time.Minute), Read{Key: "app/0", Interval: time.Hour})},
		refs:  5, reads: 7200, calls: 7200,
	}, {
		// A find every hour: at least one listing call per slot, flagged lower bound.
		name:  "find is a lower bound",
		store: Store{Backend: SecretsManager, Reads: []Read{{Key: "prod/", Interval: time.Hour, Find: true}}},
		calls: 720, usd: 0, lowerBound: true,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Project(c.store)
			if p.DistinctRefs != c.refs || p.ReadsPerMo != c.reads || p.CallsPerMo != c.calls || p.USD != c.usd || p.USDHighThroughput != c.usdHigh || p.LowerBound != c.lowerBound {
				t.Fatalf("got refs=%d reads=%v calls=%v usd=%v high=%v lb=%v; want refs=%d reads=%v calls=%v usd=%v high=%v lb=%v",
					p.DistinctRefs, p.ReadsPerMo, p.CallsPerMo, p.USD, p.USDHighThroughput, p.LowerBound,
					c.refs, c.reads, c.calls, c.usd, c.usdHigh, c.lowerBound)
			}
		})
	}
}

func TestBatchSizesAreTheProviders(t *testing.T) {
	for b, want := range map[Backend]int{SecretsManager: 20, ParameterStore: 10, Vault: 1} {
		if got := BatchSize(b); got != want {
			t.Errorf("%s: batch %d, want %d", b, got, want)
		}
	}
}

func TestReadsOfSkipsNonPeriodic(t *testing.T) {
	es := func(policy v1alpha1.RefreshPolicy, iv time.Duration) *v1alpha1.ExternalSecret {
		return &v1alpha1.ExternalSecret{Spec: v1alpha1.ExternalSecretSpec{
			RefreshPolicy: policy, RefreshInterval: &metav1.Duration{Duration: iv},
			Data:     []v1alpha1.DataItem{{SecretKey: "a", RemoteRef: &v1alpha1.RemoteRef{Key: "k"}}},
			DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "p/"}}},
		}}
	}
	for _, c := range []struct {
		name string
		es   *v1alpha1.ExternalSecret
		want int
	}{
		{"periodic", es("", time.Hour), 2},
		{"on change", es(v1alpha1.RefreshOnChange, time.Hour), 0},
		{"created once", es(v1alpha1.RefreshCreatedOnce, time.Hour), 0},
		{"interval zero", es("", 0), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := len(ReadsOf(c.es)); got != c.want {
				t.Fatalf("%d reads, want %d", got, c.want)
			}
		})
	}
}
