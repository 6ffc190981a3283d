// Package externalsecret is the sync reconciler: it resolves an ExternalSecret's
// store, fetches the remote values through the fetch layer, renders the target
// Secret, writes it only when its bytes differ and patches status only when it
// differs. A refresh in which nothing changed writes nothing to the API server.
package externalsecret

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/metrics"
)

// +kubebuilder:rbac:groups=secretsync.dev,resources=externalsecrets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=secretsync.dev,resources=externalsecrets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=secretsync.dev,resources=externalsecrets/finalizers,verbs=update
// +kubebuilder:rbac:groups=secretsync.dev,resources=secretstores;clustersecretstores,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconciler syncs ExternalSecrets.
type Reconciler struct {
	Client    ctrl.Client // cached: ExternalSecrets, stores, namespaces, MANAGED Secrets only
	APIReader ctrl.Reader // uncached: foreign target Secrets (Merge, adoption checks)
	Fetcher   *fetch.Fetcher
	Recorder  events.EventRecorder
	Hasher    *Hasher
	Clock     Clock
	// Rollout restarts the workloads using a target whose data changed (rollout.go);
	// nil: the feature is disabled (--enable-rollout=false).
	Rollout *Rollout
	// ReconcileTimeout bounds one reconcile (0: 2 minutes), so a backend that
	// never answers holds a worker for a bounded time only (every backend call has
	// its own, shorter deadline too).
	ReconcileTimeout time.Duration
	// RevocationTimeout bounds how long deletion retries lease revocation
	// (0: DefaultRevocationTimeout).
	RevocationTimeout time.Duration
	// StartupSynced, when set, is called once after start-up: the caches have synced
	// and the read-ahead is seeded (seed.go).
	StartupSynced func()
	ready         readyTracker
	mem           memoryStore
	unwritten     unwrittenLeases
	echoes        echoes // echo.go: our own Secret writes, not woken by their watch events
}

// Reconcile: get → sync (fetch, render, write) → patch status if changed → schedule.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	timeout := r.ReconcileTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	es := &v1alpha1.ExternalSecret{}
	if err := r.Client.Get(ctx, req.NamespacedName, es); err != nil {
		if apierrors.IsNotFound(err) {
			r.ready.forget(req.String())
			r.Rollout.Forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err // transient: cache read failed
	}
	if !es.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, es)
	}
	if err := r.ensureFinalizer(ctx, es); err != nil {
		return reconcile.Result{}, err // transient: conflict, retried
	}
	start := r.Clock.Now()
	before := es.Status.DeepCopy()
	out := r.sync(ctx, es)
	metrics.SyncDuration.Observe(r.Clock.Since(start).Seconds())
	metrics.SyncTotal.WithLabelValues(out.result()).Inc()
	r.ready.set(req.String(), out.readyStatus())
	out.rollout = r.Rollout.Status(es) // rollout.go: written with this status patch

	if err := r.patchStatus(ctx, es, before, out); err != nil {
		return reconcile.Result{}, err // transient: status patch conflict or API error
	}
	if out.event != "" {
		r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, out.event, "Sync", "target Secret %s", out.event)
	}
	switch out.kind {
	case conflict:
		log.FromContext(ctx).V(1).Info("write conflict; retrying", "message", out.message)
		return reconcile.Result{RequeueAfter: time.Second}, nil // quiet; the next attempt reads the winner
	case terminal, transient:
		// A repeated identical failure is not logged or evented again: the condition says it.
		if c := before.Conditions; len(c) == 0 || c[0].Message != out.message {
			log.FromContext(ctx).Info("sync failed", "reason", out.reason, "message", out.message)
			r.Recorder.Eventf(es, nil, corev1.EventTypeWarning, v1alpha1.EventSyncFailed, "Sync", "%s", out.message)
		}
		if out.kind == transient {
			return reconcile.Result{}, safeError(out.message) // jittered exponential backoff
		}
	}
	return r.scheduled(es), nil // terminal: until the spec or the store changes
}

// refreshPriority: a scheduled refresh waits behind everything a watch event queued
// (a new or edited ExternalSecret, a drifted Secret), so the steady stream of
// thousands of scheduled refreshes does not delay the first sync of a new one.
// renewalPriority: a lease renewal has a deadline (the lease expires, and new
// credentials replace the ones in use), so it waits behind nothing. At refresh
// priority a renewal waited out a 20 s lease behind a burst of Secret writes
// (TestVaultHA, a slow shared machine) and the credentials were re-issued.
var (
	refreshPriority = handler.LowPriority
	renewalPriority = 100
)

func (r *Reconciler) scheduled(es *v1alpha1.ExternalSecret) reconcile.Result {
	after, renewal := r.nextRefresh(es)
	if renewal {
		return reconcile.Result{RequeueAfter: after, Priority: &renewalPriority}
	}
	return reconcile.Result{RequeueAfter: after, Priority: &refreshPriority}
}
