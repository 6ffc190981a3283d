package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

// requestCounts is secretsync_provider_requests_total summed over result:
// provider -> operation -> count.
type requestCounts map[string]map[string]int

var results = map[string]bool{provider.ResultOK: true, provider.ResultNotFound: true, provider.ResultDenied: true,
	provider.ResultThrottled: true, provider.ResultUnavailable: true, provider.ResultTimeout: true, provider.ResultError: true}

func gatherRequests(t *testing.T) requestCounts {
	t.Helper()
	fams, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	out := requestCounts{}
	for _, f := range fams {
		if f.GetName() != "secretsync_provider_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			// Fixed label sets: never an error text, never a path.
			if !results[l["result"]] || strings.ContainsAny(l["operation"], "/.: ") {
				t.Errorf("series with labels %v: result or operation outside the documented sets", l)
			}
			if out[l["provider"]] == nil {
				out[l["provider"]] = map[string]int{}
			}
			out[l["provider"]][l["operation"]] += int(m.GetCounter().GetValue())
		}
	}
	return out
}

// since is c minus base, zero entries dropped.
func (c requestCounts) since(base requestCounts) requestCounts {
	out := requestCounts{}
	for p, ops := range c {
		for op, n := range ops {
			if d := n - base[p][op]; d != 0 {
				if out[p] == nil {
					out[p] = map[string]int{}
				}
				out[p][op] = d
			}
		}
	}
	return out
}

// byOperation sums the providers whose name starts with prefix, by operation.
func (c requestCounts) byOperation(prefix string) map[string]int {
	out := map[string]int{}
	for p, ops := range c {
		if strings.HasPrefix(p, prefix) {
			for op, n := range ops {
				out[op] += n
			}
		}
	}
	return out
}

// minus is m - base, zero entries dropped.
func minus(m, base map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range m {
		if d := n - base[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// emulatorOps is the emulator's own per-action counters (bare action names, every
// service), and its total.
func emulatorOps(emu *awsemu.Server) (map[string]int, int) {
	out := map[string]int{}
	for k, n := range emu.CallCounts() {
		if k != "*" && !strings.Contains(k, ".") {
			out[k] = n
		}
	}
	return out, emu.TotalCalls()
}

// auditOps counts OpenBao's audited requests not made with the root token (the
// test's own setup), by the operation the operator's metric should name them with.
// The mapping is written from OpenBao's side (its operation and path), not with the
// operator's code.
func auditOps(t *testing.T, bao *testenv.OpenBao, rootHash string) map[string]int {
	t.Helper()
	f, err := os.Open(bao.AuditLog)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path        string `json:"path"`
				Operation   string `json:"operation"`
				ClientToken string `json:"client_token"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type != "request" || e.Request.ClientToken == rootHash {
			continue
		}
		out[auditOp(e.Request.Operation, e.Request.Path)]++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("audit log: %v", err)
	}
	return out
}

func auditOp(op, path string) string {
	fixed := map[string]string{
		"auth/token/lookup-self": "token_lookup", "auth/token/renew-self": "token_renew", "auth/token/revoke-self": "token_revoke",
		"sys/leases/renew": "lease_renew", "sys/leases/revoke": "lease_revoke", "sys/leases/lookup": "lease_lookup",
	}
	switch {
	case fixed[path] != "":
		return fixed[path]
	case strings.HasPrefix(path, "auth/") && strings.HasSuffix(path, "/login"):
		return "login"
	case strings.HasPrefix(path, "sys/internal/ui/mounts/"):
		return "mount_lookup"
	case strings.HasPrefix(path, "transit/decrypt/"):
		return "transit_decrypt"
	case op == "update" || op == "create":
		return "write"
	}
	return op // read, list, delete
}

// TestMetrics runs a mixed workload over Secrets Manager, Parameter Store (both on
// the AWS emulator) and OpenBao, then compares secretsync_provider_requests_total
// with what the backends themselves counted: the emulator's per-action counters and
// OpenBao's audit log. Every request the operator made is in the metric once.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	kube := testenv.StartKube(t)
	c := kube.Client
	emu := awsemu.NewTestServer(t, awsemu.Options{})
	bao := testenv.StartOpenBao(t)
	bao.EnableAudit(t)
	pg := testenv.StartPostgres(t)

	// ---- backend data, written before the operator starts
	akid, secret := emu.StaticCredentials()
	admin := awssdk.Config{Region: "eu-west-1", BaseEndpoint: awssdk.String(emu.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	smc, ssmc := sm.NewFromConfig(admin), ssm.NewFromConfig(admin)
	seed := &awsemu.Seed{}
	for i := range 120 { // two ListSecrets pages for the find
		seed.Secrets = append(seed.Secrets, awsemu.SeedSecret{Name: fmt.Sprintf("bulk/s%03d", i), Value: awssdk.String("v")})
	}
	for i := range 15 { // two GetParametersByPath pages; five tagged
		p := awsemu.SeedParameter{Name: fmt.Sprintf("/bulk/p%02d", i), Value: "v"}
		if i%3 == 0 {
			p.Tags = map[string]string{"team": "a"}
		}
		seed.Parameters = append(seed.Parameters, p)
	}
	must(t, emu.Seed(seed))
	for _, v := range []string{"one", "two"} {
		if _, err := smc.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: awssdk.String("bulk/s000"), SecretString: awssdk.String(v)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"p-one", "p-two"} {
		if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: awssdk.String("/app/p"), Value: awssdk.String(v),
			Type: ssmtypes.ParameterTypeSecureString, Overwrite: awssdk.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ssmc.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: awssdk.String("/app/p"),
		ParameterVersion: awssdk.Int64(1), Labels: []string{"stable"}}); err != nil {
		t.Fatal(err)
	}

	write := func(path string, data map[string]any) *vaultapi.Secret {
		s, err := bao.Client.Logical().WriteWithContext(ctx, path, data)
		if err != nil {
			t.Fatalf("vault write %s: %v", path, err)
		}
		return s
	}
	for _, pw := range []string{"old-pw", "new-pw"} {
		if _, err := bao.Client.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": pw}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c/d"} {
		if _, err := bao.Client.KVv2("secret").Put(ctx, "found/"+k, map[string]any{"v": k}); err != nil {
			t.Fatal(err)
		}
	}
	must(t, bao.Client.Sys().MountWithContext(ctx, "transit", &vaultapi.MountInput{Type: "transit"}))
	write("transit/keys/app", nil)
	ct := write("transit/encrypt/app", map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte("plain"))}).Data["ciphertext"].(string)
	must(t, bao.Client.Sys().MountWithContext(ctx, "database", &vaultapi.MountInput{Type: "database"}))
	write("database/config/pg", map[string]any{"plugin_name": "postgresql-database-plugin", "connection_url": pg.VaultConnectionURL(),
		"username": pg.AdminUser, "password": pg.AdminPassword, "allowed_roles": "readonly"})
	write("database/roles/readonly", map[string]any{"db_name": "pg", "default_ttl": "6s", "max_ttl": "1h",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`})
	must(t, bao.Client.Sys().PutPolicyWithContext(ctx, "read", vaultPolicy))
	must(t, bao.Client.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vaultapi.EnableAuthOptions{Type: "approle"}))
	write("auth/approle/role/app", map[string]any{"token_policies": "read", "token_ttl": "1h"})
	rid, err := bao.Client.Logical().ReadWithContext(ctx, "auth/approle/role/app/role-id")
	must(t, err)
	sid := write("auth/approle/role/app/secret-id", nil).Data["secret_id"].(string)
	rootHash := write("sys/audit-hash/file", map[string]any{"input": bao.RootToken}).Data["hash"].(string)

	// ---- the operator, counted from zero on both sides
	emu.ResetCalls()
	// Enabling the audit device audits a test request of its own.
	auditBase := auditOps(t, bao, rootHash)
	base := gatherRequests(t)
	fast := awsp.Options{MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond}
	StartOperator(t, kube, provider.NewRegistry(secretsmanager.NewWithOptions(fast), parameterstore.NewWithOptions(fast), vault.New()))

	ns := kube.Namespace(t, nil)
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}, StringData: map[string]string{
		"access-key-id": akid, "secret-access-key": secret, "secret-id": sid}}))
	awsAuth := &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
		AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "creds", Key: "access-key-id"},
		SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "secret-access-key"},
	}}
	stores := []*v1alpha1.SecretStore{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sm"}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{
			Service: v1alpha1.AWSServiceSecretsManager, Region: "eu-west-1", Endpoint: emu.URL(), Auth: awsAuth,
			Role: "arn:aws:iam::123456789012:role/metrics"}}}}, // STS AssumeRole is a call too
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ps"}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{
			Service: v1alpha1.AWSServiceParameterStore, Region: "eu-west-1", Endpoint: emu.URL(), Auth: awsAuth}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{
			Server: bao.Addr, Auth: v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{RoleID: rid.Data["role_id"].(string),
				SecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "secret-id"}}}}}}},
	}
	for _, s := range stores {
		must(t, c.Create(ctx, s))
	}
	ref := func(key, version string) *v1alpha1.RemoteRef { return &v1alpha1.RemoteRef{Key: key, Version: version} }
	hour := &metav1.Duration{Duration: time.Hour} // one sync each: the counts then stand still
	slashes := []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "/", Target: "_"}}}
	externalSecrets := map[string]v1alpha1.ExternalSecretSpec{
		"sm": {SecretStoreRef: v1alpha1.StoreRef{Name: "sm"}, RefreshInterval: hour,
			Data: []v1alpha1.DataItem{ // a batch, and per-version reads beside it
				{SecretKey: "cur", RemoteRef: ref("bulk/s000", "")}, {SecretKey: "other", RemoteRef: ref("bulk/s001", "")},
				{SecretKey: "prev", RemoteRef: ref("bulk/s000", "AWSPREVIOUS")}},
			DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "bulk/"}, Rewrite: slashes}}},
		"ps": {SecretStoreRef: v1alpha1.StoreRef{Name: "ps"}, RefreshInterval: hour,
			Data: []v1alpha1.DataItem{
				{SecretKey: "cur", RemoteRef: ref("/app/p", "")}, {SecretKey: "v1", RemoteRef: ref("/app/p", "1")},
				{SecretKey: "stable", RemoteRef: ref("/app/p", "stable")}},
			DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "/bulk"}, Rewrite: slashes}}},
		"ps-tags": {SecretStoreRef: v1alpha1.StoreRef{Name: "ps"}, RefreshInterval: hour,
			DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "/bulk", Tags: map[string]string{"team": "a"}}, Rewrite: slashes}}},
		"vault": {SecretStoreRef: v1alpha1.StoreRef{Name: "vault"}, RefreshInterval: hour,
			Data: []v1alpha1.DataItem{
				{SecretKey: "pw", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password"}},
				{SecretKey: "pw-v1", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password", Version: "1"}},
				{SecretKey: "api-key", Decrypt: &v1alpha1.DecryptRef{Key: "app", Ciphertext: ct}}},
			DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "found"}, Rewrite: slashes}}},
		"dynamic": {SecretStoreRef: v1alpha1.StoreRef{Name: "vault"}, RefreshInterval: hour,
			DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "database/creds/readonly", RenewPercent: 50}}}},
	}
	for name, spec := range externalSecrets {
		must(t, c.Create(ctx, &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}))
	}
	for _, name := range slices.Sorted(maps.Keys(externalSecrets)) {
		WaitESReason(t, c, 60*time.Second, ns, name, v1alpha1.ReasonSynced)
	}
	if s := GetSecret(t, c, ns, "ps"); len(s.Data) != 3+15 || string(s.Data["v1"]) != "p-one" || string(s.Data["stable"]) != "p-one" {
		t.Fatalf("Parameter Store Secret has %d keys (v1 %q, stable %q)", len(s.Data), s.Data["v1"], s.Data["stable"])
	}

	// The dynamic lease: renewed once, then revoked with its ExternalSecret.
	first := &v1alpha1.ExternalSecret{}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dynamic"}, first))
	if len(first.Status.Leases) != 1 {
		t.Fatalf("status.leases = %+v, want one lease", first.Status.Leases)
	}
	Eventually(t, 30*time.Second, "the lease to be renewed", func() bool {
		es := &v1alpha1.ExternalSecret{}
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dynamic"}, es) == nil && len(es.Status.Leases) == 1 &&
			es.Status.Leases[0].ExpiresAt.After(first.Status.Leases[0].ExpiresAt.Time)
	})
	must(t, c.Delete(ctx, first))
	Eventually(t, 30*time.Second, "the dynamic ExternalSecret to be gone (its lease revoked)", func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dynamic"}, &v1alpha1.ExternalSecret{}))
	})
	for _, s := range stores {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(s), s))
		if !meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) {
			t.Fatalf("store %s not Ready: %+v", s.Name, s.Status.Conditions)
		}
	}

	// ---- compare: a request in flight is counted by the backend first, so wait
	// until both sides agree.
	var got requestCounts
	var awsOps, vaultOps map[string]int
	var awsTotal int
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = gatherRequests(t).since(base)
		awsOps, awsTotal = emulatorOps(emu)
		vaultOps = minus(auditOps(t, bao, rootHash), auditBase)
		if maps.Equal(got.byOperation("aws-"), awsOps) && total(got.byOperation("aws-")) == awsTotal &&
			maps.Equal(got["vault"], vaultOps) && len(got) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metric and the backends disagree:\nmetric:   %v\nemulator: %v (total %d)\naudit:    %v", got, awsOps, awsTotal, vaultOps)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The workload reached every kind of call the issue names: the equality is not
	// about an empty set.
	want := map[string][]string{
		"aws-secretsmanager": {"AssumeRole", "BatchGetSecretValue", "GetSecretValue", "ListSecrets"},
		"aws-parameterstore": {"GetParameters", "GetParametersByPath", "DescribeParameters"},
		"vault":              {"login", "read", "list", "transit_decrypt", "token_lookup", "lease_renew", "lease_revoke"},
	}
	for p, ops := range want {
		for _, op := range ops {
			if got[p][op] == 0 {
				t.Errorf("no %s %s request was counted: %v", p, op, got[p])
			}
		}
	}
	if got["aws-secretsmanager"]["ListSecrets"] < 2 || got["aws-parameterstore"]["GetParametersByPath"] < 2 {
		t.Errorf("the finds were not paged: %v", got)
	}
	t.Logf("metric = emulator = audit log: %v", got)
}
