// Package v1alpha1 holds the secretsync.dev/v1alpha1 API: SecretStore,
// ClusterSecretStore and ExternalSecret. The field names are a public contract
// (see docs/api.md); add fields, never rename them.
//
// +kubebuilder:object:generate=true
// +groupName=secretsync.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "secretsync.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
