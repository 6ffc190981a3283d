package externalsecret

// Rollout of consumers (spec.target.rollout, docs/rotation.md): when the data of an
// existing target Secret changes, the Deployments, StatefulSets and DaemonSets that
// use it are restarted with one pod template annotation patch each, as
// `kubectl rollout restart` does.
//
// The whole feature is here; the reconciler calls it from three hooks: refresh
// (sync.go) after a write that changed the data of an existing Secret, Reconcile
// (controller.go) to put the last restart into the one status patch it makes, and
// setup (setup.go) to run the restart queue and to be woken when a restart is done.
//
// Cost model: nothing happens on a refresh that changed no data, so an unchanged
// round makes 0 workload LISTs and 0 patches. When data did change, the namespace's
// workloads are listed once per kind, uncached (APIReader): a cache of every
// Deployment, StatefulSet and DaemonSet of the cluster (pod templates included) would
// cost memory all the time for an event that happens a few times a day.

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;patch

const (
	// RolloutDelay is how long a restart waits for other Secrets of the same workload
	// to change too (a Vault lease re-issued and an AWS rotation in the same refresh
	// round, two ExternalSecrets refreshed one after the other): all of them give ONE
	// patch. Long enough for one refresh round of a few ExternalSecrets, short enough
	// that pods get new credentials well before an old lease expires.
	RolloutDelay = 5 * time.Second
	// maxRestartedListed bounds status.rollout.restarted (the CRD says 50 too).
	maxRestartedListed = 50
)

// workloadKey names one workload; restarts are queued and coalesced by it.
type workloadKey struct {
	Namespace string
	Kind      v1alpha1.WorkloadKind
	Name      string
}

func (k workloadKey) String() string { return string(k.Kind) + " " + k.Namespace + "/" + k.Name }

// restart is one queued workload restart and why.
type restart struct {
	due     time.Time
	secrets map[string]bool                // the changed Secrets it uses (names, for events)
	owners  map[types.NamespacedName]owner // the ExternalSecrets that asked
}

// owner is an ExternalSecret that queued a restart, and its target Secret.
type owner struct {
	uid    types.UID
	secret string
}

// Rollout discovers, queues, coalesces and performs restarts. It is a manager
// Runnable (Start), so restarts run only on the leader.
type Rollout struct {
	Client    client.Client // patches
	APIReader client.Reader // uncached LIST/GET of workloads, only when data changed
	Recorder  events.EventRecorder
	Clock     clock.Clock // nil: the wall clock
	Delay     time.Duration

	// Lists and Patches count workload LISTs and restart patches (for tests and the bench).
	Lists, Patches atomic.Int64

	mu      sync.Mutex
	pending map[workloadKey]*restart
	reports map[types.NamespacedName]v1alpha1.RolloutStatus // last restart per ExternalSecret
	wake    chan struct{}
	// done receives the ExternalSecrets whose status.rollout changed, so the
	// controller reconciles them and writes it with its usual status patch.
	done chan event.GenericEvent
}

// NewRollout returns a Rollout with the default delay and the wall clock.
func NewRollout(c client.Client, r client.Reader, rec events.EventRecorder) *Rollout {
	return &Rollout{Client: c, APIReader: r, Recorder: rec}
}

func (ro *Rollout) init() {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.pending == nil {
		ro.pending = map[workloadKey]*restart{}
		ro.reports = map[types.NamespacedName]v1alpha1.RolloutStatus{}
		ro.wake = make(chan struct{}, 1)
		ro.done = make(chan event.GenericEvent, 1024)
	}
	if ro.Clock == nil {
		ro.Clock = clock.RealClock{}
	}
	if ro.Delay <= 0 {
		ro.Delay = RolloutDelay
	}
}

// Done is the channel the controller watches (setup.go).
func (ro *Rollout) Done() <-chan event.GenericEvent {
	ro.init()
	return ro.done
}

// shutdownFlush bounds the restarts performed when the operator stops.
const shutdownFlush = 5 * time.Second

// Start runs the restart queue until ctx ends. Restarts still queued then are
// performed at once (within shutdownFlush): the data change is already written and
// the next process would see none, so they would be lost. Only a process killed
// outright loses them (docs/rotation.md).
func (ro *Rollout) Start(ctx context.Context) error {
	ro.init()
	for {
		wait := ro.Delay
		if next, ok := ro.nextDue(); ok {
			wait = max(next.Sub(ro.Clock.Now()), 0)
		}
		t := ro.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			ro.flushAtShutdown()
			return nil
		case <-ro.wake:
		case <-t.C():
		}
		t.Stop()
		ro.Flush(ctx)
	}
}

// flushAtShutdown makes every queued restart due now and performs them, on a
// context of its own: the manager's has ended.
func (ro *Rollout) flushAtShutdown() {
	now := ro.Clock.Now()
	ro.mu.Lock()
	n := len(ro.pending)
	for _, p := range ro.pending {
		p.due = now
	}
	ro.mu.Unlock()
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownFlush)
	defer cancel()
	log.FromContext(ctx).Info("performing queued rollout restarts before stopping", "workloads", n)
	ro.Flush(ctx)
}

// NeedLeaderElection: only the leader restarts workloads.
func (ro *Rollout) NeedLeaderElection() bool { return true }

func (ro *Rollout) nextDue() (time.Time, bool) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	var next time.Time
	for _, p := range ro.pending {
		if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
	}
	return next, !next.IsZero()
}

// dataChanged is refresh's hook: the data of es's existing target Secret changed at
// at. It finds the workloads to restart and queues them; problems are Warning
// events only (the Secret is synced, the ExternalSecret stays Ready).
func (ro *Rollout) dataChanged(ctx context.Context, es *v1alpha1.ExternalSecret, secret string, at time.Time) {
	spec := es.Spec.Target.Rollout
	if spec == nil || (spec.Consumers != v1alpha1.RolloutAuto && len(spec.Targets) == 0) {
		return
	}
	ro.init()
	keys, failures := ro.discover(ctx, es, secret, at)
	for _, f := range failures {
		ro.Recorder.Eventf(es, nil, corev1.EventTypeWarning, v1alpha1.EventRolloutFailed, "Rollout", "%s", f)
	}
	log.FromContext(ctx).V(1).Info("rollout queued", "secret", secret, "workloads", len(keys), "failures", len(failures))
	ro.enqueue(es, secret, keys)
}

// discover returns the workloads to restart for a data change of secret at at:
// Auto's users of the Secret and the explicit targets, minus those opted out and
// those created after the change (they started with the new data).
func (ro *Rollout) discover(ctx context.Context, es *v1alpha1.ExternalSecret, secret string, at time.Time) ([]workloadKey, []string) {
	spec := es.Spec.Target.Rollout
	var keys []workloadKey
	var failures []string
	add := func(kind v1alpha1.WorkloadKind, o client.Object) {
		k := workloadKey{Namespace: es.Namespace, Kind: kind, Name: o.GetName()}
		if restartable(o, at) && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if spec.Consumers == v1alpha1.RolloutAuto {
		for _, kind := range workloadKinds {
			l := newWorkloadList(kind)
			ro.Lists.Add(1)
			if err := ro.APIReader.List(ctx, l, client.InNamespace(es.Namespace)); err != nil {
				failures = append(failures, fmt.Sprintf("spec.target.rollout.consumers: list %ss: %s", kind, apiReason(err)))
				continue
			}
			for _, o := range workloadItems(l) {
				if usesSecret(&podTemplate(o).Spec, secret) {
					add(kind, o)
				}
			}
		}
	}
	for i, t := range spec.Targets {
		o := newWorkload(t.Kind)
		if o == nil {
			continue // admission allows only the three kinds
		}
		err := ro.APIReader.Get(ctx, types.NamespacedName{Namespace: es.Namespace, Name: t.Name}, o)
		switch {
		case apierrors.IsNotFound(err):
			failures = append(failures, fmt.Sprintf("spec.target.rollout.targets[%d]: %s %q not found", i, t.Kind, t.Name))
		case err != nil:
			failures = append(failures, fmt.Sprintf("spec.target.rollout.targets[%d]: get %s %q: %s", i, t.Kind, t.Name, apiReason(err)))
		default:
			add(t.Kind, o)
		}
	}
	return keys, failures
}

// restartable: not opted out, and it existed while the Secret held the old data.
// creationTimestamp has a resolution of one second: a workload created in the
// second of the change is restarted (one restart too many beats a pod with old data).
func restartable(o client.Object, changedAt time.Time) bool {
	if o.GetAnnotations()[v1alpha1.AnnotationRollout] == "false" {
		return false
	}
	return !o.GetCreationTimestamp().After(changedAt)
}

// enqueue adds keys for es's secret; a workload already queued keeps its due time,
// so every change within Delay of the first gives one patch.
func (ro *Rollout) enqueue(es *v1alpha1.ExternalSecret, secret string, keys []workloadKey) {
	if len(keys) == 0 {
		return
	}
	ro.mu.Lock()
	due := ro.Clock.Now().Add(ro.Delay)
	for _, k := range keys {
		p := ro.pending[k]
		if p == nil {
			p = &restart{due: due, secrets: map[string]bool{}, owners: map[types.NamespacedName]owner{}}
			ro.pending[k] = p
		}
		p.secrets[secret] = true
		p.owners[client.ObjectKeyFromObject(es)] = owner{uid: es.UID, secret: secret}
	}
	ro.mu.Unlock()
	select {
	case ro.wake <- struct{}{}:
	default:
	}
}

// Flush performs every restart that is due now.
func (ro *Rollout) Flush(ctx context.Context) {
	ro.init()
	now := ro.Clock.Now()
	ro.mu.Lock()
	due := map[workloadKey]*restart{}
	for k, p := range ro.pending {
		if !p.due.After(now) {
			due[k] = p
			delete(ro.pending, k)
		}
	}
	ro.mu.Unlock()
	if len(due) == 0 {
		return
	}
	restarted := map[types.NamespacedName][]v1alpha1.WorkloadRef{}
	owners := map[types.NamespacedName]owner{}
	for _, k := range sortedWorkloads(due) {
		p := due[k]
		secrets := strings.Join(sortedSet(p.secrets), ", ")
		err := ro.patch(ctx, k, now)
		for es, o := range p.owners {
			owners[es] = o
			if err != nil {
				ro.Recorder.Eventf(esRef(es, o), nil, corev1.EventTypeWarning, v1alpha1.EventRolloutFailed, "Rollout",
					"restart %s for Secret %s: %s", k, o.secret, err)
				continue
			}
			restarted[es] = append(restarted[es], v1alpha1.WorkloadRef{Kind: k.Kind, Name: k.Name})
		}
		if err == nil {
			w := newWorkload(k.Kind)
			w.SetNamespace(k.Namespace)
			w.SetName(k.Name)
			ro.Recorder.Eventf(w, nil, corev1.EventTypeNormal, v1alpha1.EventRolloutRestarted, "Rollout",
				"restarted by secretsync: Secret %s changed", secrets)
		}
	}
	ro.report(ctx, restarted, owners, now)
}

func esRef(es types.NamespacedName, o owner) *v1alpha1.ExternalSecret {
	return &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: es.Namespace, Name: es.Name, UID: o.uid}}
}

// restartedNote names the first few workloads: an event note is bounded (1 KiB).
func restartedNote(secret string, refs []v1alpha1.WorkloadRef) string {
	names := make([]string, 0, 5)
	for _, r := range refs[:min(len(refs), 5)] {
		names = append(names, string(r.Kind)+" "+r.Name)
	}
	more := ""
	if len(refs) > 5 {
		more = fmt.Sprintf(" and %d more", len(refs)-5)
	}
	return fmt.Sprintf("Secret %s changed: restarted %d workload(s): %s%s", secret, len(refs), strings.Join(names, ", "), more)
}

// patch is the restart: one merge patch of the pod template annotation, nothing else.
func (ro *Rollout) patch(ctx context.Context, k workloadKey, now time.Time) error {
	w := newWorkload(k.Kind)
	w.SetNamespace(k.Namespace)
	w.SetName(k.Name)
	body := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`,
		v1alpha1.AnnotationRestartedAt, now.UTC().Format(time.RFC3339))
	ro.Patches.Add(1)
	if err := ro.Client.Patch(ctx, w, client.RawPatch(types.MergePatchType, []byte(body))); err != nil {
		log.FromContext(ctx).Info("rollout restart failed", "workload", k.String(), "reason", apiReason(err))
		return fmt.Errorf("patch: %s", apiReason(err))
	}
	return nil
}

// report events one RolloutRestarted per ExternalSecret, keeps its last restart and
// wakes the controller to write it to status.rollout.
func (ro *Rollout) report(ctx context.Context, restarted map[types.NamespacedName][]v1alpha1.WorkloadRef, owners map[types.NamespacedName]owner, now time.Time) {
	at := metav1.NewTime(now.Truncate(time.Second))
	for es, refs := range restarted {
		ro.Recorder.Eventf(esRef(es, owners[es]), nil, corev1.EventTypeNormal, v1alpha1.EventRolloutRestarted, "Rollout",
			"%s", restartedNote(owners[es].secret, refs))
		if len(refs) > maxRestartedListed {
			refs = refs[:maxRestartedListed]
		}
		ro.mu.Lock()
		ro.reports[es] = v1alpha1.RolloutStatus{LastRestartAt: &at, Restarted: refs}
		ro.mu.Unlock()
		obj := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: es.Namespace, Name: es.Name}}
		select {
		case ro.done <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}

// Status is the reconciler's hook: the last restart of es not yet seen in its
// status (nil: nothing new).
func (ro *Rollout) Status(es *v1alpha1.ExternalSecret) *v1alpha1.RolloutStatus {
	if ro == nil {
		return nil
	}
	ro.mu.Lock()
	defer ro.mu.Unlock()
	st, ok := ro.reports[client.ObjectKeyFromObject(es)]
	if !ok {
		return nil
	}
	return &st
}

// Forget drops what is kept about a deleted ExternalSecret.
func (ro *Rollout) Forget(es types.NamespacedName) {
	if ro == nil {
		return
	}
	ro.mu.Lock()
	defer ro.mu.Unlock()
	delete(ro.reports, es)
}

// rolloutHook is refresh's hook, called when the data of an existing target
// changed. With the feature disabled (--enable-rollout=false) a rollout spec gets a
// Warning instead.
func (r *Reconciler) rolloutHook(ctx context.Context, es *v1alpha1.ExternalSecret) {
	if es.Spec.Target.Rollout == nil {
		return
	}
	if r.Rollout == nil {
		r.Recorder.Eventf(es, nil, corev1.EventTypeWarning, v1alpha1.EventRolloutDisabled, "Rollout",
			"spec.target.rollout: the operator runs with --enable-rollout=false; no workload was restarted")
		return
	}
	r.Rollout.dataChanged(ctx, es, targetName(es), r.Clock.Now())
}

// dataDiffers compares data only: labels and annotations never restart anything.
func dataDiffers(old, updated *corev1.Secret) bool {
	if len(old.Data) != len(updated.Data) {
		return true
	}
	for k, v := range old.Data {
		if w, ok := updated.Data[k]; !ok || !bytes.Equal(v, w) {
			return true
		}
	}
	return false
}

// usesSecret reports whether a pod template uses Secret name through env, envFrom
// (containers and initContainers) or a secret or projected volume.
func usesSecret(spec *corev1.PodSpec, name string) bool {
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil && s.Secret.Name == name {
					return true
				}
			}
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			if containerUses(&c, name) {
				return true
			}
		}
	}
	return false
}

func containerUses(c *corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
			return true
		}
	}
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil && e.SecretRef.Name == name {
			return true
		}
	}
	return false
}

var workloadKinds = []v1alpha1.WorkloadKind{v1alpha1.WorkloadDeployment, v1alpha1.WorkloadStatefulSet, v1alpha1.WorkloadDaemonSet}

func newWorkload(kind v1alpha1.WorkloadKind) client.Object {
	switch kind {
	case v1alpha1.WorkloadDeployment:
		return &appsv1.Deployment{}
	case v1alpha1.WorkloadStatefulSet:
		return &appsv1.StatefulSet{}
	case v1alpha1.WorkloadDaemonSet:
		return &appsv1.DaemonSet{}
	}
	return nil
}

func newWorkloadList(kind v1alpha1.WorkloadKind) client.ObjectList {
	switch kind {
	case v1alpha1.WorkloadStatefulSet:
		return &appsv1.StatefulSetList{}
	case v1alpha1.WorkloadDaemonSet:
		return &appsv1.DaemonSetList{}
	}
	return &appsv1.DeploymentList{}
}

func workloadItems(l client.ObjectList) []client.Object {
	var out []client.Object
	switch l := l.(type) {
	case *appsv1.DeploymentList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *appsv1.StatefulSetList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *appsv1.DaemonSetList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out
}

func podTemplate(o client.Object) *corev1.PodTemplateSpec {
	switch o := o.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	case *appsv1.DaemonSet:
		return &o.Spec.Template
	}
	return &corev1.PodTemplateSpec{}
}

func sortedWorkloads(m map[workloadKey]*restart) []workloadKey {
	keys := make([]workloadKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b workloadKey) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
