package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/cli"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

// cliRun runs the kubectl plugin against kubeconfig and checks that no canary
// (secret value) appears in anything it printed.
type cliRun struct {
	t          *testing.T
	kubeconfig string
	canaries   []string
}

func (r cliRun) run(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	code = cli.Run(ctx, append([]string{"--kubeconfig", r.kubeconfig}, args...), nil, &out, &errOut)
	for _, c := range r.canaries {
		if strings.Contains(out.String()+errOut.String(), c) {
			r.t.Fatalf("kubectl secretsync %v printed a secret value (%q):\n%s\n%s", args, c, out.String(), errOut.String())
		}
	}
	return out.String(), errOut.String(), code
}

func (r cliRun) want(code int, args ...string) string {
	r.t.Helper()
	out, errOut, got := r.run(args...)
	if got != code {
		r.t.Fatalf("kubectl secretsync %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, got, code, out, errOut)
	}
	return out
}

func (r cliRun) json(v any, code int, args ...string) {
	r.t.Helper()
	out := r.want(code, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("%v: not JSON: %v\n%s", args, err, out)
	}
}

func contains(t *testing.T, what, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("%s: output lacks %q:\n%s", what, s, out)
		}
	}
}

// TestCLI runs explain, status and sync against envtest with the real operator,
// the AWS emulator and OpenBao: a Ready ExternalSecret, one admitted by a
// ClusterSecretStore condition, one NamespaceNotAllowed, one KeyNotFound and one
// with a PKI certificate in status.leases. Outputs are asserted as tables and as
// JSON, and no secret value (canary) appears in any of them.
func TestCLI(t *testing.T) {
	kube := testenv.StartKube(t)
	emu := awsemu.NewTestServer(t, awsemu.Options{})
	bao := testenv.StartOpenBao(t)
	fast := awsp.Options{MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond}
	StartOperator(t, kube, provider.NewRegistry(secretsmanager.NewWithOptions(fast), parameterstore.NewWithOptions(fast), vault.New()))
	c, ctx := kube.Client, context.Background()

	const canary = "canary-Zq8v1x-never-print"
	akid, secretKey := emu.StaticCredentials()
	admin := sm.NewFromConfig(awssdk.Config{Region: "eu-west-1", BaseEndpoint: awssdk.String(emu.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secretKey, "")})
	created, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: awssdk.String("cli/db"),
		SecretString: awssdk.String(`{"username":"app","password":"` + canary + `"}`)})
	must(t, err)
	version := awssdk.ToString(created.VersionId)

	ns := kube.Namespace(t, map[string]string{"cli": "yes"})
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "aws-creds"},
		StringData: map[string]string{"access-key-id": akid, "secret-access-key": secretKey}}))
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bao-token"},
		StringData: map[string]string{"token": bao.RootToken}}))
	awsAuth := func(refNS string) *v1alpha1.AWSAuth {
		return &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
			AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "access-key-id", Namespace: refNS},
			SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "secret-access-key", Namespace: refNS}}}
	}
	smProvider := func(refNS string) v1alpha1.StoreProvider {
		return v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: "eu-west-1",
			Endpoint: emu.URL(), Auth: awsAuth(refNS)}}
	}
	must(t, c.Create(ctx, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sm"},
		Spec: v1alpha1.SecretStoreSpec{Provider: smProvider("")}}))
	must(t, c.Create(ctx, &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: ns + "-shared"},
		Spec: v1alpha1.SecretStoreSpec{Provider: smProvider(ns), Conditions: []v1alpha1.StoreCondition{
			{Namespaces: []string{"someone-else"}},
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"cli": "yes"}}, AllowedKeys: []string{"cli/.*"}},
		}}}))
	must(t, c.Create(ctx, &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: ns + "-closed"},
		Spec: v1alpha1.SecretStoreSpec{Provider: smProvider(ns), Conditions: []v1alpha1.StoreCondition{{Namespaces: []string{"someone-else"}}}}}))
	must(t, c.Create(ctx, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bao"},
		Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: bao.Addr,
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "bao-token", Key: "token"}}}}}}))
	for _, p := range []struct {
		path string
		data map[string]any
	}{
		{"sys/mounts/pki", map[string]any{"type": "pki", "config": map[string]any{"max_lease_ttl": "1h"}}},
		{"pki/root/generate/internal", map[string]any{"common_name": "cli test CA", "ttl": "1h"}},
		{"pki/roles/web", map[string]any{"allowed_domains": "example.test", "allow_subdomains": true, "max_ttl": "1h"}},
	} {
		if _, err := bao.Client.Logical().WriteWithContext(ctx, p.path, p.data); err != nil {
			t.Fatalf("bao write %s: %v", p.path, err)
		}
	}

	es := func(name string, ref v1alpha1.StoreRef, mutate func(*v1alpha1.ExternalSecretSpec)) {
		spec := v1alpha1.ExternalSecretSpec{SecretStoreRef: ref, RefreshInterval: &metav1.Duration{Duration: time.Hour}}
		mutate(&spec)
		must(t, c.Create(ctx, &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}))
	}
	password := func(s *v1alpha1.ExternalSecretSpec) {
		s.Data = []v1alpha1.DataItem{{SecretKey: "password", RemoteRef: &v1alpha1.RemoteRef{Key: "cli/db", Property: "password"}}}
	}
	es("ready", v1alpha1.StoreRef{Name: "sm"}, password)
	es("viacss", v1alpha1.StoreRef{Name: ns + "-shared", Kind: v1alpha1.KindClusterSecretStore}, password)
	es("denied", v1alpha1.StoreRef{Name: ns + "-closed", Kind: v1alpha1.KindClusterSecretStore}, password)
	es("missing", v1alpha1.StoreRef{Name: "sm"}, func(s *v1alpha1.ExternalSecretSpec) {
		s.Data = []v1alpha1.DataItem{{SecretKey: "x", RemoteRef: &v1alpha1.RemoteRef{Key: "cli/nope"}}}
	})
	es("cert", v1alpha1.StoreRef{Name: "bao"}, func(s *v1alpha1.ExternalSecretSpec) {
		s.DataFrom = []v1alpha1.DataFromSource{{
			Dynamic: &v1alpha1.DynamicRef{Path: "pki/issue/web", Method: "POST",
				Parameters: map[string]string{"common_name": "app.example.test", "ttl": "30m"}},
			Rewrite: []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "_", Target: "-"}}},
		}}
	})
	WaitESReason(t, c, 60*time.Second, ns, "ready", v1alpha1.ReasonSynced)
	WaitESReason(t, c, 60*time.Second, ns, "viacss", v1alpha1.ReasonSynced)
	WaitESReason(t, c, 60*time.Second, ns, "denied", v1alpha1.ReasonNamespaceNotAllowed)
	WaitESReason(t, c, 60*time.Second, ns, "missing", v1alpha1.ReasonKeyNotFound)
	WaitESReason(t, c, 60*time.Second, ns, "cert", v1alpha1.ReasonSynced)
	certSecret := GetSecret(t, c, ns, "cert")
	r := cliRun{t: t, kubeconfig: kube.Kubeconfig, canaries: []string{canary, "PRIVATE KEY", string(certSecret.Data["private-key"])[30:90]}}

	t.Run("explain Ready", func(t *testing.T) {
		r.t = t
		out := r.want(cli.ExitOK, "explain", "-n", ns, "ready")
		contains(t, "table", out, "True  Synced", `SecretStore "sm"`, "AWS SecretsManager", "cli/db", "password", version, "next 20", "every 1h0m0s")
		var x cli.Explanation
		r.json(&x, cli.ExitOK, "explain", "-n", ns, "ready")
		if x.Ready.Reason != v1alpha1.ReasonSynced || len(x.Sources) != 1 || x.Sources[0].Version != version || x.NextRefresh == nil || x.SyncedAt == nil {
			t.Fatalf("explanation %+v", x)
		}
		// The slot after a refresh is at least half an interval away (refresh.go
		// nextSlot), so the next one is within 1.5 intervals of now.
		if d := time.Until(*x.NextRefresh); d <= 0 || d > 3*time.Hour/2 {
			t.Fatalf("next refresh in %s, want within 1.5 × the 1h interval", d)
		}
		if len(x.Targets) != 1 || x.Targets[0].SecretKey != "password" || x.Targets[0].From != "cli/db" || x.Targets[0].Property != "password" {
			t.Fatalf("targets %+v", x.Targets)
		}
	})
	t.Run("explain admitted by a ClusterSecretStore condition", func(t *testing.T) {
		r.t = t
		out := r.want(cli.ExitOK, "explain", "-n", ns, "viacss")
		contains(t, "table", out, "yes, by conditions[1]", "conditions[1]")
		var x cli.Explanation
		r.json(&x, cli.ExitOK, "explain", "-n", ns, "viacss")
		if x.Store.Admitted == nil || !*x.Store.Admitted || len(x.Store.AdmittedBy) != 1 || x.Store.AdmittedBy[0] != 1 ||
			len(x.Keys) != 1 || !x.Keys[0].Allowed || x.Keys[0].AllowedBy != "conditions[1]" {
			t.Fatalf("store %+v keys %+v", x.Store, x.Keys)
		}
	})
	t.Run("explain NamespaceNotAllowed", func(t *testing.T) {
		r.t = t
		out := r.want(cli.ExitProblem, "explain", "-n", ns, "denied")
		contains(t, "table", out, "NamespaceNotAllowed", "NO: no condition admits namespace "+ns, "Fix:", "conditions[].namespaces")
		var x cli.Explanation
		r.json(&x, cli.ExitProblem, "explain", "-n", ns, "denied")
		if x.Store.Admitted == nil || *x.Store.Admitted || x.Ready.Reason != v1alpha1.ReasonNamespaceNotAllowed || x.Ready.Fix == "" {
			t.Fatalf("explanation %+v", x)
		}
	})
	t.Run("explain KeyNotFound", func(t *testing.T) {
		r.t = t
		out := r.want(cli.ExitProblem, "explain", "-n", ns, "missing")
		contains(t, "table", out, "False  KeyNotFound", "cli/nope", "check the key's spelling")
	})
	t.Run("explain lease", func(t *testing.T) {
		r.t = t
		var x cli.Explanation
		r.json(&x, cli.ExitOK, "explain", "-n", ns, "cert")
		if len(x.Leases) == 0 || x.Leases[0].ID == "" || time.Until(x.Leases[0].ExpiresAt) < 20*time.Minute {
			t.Fatalf("leases %+v", x.Leases)
		}
		out := r.want(cli.ExitOK, "explain", "-n", ns, "cert")
		contains(t, "table", out, "LEASE", x.Leases[0].ID, "pki/issue/web")
	})
	t.Run("status", func(t *testing.T) {
		r.t = t
		out := r.want(cli.ExitProblem, "status", "-n", ns)
		contains(t, "table", out, "NamespaceNotAllowed", ns+"/denied", "KeyNotFound", ns+"/missing",
			"SecretStore/"+ns+"/sm", "as of 2026-11", "storage fees")
		var s cli.StatusReport
		r.json(&s, cli.ExitProblem, "status", "-n", ns)
		got := map[string]int{}
		for _, g := range s.NotReady {
			if g.Kind == "ExternalSecret" {
				got[g.Reason] = g.Count
			}
		}
		if got[v1alpha1.ReasonNamespaceNotAllowed] != 1 || got[v1alpha1.ReasonKeyNotFound] != 1 || len(got) != 2 {
			t.Fatalf("not Ready by reason %v (%+v)", got, s.NotReady)
		}
		all := r.want(cli.ExitProblem, "status", "-A", "-o", "yaml")
		contains(t, "status -A -o yaml", all, "reason: NamespaceNotAllowed", ns+"/denied", "priceTable:")
		for _, p := range s.Cost {
			if p.Kind == "SecretStore" && p.Name == "sm" {
				// cli/db and cli/nope hourly, each alone in its call: 2 × 720.
				if p.DistinctRefs != 2 || p.CallsPerMo != 1440 || p.BatchSize != 20 {
					t.Fatalf("cost of sm: %+v", p)
				}
				return
			}
		}
		t.Fatalf("no cost line for SecretStore sm: %+v", s.Cost)
	})
	t.Run("sync", func(t *testing.T) {
		r.t = t
		out, errOut, code := r.run("sync", "-n", ns, "ready", "--timeout", "30s")
		if code != cli.ExitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		contains(t, "table", out, "ready", "true", "Synced")
		contains(t, "progress", errOut, "waiting for the operator: 1/1 observed")
		// A forced refresh that fails is observed too (observed: true; a timeout
		// would leave it false): the failure is reported with its reason and fix,
		// exit 1.
		var rs []cli.SyncResult
		r.json(&rs, cli.ExitProblem, "sync", "-n", ns, "missing", "--timeout", "60s")
		if len(rs) != 1 || !rs[0].Observed || rs[0].Reason != v1alpha1.ReasonKeyNotFound || rs[0].Fix == "" {
			t.Fatalf("sync missing: %+v", rs)
		}
		r.want(cli.ExitUsage, "sync", "-n", ns)
	})
}
