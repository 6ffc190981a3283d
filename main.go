// Command secretsync is the operator: wiring only (flags → options, provider
// registry, manager). Behaviour lives in controllers/ and internal/.
package main

import (
	"context"
	"flag"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/secretsync/secretsync/internal/operator"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/vault"
)

func main() {
	var o operator.Options
	var qps float64
	var apiAudiences string
	var burst int
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "address of the /metrics endpoint (0 disables it)")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.StringVar(&o.PprofAddr, "pprof-bind-address", "", "address of /debug/pprof (empty: off; never expose it beyond the pod)")
	flag.BoolVar(&o.LeaderElection, "leader-elect", true, "elect a leader so only one replica reconciles")
	flag.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the operator's namespace)")
	flag.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", operator.DefaultLeaseDuration, "how long a standby replica waits before taking over a lease its leader stopped renewing (failover takes about this plus the retry period)")
	flag.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", operator.DefaultRenewDeadline, "how long the leader keeps trying to renew its lease before it gives up leadership and exits (below the lease duration)")
	flag.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", operator.DefaultRetryPeriod, "how often the leader renews and standbys try to acquire the lease")
	flag.IntVar(&o.Workers, "concurrent", 20, "ExternalSecrets reconciled in parallel")
	flag.StringVar(&o.Namespace, "namespace", "", "watch only this namespace (default: all)")
	flag.StringVar(&o.OperatorNamespace, "operator-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the operator (holds the data-hash key Secret)")
	flag.DurationVar(&o.StoreRecheck, "store-recheck", 5*time.Minute, "how often a Ready store is checked against its backend again")
	flag.DurationVar(&o.BackendTimeout, "backend-timeout", 30*time.Second, "deadline of every backend call and of a store's check; a server that never answers holds a worker this long at most")
	flag.DurationVar(&o.ReconcileTimeout, "reconcile-timeout", 2*time.Minute, "deadline of one ExternalSecret reconcile")
	flag.DurationVar(&o.RevocationTimeout, "revocation-timeout", 10*time.Minute, "how long deleting an ExternalSecret retries revoking its leases while the backend cannot; then they are left to expire (Warning LeaseLeftToExpire)")
	flag.BoolVar(&o.AllowAmbientCredentialsInNamespacedStores, "allow-ambient-credentials-in-namespaced-stores", false,
		"TRUST DECISION: let a namespaced SecretStore without auth use the operator's own credentials (AWS default chain and role assumption); every tenant who may create a SecretStore then acts as the operator (docs/security.md)")
	flag.StringVar(&apiAudiences, "api-server-audiences", "", "comma-separated audiences of the Kubernetes API server, refused in ServiceAccount tokens requested for stores (default: the aud claim of the operator's own ServiceAccount token; the in-cluster kubernetes.default.svc names are always refused)")
	flag.Float64Var(&qps, "kube-api-qps", 200, "Kubernetes API queries per second (per resource type: controller-runtime gives each its own client)")
	flag.IntVar(&burst, "kube-api-burst", 400, "Kubernetes API burst")
	var enableRollout bool
	flag.BoolVar(&enableRollout, "enable-rollout", true, "restart the workloads that use a target Secret whose data changed (spec.target.rollout); needs get/list/patch on apps deployments, statefulsets, daemonsets")
	zo := zap.Options{}
	zo.BindFlags(flag.CommandLine) // --zap-log-level, --zap-encoder (json|console), ...
	flag.Parse()
	o.DisableRollout = !enableRollout
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zo)))
	log := ctrl.Log.WithName("setup")
	soft, settle := operator.TuneMemory(context.Background(), os.Getenv, "/sys/fs/cgroup") // for the process's lifetime
	if soft > 0 {
		log.Info("Go memory limit set from the container's", "bytes", soft)
	}
	o.StartupSynced = settle

	if o.OperatorNamespace == "" {
		o.OperatorNamespace = "secretsync-system"
	}
	if o.LeaderElectionNamespace == "" {
		o.LeaderElectionNamespace = o.OperatorNamespace
	}

	// Learned at start: a token the operator requests for a store must never carry
	// them (the store's server could use it against the API server).
	o.APIServerAudiences = provider.ParseAudiences(apiAudiences)
	if len(o.APIServerAudiences) == 0 {
		learned, err := provider.LearnAPIServerAudiences(provider.DefaultServiceAccountTokenPath)
		if err != nil {
			log.Error(err, "learning the API server's audiences from the operator's own token: set --api-server-audiences")
			os.Exit(1)
		}
		o.APIServerAudiences = learned
	}
	if o.AllowAmbientCredentialsInNamespacedStores {
		log.Info("namespaced SecretStores without auth may use the operator's own credentials (--allow-ambient-credentials-in-namespaced-stores)")
	}

	// Providers are registered explicitly: what is compiled in is what runs. Every
	// backend call gets the same deadline as a store check.
	reg := provider.NewRegistry(
		secretsmanager.New(secretsmanager.WithTimeout(o.BackendTimeout)),
		parameterstore.New(parameterstore.WithTimeout(o.BackendTimeout)),
		vault.New(vault.WithTimeout(o.BackendTimeout)),
	)

	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(qps), burst
	mgr, err := operator.New(cfg, o, reg)
	if err != nil {
		log.Error(err, "setting up the operator")
		os.Exit(1)
	}
	log.Info("starting", "providers", reg.Names(), "namespace", o.Namespace, "apiServerAudiences", o.APIServerAudiences)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}
