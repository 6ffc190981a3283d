package clusterexternalsecret

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// SetupWithManager registers the controller and its watches.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterexternalsecret").
		For(&v1alpha1.ClusterExternalSecret{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// New, relabelled and terminating namespaces are handled on their event, not on
		// a timer. Every ClusterExternalSecret is looked at: there are few, and a
		// reconcile that changes nothing reads only the cache.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.all),
			builder.WithPredicates(predicate.Or[client.Object](predicate.LabelChangedPredicate{}, terminating))).
		// A stamped ExternalSecret deleted or edited by hand is put back. Status
		// changes are ignored: they change nothing we write.
		Watches(&v1alpha1.ExternalSecret{}, handler.EnqueueRequestsFromMapFunc(r.stamper),
			builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Complete(r)
}

// terminating passes a namespace's update that starts its deletion.
var terminating = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp() == nil && e.ObjectNew.GetDeletionTimestamp() != nil
	},
}

func (r *Reconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var l v1alpha1.ClusterExternalSecretList
	if err := r.Client.List(ctx, &l); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(l.Items))
	for _, c := range l.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: c.Name}})
	}
	return out
}

// stamper maps a stamped ExternalSecret to its ClusterExternalSecret (by label).
// Any other ExternalSecret maps to the ClusterExternalSecrets stamping its name, so
// a namespace in failedNamespaces (AlreadyExists) is provisioned once it goes.
func (r *Reconciler) stamper(ctx context.Context, o client.Object) []reconcile.Request {
	if name := o.GetLabels()[v1alpha1.LabelClusterExternalSecret]; name != "" {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: name}}}
	}
	var l v1alpha1.ClusterExternalSecretList
	if err := r.Client.List(ctx, &l); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range l.Items {
		if externalSecretName(&l.Items[i]) == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: l.Items[i].Name}})
		}
	}
	return out
}
