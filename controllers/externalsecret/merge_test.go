package externalsecret

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func mergeES(name string) *v1alpha1.ExternalSecret {
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, UID: types.UID("uid-" + name)}}
	es.Spec.Target.CreationPolicy = v1alpha1.CreationMerge
	return es
}

func TestMergeRefusal(t *testing.T) {
	r := &Reconciler{Hasher: &Hasher{Namespace: "secretsync-system"}}
	want := map[string][]byte{"a": []byte("1")}
	managed := map[string]string{v1alpha1.LabelManaged: "true"}
	cases := []struct {
		name   string
		secret corev1.Secret
		refuse string // substring of the refusal; "" = allowed
	}{
		{"plain Secret", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t"}}, ""},
		{"service-account-token", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t"}, Type: corev1.SecretTypeServiceAccountToken}, "kubernetes.io/service-account-token"},
		{"bootstrap token", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t"}, Type: corev1.SecretTypeBootstrapToken}, "bootstrap.kubernetes.io/token"},
		{"operator namespace", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "secretsync-system", Name: HashKeySecret}}, "operator's namespace"},
		{"owned by another ExternalSecret", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t",
			OwnerReferences: []metav1.OwnerReference{{Kind: "ExternalSecret", Name: "other", UID: "uid-other", Controller: ptr.To(true)}}}}, `ExternalSecret "other"`},
		{"created by another ExternalSecret (Orphan)", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t", Labels: managed,
			Annotations: map[string]string{annotationOwner: "other"}}}, `created by ExternalSecret "other"`},
		{"a key another Merge writer holds", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t", Labels: managed,
			Annotations: map[string]string{annotationMergeKeys: `{"other":["a"]}`}}}, `key "a" written by ExternalSecret "other"`},
		{"a key a legacy Merge writer holds", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t", Labels: managed,
			Annotations: map[string]string{annotationOwner: "other", annotationKeys: "a"}}}, `key "a" written by ExternalSecret "other"`},
		{"disjoint keys of another Merge writer", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t", Labels: managed,
			Annotations: map[string]string{annotationMergeKeys: `{"other":["b"]}`}}}, ""},
		{"our own keys", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t", Labels: managed,
			Annotations: map[string]string{annotationMergeKeys: `{"me":["a"]}`}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.mergeRefusal(&c.secret, mergeES("me"), want)
			if (c.refuse == "") != (got == "") || !strings.Contains(got, c.refuse) {
				t.Fatalf("refusal = %q, want containing %q", got, c.refuse)
			}
		})
	}
}

func TestMergeWritersShareASecret(t *testing.T) {
	r := &Reconciler{}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t"}, Data: map[string][]byte{"theirs": []byte("x")}}
	a, b := mergeES("a"), mergeES("b")
	s = r.desired(a, s, rendered{data: map[string][]byte{"ka": []byte("1")}})
	s = r.desired(b, s, rendered{data: map[string][]byte{"kb": []byte("2")}})
	if got := s.Annotations[annotationMergeKeys]; got != `{"a":["ka"],"b":["kb"]}` {
		t.Fatalf("merge-keys = %s", got)
	}
	if _, ok := s.Annotations[annotationOwner]; ok {
		t.Fatal("a Merge writer claimed to have created the Secret")
	}
	// a stops producing ka: only ka goes.
	s = r.desired(a, s, rendered{data: map[string][]byte{}})
	if _, ok := s.Data["ka"]; ok || string(s.Data["kb"]) != "2" || string(s.Data["theirs"]) != "x" {
		t.Fatalf("data = %v", s.Data)
	}
	if got := s.Annotations[annotationMergeKeys]; got != `{"b":["kb"]}` {
		t.Fatalf("merge-keys = %s", got)
	}
	reqs := ownerOfSecret(context.Background(), s)
	if len(reqs) != 1 || reqs[0].Name != "b" {
		t.Fatalf("watch maps the Secret to %v", reqs)
	}
}

func TestLegacyMergeKeysMigrate(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "t",
		Annotations: map[string]string{annotationOwner: "a", annotationKeys: "k1,k2"}}}
	if got := ourKeys(s, mergeES("a")); strings.Join(got, ",") != "k1,k2" {
		t.Fatalf("legacy keys = %v", got)
	}
	withMergeKeys(s, mergeES("a"), []string{"k1"})
	if s.Annotations[annotationMergeKeys] != `{"a":["k1"]}` || s.Annotations[annotationKeys] != "" || s.Annotations[annotationOwner] != "" {
		t.Fatalf("annotations after migration = %v", s.Annotations)
	}
}
