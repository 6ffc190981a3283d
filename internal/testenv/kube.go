package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// Kube is a running kube-apiserver + etcd with our CRDs.
type Kube struct {
	Env    *envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	// Kubeconfig is a file usable by kubectl and helm.
	Kubeconfig string
}

// Scheme returns a scheme with client-go's types and ours.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// StartKube starts envtest with the CRDs from config/crd/bases and stops it when t
// ends. apiServerArgs are appended to envtest's kube-apiserver flags (e.g. an audit log).
func StartKube(t testing.TB, apiServerArgs ...string) *Kube {
	t.Helper()
	RequireIntegration(t, "envtest (kube-apiserver + etcd)")
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Dir(binary(t, "KUBE_APISERVER", "k8s/kube-apiserver"))
		binary(t, "ETCD", "k8s/etcd")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	if len(apiServerArgs) > 0 {
		args := env.ControlPlane.GetAPIServer().Configure()
		for i := 0; i+1 < len(apiServerArgs); i += 2 {
			args.Append(apiServerArgs[i], apiServerArgs[i+1])
		}
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	s := Scheme()
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	k := &Kube{Env: env, Config: cfg, Client: c, Scheme: s}
	k.Kubeconfig = writeKubeconfig(t, env)
	return k
}

func writeKubeconfig(t testing.TB, env *envtest.Environment) string {
	t.Helper()
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("envtest user: %v", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Namespace creates a namespace with a generated name and returns it.
func (k *Kube) Namespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{}
	ns.GenerateName = "t-"
	ns.Labels = labels
	if err := k.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// APIServerToken returns a token for ServiceAccount namespace/name with the API
// server's own audience (a TokenRequest without audiences), as a TokenReview
// reviewer needs. The operator refuses to request such tokens for stores; tests
// that configure a backend's Kubernetes auth ask the API server directly.
func (k *Kube) APIServerToken(t testing.TB, namespace, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	secs := int64(3600)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}
	if err := k.Client.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatalf("token for %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}
