package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelClusterExternalSecret marks every ExternalSecret a ClusterExternalSecret
// stamped; its value is the ClusterExternalSecret's name. An ExternalSecret without
// it is never touched by a ClusterExternalSecret.
const LabelClusterExternalSecret = "secretsync.dev/cluster-external-secret"

// Reasons of a ClusterExternalSecret's Ready condition.
const (
	// ReasonProvisioned: every matched namespace has its ExternalSecret.
	ReasonProvisioned = "Provisioned"
	// ReasonNamespacesFailed: at least one matched namespace could not get its
	// ExternalSecret (see status.failedNamespaces).
	ReasonNamespacesFailed = "NamespacesFailed"
	// FailedAlreadyExists: an ExternalSecret of that name exists and was not
	// stamped by this ClusterExternalSecret; it is left untouched.
	FailedAlreadyExists = "AlreadyExists"
)

// ClusterExternalSecretSpec stamps one ExternalSecret into every matched namespace.
// +kubebuilder:validation:XValidation:rule="has(self.namespaceSelectors) || has(self.namespaces)",message="spec: set namespaceSelectors or namespaces"
type ClusterExternalSecretSpec struct {
	// NamespaceSelectors match namespaces by label; a namespace matching ANY of them
	// gets the ExternalSecret.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`
	// Namespaces are also matched by name.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=atomic
	Namespaces []string `json:"namespaces,omitempty"`
	// ExternalSecretName is the name of the stamped ExternalSecrets (default: the
	// ClusterExternalSecret's name).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ExternalSecretName string `json:"externalSecretName,omitempty"`
	// ExternalSecretMetadata adds labels and annotations to the stamped ExternalSecrets.
	// +optional
	ExternalSecretMetadata TemplateMetadata `json:"externalSecretMetadata,omitempty"`
	// ExternalSecretSpec is the spec of every stamped ExternalSecret.
	// +required
	ExternalSecretSpec ExternalSecretSpec `json:"externalSecretSpec"`
}

// FailedNamespace is a matched namespace that has no ExternalSecret of ours.
type FailedNamespace struct {
	// Namespace that has no ExternalSecret of ours.
	// +required
	Namespace string `json:"namespace"`
	// Reason: AlreadyExists, or the API server's reason for a failed write.
	// +required
	Reason string `json:"reason"`
}

// ClusterExternalSecretStatus is the observed state of a ClusterExternalSecret.
type ClusterExternalSecretStatus struct {
	// Conditions: Ready with reason Provisioned or NamespacesFailed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// ProvisionedNamespaces hold an ExternalSecret of this ClusterExternalSecret (sorted).
	// +optional
	// +listType=atomic
	ProvisionedNamespaces []string `json:"provisionedNamespaces,omitempty"`
	// FailedNamespaces are matched but hold no ExternalSecret of ours (sorted).
	// +optional
	// +listType=atomic
	FailedNamespaces []FailedNamespace `json:"failedNamespaces,omitempty"`
}

// ClusterExternalSecret stamps an ExternalSecret into every namespace it matches.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ces,categories=secretsync
// +kubebuilder:printcolumn:name="STORE",type=string,JSONPath=`.spec.externalSecretSpec.secretStoreRef.name`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="REASON",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterExternalSecret struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ClusterExternalSecretSpec `json:"spec"`
	// +optional
	Status ClusterExternalSecretStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterExternalSecretList is a list of ClusterExternalSecrets.
type ClusterExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterExternalSecret `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ClusterExternalSecret{}, &ClusterExternalSecretList{})
}
