// Package scheme builds the runtime scheme of the operator: client-go's
// built-in types plus secretsync.dev/v1alpha1.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// New returns a scheme with client-go's types and ours.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}
