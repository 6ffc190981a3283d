package externalsecret

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// statusPatch must send what client.MergeFrom sends for a status-only change.
func TestStatusPatchMatchesMergeFrom(t *testing.T) {
	now := metav1.Now()
	synced := v1alpha1.ExternalSecretStatus{ObservedGeneration: 1, SyncedAt: &now, DataHash: "hmac-sha256:ab",
		Sources:    []v1alpha1.SourceStatus{{Key: "k", Version: "1"}},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSynced, LastTransitionTime: now}}}
	cleared := *synced.DeepCopy()
	cleared.DataHash, cleared.Sources = "", nil
	cases := []struct {
		name     string
		from, to v1alpha1.ExternalSecretStatus
	}{
		{"first sync", v1alpha1.ExternalSecretStatus{}, synced},
		{"hash and sources cleared", synced, cleared},
		{"unchanged", synced, synced},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n", Generation: 1},
				Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: v1alpha1.StoreRef{Name: "s"}}, Status: c.from}
			orig := es.DeepCopy()
			es.Status = c.to
			want, err := client.MergeFrom(orig).Data(es)
			if err != nil {
				t.Fatal(err)
			}
			p, err := statusPatch(c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Data(es)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("patch %s, MergeFrom sends %s", got, want)
			}
		})
	}
}
