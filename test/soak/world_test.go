package soak

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

const (
	operatorNS = "secretsync-system"
	soakNS     = "soak"
	dbRole     = "soak"
	dbCreds    = "database/creds/" + dbRole
	kvPolicy   = "soak-kv"
)

// kinds of ExternalSecret, one backend each.
const (
	kindSM  = "sm"
	kindSSM = "ssm"
	kindKV  = "kv"
	kindDB  = "db"
)

// fields every static ExternalSecret can ask for; "b" is toggled by edits.
var fields = []string{"a", "b"}

// es is the harness's view of one ExternalSecret: what it asks for, and every value
// its backend object ever held (plus hand edits), to tell stale from foreign or partial.
type es struct {
	name     string
	kind     string
	askB     bool
	bChanged time.Time // when askB last changed (a key removal is allowed after it)
	deleted  bool
	rollout  bool
	current  map[string]string   // field -> backend truth now (static kinds)
	history  map[string]struct{} // every value ever written for this ES (any field)
}

// world is the harness's truth, shared by the fault schedule and the checker.
type world struct {
	mu      sync.Mutex
	ess     map[string]*es
	owner   map[string]string // value -> ExternalSecret name
	order   []string
	created int
	// vaultGone: OpenBao restarted (empty) until this time + grace: vault keys may be lost.
	vaultBackAt time.Time
	vaultDown   bool

	t    testing.TB
	emu  *awsemu.Server
	bao  *testenv.OpenBao
	pg   *testenv.Postgres
	kube client.Client

	kvToken string // the KV store's current token id
	tokens  int
	refresh time.Duration
}

func canary() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "CNRY" + hex.EncodeToString(b)
}

// newValues makes fresh canaries for every field of e and records them.
func (w *world) newValues(e *es) map[string]string {
	vals := map[string]string{}
	for _, f := range fields {
		v := canary()
		vals[f] = v
		e.history[v] = struct{}{}
		w.owner[v] = e.name
	}
	e.current = vals
	return vals
}

func smName(e string) string            { return "soak/" + e }
func ssmName(e, f string) string        { return "/soak/" + e + "/" + f }
func kvPath(e string) string            { return "soak/" + e }
func jsonOf(m map[string]string) string { b, _ := json.Marshal(m); return string(b) }

// writeBackend puts e's current values in its backend.
func (w *world) writeBackend(ctx context.Context, e *es) error {
	switch e.kind {
	case kindSM:
		v := jsonOf(e.current)
		return w.emu.Seed(&awsemu.Seed{Secrets: []awsemu.SeedSecret{{Name: smName(e.name), Value: &v}}})
	case kindSSM:
		s := &awsemu.Seed{}
		for _, f := range fields {
			s.Parameters = append(s.Parameters, awsemu.SeedParameter{Name: ssmName(e.name, f), Type: "SecureString", Value: e.current[f]})
		}
		return w.emu.Seed(s)
	case kindKV:
		data := map[string]any{}
		for f, v := range e.current {
			data[f] = v
		}
		_, err := w.bao.Client.KVv2("secret").Put(ctx, kvPath(e.name), data)
		return err
	}
	return nil
}

// spec is the ExternalSecret object for e.
func (w *world) spec(e *es) *v1alpha1.ExternalSecret {
	x := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: e.name},
		Spec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef:  v1alpha1.StoreRef{Name: e.kind},
			RefreshInterval: &metav1.Duration{Duration: w.refresh},
		}}
	if e.rollout {
		x.Spec.Target.Rollout = &v1alpha1.Rollout{Consumers: v1alpha1.RolloutAuto}
	}
	if e.kind == kindDB {
		x.Spec.DataFrom = []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: dbCreds, RenewPercent: 50}}}
		return x
	}
	x.Spec.Data = w.items(e)
	return x
}

func (w *world) items(e *es) []v1alpha1.DataItem {
	var out []v1alpha1.DataItem
	for _, f := range fields {
		if f == "b" && !e.askB {
			continue
		}
		ref := &v1alpha1.RemoteRef{}
		switch e.kind {
		case kindSM:
			ref.Key, ref.Property = smName(e.name), f
		case kindSSM:
			ref.Key = ssmName(e.name, f)
		case kindKV:
			ref.Key, ref.Property = kvPath(e.name), f
		}
		out = append(out, v1alpha1.DataItem{SecretKey: f, RemoteRef: ref})
	}
	return out
}

// add creates one more ExternalSecret of kind (backend value first).
func (w *world) add(ctx context.Context, kind string) error {
	w.mu.Lock()
	i := w.created
	w.created++
	e := &es{name: fmt.Sprintf("es-%04d", i), kind: kind, askB: true, rollout: i%5 == 0, history: map[string]struct{}{}}
	if kind != kindDB {
		w.newValues(e)
	}
	w.ess[e.name] = e
	w.order = append(w.order, e.name)
	obj := w.spec(e)
	w.mu.Unlock()
	if err := w.create(ctx, e, obj, i); err != nil {
		w.mu.Lock()
		e.deleted = true // never created (OpenBao or the API server may be restarting)
		w.mu.Unlock()
		return err
	}
	return nil
}

func (w *world) create(ctx context.Context, e *es, obj *v1alpha1.ExternalSecret, i int) error {
	if err := w.writeBackend(ctx, e); err != nil {
		return fmt.Errorf("backend for %s: %w", e.name, err)
	}
	if e.rollout && i%10 == 0 {
		if err := w.kube.Create(ctx, consumer(e.name)); err != nil {
			return fmt.Errorf("deployment for %s: %w", e.name, err)
		}
	}
	return w.kube.Create(ctx, obj)
}

// consumer is a Deployment that reads Secret name through envFrom (no pods run in envtest).
func consumer(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: "app-" + name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "app", EnvFrom: []corev1.EnvFromSource{
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}}}}}}}}}}
}

// ---- OpenBao setup, run again after every OpenBao restart (dev servers come back empty)

func (w *world) setupVault(ctx context.Context) error {
	c := w.bao.Client
	if err := c.Sys().PutPolicyWithContext(ctx, kvPolicy, `path "secret/data/soak/*" { capabilities = ["read"] }
path "secret/metadata/soak/*" { capabilities = ["read"] }
`); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	w.mu.Lock()
	token := w.kvToken
	w.mu.Unlock()
	if err := w.kvTokenCreate(ctx, token); err != nil {
		return err
	}
	if err := c.Sys().MountWithContext(ctx, "database", &vaultapi.MountInput{Type: "database"}); err != nil {
		return fmt.Errorf("mount database: %w", err)
	}
	lc := c.Logical()
	if _, err := lc.WriteWithContext(ctx, "database/config/pg", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": w.pg.VaultConnectionURL(),
		"username": w.pg.AdminUser, "password": w.pg.AdminPassword, "allowed_roles": "*",
	}); err != nil {
		return fmt.Errorf("database config: %w", err)
	}
	if _, err := lc.WriteWithContext(ctx, "database/roles/"+dbRole, map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "60s", "max_ttl": "3m",
	}); err != nil {
		return fmt.Errorf("database role: %w", err)
	}
	// The probe ExternalSecret's value (leader failover is measured through it).
	if _, err := c.KVv2("secret").Put(ctx, "probe", map[string]any{"v": "probe"}); err != nil {
		return fmt.Errorf("probe value: %w", err)
	}
	w.mu.Lock()
	var kv []*es
	for _, e := range w.ess {
		if e.kind == kindKV {
			kv = append(kv, e)
		}
	}
	w.mu.Unlock()
	for _, e := range kv {
		if err := w.writeBackend(ctx, e); err != nil {
			return fmt.Errorf("kv %s: %w", e.name, err)
		}
	}
	return nil
}

// kvTokenCreate makes a token with a chosen id and the KV read policy.
func (w *world) kvTokenCreate(ctx context.Context, id string) error {
	_, err := w.bao.Client.Logical().WriteWithContext(ctx, "auth/token/create", map[string]any{
		"id": id, "policies": []string{kvPolicy}, "ttl": "24h", "no_parent": true,
	})
	if err != nil {
		return fmt.Errorf("kv token: %w", err)
	}
	return nil
}

// stores creates the five SecretStores and their credential Secrets.
func (w *world) stores(ctx context.Context) error {
	akid, secret := w.emu.StaticCredentials()
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: "aws-creds"},
			StringData: map[string]string{"access-key-id": akid, "secret-access-key": secret}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: "kv-token"}, StringData: map[string]string{"token": w.kvToken}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: "root-token"}, StringData: map[string]string{"token": w.bao.RootToken}},
	}
	awsAuth := &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
		AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "access-key-id"},
		SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "secret-access-key"},
	}}
	store := func(name string, p v1alpha1.StoreProvider) client.Object {
		return &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: name}, Spec: v1alpha1.SecretStoreSpec{Provider: p}}
	}
	vault := func(path, tokenSecret string) *v1alpha1.VaultProvider {
		v := &v1alpha1.VaultProvider{Server: w.bao.Addr, Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: tokenSecret, Key: "token"}}}
		if path != "" {
			v.Path, v.Version = path, v1alpha1.VaultKVv2
		}
		return v
	}
	objs = append(objs,
		store(kindSM, v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: awsemu.DefaultRegion, Endpoint: w.emu.URL(), Auth: awsAuth}}),
		store(kindSSM, v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceParameterStore, Region: awsemu.DefaultRegion, Endpoint: w.emu.URL(), Auth: awsAuth}}),
		store(kindKV, v1alpha1.StoreProvider{Vault: vault("secret", "kv-token")}),
		store(kindDB, v1alpha1.StoreProvider{Vault: vault("", "root-token")}),
		store("probe", v1alpha1.StoreProvider{Vault: vault("secret", "root-token")}),
	)
	for _, o := range objs {
		if err := w.kube.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}
