package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults applied in code, never as schema defaults: schema defaults make a freshly
// applied manifest differ from Git, which GitOps tools report as drift.
const (
	DefaultRefreshInterval = "1h"
	DefaultRenewPercent    = 67
)

// ExternalSecretSpec is the desired state of an ExternalSecret.
// +kubebuilder:validation:XValidation:rule="has(self.data) || has(self.dataFrom)",message="spec: set data or dataFrom"
type ExternalSecretSpec struct {
	// SecretStoreRef names the store to read from.
	// +required
	SecretStoreRef StoreRef `json:"secretStoreRef"`

	// RefreshInterval between fetches (Go duration, e.g. 1h, 15m). "0" fetches once and
	// never refreshes periodically (drift repair and force-sync still work). Default 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="self == '0' || duration(self) == duration('0s') || duration(self) >= duration('1s')",message="spec.refreshInterval: must be 0 or at least 1s"
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`

	// RefreshPolicy: Periodic (default: every refreshInterval), OnChange (only when
	// the spec changes; force-sync and drift repair still work) or CreatedOnce (only
	// while the target Secret does not exist; never written again once it does).
	// +optional
	RefreshPolicy RefreshPolicy `json:"refreshPolicy,omitempty"`

	// Target describes the Kubernetes Secret to write.
	// +optional
	Target Target `json:"target,omitempty"`

	// Data maps single remote values to keys of the target Secret.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	Data []DataItem `json:"data,omitempty"`

	// DataFrom merges many keys at once into the target Secret.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	DataFrom []DataFromSource `json:"dataFrom,omitempty"`
}

// RefreshPolicy decides when an ExternalSecret reads its backend again.
// +kubebuilder:validation:Enum=Periodic;OnChange;CreatedOnce
type RefreshPolicy string

const (
	RefreshPeriodic    RefreshPolicy = "Periodic"
	RefreshOnChange    RefreshPolicy = "OnChange"
	RefreshCreatedOnce RefreshPolicy = "CreatedOnce"
)

// StoreKind is SecretStore or ClusterSecretStore.
// +kubebuilder:validation:Enum=SecretStore;ClusterSecretStore
type StoreKind string

const (
	KindSecretStore        StoreKind = "SecretStore"
	KindClusterSecretStore StoreKind = "ClusterSecretStore"
)

// StoreRef names a SecretStore or ClusterSecretStore.
type StoreRef struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Kind of the store (default SecretStore).
	// +optional
	Kind StoreKind `json:"kind,omitempty"`
}

// CreationPolicy decides how the target Secret comes to exist.
// +kubebuilder:validation:Enum=Owner;Orphan;Merge;None
type CreationPolicy string

const (
	CreationOwner  CreationPolicy = "Owner"
	CreationOrphan CreationPolicy = "Orphan"
	CreationMerge  CreationPolicy = "Merge"
	CreationNone   CreationPolicy = "None"
)

// DeletionPolicy decides what happens to the target when the remote secret is gone.
// +kubebuilder:validation:Enum=Retain;Delete;Merge
type DeletionPolicy string

const (
	DeletionRetain DeletionPolicy = "Retain"
	DeletionDelete DeletionPolicy = "Delete"
	DeletionMerge  DeletionPolicy = "Merge"
)

// Target is the Kubernetes Secret an ExternalSecret writes.
// +kubebuilder:validation:XValidation:rule="!has(self.deletionPolicy) || self.deletionPolicy != 'Delete' || !has(self.creationPolicy) || self.creationPolicy == 'Owner'",message="spec.target.deletionPolicy: Delete requires creationPolicy Owner"
// +kubebuilder:validation:XValidation:rule="!has(self.deletionPolicy) || self.deletionPolicy != 'Merge' || !has(self.creationPolicy) || self.creationPolicy == 'Owner' || self.creationPolicy == 'Merge'",message="spec.target.deletionPolicy: Merge requires creationPolicy Owner or Merge"
type Target struct {
	// Name of the Secret (default: the ExternalSecret's name).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`
	// CreationPolicy: Owner (default), Orphan, Merge or None.
	// +optional
	CreationPolicy CreationPolicy `json:"creationPolicy,omitempty"`
	// DeletionPolicy: Retain (default), Delete or Merge.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
	// Immutable creates the Secret immutable; later remote changes report TargetImmutable.
	// +optional
	Immutable bool `json:"immutable,omitempty"`
	// Template shapes the Secret's data and metadata.
	// +optional
	Template *Template `json:"template,omitempty"`
	// Rollout restarts the workloads that use the Secret when its data changes
	// (absent: never restart anything).
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`
}

// TemplateMergePolicy decides whether fetched keys are kept beside templated keys.
// +kubebuilder:validation:Enum=Replace;Merge
type TemplateMergePolicy string

const (
	TemplateReplace TemplateMergePolicy = "Replace"
	TemplateMerge   TemplateMergePolicy = "Merge"
)

// Template renders the target Secret with Go text/template over the fetched keys.
type Template struct {
	// Type of the Secret (default Opaque). kubernetes.io/service-account-token and
	// bootstrap.kubernetes.io/token are refused: the cluster gives Secrets of these
	// types powers (a token that authenticates to it) no synced value should have.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self != 'kubernetes.io/service-account-token' && self != 'bootstrap.kubernetes.io/token'",message="spec.target.template.type: kubernetes.io/service-account-token and bootstrap.kubernetes.io/token are not allowed"
	Type string `json:"type,omitempty"`
	// MergePolicy: Replace (default, only templated keys) or Merge (fetched + templated keys).
	// +optional
	MergePolicy TemplateMergePolicy `json:"mergePolicy,omitempty"`
	// Metadata adds labels and annotations to the Secret.
	// +optional
	Metadata TemplateMetadata `json:"metadata,omitempty"`
	// Data maps Secret keys to templates.
	// +optional
	// +kubebuilder:validation:MaxProperties=256
	Data map[string]string `json:"data,omitempty"`
}

// TemplateMetadata holds labels and annotations for the target Secret.
type TemplateMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// DecodingStrategy decodes a fetched value before it is stored.
// +kubebuilder:validation:Enum=None;Base64;Base64URL;Auto
type DecodingStrategy string

const (
	DecodeNone      DecodingStrategy = "None"
	DecodeBase64    DecodingStrategy = "Base64"
	DecodeBase64URL DecodingStrategy = "Base64URL"
	DecodeAuto      DecodingStrategy = "Auto"
)

// DataItem is one key of the target Secret.
// +kubebuilder:validation:XValidation:rule="has(self.remoteRef) != has(self.decrypt)",message="spec.data[]: exactly one of remoteRef or decrypt must be set"
type DataItem struct {
	// SecretKey is the key in the target Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	SecretKey string `json:"secretKey"`
	// RemoteRef reads one remote value.
	// +optional
	RemoteRef *RemoteRef `json:"remoteRef,omitempty"`
	// Decrypt decrypts ciphertext kept in Git with Vault Transit.
	// +optional
	Decrypt *DecryptRef `json:"decrypt,omitempty"`
}

// RemoteRef addresses one remote value.
type RemoteRef struct {
	// Key: Secrets Manager name or ARN, Parameter Store name, or Vault path under the mount.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'(^|/)\\.{1,2}(/|$)|//|\\\\|%|\\p{Cc}')",message="remoteRef.key: must be canonical: no '.' or '..' segment, no empty segment, no backslash, percent sign or control character"
	Key string `json:"key"`
	// Property is a dotted path into a JSON value or KV map (escape dots in names as \.).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Property string `json:"property,omitempty"`
	// Version: Secrets Manager VersionId (uuid/<id> or a UUID) or stage; Parameter Store
	// version number or label; Vault KV v2 version number.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Version string `json:"version,omitempty"`
	// DecodingStrategy: None (default), Base64, Base64URL or Auto.
	// +optional
	DecodingStrategy DecodingStrategy `json:"decodingStrategy,omitempty"`
}

// DecryptRef decrypts a Vault Transit ciphertext with the store's Vault.
type DecryptRef struct {
	// Mount of the transit engine (default "transit").
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'(^|/)\\.{1,2}(/|$)|//|\\\\|%|\\p{Cc}')",message="decrypt.mount: must be canonical: no '.' or '..' segment, no empty segment, no backslash, percent sign or control character"
	Mount string `json:"mount,omitempty"`
	// Key is the transit key name: one path segment.
	// +required
	// +kubebuilder:validation:XValidation:rule="!self.contains('/')",message="decrypt.key: a transit key name has no slash"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'(^|/)\\.{1,2}(/|$)|//|\\\\|%|\\p{Cc}')",message="decrypt.key: must be canonical: no '.' or '..' segment, no empty segment, no backslash, percent sign or control character"
	Key string `json:"key"`
	// Ciphertext as produced by transit/encrypt ("vault:v1:...").
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	Ciphertext string `json:"ciphertext"`
}

// DataFromSource is one of extract, find or dynamic, plus optional key rewrites.
// +kubebuilder:validation:XValidation:rule="(has(self.extract) ? 1 : 0) + (has(self.find) ? 1 : 0) + (has(self.dynamic) ? 1 : 0) == 1",message="spec.dataFrom[]: exactly one of extract, find or dynamic must be set"
type DataFromSource struct {
	// Extract reads a JSON object or KV map and stores it key by key.
	// +optional
	Extract *ExtractRef `json:"extract,omitempty"`
	// Find reads many remote secrets at once.
	// +optional
	Find *FindRef `json:"find,omitempty"`
	// Dynamic issues (and renews, and revokes) a Vault dynamic secret.
	// +optional
	Dynamic *DynamicRef `json:"dynamic,omitempty"`
	// Rewrite renames the resulting keys; rules apply in order, each replacing all matches.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Rewrite []Rewrite `json:"rewrite,omitempty"`
}

// ExtractRef addresses a JSON object or KV map.
type ExtractRef struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'(^|/)\\.{1,2}(/|$)|//|\\\\|%|\\p{Cc}')",message="extract.key: must be canonical: no '.' or '..' segment, no empty segment, no backslash, percent sign or control character"
	Key string `json:"key"`
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Version string `json:"version,omitempty"`
	// DecodingStrategy applied to every extracted value (default None).
	// +optional
	DecodingStrategy DecodingStrategy `json:"decodingStrategy,omitempty"`
}

// FindRef selects many remote secrets.
// +kubebuilder:validation:XValidation:rule="has(self.path) || has(self.name) || has(self.tags)",message="spec.dataFrom[].find: set path, name or tags"
type FindRef struct {
	// Path: Parameter Store hierarchy (recursive), Secrets Manager name prefix, or Vault folder.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'(^|/)\\.{1,2}(/|$)|//|\\\\|%|\\p{Cc}')",message="find.path: must be canonical: no '.' or '..' segment, no empty segment, no backslash, percent sign or control character"
	Path string `json:"path,omitempty"`
	// Name filters by a regular expression on the remote name.
	// +optional
	Name *NameMatcher `json:"name,omitempty"`
	// Tags every result must carry (Secrets Manager tags, Parameter Store tags, Vault KV v2 custom_metadata).
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Tags map[string]string `json:"tags,omitempty"`
	// DecodingStrategy applied to every value found (default None).
	// +optional
	DecodingStrategy DecodingStrategy `json:"decodingStrategy,omitempty"`
}

// NameMatcher matches remote names.
type NameMatcher struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Regexp string `json:"regexp"`
}

// Rewrite is one key-renaming rule.
type Rewrite struct {
	// +required
	Regexp RewriteRegexp `json:"regexp"`
}

// RewriteRegexp replaces every match of Source with Target (regexp.ReplaceAllString syntax).
type RewriteRegexp struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Source string `json:"source"`
	// +required
	// +kubebuilder:validation:MaxLength=512
	Target string `json:"target"`
}

// DynamicRef issues a Vault dynamic secret.
type DynamicRef struct {
	// Path to read (GET) or write (POST), e.g. database/creds/readonly.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'(^|/)\\.{1,2}(/|$)|//|\\\\|%|\\p{Cc}')",message="dynamic.path: must be canonical: no '.' or '..' segment, no empty segment, no backslash, percent sign or control character"
	Path string `json:"path"`
	// Method: GET (default) or POST.
	// +optional
	// +kubebuilder:validation:Enum=GET;POST
	Method string `json:"method,omitempty"`
	// Parameters are the body of a POST.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Parameters map[string]string `json:"parameters,omitempty"`
	// RenewPercent: renew at this percentage of the lease TTL, jittered (default 67).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=95
	RenewPercent int32 `json:"renewPercent,omitempty"`
	// RevokeOnDelete revokes the lease when the ExternalSecret is deleted (default true).
	// +optional
	RevokeOnDelete *bool `json:"revokeOnDelete,omitempty"`
}

// ExternalSecretStatus is the observed state of an ExternalSecret. It never holds a value.
type ExternalSecretStatus struct {
	// Conditions: Ready with a reason from the Reason* constants.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// SyncedAt is the last time the target's data changed.
	// +optional
	SyncedAt *metav1.Time `json:"syncedAt,omitempty"`
	// Target is the Secret written.
	// +optional
	Target *TargetStatus `json:"target,omitempty"`
	// Sources: which version of each remote key is in the Secret.
	// +optional
	// +listType=atomic
	Sources []SourceStatus `json:"sources,omitempty"`
	// DataHash is a keyed HMAC-SHA256 of the target data, for drift detection; never the data.
	// +optional
	DataHash string `json:"dataHash,omitempty"`
	// Leases of dynamic secrets currently in the Secret.
	// +optional
	// +listType=atomic
	Leases []LeaseStatus `json:"leases,omitempty"`
	// ObservedForceSync is the last value of the secretsync.dev/force-sync
	// annotation that a refresh handled, successful or not (Ready says which). A
	// different value triggers exactly one refresh, also when it was set while the
	// operator was down; a failed one is retried with backoff, reading the backend.
	// +optional
	ObservedForceSync string `json:"observedForceSync,omitempty"`
	// Rollout: the workloads restarted the last time the Secret's data changed.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// TargetStatus names the written Secret.
type TargetStatus struct {
	// Name of the Secret.
	// +required
	Name string `json:"name"`
}

// SourceStatus is one (remote key, version) read.
type SourceStatus struct {
	// Key as the spec names it.
	// +required
	Key string `json:"key"`
	// +optional
	Version string `json:"version,omitempty"`
}

// LeaseStatus records a dynamic-secret lease so renewal survives operator restarts.
type LeaseStatus struct {
	// ID is the lease id, or a certificate's serial number (kind Certificate).
	// +required
	ID string `json:"id"`
	// Kind is empty for a lease, Certificate for a certificate issued without a lease
	// (PKI): re-issued at renewPercent of its lifetime, never renewed, kept here until
	// it expires (a superseded one is not revoked) and revoked on delete.
	// +optional
	// +kubebuilder:validation:Enum=Certificate
	Kind string `json:"kind,omitempty"`
	// Path the lease was issued from.
	// +optional
	Path string `json:"path,omitempty"`
	// TTLSeconds is the lease duration the backend granted.
	// +required
	TTLSeconds int64 `json:"ttlSeconds"`
	// Renewable says whether the backend allows renewing the lease.
	// +required
	Renewable bool `json:"renewable"`
	// IssuedAt is when the credentials were issued (renewals keep it).
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`
	// ExpiresAt is when the lease ends unless renewed.
	// +required
	ExpiresAt metav1.Time `json:"expiresAt"`
	// Keys are the NAMES of the keys the lease's data produced (never values), so a
	// restarted operator can keep using the credentials already in the Secret.
	// +optional
	// +listType=atomic
	Keys []string `json:"keys,omitempty"`
}

// ExternalSecret keeps a Kubernetes Secret in sync with an external secret manager.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=es,categories=secretsync
// +kubebuilder:printcolumn:name="STORE",type=string,JSONPath=`.spec.secretStoreRef.name`
// +kubebuilder:printcolumn:name="REFRESH",type=string,JSONPath=`.spec.refreshInterval`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="REASON",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="SYNCED",type=date,JSONPath=`.status.syncedAt`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type ExternalSecret struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ExternalSecretSpec `json:"spec"`
	// +optional
	Status ExternalSecretStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ExternalSecretList is a list of ExternalSecrets.
type ExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExternalSecret `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ExternalSecret{}, &ExternalSecretList{})
}
