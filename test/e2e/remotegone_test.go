package e2e

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/testenv"
)

// TestRemoteGoneIsStable (issue 13 item 5): once the backend says a remote secret is
// gone, no later reconcile may be served its pre-deletion value from the fetch
// cache (the scheduled read just before the deletion cached it; a force-sync notices
// the deletion; the next reconciles are not forced). Over three refresh intervals after the deletion, deletionPolicy Delete
// deletes the target exactly once (never re-creates it), and Retain keeps the
// Secret untouched; both report a steady RemoteNotFound.
func TestRemoteGoneIsStable(t *testing.T) {
	const interval = 2 * time.Second
	kube := testenv.StartKube(t)
	env := &syncEnv{kube: kube, mem: memory.New("vault")}
	env.op = StartOperator(t, kube, provider.NewRegistry(env.mem))

	// Retain first: a Delete case that flaps would write Secrets during it.
	cases := []struct {
		name   string
		policy v1alpha1.DeletionPolicy
		// wantSecret: the target Secret exists after the deletion.
		wantSecret bool
		// wantWrites: Secret writes from the remote deletion to the end.
		wantWrites int64
	}{
		{"Retain: Secret kept, nothing written", v1alpha1.DeletionRetain, true, 0},
		{"Delete: one Secret deletion, no re-create", v1alpha1.DeletionDelete, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := kube.Namespace(t, nil)
			env.store(t, ns)
			key := ns + "/k"
			env.mem.Put(key, []byte("old"), nil)
			env.es(t, ns, "es", func(es *v1alpha1.ExternalSecret) {
				es.Spec.RefreshInterval = &metav1.Duration{Duration: interval}
				es.Spec.Target.DeletionPolicy = c.policy
				es.Spec.Data = []v1alpha1.DataItem{remote(key, "k")}
			})
			env.waitReason(t, ns, "es", v1alpha1.ReasonSynced)

			// The user deletes the remote secret and force-syncs right after a scheduled
			// read put its value in the fetch cache: the forced read says NotFound, and
			// the reconciles that follow it (the retry, the target's deletion event) read
			// with the cache window and must not be served the cached value.
			reads := env.mem.KeyCalls(key)
			Eventually(t, 2*interval, "a scheduled read of the key", func() bool { return env.mem.KeyCalls(key) > reads })
			writes := env.op.Writes.Secrets()
			env.mem.Delete(key)
			es := &v1alpha1.ExternalSecret{}
			must(t, kube.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "es"}, es))
			// Merge patches without resourceVersion: the operator writes status meanwhile.
			orig := es.DeepCopy()
			es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "1"}
			must(t, kube.Client.Patch(context.Background(), es, client.MergeFrom(orig)))
			WaitESReason(t, kube.Client, 4*interval, ns, "es", v1alpha1.ReasonRemoteNotFound)
			// A reconcile that is not forced, within the cache window of the last read
			// (with Delete the target's deletion event makes one anyway).
			must(t, kube.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "es"}, es))
			orig = es.DeepCopy()
			es.Annotations["e2e.secretsync.dev/nudge"] = "1"
			must(t, kube.Client.Patch(context.Background(), es, client.MergeFrom(orig)))

			watchRemoteGone(t, kube.Client, ns, 3*interval, c.wantSecret)
			if got := env.op.Writes.Secrets() - writes; got != c.wantWrites {
				t.Fatalf("%d Secret writes after the remote deletion, want %d", got, c.wantWrites)
			}
		})
	}
}

// watchRemoteGone polls ExternalSecret ns/es and its target for d and fails at the
// first sight of a Ready reason other than RemoteNotFound or a target that exists
// when it should not (or is gone when it should stay).
func watchRemoteGone(t *testing.T, c client.Client, ns string, d time.Duration, wantSecret bool) {
	t.Helper()
	es := &v1alpha1.ExternalSecret{}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "es"}, es); err != nil {
			t.Fatal(err)
		}
		if cond := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady); cond == nil || cond.Reason != v1alpha1.ReasonRemoteNotFound {
			t.Fatalf("Ready condition flapped after the remote deletion: %+v", cond)
		}
		if s := GetSecret(t, c, ns, "es"); (s != nil) != wantSecret {
			t.Fatalf("target Secret exists = %v after the remote deletion, want %v", s != nil, wantSecret)
		}
	}
}
