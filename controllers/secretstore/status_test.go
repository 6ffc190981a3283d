package secretstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/scheme"
)

// memEnv runs the reconciler against a fake API server and the memory backend,
// registered as "vault" so Vault-shaped stores select it.
type memEnv struct {
	c  client.Client
	be *memory.Backend
	r  *Reconciler
}

func newMemEnv(t *testing.T, kind func() v1alpha1.GenericStore, objs ...client.Object) *memEnv {
	t.Helper()
	return newMemEnvWith(t, kind, append(objs, tokenSecret("team-a"), tokenSecret("platform"))...)
}

// tokenSecret is the credential Secret tokenVault stores reference.
func tokenSecret(ns string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, Data: map[string][]byte{"token": []byte("t")}}
}

func newMemEnvWith(t *testing.T, kind func() v1alpha1.GenericStore, objs ...client.Object) *memEnv {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithStatusSubresource(&v1alpha1.SecretStore{}, &v1alpha1.ClusterSecretStore{}).
		WithObjects(objs...).Build()
	be := memory.New("vault")
	reg := provider.NewRegistry(be)
	kube := provider.KubeClient{Reader: c, Writer: c}
	return &memEnv{c: c, be: be, r: &Reconciler{Client: c, Registry: reg, Fetcher: fetch.New(reg, kube, c, fetch.Options{}),
		Recheck: time.Minute, New: kind, BackendTimeout: 5 * time.Second}}
}

func (e *memEnv) reconcile(t *testing.T, obj client.Object) (reconcile.Result, v1alpha1.GenericStore, error) {
	t.Helper()
	res, err := e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
	got := e.r.New()
	if gerr := e.c.Get(context.Background(), client.ObjectKeyFromObject(obj), got.(client.Object)); gerr != nil {
		t.Fatal(gerr)
	}
	return res, got, err
}

func tokenVault() v1alpha1.SecretStoreSpec {
	return v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "https://vault.example",
		Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}}}}
}

func css(name string, conds ...v1alpha1.StoreCondition) *v1alpha1.ClusterSecretStore {
	spec := tokenVault()
	spec.Provider.Vault.Auth.TokenSecretRef.Namespace = "platform"
	spec.Conditions = conds
	return &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}, Spec: spec}
}

func selector(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

// Entries of spec.conditions that can never admit anything make the store
// InvalidSpec, naming the entry, without a backend call; a correct store is Valid.
func TestConditionsInvalidSpec(t *testing.T) {
	good := v1alpha1.StoreCondition{Namespaces: []string{"team-a"}, AllowedKeys: []string{"team-a/.*", `db-[0-9]+`}}
	cases := []struct {
		name  string
		conds []v1alpha1.StoreCondition
		want  string // "" = Valid; else the InvalidSpec message contains it
	}{
		{"names, selector and patterns that compile", []v1alpha1.StoreCondition{good,
			{NamespaceSelector: selector("team", metav1.LabelSelectorOpIn, "a", "b"), AllowedKeys: []string{`shared/\w+`}}}, ""},
		{"no conditions (admits nobody, still a valid store)", nil, ""},
		{"a regexp that does not compile", []v1alpha1.StoreCondition{good, {Namespaces: []string{"b"}, AllowedKeys: []string{"a("}}},
			"spec.conditions[1].allowedKeys[0]: invalid regexp: error parsing regexp: missing closing ): `a(`"},
		{"a pattern that compiles only once anchored (would admit every key)", []v1alpha1.StoreCondition{{Namespaces: []string{"a"}, AllowedKeys: []string{"ok", "a)|(.*"}}},
			"spec.conditions[0].allowedKeys[1]: invalid regexp: error parsing regexp: unexpected )"},
		{"a pattern that compiles only alone", []v1alpha1.StoreCondition{{Namespaces: []string{"a"}, AllowedKeys: []string{`\Qteam-a/`}}},
			"spec.conditions[0].allowedKeys[0]: invalid regexp: as matched against the whole key"},
		{"a selector with an unknown operator", []v1alpha1.StoreCondition{{NamespaceSelector: selector("team", "Matches", "a")}},
			"spec.conditions[0].namespaceSelector: invalid label selector: "},
		{"a selector In without values", []v1alpha1.StoreCondition{good, good, {NamespaceSelector: selector("team", metav1.LabelSelectorOpIn)}},
			"spec.conditions[2].namespaceSelector: invalid label selector: "},
		{"a selector with an invalid label value", []v1alpha1.StoreCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a b"}}}},
			"spec.conditions[0].namespaceSelector: invalid label selector: "},
		{"several problems in one entry", []v1alpha1.StoreCondition{{NamespaceSelector: selector("t", "Bad"), AllowedKeys: []string{"[", "ok", "*"}}},
			"spec.conditions[0].namespaceSelector: invalid label selector: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := css("c", tc.conds...)
			e := newMemEnv(t, clusterKind, store)
			res, got, err := e.reconcile(t, store)
			cond := meta.FindStatusCondition(got.GetStatus().Conditions, v1alpha1.ConditionReady)
			if tc.want == "" {
				if err != nil || cond == nil || cond.Reason != v1alpha1.ReasonValid {
					t.Fatalf("err=%v Ready=%+v, want Valid", err, cond)
				}
				return
			}
			if err != nil || res != (reconcile.Result{}) {
				t.Errorf("InvalidSpec is terminal: res=%+v err=%v", res, err)
			}
			if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(cond.Message, tc.want) {
				t.Fatalf("Ready = %+v, want InvalidSpec naming %q", cond, tc.want)
			}
			if n := e.be.Clients.Load() + e.be.Checks.Load(); n != 0 {
				t.Errorf("%d backend calls for a refused store", n)
			}
		})
	}
	t.Run("every problem is named", func(t *testing.T) {
		msg := checkConditions([]v1alpha1.StoreCondition{{NamespaceSelector: selector("t", "Bad"), AllowedKeys: []string{"[", "ok", "*"}}})
		for _, field := range []string{"spec.conditions[0].namespaceSelector", "spec.conditions[0].allowedKeys[0]", "spec.conditions[0].allowedKeys[2]"} {
			if !strings.Contains(msg, field) {
				t.Errorf("message %q does not name %s", msg, field)
			}
		}
		if strings.Contains(msg, "allowedKeys[1]") {
			t.Errorf("message %q names a valid pattern", msg)
		}
	})
}

// What the backend answers decides the Ready reason, whether the failure is retried
// with backoff (an error) or the store is looked at again after the recheck period.
func TestCheckOutcome(t *testing.T) {
	cases := []struct {
		name          string
		fail          error
		wantReason    string
		wantTransient bool
	}{
		{"the backend answers", nil, v1alpha1.ReasonValid, false},
		{"credentials refused", provider.Wrap(provider.ErrAuth, "403", errors.New("raw")), v1alpha1.ReasonAuthFailed, true},
		{"access denied", provider.Wrap(provider.ErrAccessDenied, "403", nil), v1alpha1.ReasonAuthFailed, true},
		{"credentials missing", fmt.Errorf("secret team-a/tok: %w", provider.ErrCredentials), v1alpha1.ReasonCredentialsNotFound, true},
		{"the backend refuses the configuration", provider.Wrap(provider.ErrInvalid, "", nil), v1alpha1.ReasonInvalidSpec, false},
		{"the backend is down", provider.Wrap(provider.ErrUnavailable, "503", nil), v1alpha1.ReasonBackendUnreachable, true},
		{"an unclassified error", errors.New("boom"), v1alpha1.ReasonBackendUnreachable, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := ss("team-a", "s", tokenVault())
			e := newMemEnv(t, namespacedKind, store)
			e.be.Fail(tc.fail)
			res, got, err := e.reconcile(t, store)
			cond := meta.FindStatusCondition(got.GetStatus().Conditions, v1alpha1.ConditionReady)
			if cond == nil || cond.Reason != tc.wantReason || cond.ObservedGeneration != 1 || got.GetStatus().ObservedGeneration != 1 {
				t.Fatalf("status = %+v, want Ready reason %s for generation 1", got.GetStatus(), tc.wantReason)
			}
			if want := tc.wantReason == v1alpha1.ReasonValid; (cond.Status == metav1.ConditionTrue) != want {
				t.Fatalf("Ready status %s for reason %s", cond.Status, cond.Reason)
			}
			if strings.Contains(cond.Message, "raw") {
				t.Errorf("message %q carries the backend's raw error", cond.Message)
			}
			switch {
			case tc.wantTransient:
				if err == nil {
					t.Errorf("a transient failure must return an error (backoff)")
				}
			case tc.wantReason == v1alpha1.ReasonValid:
				if err != nil || res.RequeueAfter < e.r.Recheck*3/4 || res.RequeueAfter > e.r.Recheck*5/4 {
					t.Errorf("res=%+v err=%v, want a recheck within [3/4, 5/4] of %s", res, err, e.r.Recheck)
				}
			default:
				if err != nil || res != (reconcile.Result{}) {
					t.Errorf("res=%+v err=%v, want terminal", res, err)
				}
			}
			if n := e.be.StoreChecks("team-a/s"); n != 1 {
				t.Errorf("%d checks, want 1", n)
			}
		})
	}
}

// A credential Secret that does not exist is found before any client is built.
func TestCredentialSecretMissing(t *testing.T) {
	store := ss("team-a", "s", tokenVault())
	e := newMemEnvWith(t, namespacedKind, store)
	_, got, err := e.reconcile(t, store)
	cond := meta.FindStatusCondition(got.GetStatus().Conditions, v1alpha1.ConditionReady)
	if err == nil || cond == nil || cond.Reason != v1alpha1.ReasonCredentialsNotFound || !strings.Contains(cond.Message, "secret team-a/tok") {
		t.Fatalf("err=%v Ready=%+v, want a transient CredentialsNotFound naming team-a/tok", err, cond)
	}
	if n := e.be.Clients.Load(); n != 0 {
		t.Fatalf("%d clients built", n)
	}
}

// The first look after a restart trusts a store that was Ready for its current
// generation (no backend call, a requeue spread over the recheck period); any
// other store is checked at once.
func TestFirstLookAfterRestart(t *testing.T) {
	stale := readyBefore(ss("team-a", "stale", tokenVault()))
	stale.Generation = 2 // edited while the operator was down
	notReady := ss("team-a", "new", tokenVault())
	cases := []struct {
		name      string
		store     *v1alpha1.SecretStore
		wantCheck bool
	}{
		{"Ready for its generation: trusted", readyBefore(ss("team-a", "ready", tokenVault())), false},
		{"Ready for an older generation: checked", stale, true},
		{"never checked: checked", notReady, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newMemEnv(t, namespacedKind, tc.store)
			res, _, err := e.reconcile(t, tc.store)
			checked := e.be.StoreChecks("team-a/"+tc.store.Name) > 0
			if err != nil || checked != tc.wantCheck {
				t.Fatalf("checked=%v err=%v, want checked=%v", checked, err, tc.wantCheck)
			}
			if !tc.wantCheck && (res.RequeueAfter < e.r.Recheck/4 || res.RequeueAfter > e.r.Recheck) {
				t.Fatalf("RequeueAfter = %s, want within [1/4, 1] of %s", res.RequeueAfter, e.r.Recheck)
			}
			if !tc.wantCheck {
				// The second look is a normal check.
				if _, _, err := e.reconcile(t, tc.store); err != nil || e.be.StoreChecks("team-a/"+tc.store.Name) != 1 {
					t.Fatalf("second look: err=%v checks=%d", err, e.be.StoreChecks("team-a/"+tc.store.Name))
				}
			}
		})
	}
}

// Status is written only when it changes: a recheck with the same outcome leaves the
// object (and its resourceVersion) alone and keeps lastTransitionTime.
func TestStatusWrittenOnlyWhenChanged(t *testing.T) {
	store := ss("team-a", "s", tokenVault())
	e := newMemEnv(t, namespacedKind, store)
	_, first, err := e.reconcile(t, store)
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := e.reconcile(t, store)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetResourceVersion() != second.GetResourceVersion() {
		t.Fatalf("resourceVersion %s -> %s: an unchanged status was written", first.GetResourceVersion(), second.GetResourceVersion())
	}
	e.be.Fail(provider.Wrap(provider.ErrUnavailable, "", nil))
	_, third, _ := e.reconcile(t, store)
	if third.GetResourceVersion() == second.GetResourceVersion() {
		t.Fatal("a changed status was not written")
	}
}

func TestComputeStatus(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	prev := []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid, ObservedGeneration: 1, LastTransitionTime: t0}}
	cases := []struct {
		name       string
		generation int64
		reason     string
		wantStatus metav1.ConditionStatus
		keepTime   bool
	}{
		{"same outcome keeps lastTransitionTime", 1, v1alpha1.ReasonValid, metav1.ConditionTrue, true},
		{"new generation, same outcome", 2, v1alpha1.ReasonValid, metav1.ConditionTrue, true},
		{"failure flips the status", 2, v1alpha1.ReasonAuthFailed, metav1.ConditionFalse, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ss("ns", "s", tokenVault())
			s.Generation = tc.generation
			s.Status = v1alpha1.SecretStoreStatus{ObservedGeneration: 1, Conditions: append([]metav1.Condition(nil), prev...)}
			st := computeStatus(s, tc.reason, "msg")
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if st.ObservedGeneration != tc.generation || c.ObservedGeneration != tc.generation || c.Status != tc.wantStatus || c.Reason != tc.reason || c.Message != "msg" {
				t.Fatalf("status = %+v", st)
			}
			if kept := c.LastTransitionTime.Equal(&t0); kept != tc.keepTime {
				t.Fatalf("lastTransitionTime kept = %v, want %v", kept, tc.keepTime)
			}
			if s.Status.ObservedGeneration != 1 {
				t.Fatal("computeStatus modified the store")
			}
		})
	}
}

// Whatever checkPattern accepts matches as admission matches it: a key the anchored
// form admits is matched WHOLE by the pattern on its own (leftmost-longest), so no
// accepted pattern can widen what an allowedKeys entry admits.
func FuzzCheckPattern(f *testing.F) {
	for _, seed := range [][2]string{{"team-a/.*", "team-a/db"}, {"a)|(.*", "x"}, {`\Qa`, "a)$"}, {"a|b", "ab"},
		{"(?i)DB", "db"}, {`x\E`, "x"}, {"(a", "a"}, {"^a$", "a"}, {"a$|b", "ab"}, {"[]a]", "]"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		if checkPattern(pattern) != nil {
			return
		}
		anchored := regexp.MustCompile(`^(?:` + pattern + `)$`)
		if !anchored.MatchString(key) {
			return
		}
		alone := regexp.MustCompile(pattern)
		alone.Longest()
		if loc := alone.FindStringIndex(key); len(loc) != 2 || loc[0] != 0 || loc[1] != len(key) {
			t.Fatalf("pattern %q: anchored form admits %q, the pattern alone matches %v", pattern, key, loc)
		}
	})
}
