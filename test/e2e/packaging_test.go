package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/secretsync/secretsync/internal/testenv"
)

const chartDir = "charts/secretsync"

// helm runs bin/helm (or $HELM) from the repository root with throw-away Helm homes.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm not found at %s: run `make tools` (or set HELM)", bin)
	}
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestHelmLint(t *testing.T) {
	for name, sets := range map[string][]string{
		"defaults":         nil,
		"watch namespace":  {"watchNamespace=team-a"},
		"ha":               {"replicas=3", "concurrent=20", "kubeAPI.qps=50", "kubeAPI.burst=100"},
		"service monitor":  {"metrics.serviceMonitor.enabled=true"},
		"no crds, no rbac": {"crds.install=false", "rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=existing"},
		"verbosity":        {"logLevel=2", "logEncoder=console"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			mustHelm(t, args...)
		})
	}
}

// TestHelmValuesSchemaRejects: values.schema.json turns bad values into an error
// before anything reaches the cluster.
func TestHelmValuesSchemaRejects(t *testing.T) {
	for _, tc := range []struct{ set, wantPath string }{
		{"replicas=-1", "/replicas"},
		{"replicas=one", "/replicas"},
		{"logLevel=verbose", "/logLevel"},
		{"logEncoder=xml", "/logEncoder"},
		{"image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"replcias=2", "replcias"}, // a typo is an unknown top-level key
		{"watchNamespace=Team_A", "/watchNamespace"},
		{"metrics.port=70000", "/metrics/port"},
		{"concurrent=0", "/concurrent"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			for _, cmd := range [][]string{
				{"template", "x", chartDir, "--set", tc.set},
				{"lint", chartDir, "--set", tc.set},
			} {
				out, err := helm(t, cmd...)
				if err == nil {
					t.Fatalf("helm %s accepted %s:\n%s", cmd[0], tc.set, out)
				}
				if !strings.Contains(out, "schema") || !strings.Contains(out, tc.wantPath) {
					t.Errorf("helm %s %s: want a schema error about %s, got:\n%s", cmd[0], tc.set, tc.wantPath, out)
				}
			}
		})
	}
	// A float for an integer, from a values file (--set would make it a string).
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte("replicas: 1.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := helm(t, "template", "x", chartDir, "-f", f); err == nil || !strings.Contains(out, "/replicas") {
		t.Errorf("replicas: 1.5 from a values file: want a schema error, got err=%v\n%s", err, out)
	}
}

// TestHelmInstallUpgradeUninstall installs the chart into a real kube-apiserver (no
// kubelet, so no pod runs: the check is on the objects Helm creates).
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	k := testenv.StartKube(t)
	c := k.Client
	const ns, rel = "secretsync-system", "secretsync"
	kc := "--kubeconfig=" + k.Kubeconfig

	// envtest already installed the CRDs (as a user who applied config/crd would have):
	// --take-ownership lets the release adopt them.
	mustHelm(t, "install", rel, chartDir, kc, "-n", ns, "--create-namespace", "--wait=false", "--take-ownership")

	dep := &appsv1.Deployment{}
	mustGet(t, c, ns, "secretsync", dep)
	if got := *dep.Spec.Replicas; got != 1 {
		t.Errorf("replicas = %d, want 1", got)
	}
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != "secretsync" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext not hardened: %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	sc := ctr.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext not hardened: %+v", sc)
	}
	for _, a := range []string{"--leader-elect=true", "--leader-election-namespace=" + ns,
		"--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--zap-log-level=info"} {
		if !slices.Contains(ctr.Args, a) {
			t.Errorf("args %v lack %s", ctr.Args, a)
		}
	}
	if slices.ContainsFunc(ctr.Args, func(a string) bool { return strings.HasPrefix(a, "--namespace=") }) {
		t.Errorf("args %v: --namespace set without watchNamespace", ctr.Args)
	}
	if ctr.LivenessProbe == nil || ctr.LivenessProbe.HTTPGet == nil || ctr.LivenessProbe.HTTPGet.Path != "/healthz" ||
		ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet == nil || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: liveness %+v readiness %+v", ctr.LivenessProbe, ctr.ReadinessProbe)
	}
	if !slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
	}) {
		t.Errorf("env %v lacks POD_NAMESPACE from metadata.namespace", ctr.Env)
	}
	if ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources: %+v", ctr.Resources)
	}

	mustGet(t, c, ns, "secretsync", &corev1.ServiceAccount{})
	svc := &corev1.Service{}
	mustGet(t, c, ns, "secretsync-metrics", svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].Name != "metrics" {
		t.Errorf("metrics service ports: %+v", svc.Spec.Ports)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, dep.Spec.Selector.MatchLabels) {
		t.Errorf("service selector %v != deployment selector %v", svc.Spec.Selector, dep.Spec.Selector.MatchLabels)
	}

	cr := &rbacv1.ClusterRole{}
	mustGet(t, c, "", "secretsync-manager", cr)
	if want := chartRules(t); !equalRules(cr.Rules, want) {
		t.Errorf("ClusterRole rules differ from files/rbac-rules.yaml:\ngot:  %+v\nwant: %+v", cr.Rules, want)
	}
	crb := &rbacv1.ClusterRoleBinding{}
	mustGet(t, c, "", "secretsync-manager", crb)
	if crb.RoleRef.Name != "secretsync-manager" || len(crb.Subjects) != 1 ||
		crb.Subjects[0].Name != "secretsync" || crb.Subjects[0].Namespace != ns {
		t.Errorf("ClusterRoleBinding: %+v %+v", crb.RoleRef, crb.Subjects)
	}
	le := &rbacv1.Role{}
	mustGet(t, c, ns, "secretsync-leader-election", le)
	if !slices.ContainsFunc(le.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "leases") }) {
		t.Errorf("leader-election Role lacks leases: %+v", le.Rules)
	}
	mustGet(t, c, ns, "secretsync-leader-election", &rbacv1.RoleBinding{})
	mustAbsent(t, c, ns, "secretsync", &policyv1.PodDisruptionBudget{}) // one replica: no PDB

	for _, name := range []string{"secretstores.secretsync.dev", "clustersecretstores.secretsync.dev", "externalsecrets.secretsync.dev"} {
		crd := crdMeta()
		mustGet(t, c, "", name, crd)
		if crd.Annotations["helm.sh/resource-policy"] != "keep" || crd.Annotations["meta.helm.sh/release-name"] != rel {
			t.Errorf("CRD %s annotations %v: want keep policy and release ownership", name, crd.Annotations)
		}
	}

	// Upgrade: HA and one watched namespace.
	createNamespace(t, c, "team-a")
	mustHelm(t, "upgrade", rel, chartDir, kc, "-n", ns, "--wait=false", "--set", "replicas=2", "--set", "watchNamespace=team-a")
	mustGet(t, c, ns, "secretsync", dep)
	if got := *dep.Spec.Replicas; got != 2 {
		t.Errorf("replicas after upgrade = %d, want 2", got)
	}
	if !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--namespace=team-a") {
		t.Errorf("args after upgrade %v lack --namespace=team-a", dep.Spec.Template.Spec.Containers[0].Args)
	}
	pdb := &policyv1.PodDisruptionBudget{}
	mustGet(t, c, ns, "secretsync", pdb)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PDB minAvailable = %v, want 1", pdb.Spec.MinAvailable)
	}
	mustGet(t, c, "", "secretsync-manager", cr)
	for _, r := range cr.Rules {
		for _, res := range r.Resources {
			if !clusterScoped(res) {
				t.Errorf("with watchNamespace the ClusterRole still grants namespaced %q", res)
			}
		}
	}
	for _, n := range []string{"team-a", ns} {
		role := &rbacv1.Role{}
		mustGet(t, c, n, "secretsync-manager", role)
		for _, r := range role.Rules {
			for _, res := range r.Resources {
				if clusterScoped(res) {
					t.Errorf("Role in %s grants cluster-scoped %q", n, res)
				}
			}
		}
		mustGet(t, c, n, "secretsync-manager", &rbacv1.RoleBinding{})
	}

	// A bad value fails the upgrade and changes nothing.
	if out, err := helm(t, "upgrade", rel, chartDir, kc, "-n", ns, "--wait=false", "--set", "replicas=-3"); err == nil {
		t.Errorf("upgrade with replicas=-3 succeeded:\n%s", out)
	}
	mustGet(t, c, ns, "secretsync", dep)
	if got := *dep.Spec.Replicas; got != 2 {
		t.Errorf("replicas after rejected upgrade = %d, want 2", got)
	}

	mustHelm(t, "uninstall", rel, kc, "-n", ns)
	mustAbsent(t, c, ns, "secretsync", &appsv1.Deployment{})
	mustAbsent(t, c, ns, "secretsync", &corev1.ServiceAccount{})
	mustAbsent(t, c, ns, "secretsync-metrics", &corev1.Service{})
	mustAbsent(t, c, "", "secretsync-manager", &rbacv1.ClusterRole{})
	mustAbsent(t, c, "team-a", "secretsync-manager", &rbacv1.Role{})
	mustAbsent(t, c, ns, "secretsync", &policyv1.PodDisruptionBudget{})
	// crds.keep: the CRDs, and so every user object, survive uninstall.
	mustGet(t, c, "", "externalsecrets.secretsync.dev", crdMeta())
}

// TestKustomizeServerSideDryRun: config/default is accepted by a real API server.
func TestKustomizeServerSideDryRun(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml")); err != nil {
		t.Fatalf("config/rbac/role.yaml missing: run `make generate` (%v)", err)
	}
	k := testenv.StartKube(t)
	// Server-side dry-run cannot create the namespace for the objects that go in it.
	createNamespace(t, k.Client, "secretsync-system")
	out, err := kubectl(t, k.Kubeconfig, "apply", "--server-side", "--dry-run=server", "-k", "config/default")
	if err != nil {
		t.Fatalf("kubectl apply --server-side --dry-run=server -k config/default: %v\n%s", err, out)
	}
	for _, want := range []string{
		"deployment.apps/secretsync-controller-manager",
		"serviceaccount/secretsync-controller-manager",
		"clusterrole.rbac.authorization.k8s.io/secretsync-manager",
		"clusterrolebinding.rbac.authorization.k8s.io/secretsync-manager",
		"role.rbac.authorization.k8s.io/secretsync-leader-election",
		"service/secretsync-metrics",
		"customresourcedefinition.apiextensions.k8s.io/externalsecrets.secretsync.dev",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %s:\n%s", want, out)
		}
	}
	// The samples are valid objects too.
	createNamespace(t, k.Client, "samples")
	if out, err := kubectl(t, k.Kubeconfig, "apply", "--server-side", "--dry-run=server", "-n", "samples", "-k", "config/samples"); err != nil {
		t.Fatalf("config/samples: %v\n%s", err, out)
	}
}

// TestChartCRDsInSync: the chart renders exactly the generated CRDs and RBAC rules
// (hack/sync-chart.sh copies them; make verify catches staleness too).
func TestChartCRDsInSync(t *testing.T) {
	root := testenv.RepoRoot()
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if len(bases) == 0 {
		t.Fatal("no CRDs in config/crd/bases")
	}
	for _, b := range bases {
		want, _ := os.ReadFile(b)
		got, err := os.ReadFile(filepath.Join(root, chartDir, "files", "crds", filepath.Base(b)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/files/crds/%s is stale or missing: run `make generate`", chartDir, filepath.Base(b))
		}
	}
	if entries, err := os.ReadDir(filepath.Join(root, chartDir, "crds")); err == nil && len(entries) > 0 {
		t.Errorf("%s/crds/ must stay empty: CRDs are templated from files/crds/ (see templates/crds.yaml)", chartDir)
	}
	out := mustHelm(t, "template", "x", chartDir, "--show-only", "templates/crds.yaml")
	if n := strings.Count(out, "kind: CustomResourceDefinition"); n != len(bases) {
		t.Errorf("chart renders %d CRDs, want %d", n, len(bases))
	}
	out = mustHelm(t, "template", "x", chartDir, "--set", "crds.install=false")
	if strings.Contains(out, "kind: CustomResourceDefinition") {
		t.Error("crds.install=false still renders CRDs")
	}
}

// TestDockerfile: the image build is static, trimmed, distroless and non-root, and
// .dockerignore's allow-list holds every package the binary is built from.
func TestDockerfile(t *testing.T) {
	root := testenv.RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0", "-trimpath",
		"FROM gcr.io/distroless/static:nonroot", "USER 65532:65532", `ENTRYPOINT ["/secretsync"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "main.go")); err != nil {
		t.Skip("main.go not written yet: cannot check the build context")
	}
	allowed := dockerAllowList(t, filepath.Join(root, ".dockerignore"))
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", ".")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v", err)
	}
	for _, dir := range strings.Fields(string(out)) {
		r, _ := filepath.Rel(root, dir)
		top := strings.SplitN(filepath.ToSlash(r), "/", 2)[0]
		if r != "." && !slices.Contains(allowed, top) {
			t.Errorf("the binary imports %s, but .dockerignore keeps %s/ out of the build context", r, top)
		}
	}
}

func dockerAllowList(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var allowed []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); strings.HasPrefix(l, "!") {
			allowed = append(allowed, strings.Trim(l[1:], "/"))
		}
	}
	return allowed
}

func chartRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), chartDir, "files", "rbac-rules.yaml"))
	if err != nil {
		// Not fatal: the rest of the chart is still worth checking.
		t.Errorf("files/rbac-rules.yaml: %v (run `make generate` once controllers carry +kubebuilder:rbac markers)", err)
		return nil
	}
	var f struct {
		Rules []rbacv1.PolicyRule `json:"rules"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Rules
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	norm := func(r []rbacv1.PolicyRule) []rbacv1.PolicyRule {
		if len(r) == 0 {
			return nil
		}
		return r
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// clusterScoped mirrors secretsync.clusterScopedResources in the chart's _helpers.tpl.
func clusterScoped(resource string) bool {
	return slices.Contains([]string{"clustersecretstores", "clustersecretstores/status", "clustersecretstores/finalizers",
		"clusterexternalsecrets", "clusterexternalsecrets/status", "clusterexternalsecrets/finalizers",
		"namespaces", "tokenreviews", "subjectaccessreviews"}, resource)
}

// crdMeta reads only a CRD's metadata (the test scheme has no apiextensions types).
func crdMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	return m
}

func mustGet(t *testing.T, c client.Client, ns, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s/%s: %v", obj, ns, name, err)
	}
}

func mustAbsent(t *testing.T, c client.Client, ns, name string, obj client.Object) {
	t.Helper()
	err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	if err == nil {
		if obj.GetDeletionTimestamp() == nil {
			t.Errorf("%T %s/%s exists, want it absent", obj, ns, name)
		}
		return
	}
	if !apierrors.IsNotFound(err) {
		t.Errorf("get %T %s/%s: %v", obj, ns, name, err)
	}
}

func createNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// TestCRDsHaveNoSchemaDefaults: defaults live in code, never in the CRD schema, where
// the API server would add them to stored objects and GitOps tools would see drift.
func TestCRDsHaveNoSchemaDefaults(t *testing.T) {
	bases, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	if len(bases) == 0 {
		t.Fatal("no CRDs in config/crd/bases")
	}
	for _, b := range bases {
		for _, crd := range decodeManifests(t, b) {
			versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
			for _, v := range versions {
				vm, _ := v.(map[string]any)
				var walk func(path string, n any)
				walk = func(path string, n any) {
					switch n := n.(type) {
					case map[string]any:
						for k, c := range n {
							if k == "default" && !strings.HasSuffix(path, ".properties") {
								t.Errorf("%s: schema default at %s", rel(b), path)
							}
							walk(path+"."+k, c)
						}
					case []any:
						for i, c := range n {
							walk(fmt.Sprintf("%s[%d]", path, i), c)
						}
					}
				}
				walk(fmt.Sprint(vm["name"]), vm["schema"])
			}
		}
	}
}
