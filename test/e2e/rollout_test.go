package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	vaultapi "github.com/hashicorp/vault/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/controllers/externalsecret"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

// rolloutQuiet is how long to watch for a patch that must not come: the restart
// delay plus a few 1 s refreshes.
const rolloutQuiet = externalsecret.RolloutDelay + 3*time.Second

const rolloutPolicy = `
path "secret/*" { capabilities = ["read", "list"] }
path "pki/issue/*" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`

// refShapes are the four ways a pod template uses a Secret (in container c).
var refShapes = map[string]func(spec *corev1.PodSpec, c *corev1.Container, secret string){
	"env": func(_ *corev1.PodSpec, c *corev1.Container, secret string) {
		c.Env = append(c.Env, corev1.EnvVar{Name: "V", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "v"}}})
	},
	"envfrom": func(_ *corev1.PodSpec, c *corev1.Container, secret string) {
		c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}})
	},
	"volume": func(spec *corev1.PodSpec, c *corev1.Container, secret string) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "v-" + secret, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "v-" + secret, MountPath: "/s/" + secret})
	},
	"projected": func(spec *corev1.PodSpec, c *corev1.Container, secret string) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "p-" + secret, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "p-" + secret, MountPath: "/p/" + secret})
	},
}

type rolloutEnv struct {
	kube *testenv.Kube
	emu  *awsemu.Server
	sm   *sm.Client
	ve   *vaultEnv // OpenBao helpers (no child operator)
	reg  *provider.Registry
	op   *Operator
	role struct{ id, secret string }
}

// workload creates kind ns/name (one container, or an initContainer plus one when
// init) using each of secrets through shape, with annotations.
func (e *rolloutEnv) workload(t *testing.T, kind, ns, name, shape string, init bool, annotations map[string]string, secrets ...string) client.Object {
	t.Helper()
	labels := map[string]string{"app": name}
	tpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	c := corev1.Container{Name: "app", Image: "registry.example/app:1"}
	for _, s := range secrets {
		refShapes[shape](&tpl.Spec, &c, s)
	}
	if init {
		tpl.Spec.InitContainers = []corev1.Container{c}
		c = corev1.Container{Name: "main", Image: "registry.example/app:1"}
	}
	tpl.Spec.Containers = []corev1.Container{c}
	om := metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	var o client.Object
	switch kind {
	case "Deployment":
		o = &appsv1.Deployment{ObjectMeta: om, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tpl}}
	case "StatefulSet":
		o = &appsv1.StatefulSet{ObjectMeta: om, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tpl}}
	default:
		o = &appsv1.DaemonSet{ObjectMeta: om, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tpl}}
	}
	must(t, e.kube.Client.Create(context.Background(), o))
	return o
}

// state is a workload's generation and restart annotation.
func (e *rolloutEnv) state(t *testing.T, o client.Object) (int64, string) {
	t.Helper()
	must(t, e.kube.Client.Get(context.Background(), client.ObjectKeyFromObject(o), o))
	var tpl corev1.PodTemplateSpec
	switch o := o.(type) {
	case *appsv1.Deployment:
		tpl = o.Spec.Template
	case *appsv1.StatefulSet:
		tpl = o.Spec.Template
	case *appsv1.DaemonSet:
		tpl = o.Spec.Template
	}
	return o.GetGeneration(), tpl.Annotations[v1alpha1.AnnotationRestartedAt]
}

func (e *rolloutEnv) generation(t *testing.T, o client.Object) int64 {
	g, _ := e.state(t, o)
	return g
}

// expectGenerations fails unless every workload of ws has generation want (waiting up
// to timeout for it; then checking it stays for rolloutQuiet when settle).
func (e *rolloutEnv) expectGenerations(t *testing.T, want int64, settle bool, ws ...client.Object) {
	t.Helper()
	for _, w := range ws {
		Eventually(t, 20*time.Second, fmt.Sprintf("%T %s generation %d", w, w.GetName(), want), func() bool { return e.generation(t, w) >= want })
	}
	if settle {
		LetTimePass(t, rolloutQuiet, "a quiet period in which no restart may happen")
	}
	for _, w := range ws {
		if g, a := e.state(t, w); g != want {
			t.Errorf("%T %s: generation %d (restartedAt %q), want %d", w, w.GetName(), g, a, want)
		}
	}
}

func (e *rolloutEnv) awsStore(t *testing.T, ns string) {
	t.Helper()
	akid, secret := e.emu.StaticCredentials()
	must(t, e.kube.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "aws-creds"},
		StringData: map[string]string{"access-key-id": akid, "secret-access-key": secret}}))
	p := &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: "eu-west-1", Endpoint: e.emu.URL()}
	awsStaticAuth(p)
	e.readyStore(t, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "aws"}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: p}}})
}

func (e *rolloutEnv) vaultStore(t *testing.T, ns string) {
	t.Helper()
	e.ve.secretData(t, ns, "approle", map[string]string{"secret-id": e.role.secret})
	e.readyStore(t, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: e.ve.bao.Addr, Auth: v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{
			Path: "approle-rollout", RoleID: e.role.id, SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}}}}})
}

func (e *rolloutEnv) readyStore(t *testing.T, ss *v1alpha1.SecretStore) {
	t.Helper()
	must(t, e.kube.Client.Create(context.Background(), ss))
	Eventually(t, 30*time.Second, "SecretStore "+ss.Namespace+"/"+ss.Name+" Ready", func() bool {
		_ = e.kube.Client.Get(context.Background(), client.ObjectKeyFromObject(ss), ss)
		return meta.IsStatusConditionTrue(ss.Status.Conditions, v1alpha1.ConditionReady)
	})
}

// es creates ExternalSecret ns/name on store, refreshed every second, restarting Auto's consumers.
func (e *rolloutEnv) es(t *testing.T, ns, name, store string, mutate func(*v1alpha1.ExternalSecret)) {
	t.Helper()
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ExternalSecretSpec{
		SecretStoreRef:  v1alpha1.StoreRef{Name: store},
		RefreshInterval: &metav1.Duration{Duration: time.Second},
		Target:          v1alpha1.Target{Rollout: &v1alpha1.Rollout{Consumers: v1alpha1.RolloutAuto}},
	}}
	mutate(es)
	must(t, e.kube.Client.Create(context.Background(), es))
	WaitESReason(t, e.kube.Client, 30*time.Second, ns, name, v1alpha1.ReasonSynced)
}

func (e *rolloutEnv) putAWS(t *testing.T, name, value string) {
	t.Helper()
	_, err := e.sm.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: awssdk.String(name), SecretString: awssdk.String(value)})
	must(t, err)
}

func (e *rolloutEnv) createAWS(t *testing.T, name, value string) {
	t.Helper()
	_, err := e.sm.CreateSecret(context.Background(), &sm.CreateSecretInput{Name: awssdk.String(name), SecretString: awssdk.String(value)})
	must(t, err)
}

// events are the reasons and notes of the events about obj.
func (e *rolloutEnv) events(t *testing.T, ns, reason, regardingKind, regardingName string) []string {
	t.Helper()
	var l eventsv1.EventList
	must(t, e.kube.Client.List(context.Background(), &l, client.InNamespace(ns)))
	var out []string
	for _, ev := range l.Items {
		if ev.Reason == reason && ev.Regarding.Kind == regardingKind && ev.Regarding.Name == regardingName {
			out = append(out, ev.Note)
		}
	}
	return out
}

func (e *rolloutEnv) restartOperator(t *testing.T) {
	e.op.Stop()
	e.op = StartOperator(t, e.kube, e.reg)
}

func startRolloutEnv(t *testing.T) *rolloutEnv {
	t.Helper()
	e := &rolloutEnv{kube: testenv.StartKube(t)}
	e.emu = awsemu.NewTestServer(t, awsemu.Options{})
	akid, secret := e.emu.StaticCredentials()
	e.sm = sm.NewFromConfig(awssdk.Config{Region: "eu-west-1", BaseEndpoint: awssdk.String(e.emu.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")})
	e.ve = &vaultEnv{kube: e.kube, bao: testenv.StartOpenBao(t)}
	ctx := context.Background()
	vmust(t, e.ve.bao.Client.Sys().PutPolicyWithContext(ctx, "rollout", rolloutPolicy))
	e.ve.enableAuth(t, "approle-rollout", "approle")
	e.ve.write(t, "auth/approle-rollout/role/app", map[string]any{"token_policies": "rollout", "token_ttl": "1h"})
	rid, err := e.ve.bao.Client.Logical().ReadWithContext(ctx, "auth/approle-rollout/role/app/role-id")
	vmust(t, err)
	e.role.id = rid.Data["role_id"].(string)
	e.role.secret = e.ve.write(t, "auth/approle-rollout/role/app/secret-id", nil).Data["secret_id"].(string)
	fast := awsp.Options{MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond}
	e.reg = provider.NewRegistry(secretsmanager.NewWithOptions(fast), vault.New())
	e.op = StartOperator(t, e.kube, e.reg)
	return e
}

func TestRollout(t *testing.T) {
	e := startRolloutEnv(t)
	top := t // an operator restarted in a subtest must outlive it
	kinds := []string{"Deployment", "StatefulSet", "DaemonSet"}

	t.Run("admission: only Deployment, StatefulSet, DaemonSet; consumers Auto or None", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		for name, r := range map[string]v1alpha1.Rollout{
			"kind-job":     {Targets: []v1alpha1.WorkloadRef{{Kind: "Job", Name: "x"}}},
			"no-name":      {Targets: []v1alpha1.WorkloadRef{{Kind: v1alpha1.WorkloadDeployment}}},
			"consumers-on": {Consumers: "Always"},
		} {
			es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ExternalSecretSpec{
				SecretStoreRef: v1alpha1.StoreRef{Name: "aws"}, Target: v1alpha1.Target{Rollout: &r}}}
			if err := e.kube.Client.Create(context.Background(), es); err == nil {
				t.Errorf("%s: accepted %+v", name, r)
			}
		}
	})

	t.Run("Auto: every kind and reference shape, once per AWS rotation; not on first sync, unchanged refresh, operator restart", func(t *testing.T) {
		ns, other := e.kube.Namespace(t, nil), e.kube.Namespace(t, nil)
		e.awsStore(t, ns)
		e.createAWS(t, ns+"/app", "v1")
		var users []client.Object
		for _, kind := range kinds {
			for shape := range refShapes {
				for _, init := range []bool{false, true} {
					name := fmt.Sprintf("%s-%s-%v", kind, shape, init)
					users = append(users, e.workload(t, kind, ns, strToName(name), shape, init, nil, "app"))
				}
			}
		}
		untouched := []client.Object{
			e.workload(t, "Deployment", ns, "uses-another", "envfrom", false, nil, "another"),
			e.workload(t, "Deployment", other, "other-namespace", "envfrom", false, nil, "app"),
			e.workload(t, "StatefulSet", ns, "opted-out", "env", false, map[string]string{v1alpha1.AnnotationRollout: "false"}, "app"),
		}
		e.es(t, ns, "app", "aws", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/app", "v")} })
		all := append(append([]client.Object{}, users...), untouched...)
		e.expectGenerations(t, 1, true, all...) // first sync: nothing restarted

		e.putAWS(t, ns+"/app", "v2")
		e.expectGenerations(t, 2, true, users...) // once each, and unchanged refreshes since: no more
		e.expectGenerations(t, 1, false, untouched...)
		want := fmt.Sprintf("Secret app changed: restarted %d workload(s): ", len(users))
		if got := e.events(t, ns, v1alpha1.EventRolloutRestarted, "ExternalSecret", "app"); len(got) != 1 || !strings.HasPrefix(got[0], want) {
			t.Errorf("RolloutRestarted events on the ExternalSecret: %q, want one %q...", got, want)
		}
		if got := e.events(t, ns, v1alpha1.EventRolloutRestarted, "Deployment", users[0].GetName()); len(got) != 1 {
			t.Errorf("RolloutRestarted events on %s: %q, want 1", users[0].GetName(), got)
		}
		es := &v1alpha1.ExternalSecret{}
		must(t, e.kube.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, es))
		if st := es.Status.Rollout; st == nil || st.LastRestartAt == nil || len(st.Restarted) != len(users) {
			t.Errorf("status.rollout = %+v, want %d workloads", es.Status.Rollout, len(users))
		}

		e.restartOperator(top)
		e.expectGenerations(t, 2, true, users...)
	})

	t.Run("OpenBao KV rotation: each consumer once; operator restart: none", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		e.vaultStore(t, ns)
		e.ve.kvPut(t, ns+"/db", map[string]any{"password": "one"})
		users := []client.Object{
			e.workload(t, "Deployment", ns, "api", "env", false, nil, "db"),
			e.workload(t, "StatefulSet", ns, "worker", "volume", false, nil, "db"),
		}
		e.es(t, ns, "db", "vault", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "v", RemoteRef: &v1alpha1.RemoteRef{Key: ns + "/db", Property: "password"}}}
		})
		e.expectGenerations(t, 1, true, users...)
		e.ve.kvPut(t, ns+"/db", map[string]any{"password": "two"})
		e.expectGenerations(t, 2, true, users...)
		e.restartOperator(top)
		e.expectGenerations(t, 2, true, users...)
	})

	t.Run("two ExternalSecrets of one Deployment change in the same refresh: one patch", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		e.awsStore(t, ns)
		e.createAWS(t, ns+"/a", "1")
		e.createAWS(t, ns+"/b", "1")
		d := e.workload(t, "Deployment", ns, "both", "envfrom", false, nil, "a", "b")
		for _, name := range []string{"a", "b"} {
			e.es(t, ns, name, "aws", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/"+name, "v")} })
		}
		e.expectGenerations(t, 1, true, d)
		e.putAWS(t, ns+"/a", "2")
		e.putAWS(t, ns+"/b", "2")
		e.expectGenerations(t, 2, true, d)
	})

	t.Run("explicit target missing: Warning RolloutFailed, the ExternalSecret stays Ready; a label-only change restarts nothing", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		e.awsStore(t, ns)
		e.createAWS(t, ns+"/app", "1")
		d := e.workload(t, "Deployment", ns, "api", "env", false, nil, "app")
		e.es(t, ns, "app", "aws", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/app", "v")}
			es.Spec.Target.Rollout.Targets = []v1alpha1.WorkloadRef{{Kind: v1alpha1.WorkloadDeployment, Name: "missing"}}
		})
		es := &v1alpha1.ExternalSecret{}
		must(t, e.kube.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, es))
		es.Spec.Target.Template = &v1alpha1.Template{MergePolicy: v1alpha1.TemplateMerge, Metadata: v1alpha1.TemplateMetadata{Labels: map[string]string{"team": "a"}}}
		must(t, e.kube.Client.Update(context.Background(), es))
		WaitESReason(t, e.kube.Client, 30*time.Second, ns, "app", v1alpha1.ReasonSynced)
		Eventually(t, 10*time.Second, "label on the Secret", func() bool {
			s := GetSecret(t, e.kube.Client, ns, "app")
			return s != nil && s.Labels["team"] == "a"
		})
		e.expectGenerations(t, 1, true, d)

		e.putAWS(t, ns+"/app", "2")
		Eventually(t, 20*time.Second, "Warning RolloutFailed", func() bool {
			return len(e.events(t, ns, v1alpha1.EventRolloutFailed, "ExternalSecret", "app")) > 0
		})
		e.expectGenerations(t, 2, false, d)
		WaitESReason(t, e.kube.Client, 5*time.Second, ns, "app", v1alpha1.ReasonSynced)
	})

	t.Run("OpenBao dynamic secret without a renewable lease (PKI) re-issued: consumers restarted once", func(t *testing.T) {
		ctx := context.Background()
		vmust(t, e.ve.bao.Client.Sys().MountWithContext(ctx, "pki", &vaultapi.MountInput{Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "87600h"}}))
		e.ve.write(t, "pki/root/generate/internal", map[string]any{"common_name": "rollout test CA", "ttl": "8760h"})
		e.ve.write(t, "pki/roles/app", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "1h", "generate_lease": true})
		ns := e.kube.Namespace(t, nil)
		e.vaultStore(t, ns)
		d := e.workload(t, "Deployment", ns, "web", "volume", false, nil, "tls")
		e.es(t, ns, "tls", "vault", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Hour} // only the lease wakes it
			es.Spec.DataFrom = []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "pki/issue/app", Method: "POST",
				Parameters: map[string]string{"common_name": "web.example.com", "ttl": "40s"}, RenewPercent: 25}}}
		})
		first := getESLeases(t, e.kube.Client, ns, "tls")
		if len(first) != 1 || first[0].Renewable {
			t.Fatalf("status.leases = %+v, want one lease that is not renewable", first)
		}
		e.expectGenerations(t, 1, false, d)
		Eventually(t, 30*time.Second, "the certificate re-issued", func() bool {
			l := getESLeases(t, e.kube.Client, ns, "tls")
			return len(l) == 1 && l[0].ID != first[0].ID
		})
		second := getESLeases(t, e.kube.Client, ns, "tls")[0]
		// The next re-issue is due 10 s after this one; look before it.
		e.expectGenerations(t, 2, false, d)
		LetTimePass(t, 2*time.Second, "a restart, if one were queued, would happen now")
		if l := getESLeases(t, e.kube.Client, ns, "tls"); len(l) == 1 && l[0].ID == second.ID {
			if g := e.generation(t, d); g != 2 {
				t.Fatalf("generation %d after one re-issue, want 2", g)
			}
		}
	})
}

func getESLeases(t *testing.T, c client.Client, ns, name string) []v1alpha1.LeaseStatus {
	t.Helper()
	es := &v1alpha1.ExternalSecret{}
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es))
	return es.Status.Leases
}

// strToName lowercases a workload name.
func strToName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// TestRolloutChartValue: rollout.enabled (default true) grants get/list/patch on the
// three workload kinds and runs the operator with --enable-rollout=true; false drops
// the rules (ClusterRole and, with watchNamespace, the Roles) and passes false.
func TestRolloutChartValue(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		wantRules bool
		wantFlag  string
	}{
		{"default", nil, true, "--enable-rollout=true"},
		{"rollout.enabled=false", []string{"--set", "rollout.enabled=false"}, false, "--enable-rollout=false"},
		{"rollout.enabled=false with watchNamespace", []string{"--set", "rollout.enabled=false", "--set", "watchNamespace=team"}, false, "--enable-rollout=false"},
		{"watchNamespace", []string{"--set", "watchNamespace=team"}, true, "--enable-rollout=true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := mustHelm(t, append([]string{"template", "x", chartDir}, c.args...)...)
			rules := 0
			for _, doc := range strings.Split(out, "\n---") {
				var o struct {
					Kind  string `json:"kind"`
					Rules []struct {
						APIGroups []string `json:"apiGroups"`
						Resources []string `json:"resources"`
						Verbs     []string `json:"verbs"`
					} `json:"rules"`
				}
				if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
					t.Fatalf("decode: %v", err)
				}
				for _, r := range o.Rules {
					if slices.Contains(r.APIGroups, "apps") {
						rules++
						if !slices.Equal(r.Verbs, []string{"get", "list", "patch"}) || len(r.Resources) != 3 {
							t.Errorf("%s apps rule %+v, want get/list/patch on 3 kinds", o.Kind, r)
						}
					}
				}
			}
			if (rules > 0) != c.wantRules {
				t.Errorf("%d apps rules, want some: %v", rules, c.wantRules)
			}
			if !strings.Contains(out, c.wantFlag) {
				t.Errorf("operator args lack %s", c.wantFlag)
			}
		})
	}
}
