// Package v1alpha1 holds the secretsync.dev/v1alpha1 API: SecretStore,
// ClusterSecretStore and ExternalSecret. The field names are a public contract
// (see docs/api.md); add fields, never rename them.
//
// +kubebuilder:object:generate=true
// +groupName=secretsync.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "secretsync.dev", Version: "v1alpha1"}

	// schemeBuilder is apimachinery's, not controller-runtime's deprecated
	// scheme.Builder, so that importing the API does not import controller-runtime.
	schemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = schemeBuilder.AddToScheme

	// objectTypes are the root types, appended by each file's init.
	objectTypes []runtime.Object
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, objectTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
