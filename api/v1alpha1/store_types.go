package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretKeySelector names one key of a Kubernetes Secret.
type SecretKeySelector struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key inside the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
	// Namespace of the Secret. Required inside a ClusterSecretStore, forbidden inside a SecretStore
	// (a namespaced store only reads Secrets in its own namespace).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// ServiceAccountSelector names a ServiceAccount for which the operator requests a
// short-lived token with the TokenRequest API.
type ServiceAccountSelector struct {
	// Name of the ServiceAccount.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the ServiceAccount. Forbidden inside a SecretStore. Inside a
	// ClusterSecretStore, empty means the namespace of the ExternalSecret using the store,
	// so each tenant authenticates as itself.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// Audiences of the requested token.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	Audiences []string `json:"audiences,omitempty"`
}

// SecretStoreSpec is shared by SecretStore and ClusterSecretStore.
type SecretStoreSpec struct {
	// Provider configures the one backend this store talks to.
	// +required
	Provider StoreProvider `json:"provider"`

	// Conditions decide which namespaces may use a ClusterSecretStore. EMPTY MEANS NO
	// NAMESPACE MAY USE IT. Forbidden on a namespaced SecretStore.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Conditions []StoreCondition `json:"conditions,omitempty"`
}

// StoreProvider holds exactly one backend.
// +kubebuilder:validation:XValidation:rule="(has(self.aws) ? 1 : 0) + (has(self.vault) ? 1 : 0) == 1",message="spec.provider: exactly one of aws or vault must be set"
type StoreProvider struct {
	// AWS configures AWS Secrets Manager or Systems Manager Parameter Store.
	// +optional
	AWS *AWSProvider `json:"aws,omitempty"`
	// Vault configures HashiCorp Vault or OpenBao.
	// +optional
	Vault *VaultProvider `json:"vault,omitempty"`
}

// AWSService selects the AWS service of an AWS store.
// +kubebuilder:validation:Enum=SecretsManager;ParameterStore
type AWSService string

const (
	AWSServiceSecretsManager AWSService = "SecretsManager"
	AWSServiceParameterStore AWSService = "ParameterStore"
)

// AWSProvider configures an AWS store.
// +kubebuilder:validation:XValidation:rule="!has(self.externalID) || has(self.role)",message="spec.provider.aws.externalID: requires role"
// +kubebuilder:validation:XValidation:rule="!has(self.auth) || !has(self.auth.jwt) || has(self.role)",message="spec.provider.aws.auth.jwt: requires role (the role assumed with the web identity)"
type AWSProvider struct {
	// Service is SecretsManager or ParameterStore.
	// +required
	Service AWSService `json:"service"`
	// Region, e.g. eu-west-1.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]+$`
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region"`
	// Endpoint overrides the service URL (a VPC endpoint or a local emulator).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://`
	Endpoint string `json:"endpoint,omitempty"`
	// Role is an IAM role ARN assumed with sts:AssumeRole (or, with auth.jwt, with
	// sts:AssumeRoleWithWebIdentity).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^arn:[a-z-]+:iam::[0-9]{12}:role/.+$`
	Role string `json:"role,omitempty"`
	// ExternalID passed to sts:AssumeRole; only with role.
	// +optional
	// +kubebuilder:validation:MaxLength=1224
	ExternalID string `json:"externalID,omitempty"`
	// Auth selects credentials; empty means the operator's default AWS credential chain.
	// +optional
	Auth *AWSAuth `json:"auth,omitempty"`
}

// AWSAuth holds at most one AWS credential source.
// +kubebuilder:validation:XValidation:rule="!(has(self.secretRef) && has(self.jwt))",message="spec.provider.aws.auth: set at most one of secretRef or jwt"
type AWSAuth struct {
	// SecretRef reads static keys from a Secret.
	// +optional
	SecretRef *AWSSecretRef `json:"secretRef,omitempty"`
	// JWT exchanges a ServiceAccount token for role credentials (IRSA-style).
	// +optional
	JWT *AWSJWTAuth `json:"jwt,omitempty"`
}

// AWSSecretRef names the Secret keys that hold static AWS credentials.
type AWSSecretRef struct {
	// +required
	AccessKeyIDSecretRef SecretKeySelector `json:"accessKeyIDSecretRef"`
	// +required
	SecretAccessKeySecretRef SecretKeySelector `json:"secretAccessKeySecretRef"`
	// +optional
	SessionTokenSecretRef *SecretKeySelector `json:"sessionTokenSecretRef,omitempty"`
}

// AWSJWTAuth requests a ServiceAccount token and exchanges it with sts:AssumeRoleWithWebIdentity.
type AWSJWTAuth struct {
	// +required
	ServiceAccountRef ServiceAccountSelector `json:"serviceAccountRef"`
}

// VaultKVVersion is the KV secrets engine version of a Vault mount.
// +kubebuilder:validation:Enum=v1;v2
type VaultKVVersion string

const (
	VaultKVv1 VaultKVVersion = "v1"
	VaultKVv2 VaultKVVersion = "v2"
)

// VaultProvider configures a Vault or OpenBao store.
// +kubebuilder:validation:XValidation:rule="!(has(self.caBundle) && has(self.caProvider))",message="spec.provider.vault: set at most one of caBundle or caProvider"
type VaultProvider struct {
	// Server is the Vault address, e.g. https://vault.example:8200.
	// +required
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://`
	Server string `json:"server"`
	// Path is the KV mount path (default "secret").
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^/].*[^/]$|^[^/]$`
	Path string `json:"path,omitempty"`
	// Version is the KV engine version of Path: v1 or v2 (default v2).
	// +optional
	Version VaultKVVersion `json:"version,omitempty"`
	// Namespace is the Vault/OpenBao namespace (X-Vault-Namespace).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Namespace string `json:"namespace,omitempty"`
	// CABundle is a base64-encoded PEM bundle to trust.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	CABundle string `json:"caBundle,omitempty"`
	// CAProvider reads the PEM bundle from a Secret or ConfigMap.
	// +optional
	CAProvider *CAProvider `json:"caProvider,omitempty"`
	// Auth holds exactly one Vault auth method.
	// +required
	Auth VaultAuth `json:"auth"`
}

// CAProvider types.
const (
	CAProviderSecret    = "Secret"
	CAProviderConfigMap = "ConfigMap"
)

// CAProvider names a PEM bundle in a Secret or ConfigMap. Its resourceVersion is
// part of the store's client identity: editing the bundle rebuilds the client.
type CAProvider struct {
	// Type of the object holding the bundle: Secret or ConfigMap.
	// +required
	// +kubebuilder:validation:Enum=Secret;ConfigMap
	Type string `json:"type"`
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
	// Namespace; required inside a ClusterSecretStore, forbidden inside a SecretStore.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// VaultAuth holds exactly one auth method.
// +kubebuilder:validation:XValidation:rule="(has(self.tokenSecretRef) ? 1 : 0) + (has(self.appRole) ? 1 : 0) + (has(self.kubernetes) ? 1 : 0) + (has(self.jwt) ? 1 : 0) == 1",message="spec.provider.vault.auth: exactly one of tokenSecretRef, appRole, kubernetes or jwt must be set"
type VaultAuth struct {
	// TokenSecretRef reads a Vault token from a Secret.
	// +optional
	TokenSecretRef *SecretKeySelector `json:"tokenSecretRef,omitempty"`
	// AppRole logs in with a role id and a secret id.
	// +optional
	AppRole *VaultAppRoleAuth `json:"appRole,omitempty"`
	// Kubernetes logs in with a ServiceAccount token (TokenRequest).
	// +optional
	Kubernetes *VaultKubernetesAuth `json:"kubernetes,omitempty"`
	// JWT logs in with a JWT from a Secret or a ServiceAccount token.
	// +optional
	JWT *VaultJWTAuth `json:"jwt,omitempty"`
}

// VaultAppRoleAuth is the AppRole auth method.
// +kubebuilder:validation:XValidation:rule="has(self.roleId) != has(self.roleRef)",message="spec.provider.vault.auth.appRole: exactly one of roleId or roleRef must be set"
type VaultAppRoleAuth struct {
	// Path is the auth mount (default "approle").
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Path string `json:"path,omitempty"`
	// RoleID inline.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RoleID string `json:"roleId,omitempty"`
	// RoleRef reads the role id from a Secret.
	// +optional
	RoleRef *SecretKeySelector `json:"roleRef,omitempty"`
	// SecretRef reads the secret id from a Secret.
	// +required
	SecretRef SecretKeySelector `json:"secretRef"`
}

// VaultKubernetesAuth is the Kubernetes auth method.
type VaultKubernetesAuth struct {
	// MountPath of the auth method (default "kubernetes").
	// +optional
	// +kubebuilder:validation:MaxLength=256
	MountPath string `json:"mountPath,omitempty"`
	// Role to log in as.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Role string `json:"role"`
	// ServiceAccountRef is the ServiceAccount whose token is presented.
	// +required
	ServiceAccountRef ServiceAccountSelector `json:"serviceAccountRef"`
}

// VaultJWTAuth is the JWT/OIDC auth method.
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.kubernetesServiceAccountToken)",message="spec.provider.vault.auth.jwt: exactly one of secretRef or kubernetesServiceAccountToken must be set"
type VaultJWTAuth struct {
	// Path of the auth mount (default "jwt").
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Path string `json:"path,omitempty"`
	// Role to log in as.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Role string `json:"role"`
	// SecretRef reads a JWT from a Secret.
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`
	// KubernetesServiceAccountToken requests a ServiceAccount token to present as the JWT.
	// +optional
	KubernetesServiceAccountToken *VaultServiceAccountToken `json:"kubernetesServiceAccountToken,omitempty"`
}

// VaultServiceAccountToken wraps the ServiceAccount reference of JWT auth.
type VaultServiceAccountToken struct {
	// +required
	ServiceAccountRef ServiceAccountSelector `json:"serviceAccountRef"`
}

// StoreCondition admits namespaces to a ClusterSecretStore: the union of its fields.
// +kubebuilder:validation:XValidation:rule="has(self.namespaces) || has(self.namespaceSelector)",message="spec.conditions[]: set namespaces or namespaceSelector"
type StoreCondition struct {
	// Namespaces admitted by name.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=atomic
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector admits namespaces by label.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// AllowedKeys are regular expressions; when set, a remote key must match one of them
	// to be read by the namespaces this entry admits. Each matches the WHOLE key (as if
	// written ^(?:pattern)$). Transit decrypt is checked as "<mount>/<key>", dynamic by
	// its path, a find by every key it returns (Vault: relative to the mount).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.all(p, ''.matches(p) == ''.matches('^(?:' + p + ')$'))",message="spec.conditions[].allowedKeys: every pattern must be an RE2 regular expression, also when anchored as ^(?:pattern)$"
	AllowedKeys []string `json:"allowedKeys,omitempty"`
}

// SecretStoreStatus is the observed state of a store.
type SecretStoreStatus struct {
	// Conditions: Ready, with reasons Valid, InvalidSpec, CredentialsNotFound, AuthFailed, BackendUnreachable.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// SecretStore is a namespaced backend configuration usable by ExternalSecrets in its own namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ss,categories=secretsync
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="REASON",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.conditions)",message="spec.conditions: only a ClusterSecretStore has conditions"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.provider.aws) || !has(self.spec.provider.aws.auth) || ((!has(self.spec.provider.aws.auth.secretRef) || (!has(self.spec.provider.aws.auth.secretRef.accessKeyIDSecretRef.__namespace__) && !has(self.spec.provider.aws.auth.secretRef.secretAccessKeySecretRef.__namespace__) && (!has(self.spec.provider.aws.auth.secretRef.sessionTokenSecretRef) || !has(self.spec.provider.aws.auth.secretRef.sessionTokenSecretRef.__namespace__)))) && (!has(self.spec.provider.aws.auth.jwt) || !has(self.spec.provider.aws.auth.jwt.serviceAccountRef.__namespace__)))",message="spec.provider.aws.auth: a SecretStore's references cannot set namespace"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.provider.vault) || ((!has(self.spec.provider.vault.caProvider) || !has(self.spec.provider.vault.caProvider.__namespace__)) && (!has(self.spec.provider.vault.auth.tokenSecretRef) || !has(self.spec.provider.vault.auth.tokenSecretRef.__namespace__)) && (!has(self.spec.provider.vault.auth.appRole) || (!has(self.spec.provider.vault.auth.appRole.secretRef.__namespace__) && (!has(self.spec.provider.vault.auth.appRole.roleRef) || !has(self.spec.provider.vault.auth.appRole.roleRef.__namespace__)))) && (!has(self.spec.provider.vault.auth.kubernetes) || !has(self.spec.provider.vault.auth.kubernetes.serviceAccountRef.__namespace__)) && (!has(self.spec.provider.vault.auth.jwt) || ((!has(self.spec.provider.vault.auth.jwt.secretRef) || !has(self.spec.provider.vault.auth.jwt.secretRef.__namespace__)) && (!has(self.spec.provider.vault.auth.jwt.kubernetesServiceAccountToken) || !has(self.spec.provider.vault.auth.jwt.kubernetesServiceAccountToken.serviceAccountRef.__namespace__)))))",message="spec.provider.vault: a SecretStore's references cannot set namespace"
type SecretStore struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SecretStoreSpec `json:"spec"`
	// +optional
	Status SecretStoreStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// SecretStoreList is a list of SecretStores.
type SecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretStore `json:"items"`
}

// ClusterSecretStore is a cluster-wide backend configuration, usable only by the
// namespaces its spec.conditions admit.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=css,categories=secretsync
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="REASON",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.provider.aws) || !has(self.spec.provider.aws.auth) || !has(self.spec.provider.aws.auth.secretRef) || (has(self.spec.provider.aws.auth.secretRef.accessKeyIDSecretRef.__namespace__) && has(self.spec.provider.aws.auth.secretRef.secretAccessKeySecretRef.__namespace__) && (!has(self.spec.provider.aws.auth.secretRef.sessionTokenSecretRef) || has(self.spec.provider.aws.auth.secretRef.sessionTokenSecretRef.__namespace__)))",message="spec.provider.aws.auth.secretRef: a ClusterSecretStore's Secret references must set namespace"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.provider.vault) || ((!has(self.spec.provider.vault.caProvider) || has(self.spec.provider.vault.caProvider.__namespace__)) && (!has(self.spec.provider.vault.auth.tokenSecretRef) || has(self.spec.provider.vault.auth.tokenSecretRef.__namespace__)) && (!has(self.spec.provider.vault.auth.appRole) || (has(self.spec.provider.vault.auth.appRole.secretRef.__namespace__) && (!has(self.spec.provider.vault.auth.appRole.roleRef) || has(self.spec.provider.vault.auth.appRole.roleRef.__namespace__)))) && (!has(self.spec.provider.vault.auth.jwt) || !has(self.spec.provider.vault.auth.jwt.secretRef) || has(self.spec.provider.vault.auth.jwt.secretRef.__namespace__)))",message="spec.provider.vault: a ClusterSecretStore's Secret references must set namespace"
type ClusterSecretStore struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SecretStoreSpec `json:"spec"`
	// +optional
	Status SecretStoreStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterSecretStoreList is a list of ClusterSecretStores.
type ClusterSecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterSecretStore `json:"items"`
}

// GenericStore is what controllers and providers need from either store kind.
// +kubebuilder:object:generate=false
type GenericStore interface {
	metav1.Object
	GetKind() string
	GetSpec() *SecretStoreSpec
	GetStatus() *SecretStoreStatus
}

func (s *SecretStore) GetKind() string                  { return "SecretStore" }
func (s *SecretStore) GetSpec() *SecretStoreSpec        { return &s.Spec }
func (s *SecretStore) GetStatus() *SecretStoreStatus    { return &s.Status }
func (s *ClusterSecretStore) GetKind() string           { return "ClusterSecretStore" }
func (s *ClusterSecretStore) GetSpec() *SecretStoreSpec { return &s.Spec }
func (s *ClusterSecretStore) GetStatus() *SecretStoreStatus {
	return &s.Status
}

func init() {
	objectTypes = append(objectTypes, &SecretStore{}, &SecretStoreList{}, &ClusterSecretStore{}, &ClusterSecretStoreList{})
}
