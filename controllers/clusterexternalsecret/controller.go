// Package clusterexternalsecret reconciles ClusterExternalSecrets: it stamps one
// ExternalSecret into every namespace a ClusterExternalSecret matches and removes it
// from namespaces that stop matching. It grants nothing: each stamped ExternalSecret
// goes through its store's namespace admission in the ExternalSecret controller.
package clusterexternalsecret

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// +kubebuilder:rbac:groups=secretsync.dev,resources=clusterexternalsecrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=secretsync.dev,resources=clusterexternalsecrets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=secretsync.dev,resources=clusterexternalsecrets/finalizers,verbs=update
// +kubebuilder:rbac:groups=secretsync.dev,resources=externalsecrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Reconciler stamps the ExternalSecrets of ClusterExternalSecrets.
type Reconciler struct {
	Client client.Client
	// APIReader settles a create refused as AlreadyExists that the cache has not
	// seen yet (ours, just created, or someone else's).
	APIReader client.Reader
}

func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ces := &v1alpha1.ClusterExternalSecret{}
	if err := r.Client.Get(ctx, req.NamespacedName, ces); err != nil {
		// Deleted: the garbage collector removes the stamped ExternalSecrets (ownerReference).
		return reconcile.Result{}, client.IgnoreNotFound(err) // transient unless NotFound
	}
	if ces.DeletionTimestamp != nil {
		return reconcile.Result{}, nil // the garbage collector does the rest
	}
	var nsl corev1.NamespaceList
	if err := r.Client.List(ctx, &nsl); err != nil {
		return reconcile.Result{}, fmt.Errorf("list namespaces: %w", err) // transient
	}
	matched, err := matchNamespaces(ces, nsl.Items)
	if err != nil {
		// Terminal until the spec changes; nothing is created or pruned.
		return reconcile.Result{}, r.patchStatus(ctx, ces, computeStatus(ces, nil, nil, err.Error()))
	}
	provisioned, failed, writeErr := r.stamp(ctx, ces, matched)
	if err := r.prune(ctx, ces, sets.New(matched...)); err != nil && writeErr == nil {
		writeErr = err
	}
	if err := r.patchStatus(ctx, ces, computeStatus(ces, provisioned, failed, "")); err != nil {
		return reconcile.Result{}, err // transient
	}
	return reconcile.Result{}, writeErr // transient: failed writes are retried with backoff
}

// stampWorkers bounds the writes one reconcile has in flight: a selector that starts
// matching a thousand namespaces is stamped in parallel (the API server's latency,
// not ours, sets the pace) without one ClusterExternalSecret taking the client's QPS.
const stampWorkers = 8

// stamp ensures the ExternalSecret in every matched namespace. A namespace whose
// write failed is in failed; the first write error is returned for a retry.
func (r *Reconciler) stamp(ctx context.Context, ces *v1alpha1.ClusterExternalSecret, matched []string) ([]string, []v1alpha1.FailedNamespace, error) {
	type outcome struct {
		reason string
		err    error
	}
	out := make([]outcome, len(matched))
	sem := make(chan struct{}, stampWorkers)
	var wg sync.WaitGroup
	for i, ns := range matched {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			reason, err := r.ensure(ctx, ces, desired(ces, ns))
			out[i] = outcome{reason, err}
		}()
	}
	wg.Wait()
	var provisioned []string
	var failed []v1alpha1.FailedNamespace
	var firstErr error
	for i, ns := range matched {
		if out[i].reason == "" {
			provisioned = append(provisioned, ns)
		} else {
			failed = append(failed, v1alpha1.FailedNamespace{Namespace: ns, Reason: out[i].reason})
		}
		if out[i].err != nil && firstErr == nil {
			firstErr = fmt.Errorf("namespace %s: %w", ns, out[i].err)
		}
	}
	return provisioned, failed, firstErr
}

// ensure creates or updates one stamped ExternalSecret. It returns the
// failedNamespaces reason ("" when the namespace is provisioned) and an error when
// the write should be retried.
func (r *Reconciler) ensure(ctx context.Context, ces *v1alpha1.ClusterExternalSecret, want *v1alpha1.ExternalSecret) (string, error) {
	existing := &v1alpha1.ExternalSecret{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), existing)
	if apierrors.IsNotFound(err) {
		if err = r.Client.Create(ctx, want); err == nil {
			log.FromContext(ctx).Info("stamped ExternalSecret", "namespace", want.Namespace, "name", want.Name)
			return "", nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return writeReason(err), err
		}
		// Not in the cache yet: ask the API server whose it is.
		err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), existing)
	}
	if err != nil {
		return writeReason(err), err
	}
	if !owned(ces, existing) {
		return v1alpha1.FailedAlreadyExists, nil // terminal: never touch what is not ours
	}
	updated, changed := apply(existing, want)
	if !changed {
		return "", nil
	}
	// A merge patch sends only what changed: finalizers and status stay the
	// ExternalSecret controller's.
	if err := r.Client.Patch(ctx, updated, client.MergeFrom(existing)); err != nil {
		return writeReason(err), err
	}
	return "", nil
}

// prune deletes our ExternalSecrets that are no longer wanted: in a namespace that
// stopped matching, or under a name the ClusterExternalSecret no longer uses.
func (r *Reconciler) prune(ctx context.Context, ces *v1alpha1.ClusterExternalSecret, matched sets.Set[string]) error {
	var l v1alpha1.ExternalSecretList
	if err := r.Client.List(ctx, &l, client.MatchingLabels{v1alpha1.LabelClusterExternalSecret: ces.Name}); err != nil {
		return fmt.Errorf("list stamped ExternalSecrets: %w", err)
	}
	name := externalSecretName(ces)
	for i := range l.Items {
		es := &l.Items[i]
		if (matched.Has(es.Namespace) && es.Name == name) || es.DeletionTimestamp != nil {
			continue
		}
		if err := client.IgnoreNotFound(r.Client.Delete(ctx, es)); err != nil {
			return fmt.Errorf("delete ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
		}
		log.FromContext(ctx).Info("removed stamped ExternalSecret", "namespace", es.Namespace, "name", es.Name)
	}
	return nil
}

// patchStatus writes st only when it differs from what is stored.
func (r *Reconciler) patchStatus(ctx context.Context, ces *v1alpha1.ClusterExternalSecret, st v1alpha1.ClusterExternalSecretStatus) error {
	if equality.Semantic.DeepEqual(ces.Status, st) {
		return nil
	}
	orig := ces.DeepCopy()
	ces.Status = st
	return r.Client.Status().Patch(ctx, ces, client.MergeFrom(orig))
}

// writeReason is the failedNamespaces reason of a failed API call.
func writeReason(err error) string {
	if reason := apierrors.ReasonForError(err); reason != "" {
		return string(reason)
	}
	return "Unknown"
}
