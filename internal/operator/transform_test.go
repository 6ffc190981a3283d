package operator

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func TestStripExternalSecret(t *testing.T) {
	for _, c := range []struct {
		name            string
		annotations     map[string]string
		wantAnnotations map[string]string
	}{
		{"kubectl's last-applied annotation is dropped, others kept",
			map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"ExternalSecret"}`, v1alpha1.AnnotationForceSync: "1"},
			map[string]string{v1alpha1.AnnotationForceSync: "1"}},
		{"only last-applied: no annotations left", map[string]string{corev1.LastAppliedConfigAnnotation: "{}"}, map[string]string{}},
		{"no annotations", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: "a", Annotations: c.annotations,
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
			out, err := stripExternalSecret(es)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*v1alpha1.ExternalSecret)
			if got.ManagedFields != nil {
				t.Errorf("managedFields kept: %v", got.ManagedFields)
			}
			if len(got.Annotations) != len(c.wantAnnotations) {
				t.Fatalf("annotations %v, want %v", got.Annotations, c.wantAnnotations)
			}
			for k, v := range c.wantAnnotations {
				if got.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
				}
			}
		})
	}
}
