package externalsecret

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// shapes are the four ways a pod template uses a Secret, in container c.
var shapes = map[string]func(spec *corev1.PodSpec, c *corev1.Container, secret string){
	"env secretKeyRef": func(_ *corev1.PodSpec, c *corev1.Container, secret string) {
		c.Env = append(c.Env, corev1.EnvVar{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "pw"}}})
	},
	"envFrom secretRef": func(_ *corev1.PodSpec, c *corev1.Container, secret string) {
		c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}})
	},
	"secret volume": func(spec *corev1.PodSpec, c *corev1.Container, secret string) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "s", MountPath: "/s"})
	},
	"projected volume": func(spec *corev1.PodSpec, c *corev1.Container, secret string) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}},
			}}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "p", MountPath: "/p"})
	},
}

// workload builds a kind of workload named name whose container (or initContainer)
// uses secret through shape.
func workload(kind v1alpha1.WorkloadKind, name, shape, secret string, init bool) client.Object {
	o := newWorkload(kind)
	o.SetNamespace(testNS)
	o.SetName(name)
	spec := &podTemplate(o).Spec
	c := corev1.Container{Name: "app", Image: "app"}
	if shape != "" {
		shapes[shape](spec, &c, secret)
	}
	if init {
		spec.InitContainers = append(spec.InitContainers, c)
		spec.Containers = append(spec.Containers, corev1.Container{Name: "main", Image: "app"})
	} else {
		spec.Containers = append(spec.Containers, c)
	}
	return o
}

func TestUsesSecret(t *testing.T) {
	for _, kind := range workloadKinds {
		for shape := range shapes {
			for _, init := range []bool{false, true} {
				where := "containers"
				if init {
					where = "initContainers"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", kind, shape, where), func(t *testing.T) {
					o := workload(kind, "w", shape, "db", init)
					if !usesSecret(&podTemplate(o).Spec, "db") {
						t.Errorf("%s using Secret db through %s in %s: not matched", kind, shape, where)
					}
					if usesSecret(&podTemplate(o).Spec, "other") {
						t.Errorf("%s using Secret db through %s in %s: matched Secret other", kind, shape, where)
					}
				})
			}
		}
	}
	t.Run("configMap of the same name is not the Secret", func(t *testing.T) {
		spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "c", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}},
			Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}}
		if usesSecret(spec, "db") {
			t.Error("matched a ConfigMap")
		}
	})
}

func TestDataDiffers(t *testing.T) {
	base := &corev1.Secret{Data: map[string][]byte{"a": []byte("1")}, ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"l": "1"}}}
	cases := []struct {
		name string
		edit func(s *corev1.Secret)
		want bool
	}{
		{"nothing", func(*corev1.Secret) {}, false},
		{"labels and annotations only", func(s *corev1.Secret) {
			s.Labels = map[string]string{"l": "2"}
			s.Annotations = map[string]string{"x": "y"}
		}, false},
		{"value", func(s *corev1.Secret) { s.Data = map[string][]byte{"a": []byte("2")} }, true},
		{"key added", func(s *corev1.Secret) { s.Data = map[string][]byte{"a": []byte("1"), "b": nil} }, true},
		{"key renamed", func(s *corev1.Secret) { s.Data = map[string][]byte{"b": []byte("1")} }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base.DeepCopy()
			c.edit(s)
			if got := dataDiffers(base, s); got != c.want {
				t.Fatalf("dataDiffers = %v, want %v", got, c.want)
			}
		})
	}
}

// rolloutES is kvES with spec.target.rollout.
func rolloutES(name, key string, r v1alpha1.Rollout) *v1alpha1.ExternalSecret {
	es := kvES(name, key)
	es.Spec.Target.Rollout = &r
	return es
}

func (e *env) withRollout() *Rollout {
	e.r.Rollout = &Rollout{Client: e.c, APIReader: e.c, Recorder: e.rec, Clock: e.clock}
	e.r.Rollout.init()
	return e.r.Rollout
}

func (e *env) mustReconcile(name string) {
	e.t.Helper()
	if _, err := e.reconcile(name); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) restartedAt(kind v1alpha1.WorkloadKind, name string) string {
	e.t.Helper()
	o := newWorkload(kind)
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: name}, o); err != nil {
		e.t.Fatal(err)
	}
	return podTemplate(o).Annotations[v1alpha1.AnnotationRestartedAt]
}

func aged(o client.Object, created time.Time) client.Object {
	o.SetCreationTimestamp(metav1.NewTime(created))
	return o
}

// TestRolloutCoalesces: two Secrets of one Deployment change a few seconds apart →
// one patch after RolloutDelay; first sync, opt-out, a workload created after the
// change, another Secret's user → none.
func TestRolloutCoalesces(t *testing.T) {
	auto := v1alpha1.Rollout{Consumers: v1alpha1.RolloutAuto}
	now := time.Now().Truncate(time.Second)
	old := now.Add(-time.Hour)
	both := workload(v1alpha1.WorkloadDeployment, "both", "env secretKeyRef", "a", false)
	shapes["secret volume"](&podTemplate(both).Spec, &podTemplate(both).Spec.Containers[0], "b")
	optOut := workload(v1alpha1.WorkloadStatefulSet, "opted-out", "envFrom secretRef", "a", false)
	optOut.SetAnnotations(map[string]string{v1alpha1.AnnotationRollout: "false"})
	e := newEnv(t, rolloutES("a", "ka", auto), rolloutES("b", "kb", auto),
		aged(both, old), aged(optOut, old),
		aged(workload(v1alpha1.WorkloadDaemonSet, "only-a", "projected volume", "a", true), old),
		aged(workload(v1alpha1.WorkloadDeployment, "other", "env secretKeyRef", "c", false), old),
		aged(workload(v1alpha1.WorkloadDeployment, "newer", "env secretKeyRef", "a", false), now.Add(time.Hour)))
	ro := e.withRollout()
	e.backend.Put("ka", []byte("1"), nil)
	e.backend.Put("kb", []byte("1"), nil)
	e.mustReconcile("a")
	e.mustReconcile("b")
	e.clock.Step(time.Minute)
	ro.Flush(context.Background())
	if n := ro.Patches.Load() + ro.Lists.Load(); n != 0 {
		t.Fatalf("first sync: %d workload LISTs and patches, want 0", n)
	}

	e.backend.Put("ka", []byte("2"), nil)
	e.backend.Put("kb", []byte("2"), nil)
	e.forceSync("a", "1")
	e.mustReconcile("a")
	e.clock.Step(2 * time.Second)
	e.forceSync("b", "1")
	e.mustReconcile("b")
	if got := ro.Lists.Load(); got != 6 {
		t.Fatalf("%d workload LISTs for two data changes, want 6 (one per kind each)", got)
	}
	e.clock.Step(RolloutDelay - 2*time.Second - time.Millisecond)
	ro.Flush(context.Background())
	if n := ro.Patches.Load(); n != 0 {
		t.Fatalf("%d patches before RolloutDelay passed, want 0", n)
	}
	e.clock.Step(time.Millisecond)
	ro.Flush(context.Background())
	if n := ro.Patches.Load(); n != 2 {
		t.Fatalf("%d patches, want 2 (both, only-a)", n)
	}
	want := e.clock.Now().UTC().Format(time.RFC3339)
	if got := e.restartedAt(v1alpha1.WorkloadDeployment, "both"); got != want {
		t.Errorf("both: restartedAt %q, want %q", got, want)
	}
	if got := e.restartedAt(v1alpha1.WorkloadDaemonSet, "only-a"); got != want {
		t.Errorf("only-a: restartedAt %q, want %q", got, want)
	}
	for _, w := range []struct {
		kind v1alpha1.WorkloadKind
		name string
	}{{v1alpha1.WorkloadStatefulSet, "opted-out"}, {v1alpha1.WorkloadDeployment, "other"}, {v1alpha1.WorkloadDeployment, "newer"}} {
		if got := e.restartedAt(w.kind, w.name); got != "" {
			t.Errorf("%s %s restarted (%q), want untouched", w.kind, w.name, got)
		}
	}
	evs := e.events()
	if !hasEvent(evs, "Normal RolloutRestarted Secret a changed: restarted 2 workload(s): DaemonSet only-a, Deployment both") ||
		!hasEvent(evs, "Normal RolloutRestarted Secret b changed: restarted 1 workload(s): Deployment both") ||
		!hasEvent(evs, "Normal RolloutRestarted restarted by secretsync: Secret a, b changed") {
		t.Errorf("events %q: want RolloutRestarted on each ExternalSecret and on the workload naming both Secrets", evs)
	}

	// The controller is woken for both ExternalSecrets and writes status.rollout.
	for range 2 {
		ev := <-ro.Done()
		e.mustReconcile(ev.Object.GetName())
	}
	st := e.es("a").Status.Rollout
	if st == nil || st.LastRestartAt == nil || len(st.Restarted) != 2 || st.Restarted[0].Name != "only-a" || st.Restarted[1].Name != "both" {
		t.Fatalf("a: status.rollout = %+v", st)
	}
	if st := e.es("b").Status.Rollout; st == nil || len(st.Restarted) != 1 || st.Restarted[0] != (v1alpha1.WorkloadRef{Kind: v1alpha1.WorkloadDeployment, Name: "both"}) {
		t.Fatalf("b: status.rollout = %+v", st)
	}

	// An unchanged refresh: nothing listed, nothing queued.
	lists := ro.Lists.Load()
	e.forceSync("a", "2")
	e.mustReconcile("a")
	e.clock.Step(time.Minute)
	ro.Flush(context.Background())
	if ro.Lists.Load() != lists || ro.Patches.Load() != 2 {
		t.Fatalf("unchanged refresh: LISTs %d -> %d, patches %d", lists, ro.Lists.Load(), ro.Patches.Load())
	}
}

func TestRolloutExplicitTargets(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	explicit := v1alpha1.Rollout{Targets: []v1alpha1.WorkloadRef{
		{Kind: v1alpha1.WorkloadStatefulSet, Name: "db-reader"}, // does not use the Secret: restarted anyway
		{Kind: v1alpha1.WorkloadDeployment, Name: "missing"},
		{Kind: v1alpha1.WorkloadDaemonSet, Name: "opted-out"},
	}}
	optOut := workload(v1alpha1.WorkloadDaemonSet, "opted-out", "env secretKeyRef", "app", false)
	optOut.SetAnnotations(map[string]string{v1alpha1.AnnotationRollout: "false"})
	e := newEnv(t, rolloutES("app", "k", explicit), aged(workload(v1alpha1.WorkloadStatefulSet, "db-reader", "", "", false), old), aged(optOut, old))
	ro := e.withRollout()
	e.backend.Put("k", []byte("1"), nil)
	e.mustReconcile("app")
	e.backend.Put("k", []byte("2"), nil)
	e.forceSync("app", "1")
	e.mustReconcile("app")
	if c := e.ready("app"); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready = %+v, want True despite the missing target", c)
	}
	if evs := e.events(); !hasEvent(evs, `Warning RolloutFailed spec.target.rollout.targets[1]: Deployment "missing" not found`) {
		t.Fatalf("events %q: want RolloutFailed for the missing target", evs)
	}
	if ro.Lists.Load() != 0 {
		t.Fatalf("%d LISTs with consumers None, want 0", ro.Lists.Load())
	}
	e.clock.Step(RolloutDelay)
	ro.Flush(context.Background())
	if ro.Patches.Load() != 1 || e.restartedAt(v1alpha1.WorkloadStatefulSet, "db-reader") == "" || e.restartedAt(v1alpha1.WorkloadDaemonSet, "opted-out") != "" {
		t.Fatalf("patches %d: want db-reader restarted, opted-out not", ro.Patches.Load())
	}
}

func TestRolloutDisabledWarns(t *testing.T) {
	e := newEnv(t, rolloutES("app", "k", v1alpha1.Rollout{Consumers: v1alpha1.RolloutAuto}),
		aged(workload(v1alpha1.WorkloadDeployment, "d", "env secretKeyRef", "app", false), time.Now().Add(-time.Hour)))
	e.backend.Put("k", []byte("1"), nil)
	e.mustReconcile("app")
	e.backend.Put("k", []byte("2"), nil)
	e.forceSync("app", "1")
	e.mustReconcile("app")
	if evs := e.events(); !hasEvent(evs, "Warning RolloutDisabled") {
		t.Fatalf("events %q: want RolloutDisabled", evs)
	}
	if c := e.ready("app"); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready = %+v", c)
	}
	if got := e.restartedAt(v1alpha1.WorkloadDeployment, "d"); got != "" {
		t.Fatalf("restarted with the feature disabled")
	}
}

// TestRolloutRunnable: the manager Runnable patches once the fake clock reaches the
// restart's due time, not before, and stops with its context.
func TestRolloutRunnable(t *testing.T) {
	e, ro, cancel, stopped := runningRollout(t)
	changed := e.clock.Now()
	// Step one second at a time; the loop's timer is on the fake clock. The real-time
	// wait only gives the loop's goroutine a chance to run between steps.
	for range 20 {
		select {
		case ev := <-ro.Done():
			if ev.Object.GetName() != "a" || ro.Patches.Load() != 1 {
				t.Fatalf("woke %s after %d patches, want a after 1", ev.Object.GetName(), ro.Patches.Load())
			}
			if waited := e.clock.Now().Sub(changed); waited < RolloutDelay {
				t.Fatalf("restarted %v after the change, before RolloutDelay", waited)
			}
			cancel()
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			return
		case <-time.After(20 * time.Millisecond):
			e.clock.Step(time.Second)
		}
	}
	t.Fatalf("no restart after 20 fake seconds (patches %d)", ro.Patches.Load())
}

// TestRolloutFlushedAtShutdown: a restart still queued when the operator stops is
// performed before Start returns (the next process would not know of it).
func TestRolloutFlushedAtShutdown(t *testing.T) {
	e, ro, cancel, stopped := runningRollout(t) // the restart is due RolloutDelay later on the fake clock
	if ro.Patches.Load() != 0 {
		t.Fatal("restarted before the delay")
	}
	cancel() // the fake clock never reaches the due time
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if n := ro.Patches.Load(); n != 1 {
		t.Fatalf("%d restart patches at shutdown, want 1", n)
	}
	if e.restartedAt(v1alpha1.WorkloadDeployment, "d") == "" {
		t.Fatal("the workload was not restarted")
	}
}

// runningRollout starts the restart queue, syncs ExternalSecret a (its target used
// by Deployment d) and changes its data once: one restart is queued. cancel stops the
// queue; stopped receives Start's result.
func runningRollout(t *testing.T) (*env, *Rollout, context.CancelFunc, chan error) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	e := newEnv(t, rolloutES("a", "ka", v1alpha1.Rollout{Consumers: v1alpha1.RolloutAuto}),
		aged(workload(v1alpha1.WorkloadDeployment, "d", "envFrom secretRef", "a", false), old))
	ro := e.withRollout()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- ro.Start(ctx) }()
	e.backend.Put("ka", []byte("1"), nil)
	e.mustReconcile("a")
	e.backend.Put("ka", []byte("2"), nil)
	e.forceSync("a", "1")
	e.mustReconcile("a")
	return e, ro, cancel, stopped
}
