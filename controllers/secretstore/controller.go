// Package secretstore reconciles SecretStores and ClusterSecretStores (one
// reconciler, two registrations): it validates the spec, resolves credentials by
// building the store's client through the fetch layer (so the client it checks is
// the one ExternalSecrets then reuse) and makes one cheap authenticated call.
package secretstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
)

// +kubebuilder:rbac:groups=secretsync.dev,resources=secretstores;clustersecretstores,verbs=get;list;watch
// +kubebuilder:rbac:groups=secretsync.dev,resources=secretstores/status;clustersecretstores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get

// Defaults of the Reconciler's tuning fields.
const (
	DefaultBackendTimeout = 30 * time.Second
	DefaultWorkers        = 4
)

// busyRetry is how soon a store waiting for its namespace's check slot is looked at
// again (plus up to as much jitter). The wait costs a cache read, no backend call.
const busyRetry = time.Second

// Reconciler checks one store kind.
type Reconciler struct {
	Client   client.Client
	Registry *provider.Registry
	Fetcher  *fetch.Fetcher
	// Recheck is how often a Ready store is checked again (jittered).
	Recheck time.Duration
	// New returns an empty object of the kind this reconciler handles.
	New func() v1alpha1.GenericStore
	// Identity is the operator's identity policy (no borrowed identity, no API
	// server audience), applied before anything else, without network calls.
	Identity provider.IdentityPolicy
	// BackendTimeout bounds one check: building the client and the authenticated
	// call (default DefaultBackendTimeout). A server that accepts and never answers
	// holds a worker this long at most.
	BackendTimeout time.Duration
	// Workers is the number of stores checked in parallel (default DefaultWorkers).
	Workers int

	seen sync.Map // stores looked at since start-up
	// busy holds the namespaces with a backend check in flight. A namespace gets
	// one worker at a time, so a tenant's stores that point at black holes (however
	// many) never hold every worker: other tenants' checks keep running.
	busy sync.Map
}

func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	store := r.New()
	if err := r.Client.Get(ctx, req.NamespacedName, store.(client.Object)); err != nil {
		if apierrors.IsNotFound(err) {
			// A deleted store's clients are closed (a Vault token is revoked).
			r.Fetcher.Forget(ctx, r.New().GetKind(), req.Namespace, req.Name)
			r.seen.Delete(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err // transient: cache read failed
	}
	// The static checks run on every look, the first after start-up included: a
	// store that was Ready before the operator's policy changed must not stay Ready.
	if msg := r.validate(store); msg != "" {
		return r.report(ctx, store, v1alpha1.ReasonInvalidSpec, msg, false)
	}
	if _, looked := r.seen.LoadOrStore(req.NamespacedName, true); !looked && readyAndCurrent(store) {
		// First look since start-up at a store that was Ready for its current spec:
		// trust that until a random point of the last three quarters of the recheck
		// period, so a restarted operator makes no backend call for its stores at once
		// (nor soon after) and their checks stay spread. ExternalSecrets using a store
		// that broke meanwhile report it themselves.
		return reconcile.Result{RequeueAfter: r.Recheck/4 + time.Duration(rand.Int64N(int64(r.Recheck)*3/4+1))}, nil
	}
	if !r.acquire(store.GetNamespace()) {
		return reconcile.Result{RequeueAfter: busyRetry + time.Duration(rand.Int64N(int64(busyRetry)))}, nil
	}
	defer r.release(store.GetNamespace())
	reason, msg, transient := r.check(ctx, store)
	return r.report(ctx, store, reason, msg, transient)
}

// report writes the Ready condition if it changed and says when to look again.
func (r *Reconciler) report(ctx context.Context, store v1alpha1.GenericStore, reason, msg string, transient bool) (reconcile.Result, error) {
	before := store.GetStatus().DeepCopy()
	st := computeStatus(store, reason, msg)
	if !equality.Semantic.DeepEqual(*before, st) {
		orig := store.(client.Object).DeepCopyObject().(client.Object)
		*store.GetStatus() = st
		if err := r.Client.Status().Patch(ctx, store.(client.Object), client.MergeFrom(orig)); err != nil {
			return reconcile.Result{}, err // transient: patch conflict
		}
	}
	if transient {
		return reconcile.Result{}, errors.New(msg) // transient: backoff with jitter
	}
	if reason == v1alpha1.ReasonInvalidSpec {
		return reconcile.Result{}, nil // terminal until the spec changes
	}
	return reconcile.Result{RequeueAfter: r.Recheck*3/4 + time.Duration(rand.Int64N(int64(r.Recheck)/2+1))}, nil
}

// acquire takes namespace's check slot. Only namespaced stores (made by tenants)
// are limited: ClusterSecretStores are the platform team's.
func (r *Reconciler) acquire(namespace string) bool {
	if namespace == "" {
		return true
	}
	_, taken := r.busy.LoadOrStore(namespace, struct{}{})
	return !taken
}

func (r *Reconciler) release(namespace string) {
	if namespace != "" {
		r.busy.Delete(namespace)
	}
}

// validate applies every rule that needs no network call; it returns the
// InvalidSpec message ("" when the store passes).
func (r *Reconciler) validate(store v1alpha1.GenericStore) string {
	p, err := r.Registry.For(store.GetSpec())
	if err == nil {
		err = p.ValidateStore(store)
	}
	if err == nil {
		err = r.Identity.Check(store)
	}
	if err != nil {
		return provider.SafeMessage(err)
	}
	return checkConditions(store.GetSpec().Conditions)
}

// readyAndCurrent: the store's status says Ready for its current spec.
func readyAndCurrent(store v1alpha1.GenericStore) bool {
	st := store.GetStatus()
	return st.ObservedGeneration == store.GetGeneration() && meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady)
}

// check returns the Ready reason, a message naming fields (never values) and
// whether the failure is transient. The spec has passed validate.
func (r *Reconciler) check(ctx context.Context, store v1alpha1.GenericStore) (reason, msg string, transient bool) {
	defer func() {
		log.FromContext(ctx).V(1).Info("store checked", "reason", reason, "transient", transient)
	}()
	if provider.UsesConsumerNamespace(store) {
		// Credentials depend on the consuming namespace's ServiceAccount: they are
		// checked when an ExternalSecret uses the store.
		return v1alpha1.ReasonValid, "valid; authentication is checked per consuming namespace", false
	}
	timeout := r.BackendTimeout
	if timeout <= 0 {
		timeout = DefaultBackendTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h, err := r.Fetcher.For(ctx, store, "")
	if err == nil {
		err = h.Client().Check(ctx)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Whatever the provider made of it, the cause is the deadline.
		return v1alpha1.ReasonBackendUnreachable, fmt.Sprintf("spec.provider: the backend did not answer within %s", timeout), true
	}
	if err == nil {
		return v1alpha1.ReasonValid, "store is valid and the backend answered", false
	}
	if r, ok := checkReasons[provider.Classify(err)]; ok {
		return r.reason, provider.SafeMessage(err), r.transient
	}
	return v1alpha1.ReasonBackendUnreachable, provider.SafeMessage(err), true
}

// checkReasons maps the class of a failed check (provider.Classify) to the Ready
// reason and whether it is transient; any other failure is BackendUnreachable.
var checkReasons = map[error]struct {
	reason    string
	transient bool
}{
	provider.ErrCredentials:  {v1alpha1.ReasonCredentialsNotFound, true},
	provider.ErrAuth:         {v1alpha1.ReasonAuthFailed, true},
	provider.ErrAccessDenied: {v1alpha1.ReasonAuthFailed, true},
	provider.ErrInvalid:      {v1alpha1.ReasonInvalidSpec, false},
}

func computeStatus(store v1alpha1.GenericStore, reason, msg string) v1alpha1.SecretStoreStatus {
	st := *store.GetStatus().DeepCopy()
	st.ObservedGeneration = store.GetGeneration()
	status := metav1.ConditionFalse
	if reason == v1alpha1.ReasonValid {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: status,
		Reason: reason, Message: msg, ObservedGeneration: store.GetGeneration()})
	return st
}

// SetupWithManager registers a reconciler for kind ("SecretStore" or "ClusterSecretStore").
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, obj client.Object) error {
	r.defaults()
	return ctrl.NewControllerManagedBy(mgr).
		Named(r.New().GetKind()).
		For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{
			// Several workers, so a check waiting for a slow backend (up to
			// BackendTimeout) never holds up every other store's.
			MaxConcurrentReconciles: r.Workers,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
		}).
		Complete(r)
}

func (r *Reconciler) defaults() {
	if r.Recheck <= 0 {
		r.Recheck = 5 * time.Minute
	}
	if r.BackendTimeout <= 0 {
		r.BackendTimeout = DefaultBackendTimeout
	}
	if r.Workers <= 0 {
		r.Workers = DefaultWorkers
	}
}
