package externalsecret

import (
	"bytes"
	"context"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

const (
	// annotationOwner names the ExternalSecret that writes a target (all policies),
	// so the managed-Secret watch can find it without an ownerReference.
	annotationOwner = "secretsync.dev/external-secret"
	// annotationKeys lists the key NAMES we wrote into a Merge target, so keys we
	// stop producing (or deletionPolicy Merge) can be removed without touching others.
	annotationKeys = "secretsync.dev/keys"
	// maxSecretBytes is the API server's limit on a Secret's data.
	maxSecretBytes = 1 << 20
)

func targetName(es *v1alpha1.ExternalSecret) string {
	if es.Spec.Target.Name != "" {
		return es.Spec.Target.Name
	}
	return es.Name
}

func creationPolicy(es *v1alpha1.ExternalSecret) v1alpha1.CreationPolicy {
	if es.Spec.Target.CreationPolicy == "" {
		return v1alpha1.CreationOwner
	}
	return es.Spec.Target.CreationPolicy
}

func deletionPolicy(es *v1alpha1.ExternalSecret) v1alpha1.DeletionPolicy {
	if es.Spec.Target.DeletionPolicy == "" {
		return v1alpha1.DeletionRetain
	}
	return es.Spec.Target.DeletionPolicy
}

// getTarget reads the target from the managed cache, then, for a Secret we do not
// manage (yet), with a direct GET: the cache is never widened to foreign Secrets.
func (r *Reconciler) getTarget(ctx context.Context, es *v1alpha1.ExternalSecret) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: es.Namespace, Name: targetName(es)}
	s := &corev1.Secret{}
	err := r.Client.Get(ctx, key, s)
	if err == nil {
		return s, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	err = r.APIReader.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return s, err
}

// ownedBy reports whether s is ours to write under es's creation policy.
func ownedBy(s *corev1.Secret, es *v1alpha1.ExternalSecret) bool {
	if ref := metav1.GetControllerOf(s); ref != nil {
		return ref.UID == es.UID
	}
	// No controller: only an Orphan-created Secret of this ExternalSecret is ours.
	return s.Labels[v1alpha1.LabelManaged] == "true" && s.Annotations[annotationOwner] == es.Name &&
		creationPolicy(es) == v1alpha1.CreationOrphan
}

// ourKeys returns the keys of s that es manages.
func ourKeys(s *corev1.Secret, es *v1alpha1.ExternalSecret) []string {
	if creationPolicy(es) != v1alpha1.CreationMerge {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		return keys
	}
	if v := s.Annotations[annotationKeys]; v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

// write is the one Secret writer. It writes only when the bytes differ.
func (r *Reconciler) write(ctx context.Context, es *v1alpha1.ExternalSecret, existing *corev1.Secret, want rendered) (bool, *outcome) {
	policy := creationPolicy(es)
	if policy == v1alpha1.CreationNone {
		return false, nil
	}
	size := 0
	for k, v := range want.data {
		size += len(k) + len(v)
	}
	if policy == v1alpha1.CreationMerge && existing != nil {
		for k, v := range existing.Data {
			if _, ours := want.data[k]; !ours {
				size += len(k) + len(v)
			}
		}
	}
	if size > maxSecretBytes {
		o := fail(v1alpha1.ReasonTargetTooLarge, false, "spec.target: the Secret's data would be %d bytes, over the 1 MiB limit", size)
		return false, &o
	}

	switch {
	case policy == v1alpha1.CreationMerge && existing == nil:
		o := fail(v1alpha1.ReasonTargetNotFound, true, "spec.target.name: Secret %q does not exist (creationPolicy Merge never creates it)", targetName(es))
		return false, &o
	case policy != v1alpha1.CreationMerge && existing != nil && !ownedBy(existing, es):
		o := fail(v1alpha1.ReasonTargetOwnedElsewhere, false, "spec.target.name: Secret %q exists and is not owned by this ExternalSecret", targetName(es))
		return false, &o
	}

	if existing == nil {
		s := r.desired(es, nil, want)
		if err := r.Client.Create(ctx, s); err != nil {
			if apierrors.IsAlreadyExists(err) {
				o := fail(v1alpha1.ReasonTargetOwnedElsewhere, true, "spec.target.name: Secret %q was created by someone else meanwhile", targetName(es))
				return false, &o
			}
			o := fail(v1alpha1.ReasonProviderError, true, "spec.target: create Secret %q: %s", targetName(es), apiReason(err))
			return false, &o
		}
		return true, nil
	}

	s := r.desired(es, existing.DeepCopy(), want)
	if secretEqual(existing, s) {
		return false, nil
	}
	if existing.Immutable != nil && *existing.Immutable {
		o := fail(v1alpha1.ReasonTargetImmutable, false, "spec.target: Secret %q is immutable and the remote data changed", targetName(es))
		return false, &o
	}
	if s.Type != existing.Type && policy == v1alpha1.CreationOwner {
		// A Secret's type cannot change in place: replace it.
		if err := r.Client.Delete(ctx, existing); err != nil && !apierrors.IsNotFound(err) {
			o := fail(v1alpha1.ReasonProviderError, true, "spec.target: replace Secret %q: %s", targetName(es), apiReason(err))
			return false, &o
		}
		s.ResourceVersion = ""
		if err := r.Client.Create(ctx, s); err != nil {
			o := fail(v1alpha1.ReasonProviderError, true, "spec.target: create Secret %q: %s", targetName(es), apiReason(err))
			return false, &o
		}
		return true, nil
	}
	if err := r.Client.Update(ctx, s); err != nil {
		o := fail(v1alpha1.ReasonProviderError, true, "spec.target: update Secret %q: %s", targetName(es), apiReason(err))
		return false, &o
	}
	return true, nil
}

// desired builds the target from base (nil: a new Secret).
func (r *Reconciler) desired(es *v1alpha1.ExternalSecret, base *corev1.Secret, want rendered) *corev1.Secret {
	policy := creationPolicy(es)
	s := base
	if s == nil {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: es.Namespace, Name: targetName(es)}}
		if es.Spec.Target.Immutable {
			t := true
			s.Immutable = &t
		}
		if policy == v1alpha1.CreationOwner {
			_ = controllerutil.SetControllerReference(es, s, r.Client.Scheme())
		}
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	for k, v := range want.labels {
		s.Labels[k] = v
	}
	for k, v := range want.annotations {
		s.Annotations[k] = v
	}
	// Applied last: template labels cannot remove or change the managed label.
	s.Labels[v1alpha1.LabelManaged] = "true"
	s.Annotations[annotationOwner] = es.Name

	if policy == v1alpha1.CreationMerge {
		data := map[string][]byte{}
		for k, v := range s.Data {
			data[k] = v
		}
		for _, k := range ourKeys(s, es) {
			delete(data, k)
		}
		for k, v := range want.data {
			data[k] = v
		}
		s.Data = data
		s.Annotations[annotationKeys] = strings.Join(sortedKeys(want.data), ",")
		return s
	}
	s.Data = want.data
	if base == nil || policy == v1alpha1.CreationOwner {
		s.Type = corev1.SecretType(want.secretType)
		if s.Type == "" {
			s.Type = corev1.SecretTypeOpaque
		}
	}
	return s
}

// removeOurKeys implements deletionPolicy Merge: drop the keys we wrote, keep the Secret.
func (r *Reconciler) removeOurKeys(ctx context.Context, es *v1alpha1.ExternalSecret, existing *corev1.Secret) (bool, *outcome) {
	s := existing.DeepCopy()
	for _, k := range ourKeys(existing, es) {
		delete(s.Data, k)
	}
	delete(s.Annotations, annotationKeys)
	if secretEqual(existing, s) {
		return false, nil
	}
	if err := r.Client.Update(ctx, s); err != nil {
		o := fail(v1alpha1.ReasonProviderError, true, "spec.target: update Secret %q: %s", targetName(es), apiReason(err))
		return false, &o
	}
	return true, nil
}

func secretEqual(a, b *corev1.Secret) bool {
	if a.Type != b.Type || len(a.Data) != len(b.Data) || !mapEqual(a.Labels, b.Labels) || !mapEqual(a.Annotations, b.Annotations) {
		return false
	}
	for k, v := range a.Data {
		if w, ok := b.Data[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return len(a.OwnerReferences) == len(b.OwnerReferences)
}

func mapEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// apiReason renders a Kubernetes API error by its reason only: the API server's
// message can echo the object we sent, i.e. secret data.
func apiReason(err error) string {
	if s := apierrors.ReasonForError(err); s != metav1.StatusReasonUnknown {
		return string(s)
	}
	return "request failed"
}
