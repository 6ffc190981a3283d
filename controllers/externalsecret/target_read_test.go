package externalsecret

import (
	"testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// A target missing from the cache is read before the write only where the write or
// the decision depends on it; otherwise the create goes first (no 404 GET per sync).
func TestReadsTargetFirst(t *testing.T) {
	cases := []struct {
		name string
		es   v1alpha1.ExternalSecret
		want bool
	}{
		{"Owner: create first", v1alpha1.ExternalSecret{}, false},
		{"Orphan: create first", v1alpha1.ExternalSecret{Spec: v1alpha1.ExternalSecretSpec{Target: v1alpha1.Target{CreationPolicy: v1alpha1.CreationOrphan}}}, false},
		{"Merge writes into a foreign Secret", v1alpha1.ExternalSecret{Spec: v1alpha1.ExternalSecretSpec{Target: v1alpha1.Target{CreationPolicy: v1alpha1.CreationMerge}}}, true},
		{"CreatedOnce stops once the target exists", v1alpha1.ExternalSecret{Spec: v1alpha1.ExternalSecretSpec{RefreshPolicy: v1alpha1.RefreshCreatedOnce}}, true},
		{"dynamic: a lease's data comes from the target", v1alpha1.ExternalSecret{Spec: v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{}}}}}, true},
		{"leases in status", v1alpha1.ExternalSecret{Status: v1alpha1.ExternalSecretStatus{Leases: []v1alpha1.LeaseStatus{{ID: "l"}}}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := readsTargetFirst(&c.es); got != c.want {
				t.Fatalf("readsTargetFirst = %v, want %v", got, c.want)
			}
		})
	}
}
