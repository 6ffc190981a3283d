package externalsecret

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

const (
	// annotationOwner names the ExternalSecret that writes a target (all policies),
	// so the managed-Secret watch can find it without an ownerReference.
	annotationOwner = "secretsync.dev/external-secret"
	// annotationMergeKeys records, per Merge ExternalSecret, the key NAMES it wrote
	// into a Secret (JSON: {"<es name>": ["k1", ...]}), so several Merge writers with
	// disjoint keys can share one Secret, a key another writer holds is refused, and
	// keys one stops producing (or deletionPolicy Merge) are removed without touching
	// anybody else's.
	annotationMergeKeys = "secretsync.dev/merge-keys"
	// annotationKeys is the single-writer form of the above used before
	// merge-keys: the keys of the ExternalSecret named by annotationOwner. It is read
	// and migrated on the next Merge write.
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

// getTarget reads the target from the managed cache. A target the cache does not
// have is read with a direct GET (the cache is never widened to foreign Secrets)
// only when something before the write needs it (readsTargetFirst); otherwise
// write creates it and reads it only on AlreadyExists, so a new ExternalSecret
// costs no GET that returns 404.
func (r *Reconciler) getTarget(ctx context.Context, es *v1alpha1.ExternalSecret) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: es.Namespace, Name: targetName(es)}
	s := &corev1.Secret{}
	err := r.Client.Get(ctx, key, s)
	if err == nil {
		return s, nil
	}
	if !apierrors.IsNotFound(err) || !readsTargetFirst(es) {
		return nil, client.IgnoreNotFound(err)
	}
	return r.readTarget(ctx, es)
}

// readTarget reads the target with a direct GET (nil: it does not exist).
func (r *Reconciler) readTarget(ctx context.Context, es *v1alpha1.ExternalSecret) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: es.Namespace, Name: targetName(es)}, s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return s, err
}

// readsTargetFirst says whether a target missing from the cache must be read before
// the write: Merge writes into a foreign Secret, CreatedOnce stops once the target
// exists, and dynamic secrets recover a lease's data from the target.
func readsTargetFirst(es *v1alpha1.ExternalSecret) bool {
	if creationPolicy(es) == v1alpha1.CreationMerge || es.Spec.RefreshPolicy == v1alpha1.RefreshCreatedOnce || len(es.Status.Leases) > 0 {
		return true
	}
	for _, d := range es.Spec.DataFrom {
		if d.Dynamic != nil {
			return true
		}
	}
	return false
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
	return mergeWriters(s)[es.Name]
}

// mergeWriters reads which Merge ExternalSecret wrote which keys of s (a legacy
// single-writer annotation counts as its annotationOwner's).
func mergeWriters(s *corev1.Secret) map[string][]string {
	out := map[string][]string{}
	if v := s.Annotations[annotationMergeKeys]; v != "" {
		// Unparseable (edited by hand): treated as no writers; the next write of each
		// writer records its keys again.
		_ = json.Unmarshal([]byte(v), &out)
	}
	if v, owner := s.Annotations[annotationKeys], s.Annotations[annotationOwner]; v != "" && owner != "" {
		if _, ok := out[owner]; !ok {
			out[owner] = strings.Split(v, ",")
		}
	}
	return out
}

// mergeRefusal says why es may not Merge into s ("" when it may): the Secret is
// another ExternalSecret's (Owner or Orphan), a kind the cluster gives powers to,
// the operator's own, or holds a key another Merge ExternalSecret writes.
func (r *Reconciler) mergeRefusal(s *corev1.Secret, es *v1alpha1.ExternalSecret, want map[string][]byte) string {
	switch {
	case s.Type == corev1.SecretTypeServiceAccountToken || s.Type == corev1.SecretTypeBootstrapToken:
		return fmt.Sprintf("is of type %s, which creationPolicy Merge never writes", s.Type)
	case r.Hasher != nil && s.Namespace == r.Hasher.Namespace:
		return "is in the operator's namespace, whose Secrets creationPolicy Merge never writes"
	}
	if ref := metav1.GetControllerOf(s); ref != nil && ref.UID != es.UID {
		return fmt.Sprintf("is controlled by %s %q", ref.Kind, ref.Name)
	}
	writers := mergeWriters(s)
	if owner := s.Annotations[annotationOwner]; owner != "" && owner != es.Name && s.Labels[v1alpha1.LabelManaged] == "true" {
		if _, merges := writers[owner]; !merges {
			return fmt.Sprintf("was created by ExternalSecret %q", owner)
		}
	}
	for other, keys := range writers {
		if other == es.Name {
			continue
		}
		for _, k := range keys {
			if _, clash := want[k]; clash {
				return fmt.Sprintf("holds key %q written by ExternalSecret %q (creationPolicy Merge)", k, other)
			}
		}
	}
	return ""
}

// withMergeKeys records keys as es's in s's merge-keys annotation (nil: none),
// migrating a legacy single-writer annotation.
func withMergeKeys(s *corev1.Secret, es *v1alpha1.ExternalSecret, keys []string) {
	writers := mergeWriters(s)
	if len(keys) == 0 {
		delete(writers, es.Name)
	} else {
		writers[es.Name] = keys
	}
	delete(s.Annotations, annotationKeys)
	if _, merges := writers[s.Annotations[annotationOwner]]; merges || s.Annotations[annotationOwner] == es.Name {
		// annotationOwner means "created by"; a Merge writer did not create the Secret.
		delete(s.Annotations, annotationOwner)
	}
	if len(writers) == 0 {
		delete(s.Annotations, annotationMergeKeys)
		return
	}
	b, _ := json.Marshal(writers) // map keys are sorted: stable bytes, no spurious update
	s.Annotations[annotationMergeKeys] = string(b)
}

// write is the one Secret writer. It writes only when the bytes differ, and returns
// the target as it found it (nil: it created it).
func (r *Reconciler) write(ctx context.Context, es *v1alpha1.ExternalSecret, existing *corev1.Secret, want rendered) (bool, *corev1.Secret, *outcome) {
	policy := creationPolicy(es)
	if policy == v1alpha1.CreationNone {
		return false, existing, nil
	}
	if o := r.refuseWrite(es, existing, want, policy); o != nil {
		return false, existing, o
	}
	if existing == nil {
		return r.create(ctx, es, want)
	}
	changed, o := r.update(ctx, es, existing, want)
	return changed, existing, o
}

// create creates the target. If it exists already (not in the cache: foreign, or
// ours and the cache is behind) it is read and written as an existing target: a
// foreign one is refused as if getTarget had read it.
func (r *Reconciler) create(ctx context.Context, es *v1alpha1.ExternalSecret, want rendered) (bool, *corev1.Secret, *outcome) {
	s := r.desired(es, nil, want)
	err := r.Client.Create(ctx, s)
	if err == nil {
		r.echoes.wrote(s)
		return true, nil, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		o := kubeFailure("spec.target: create Secret "+strconv.Quote(targetName(es)), err)
		return false, nil, &o
	}
	existing, err := r.readTarget(ctx, es)
	if err != nil {
		o := kubeFailure("spec.target: read Secret "+strconv.Quote(targetName(es)), err)
		return false, nil, &o
	}
	if existing == nil {
		o := failTransient(v1alpha1.ReasonTargetOwnedElsewhere, "spec.target.name: Secret %q was created by someone else meanwhile", targetName(es))
		return false, nil, &o
	}
	if o := r.refuseWrite(es, existing, want, creationPolicy(es)); o != nil {
		return false, existing, o
	}
	changed, o := r.update(ctx, es, existing, want)
	return changed, existing, o
}

// update writes an existing target when its bytes differ.
func (r *Reconciler) update(ctx context.Context, es *v1alpha1.ExternalSecret, existing *corev1.Secret, want rendered) (bool, *outcome) {

	s := r.desired(es, existing.DeepCopy(), want)
	if secretEqual(existing, s) {
		return false, nil
	}
	if existing.Immutable != nil && *existing.Immutable {
		o := failTerminal(v1alpha1.ReasonTargetImmutable, "spec.target: Secret %q is immutable and the remote data changed", targetName(es))
		return false, &o
	}
	if s.Type != existing.Type {
		// A Secret's type cannot change in place, and replacing it (delete, create)
		// leaves a window in which pods starting up find no Secret. The user decides.
		o := failTerminal(v1alpha1.ReasonInvalidSpec, "spec.target.template.type: Secret %q has type %s and a Secret's type cannot change in place; delete the Secret to have it recreated as %s", targetName(es), existing.Type, s.Type)
		return false, &o
	}
	if err := r.Client.Update(ctx, s); err != nil {
		o := kubeFailure("spec.target: update Secret "+strconv.Quote(targetName(es)), err)
		return false, &o
	}
	r.echoes.wrote(s)
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
	if policy != v1alpha1.CreationMerge {
		s.Annotations[annotationOwner] = es.Name
	}

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
		withMergeKeys(s, es, sortedKeys(want.data))
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
	withMergeKeys(s, es, nil)
	if secretEqual(existing, s) {
		return false, nil
	}
	if err := r.Client.Update(ctx, s); err != nil {
		o := kubeFailure("spec.target: update Secret "+strconv.Quote(targetName(es)), err)
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

// tlsKeysMissing: a kubernetes.io/tls Secret must hold tls.crt and tls.key (the API
// server refuses it otherwise); say which key the spec does not produce.
func tlsKeysMissing(want rendered, existing *corev1.Secret, policy v1alpha1.CreationPolicy) *outcome {
	if corev1.SecretType(want.secretType) != corev1.SecretTypeTLS {
		return nil
	}
	var missing []string
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		_, ok := want.data[k]
		if !ok && policy == v1alpha1.CreationMerge && existing != nil {
			_, ok = existing.Data[k]
		}
		if !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	o := failTerminal(v1alpha1.ReasonInvalidTemplate, "spec.target.template.type: kubernetes.io/tls needs keys tls.crt and tls.key; the data has no %s (map them with a template or a rewrite)", strings.Join(missing, " or "))
	return &o
}

// refuseWrite says why the target must not be written: too large, not ours, a
// type that cannot be had, or a TLS Secret without its key pair.
func (r *Reconciler) refuseWrite(es *v1alpha1.ExternalSecret, existing *corev1.Secret, want rendered, policy v1alpha1.CreationPolicy) *outcome {
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
		o := failTerminal(v1alpha1.ReasonTargetTooLarge, "spec.target: the Secret's data would be %d bytes, over the 1 MiB limit", size)
		return &o
	}

	switch {
	case policy == v1alpha1.CreationMerge && existing == nil:
		o := failTransient(v1alpha1.ReasonTargetNotFound, "spec.target.name: Secret %q does not exist (creationPolicy Merge never creates it)", targetName(es))
		return &o
	case policy != v1alpha1.CreationMerge && existing != nil && !ownedBy(existing, es):
		o := failTerminal(v1alpha1.ReasonTargetOwnedElsewhere, "spec.target.name: Secret %q exists and is not owned by this ExternalSecret", targetName(es))
		return &o
	case policy == v1alpha1.CreationMerge:
		if why := r.mergeRefusal(existing, es, want.data); why != "" {
			o := failTerminal(v1alpha1.ReasonTargetOwnedElsewhere, "spec.target.name: Secret %q %s", targetName(es), why)
			return &o
		}
	}
	if t := corev1.SecretType(want.secretType); t == corev1.SecretTypeServiceAccountToken || t == corev1.SecretTypeBootstrapToken {
		// Admission refuses these types too (CEL); an object stored before that rule must not get one.
		o := failTerminal(v1alpha1.ReasonInvalidSpec, "spec.target.template.type: %s is not allowed", t)
		return &o
	}
	return tlsKeysMissing(want, existing, policy)
}
