package e2e

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/testenv"
)

func TestRefreshPolicy(t *testing.T) {
	kube := testenv.StartKube(t)
	env := &syncEnv{kube: kube, mem: memory.New("vault")}
	env.op = StartOperator(t, kube, provider.NewRegistry(env.mem))
	top := t // an operator restarted in a subtest must outlive that subtest
	c := kube.Client
	ctx := context.Background()

	// policy creates, in a new namespace with a store, ExternalSecret "es" with
	// refreshPolicy p and a 1 s refreshInterval reading <ns>/k = "v1" into key k, and
	// waits until it is Synced.
	policy := func(t *testing.T, p v1alpha1.RefreshPolicy) (string, *v1alpha1.ExternalSecret) {
		t.Helper()
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v1"), nil)
		es := env.es(t, ns, "es", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshPolicy = p
			es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
		env.waitReason(t, ns, "es", v1alpha1.ReasonSynced)
		return ns, es
	}
	update := func(t *testing.T, es *v1alpha1.ExternalSecret, mutate func(*v1alpha1.ExternalSecret)) {
		t.Helper()
		must(t, c.Get(ctx, client.ObjectKeyFromObject(es), es))
		mutate(es)
		must(t, c.Update(ctx, es))
	}
	value := func(t *testing.T, ns, key string) string {
		t.Helper()
		s := env.secret(t, ns, "es")
		if s == nil {
			return "<no Secret>"
		}
		return string(s.Data[key])
	}

	t.Run("OnChange: no read on the interval; spec edit, drift and force-sync do sync", func(t *testing.T) {
		ns, es := policy(t, v1alpha1.RefreshOnChange)
		LetTimePass(t, time.Second, "the first sync settles")
		reads := env.mem.KeyCalls(ns + "/k")
		env.mem.Put(ns+"/k", []byte("v2"), nil)
		LetTimePass(t, 4*time.Second, "four refresh intervals with no read allowed")
		if got := env.mem.KeyCalls(ns+"/k") - reads; got != 0 {
			t.Fatalf("%d backend reads on the interval, want 0", got)
		}
		if got := value(t, ns, "k"); got != "v1" {
			t.Fatalf("Secret changed without a spec change: %q", got)
		}

		update(t, es, func(es *v1alpha1.ExternalSecret) { es.Spec.Data = append(es.Spec.Data, remote(ns+"/k", "k2")) })
		Eventually(t, 10*time.Second, "spec edit synced", func() bool { return value(t, ns, "k") == "v2" && value(t, ns, "k2") == "v2" })
		if env.mem.KeyCalls(ns+"/k") == reads {
			t.Fatal("the spec edit made no backend read")
		}

		s := env.secret(t, ns, "es")
		s.Data["k"] = []byte("tampered")
		must(t, c.Update(ctx, s))
		Eventually(t, 10*time.Second, "hand edit repaired", func() bool { return value(t, ns, "k") == "v2" })

		env.mem.Put(ns+"/k", []byte("v3"), nil)
		update(t, es, func(es *v1alpha1.ExternalSecret) {
			es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "1"}
		})
		Eventually(t, 10*time.Second, "force-sync", func() bool { return value(t, ns, "k") == "v3" })

		LetTimePass(t, time.Second, "the force-sync settles")
		reads = env.mem.KeyCalls(ns + "/k")
		LetTimePass(t, 3*time.Second, "three refresh intervals with no read allowed")
		if got := env.mem.KeyCalls(ns+"/k") - reads; got != 0 {
			t.Fatalf("%d backend reads on the interval after the syncs, want 0", got)
		}
	})

	t.Run("CreatedOnce: one read, then the Secret is never written again until deleted", func(t *testing.T) {
		ns, es := policy(t, v1alpha1.RefreshCreatedOnce)
		LetTimePass(t, time.Second, "the first sync settles")
		if got := env.mem.KeyCalls(ns + "/k"); got != 1 {
			t.Fatalf("%d backend reads for the first sync, want 1", got)
		}
		env.mem.Put(ns+"/k", []byte("v2"), nil)

		s := env.secret(t, ns, "es")
		s.Data["k"] = []byte("mine")
		must(t, c.Update(ctx, s))
		rv := s.ResourceVersion
		untouched := func(t *testing.T, what string) {
			t.Helper()
			LetTimePass(t, 3*time.Second, "three refresh intervals")
			if s := env.secret(t, ns, "es"); s == nil || s.ResourceVersion != rv {
				t.Fatalf("%s: the Secret was written: %+v", what, s)
			}
			if got := env.mem.KeyCalls(ns + "/k"); got != 1 {
				t.Fatalf("%s: %d backend reads, want still 1", what, got)
			}
			env.waitReason(t, ns, "es", v1alpha1.ReasonSynced) // status still says Ready/Synced
		}
		untouched(t, "interval and hand edit")

		update(t, es, func(es *v1alpha1.ExternalSecret) {
			es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "1"}
		})
		untouched(t, "force-sync")

		update(t, es, func(es *v1alpha1.ExternalSecret) { es.Spec.Data = append(es.Spec.Data, remote(ns+"/k", "k2")) })
		untouched(t, "spec edit")

		env.op.Stop()
		env.op = StartOperator(top, kube, provider.NewRegistry(env.mem))
		untouched(t, "operator restart")

		must(t, c.Delete(ctx, env.secret(t, ns, "es")))
		Eventually(t, 10*time.Second, "deleted Secret re-created", func() bool { return value(t, ns, "k") == "v2" && value(t, ns, "k2") == "v2" })
		LetTimePass(t, 3*time.Second, "three intervals after the re-creation")
		if got := env.mem.KeyCalls(ns + "/k"); got != 2 {
			t.Fatalf("%d backend reads after the re-creation, want 2 (one more)", got)
		}
		if got := value(t, ns, "k"); got != "v2" {
			t.Fatalf("re-created Secret changed again: %q", got)
		}
		env.waitReason(t, ns, "es", v1alpha1.ReasonSynced)
	})
}
