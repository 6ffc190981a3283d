package v1alpha1

// ConditionReady is the one condition type every secretsync object reports. It is
// what kstatus (Flux) and Argo CD health checks read, together with observedGeneration.
const ConditionReady = "Ready"

// Reasons of an ExternalSecret's Ready condition.
const (
	ReasonSynced               = "Synced"
	ReasonSecretStoreNotFound  = "SecretStoreNotFound"
	ReasonStoreNotReady        = "StoreNotReady"
	ReasonNamespaceNotAllowed  = "NamespaceNotAllowed"
	ReasonKeyNotAllowed        = "KeyNotAllowed"
	ReasonKeyNotFound          = "KeyNotFound"
	ReasonInvalidProperty      = "InvalidProperty"
	ReasonRemoteNotFound       = "RemoteNotFound"
	ReasonProviderError        = "ProviderError"
	ReasonAuthFailed           = "AuthFailed"
	ReasonThrottled            = "Throttled"
	ReasonTargetOwnedElsewhere = "TargetOwnedElsewhere"
	ReasonTargetNotFound       = "TargetNotFound"
	ReasonTargetImmutable      = "TargetImmutable"
	ReasonTargetTooLarge       = "TargetTooLarge"
	ReasonInvalidValue         = "InvalidValue"
	ReasonInvalidTemplate      = "InvalidTemplate"
	ReasonInvalidKey           = "InvalidKey"
	ReasonDuplicateKey         = "DuplicateKey"
	// ReasonInvalidSpec covers rules the API server cannot check at admission.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonKubernetesError: the API server, not the backend, failed a request
	// (Secret, Namespace or store read/write). Transient: retried with backoff.
	ReasonKubernetesError = "KubernetesError"
)

// Reasons of a SecretStore's or ClusterSecretStore's Ready condition.
const (
	ReasonValid               = "Valid"
	ReasonCredentialsNotFound = "CredentialsNotFound"
	ReasonBackendUnreachable  = "BackendUnreachable"
	// ReasonInvalidSpec and ReasonAuthFailed are shared with ExternalSecret.
)

// Event reasons (Kubernetes Events on ExternalSecrets).
const (
	EventUpdated      = "Updated"
	EventDeleted      = "Deleted"
	EventSyncFailed   = "SyncFailed"
	EventLeaseRevoked = "LeaseRevoked"
	// EventRevocationPending (Warning): deletion waits to revoke leases the backend
	// could not revoke yet; retried with backoff.
	EventRevocationPending = "RevocationPending"
	// EventLeaseLeftToExpire (Warning): deletion went ahead without revoking a lease
	// (store deleted, credentials gone, or the backend stayed down too long).
	EventLeaseLeftToExpire = "LeaseLeftToExpire"
	// EventRolloutRestarted (Normal, on the ExternalSecret and on each workload): a
	// workload using the target Secret was restarted because the Secret's data changed.
	EventRolloutRestarted = "RolloutRestarted"
	// EventRolloutFailed (Warning): a workload could not be found, listed or patched
	// for a restart; the ExternalSecret stays Ready (the Secret is synced).
	EventRolloutFailed = "RolloutFailed"
	// EventRolloutDisabled (Warning): spec.target.rollout is set but the operator runs
	// with --enable-rollout=false (chart value rollout.enabled false); nothing is restarted.
	EventRolloutDisabled = "RolloutDisabled"
)

// LeaseKindCertificate marks a status.leases entry that is a certificate.
const LeaseKindCertificate = "Certificate"

// Well-known labels and annotations.
const (
	// LabelManaged marks every Secret secretsync writes; the operator caches only these.
	LabelManaged = "secretsync.dev/managed"
	// AnnotationForceSync: any new value makes the controller refresh now.
	AnnotationForceSync = "secretsync.dev/force-sync"
	// FinalizerLeases guards revocation of dynamic-secret leases.
	FinalizerLeases = "secretsync.dev/leases"
	// FinalizerMergedKeys guards the removal of a Merge ExternalSecret's keys from
	// its target when the ExternalSecret is deleted.
	FinalizerMergedKeys = "secretsync.dev/merged-keys"
)
