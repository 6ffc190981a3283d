// Package operator wires the manager, caches, fetch layer and controllers. main.go
// and the end-to-end tests both use it, so tests run exactly the production wiring.
package operator

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/controllers/clusterexternalsecret"
	"github.com/secretsync/secretsync/controllers/externalsecret"
	"github.com/secretsync/secretsync/controllers/secretstore"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/scheme"
)

// Leader election timing. A killed leader is replaced after about the lease duration
// plus up to two retry periods, plus the second the new leader's controllers take to
// start: controller-runtime's defaults (15 s, 10 s, 2 s) measured 15.4–18.8 s in the
// fault soak, too close to its 20 s target under load; these measured 12.4–14.6 s
// (docs/soak.md). The renew deadline stays well above an API server restart (the soak
// restarts it for 2–6 s): a leader that cannot renew within it exits, and a
// replacement replica takes over.
const (
	DefaultLeaseDuration = 12 * time.Second
	DefaultRenewDeadline = 8 * time.Second
	DefaultRetryPeriod   = time.Second
)

func orDefault(d, def time.Duration) *time.Duration {
	if d <= 0 {
		d = def
	}
	return &d
}

// Options are the operator's settings (flags in main.go).
type Options struct {
	MetricsAddr             string
	ProbeAddr               string
	PprofAddr               string // "" = off
	LeaderElection          bool
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline, RetryPeriod: the leader election timing (0: the
	// defaults below).
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Namespace restricts the watch to one namespace ("" = all).
	Namespace string
	// OperatorNamespace holds the HMAC key Secret of status.dataHash.
	OperatorNamespace string
	Workers           int
	StoreRecheck      time.Duration
	// AllowAmbientCredentialsInNamespacedStores lets a namespaced SecretStore without
	// auth use the operator's own credentials (a trust decision, off by default; see
	// docs/security.md).
	AllowAmbientCredentialsInNamespacedStores bool
	// APIServerAudiences are the Kubernetes API server's audiences, refused in every
	// ServiceAccount token requested for a store (the well-known in-cluster names are
	// refused in any case).
	APIServerAudiences []string
	// BackendTimeout bounds a store's backend check (0: 30s).
	BackendTimeout time.Duration
	// ReconcileTimeout bounds one ExternalSecret reconcile (0: the controller's default).
	ReconcileTimeout time.Duration
	// RevocationTimeout bounds how long a deletion retries lease revocation (0: default).
	RevocationTimeout time.Duration
	// DisableRollout turns spec.target.rollout off (--enable-rollout=false, chart value
	// rollout.enabled false, which also drops the workload RBAC): rollout specs then
	// get a Warning event RolloutDisabled instead of restarts.
	DisableRollout bool
	// NewClient lets tests wrap the manager's client (e.g. to count writes).
	NewClient func(*rest.Config, client.Options) (client.Client, error)
	// Clock for the ExternalSecret controller and the fetch layer (nil: wall clock):
	// one clock for refresh slots, read-ahead, cache ages and lease renewals.
	Clock clock.Clock
	// StartupSynced is called once the ExternalSecret controller's caches have synced
	// after start-up and its read-ahead is seeded (main: end the start-up GOGC).
	StartupSynced func()
	// SkipNameValidation lets tests run several operators in one process
	// (controller-runtime refuses a second controller with the same name otherwise).
	SkipNameValidation bool
}

// New builds a manager with every controller registered.
func New(cfg *rest.Config, o Options, reg *provider.Registry) (ctrl.Manager, error) {
	if o.Workers <= 0 {
		o.Workers = 20
	}
	cacheOpts := cache.Options{
		// managedFields are never read by the operator and are a large part of every
		// cached object; an Update without them leaves the server's copy unchanged.
		DefaultTransform: cache.TransformStripManagedFields(),
		// Only Secrets we manage are cached: unrelated Secrets cost no memory.
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:           {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManaged: "true"})},
			&v1alpha1.ExternalSecret{}: {Transform: stripExternalSecret},
		},
	}
	if o.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.Namespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Cache:                   cacheOpts,
		NewClient:               o.NewClient,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "secretsync.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		// Released on shutdown so a rolling update does not wait for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 orDefault(o.LeaseDuration, DefaultLeaseDuration),
		RenewDeadline:                 orDefault(o.RenewDeadline, DefaultRenewDeadline),
		RetryPeriod:                   orDefault(o.RetryPeriod, DefaultRetryPeriod),
		Controller:                    config.Controller{SkipNameValidation: &o.SkipNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	// One policy for the store controller and for every client the fetch layer builds
	// (it finds the policy through kube), so a store cannot pass one and not the other.
	policy := provider.IdentityPolicy{
		AllowAmbientInNamespacedStores: o.AllowAmbientCredentialsInNamespacedStores,
		APIServerAudiences:             o.APIServerAudiences,
	}
	kube := provider.KubeClient{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Policy: policy}
	f := fetch.New(reg, kube, mgr.GetAPIReader(), fetch.Options{Clock: o.Clock})

	es := &externalsecret.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Fetcher:   f,
		Recorder:  mgr.GetEventRecorder("secretsync"),
		Hasher:    &externalsecret.Hasher{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Namespace: o.OperatorNamespace},
		Clock:     o.Clock,
		// Bounds one reconcile, so no ExternalSecret holds a worker indefinitely.
		ReconcileTimeout:  o.ReconcileTimeout,
		RevocationTimeout: o.RevocationTimeout,
		StartupSynced:     o.StartupSynced,
	}
	if !o.DisableRollout {
		es.Rollout = externalsecret.NewRollout(mgr.GetClient(), mgr.GetAPIReader(), es.Recorder)
	}
	if err := es.SetupWithManager(mgr, o.Workers); err != nil {
		return nil, fmt.Errorf("externalsecret controller: %w", err)
	}
	for _, s := range []struct {
		obj client.Object
		new func() v1alpha1.GenericStore
	}{
		{&v1alpha1.SecretStore{}, func() v1alpha1.GenericStore { return &v1alpha1.SecretStore{} }},
		{&v1alpha1.ClusterSecretStore{}, func() v1alpha1.GenericStore { return &v1alpha1.ClusterSecretStore{} }},
	} {
		r := &secretstore.Reconciler{Client: mgr.GetClient(), Registry: reg, Fetcher: f, Recheck: o.StoreRecheck, New: s.new,
			Identity: policy, BackendTimeout: o.BackendTimeout}
		if err := r.SetupWithManager(mgr, s.obj); err != nil {
			return nil, fmt.Errorf("store controller: %w", err)
		}
	}
	// A ClusterExternalSecret needs every namespace (matching, stamping, pruning): an
	// operator restricted to one namespace cannot run it, so it is not registered.
	if o.Namespace == "" {
		ces := &clusterexternalsecret.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}
		if err := ces.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("clusterexternalsecret controller: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return &manager{Manager: mgr, es: es}, nil
}

// manager is the controller-runtime manager plus what the operator does once it
// stopped: revoke the dynamic credentials it issued but could not write to their
// Secrets (externalsecret.Reconciler.RevokeUnwritten). controller-runtime skips its
// graceful shutdown after a lost leader election, so this runs after Start returns,
// before the process exits.
type manager struct {
	ctrl.Manager
	es *externalsecret.Reconciler
}

// unwrittenRevokeTimeout bounds the revocations at shutdown.
const unwrittenRevokeTimeout = 5 * time.Second

func (m *manager) Start(ctx context.Context) error {
	err := m.Manager.Start(ctx)
	rctx, cancel := context.WithTimeout(context.Background(), unwrittenRevokeTimeout)
	defer cancel()
	if n := m.es.RevokeUnwritten(rctx); n > 0 {
		ctrl.Log.WithName("shutdown").Info("revoked dynamic credentials issued but not written to their Secrets", "leases", n)
	}
	return err
}

// stripExternalSecret drops what the operator never reads from a cached
// ExternalSecret: managedFields and kubectl's last-applied-configuration annotation,
// a full copy of the manifest on every object applied client-side (kubectl apply,
// Argo CD's default). The operator writes ExternalSecrets only through patches
// (status, finalizers), so the server's copies keep both.
func stripExternalSecret(in any) (any, error) {
	if o, err := meta.Accessor(in); err == nil {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
				delete(a, corev1.LastAppliedConfigAnnotation)
				o.SetAnnotations(a)
			}
		}
	}
	return in, nil
}
