package externalsecret

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/metrics"
)

const storeIndex = "secretsync.dev/store"

// SetupWithManager registers the controller, its index and its watches.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if r.Clock == nil {
		r.Clock = RealClock{}
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ExternalSecret{}, storeIndex, func(o client.Object) []string {
		return []string{storeKey(o.(*v1alpha1.ExternalSecret))}
	}); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("externalsecret").
		For(&v1alpha1.ExternalSecret{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Only managed Secrets are cached (see main.go), so this watch costs nothing
		// for unrelated Secrets; it repairs targets edited or deleted by hand.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(ownerOfSecret), builder.WithPredicates(r.echoes.predicate())).
		Watches(&v1alpha1.SecretStore{}, handler.EnqueueRequestsFromMapFunc(r.usersOf("ss"))).
		Watches(&v1alpha1.ClusterSecretStore{}, handler.EnqueueRequestsFromMapFunc(r.usersOf("css"))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.clusterUsersIn), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: workers,
			RateLimiter:             jitteredBackoff(time.Second, 5*time.Minute),
		})
	if err := mgr.Add(seeder{r: r, cache: mgr.GetCache()}); err != nil { // seed.go
		return err
	}
	if r.Rollout != nil { // rollout.go: the restart queue, and a wake-up to write status.rollout
		if err := mgr.Add(r.Rollout); err != nil {
			return err
		}
		b = b.WatchesRawSource(source.Channel(r.Rollout.Done(), &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}

// ownerOfSecret maps a managed Secret to the ExternalSecrets that write it: its
// creator and every Merge writer.
func ownerOfSecret(_ context.Context, o client.Object) []reconcile.Request {
	s, ok := o.(*corev1.Secret)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	add := func(name string) {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: s.Namespace, Name: name}})
	}
	if name := s.Annotations[annotationOwner]; name != "" {
		add(name)
	}
	for name := range mergeWriters(s) {
		if name != s.Annotations[annotationOwner] {
			add(name)
		}
	}
	return reqs
}

func (r *Reconciler) usersOf(prefix string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		key := prefix + "/" + o.GetName()
		opts := []client.ListOption{client.MatchingFields{storeIndex: key}}
		if prefix == "ss" {
			key = prefix + "/" + o.GetNamespace() + "/" + o.GetName()
			opts = []client.ListOption{client.InNamespace(o.GetNamespace()), client.MatchingFields{storeIndex: key}}
		}
		return r.list(ctx, opts...)
	}
}

// clusterUsersIn re-evaluates ClusterSecretStore admission when a namespace's labels change.
func (r *Reconciler) clusterUsersIn(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := r.list(ctx, client.InNamespace(o.GetName()))
	return reqs
}

func (r *Reconciler) list(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var l v1alpha1.ExternalSecretList
	if err := r.Client.List(ctx, &l, opts...); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(l.Items))
	for _, es := range l.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&es)})
	}
	return out
}

// jitteredBackoff is per-item exponential backoff with ±25% jitter, so many objects
// failing together (a backend outage) do not retry in lockstep.
func jitteredBackoff(base, maxDelay time.Duration) workqueue.TypedRateLimiter[reconcile.Request] {
	return &jitter{inner: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](base, maxDelay)}
}

type jitter struct {
	inner workqueue.TypedRateLimiter[reconcile.Request]
}

func (j *jitter) When(item reconcile.Request) time.Duration {
	d := j.inner.When(item)
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}
func (j *jitter) Forget(item reconcile.Request)          { j.inner.Forget(item) }
func (j *jitter) NumRequeues(item reconcile.Request) int { return j.inner.NumRequeues(item) }

// nextRefresh is when to look again: the next refresh slot or lease renewal, and
// whether it is a renewal.
func (r *Reconciler) nextRefresh(es *v1alpha1.ExternalSecret) (time.Duration, bool) {
	now := r.Clock.Now()
	next, leases := time.Time{}, es.Status.Leases
	if m, ok := r.mem.get(es.UID); ok {
		next = m.next
		if m.leases != nil {
			leases = m.leases
		}
	}
	renewal := false
	if l := nextLeaseEvent(es, leases); !l.IsZero() && (next.IsZero() || !next.Before(l)) {
		next, renewal = l, true
	}
	if next.IsZero() {
		return 0, false // refreshInterval 0: only watches (drift, force-sync, spec) wake us
	}
	return max(next.Sub(now), time.Second), renewal
}

// readyTracker feeds the secretsync_externalsecret_ready gauge without per-object labels.
type readyTracker struct {
	mu sync.Mutex
	m  map[string]metav1.ConditionStatus
}

func (t *readyTracker) set(key string, s metav1.ConditionStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]metav1.ConditionStatus{}
	}
	if old, ok := t.m[key]; ok {
		if old == s {
			return
		}
		metrics.Ready.WithLabelValues(string(old)).Dec()
	}
	t.m[key] = s
	metrics.Ready.WithLabelValues(string(s)).Inc()
}

func (t *readyTracker) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.m[key]; ok {
		metrics.Ready.WithLabelValues(string(old)).Dec()
		delete(t.m, key)
	}
}
