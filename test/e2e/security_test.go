package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

// TestSecurity checks the tenant boundaries of docs/api.md "Security rules" against
// a real kube-apiserver, a real (audited) OpenBao dev server, the AWS emulator and
// loopback fakes. The cases run in parallel; the last subtest looks for the canary
// that every secret value of every case carries in events, statuses and the
// operator's logs.
func TestSecurity(t *testing.T) {
	kube := testenv.StartKube(t)
	bao := testenv.StartOpenBao(t)
	bao.EnableAudit(t)
	e := &tntEnv{kube: kube, c: kube.Client, bao: bao, canary: "tntcanary" + tntRandom(t, 8)}
	fast := awsp.Options{MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond}
	StartOperator(t, kube, provider.NewRegistry(vault.New(), secretsmanager.NewWithOptions(fast), parameterstore.NewWithOptions(fast)))
	ctx := context.Background()
	c := kube.Client

	// Tenants: team-a may use the two ClusterSecretStores, only for its own keys;
	// team-b's secret sits in the same KV mount.
	teamA, teamB := e.namespace(t, "team-a"), e.namespace(t, "team-b")
	ensureNamespace(t, kube, "tnt-creds")
	teamAToken, transitToken := e.baoToken(t), e.baoToken(t)
	e.secret(t, "tnt-creds", "team-a-token", map[string]string{"token": teamAToken})
	e.secret(t, "tnt-creds", "transit-token", map[string]string{"token": transitToken})
	clusterStore := func(name, tokenSecret string, allowed ...string) *v1alpha1.ClusterSecretStore {
		css := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.SecretStoreSpec{
			Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: bao.Addr, Path: "secret",
				Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: tokenSecret, Key: "token", Namespace: "tnt-creds"}}}},
			Conditions: []v1alpha1.StoreCondition{{Namespaces: []string{teamA}, AllowedKeys: allowed}}}}
		must(t, c.Create(ctx, css))
		return css
	}
	storeA := clusterStore("bao-team-a", "team-a-token", "team-a/.*")
	storeT := clusterStore("bao-transit", "transit-token", "transit/team-a-.*", "team-a/.*")
	refA := v1alpha1.StoreRef{Name: storeA.Name, Kind: v1alpha1.KindClusterSecretStore}
	refT := v1alpha1.StoreRef{Name: storeT.Name, Kind: v1alpha1.KindClusterSecretStore}
	e.kvPut(t, "team-a/db", map[string]any{"password": e.value("team-a-db")})
	e.kvPut(t, "team-a/api", map[string]any{"token": e.value("team-a-api")})
	e.kvPut(t, "team-b/db", map[string]any{"password": e.value("team-b-db")})
	e.kvPut(t, "x/team-a/db", map[string]any{"password": e.value("x-team-a-db")})
	e.waitStoreReady(t, storeA)
	e.waitStoreReady(t, storeT)
	// team-b is not admitted at all (and so has events for the canary check).
	e.es(t, teamB, "peek", refA, func(es *v1alpha1.ExternalSecret) {
		es.Spec.Data = []v1alpha1.DataItem{tntKV("password", "team-b/db", "password")}
	})
	teamAHash := e.auditHash(t, teamAToken)

	// teamAViolations are the requests team-a's store token made outside team-a's
	// keys. LISTs of KV folders are reported apart: a find without a path must list
	// the mount to learn which keys it would return (names only, no values).
	teamAViolations := func(t *testing.T) (violations, lists []string, own int) {
		for _, en := range e.audit(t) {
			if en.Type != "request" || en.Request.ClientToken != teamAHash {
				continue
			}
			p, op := en.Request.Path, en.Request.Operation
			switch {
			case strings.HasPrefix(p, "secret/data/team-a/"), strings.HasPrefix(p, "secret/metadata/team-a/"):
				own++
			case strings.HasPrefix(p, "auth/token/lookup-self"), strings.HasPrefix(p, "sys/internal/ui/mounts/"):
			case op == "list" && strings.HasPrefix(p, "secret/metadata/"):
				lists = append(lists, op+" "+p)
			default:
				violations = append(violations, op+" "+p)
			}
		}
		return violations, lists, own
	}

	t.Run("cases", func(t *testing.T) {
		t.Run("1 traversal read: refused at admission, foreign keys KeyNotAllowed, no request outside team-a", func(t *testing.T) {
			t.Parallel()
			// (a) Not canonical: the API server refuses it, naming the field.
			e.refused(t, teamA, "traversal", refA, "remoteRef.key", func(es *v1alpha1.ExternalSecret) {
				es.Spec.Data = []v1alpha1.DataItem{tntKV("password", "team-a/../team-b/db", "password")}
			})
			e.refused(t, teamA, "traversal-extract", refA, "extract.key", func(es *v1alpha1.ExternalSecret) {
				es.Spec.DataFrom = []v1alpha1.DataFromSource{{Extract: &v1alpha1.ExtractRef{Key: "team-a/../team-b/db"}}}
			})
			e.refused(t, teamA, "traversal-find", refA, "find.path", func(es *v1alpha1.ExternalSecret) {
				es.Spec.DataFrom = []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "team-a/../team-b"}}}
			})
			// (b) Canonical, but the anchored pattern does not admit it.
			e.es(t, teamA, "foreign", refA, func(es *v1alpha1.ExternalSecret) {
				es.Spec.Data = []v1alpha1.DataItem{tntKV("password", "x/team-a/db", "password")}
			})
			// (c) A find under team-a/ works; a find over the whole mount finds team-b's keys.
			e.es(t, teamA, "find-own", refA, func(es *v1alpha1.ExternalSecret) {
				es.Spec.DataFrom = []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "team-a/"}}}
			})
			e.es(t, teamA, "find-all", refA, func(es *v1alpha1.ExternalSecret) {
				es.Spec.DataFrom = []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Name: &v1alpha1.NameMatcher{Regexp: ".*"}}}}
			})

			es := WaitESReason(t, c, 30*time.Second, teamA, "foreign", v1alpha1.ReasonKeyNotAllowed)
			if msg := tntReady(es).Message; !strings.Contains(msg, "x/team-a/db") {
				t.Errorf("KeyNotAllowed message does not name the key: %q", msg)
			}
			if GetSecret(t, c, teamA, "foreign") != nil {
				t.Error("a Secret was written for a key allowedKeys refuses")
			}
			WaitESReason(t, c, 30*time.Second, teamA, "find-own", v1alpha1.ReasonSynced)
			s := GetSecret(t, c, teamA, "find-own")
			if s == nil || !strings.Contains(string(s.Data["db"]), e.value("team-a-db")) || !strings.Contains(string(s.Data["api"]), e.value("team-a-api")) || len(s.Data) != 2 {
				t.Errorf("find under team-a/: Secret keys %v, want db and api with team-a's values", tntKeys(s))
			}
			WaitESReason(t, c, 30*time.Second, teamA, "find-all", v1alpha1.ReasonKeyNotAllowed)
			if GetSecret(t, c, teamA, "find-all") != nil {
				t.Error("a Secret was written for a find that found team-b's keys")
			}

			// (d) Every request team-a's store token made stayed in team-a's keys.
			violations, lists, own := teamAViolations(t)
			if own == 0 {
				t.Error("the audit log has no request of team-a's store token under secret/*/team-a/: the check proves nothing")
			}
			if len(lists) > 0 {
				t.Logf("LISTs outside team-a/ (the find without a path): %v", lists)
			}
			if len(violations) > 0 {
				t.Errorf("team-a's store token made requests outside secret/data/team-a/ and secret/metadata/team-a/: %v", violations)
			}
		})

		t.Run("2 write attempts through dynamic: refused at admission or before any request, nothing written", func(t *testing.T) {
			t.Parallel()
			policy := map[string]string{"policy": `path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`}
			dynamic := func(path string, params map[string]string) func(*v1alpha1.ExternalSecret) {
				return func(es *v1alpha1.ExternalSecret) {
					es.Spec.DataFrom = []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: path, Method: "POST", Parameters: params}}}
				}
			}
			e.refused(t, teamA, "policy-dotdot", refA, "dynamic.path", dynamic("team-a/../sys/policies/acl/x", policy))
			e.es(t, teamA, "policy", refA, dynamic("sys/policies/acl/x", policy))
			// A KV v2 write into team-b's secret, on a path that is a secrets engine.
			e.es(t, teamA, "overwrite", refA, dynamic("secret/data/team-b/db", map[string]string{"data": "overwritten"}))

			// allowedKeys refuse sys/policies/acl/x (KeyNotAllowed); since abe4fa7 the
			// controller refuses dynamic paths on sys/ before that (InvalidSpec).
			// Either is a refusal before any request; the policy must not exist.
			cond := e.waitNotReady(t, 30*time.Second, teamA, "policy")
			if cond.Reason != v1alpha1.ReasonKeyNotAllowed && cond.Reason != v1alpha1.ReasonInvalidSpec {
				t.Errorf("dynamic POST to sys/policies/acl/x: Ready=False reason %s (%s), want KeyNotAllowed or InvalidSpec", cond.Reason, cond.Message)
			}
			t.Logf("dynamic POST to sys/policies/acl/x: %s: %s", cond.Reason, cond.Message)
			WaitESReason(t, c, 30*time.Second, teamA, "overwrite", v1alpha1.ReasonKeyNotAllowed)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, bao.Addr+"/v1/sys/policies/acl/x", http.NoBody)
			must(t, err)
			req.Header.Set("X-Vault-Token", bao.RootToken)
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET sys/policies/acl/x with the root token: HTTP %d, want 404 (no policy x)", resp.StatusCode)
			}
			rootHash := e.auditHash(t, bao.RootToken) // the test's own setup writes
			for _, en := range e.audit(t) {
				p, op := en.Request.Path, en.Request.Operation
				if en.Request.ClientToken != rootHash && (strings.HasPrefix(p, "sys/policies/") || p == "secret/data/team-b/db") && op != "read" {
					t.Errorf("OpenBao audited a %s of %s", op, p)
				}
			}
			if v, err := bao.Client.KVv2("secret").GetMetadata(ctx, "team-b/db"); err != nil || v.CurrentVersion != 1 {
				t.Errorf("team-b/db metadata = %+v (%v), want version 1 only", v, err)
			}
			for _, name := range []string{"policy", "overwrite"} {
				if GetSecret(t, c, teamA, name) != nil {
					t.Errorf("a Secret was written for the refused dynamic ExternalSecret %s", name)
				}
			}
		})

		t.Run("3 transit with a foreign key: KeyNotAllowed without a decrypt request, own key Synced", func(t *testing.T) {
			t.Parallel()
			if err := bao.Client.Sys().MountWithContext(ctx, "transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
				t.Fatal(err)
			}
			ct := map[string]string{}
			for _, k := range []string{"team-a-app", "team-b-app"} {
				e.baoWrite(t, "transit/keys/"+k, nil)
				s := e.baoWrite(t, "transit/encrypt/"+k, map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(e.value(k)))})
				ct[k] = s.Data["ciphertext"].(string)
			}
			decrypt := func(key string) func(*v1alpha1.ExternalSecret) {
				return func(es *v1alpha1.ExternalSecret) {
					es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "api-key", Decrypt: &v1alpha1.DecryptRef{Mount: "transit", Key: key, Ciphertext: ct[key]}}}
				}
			}
			e.es(t, teamA, "decrypt-b", refT, decrypt("team-b-app"))
			e.es(t, teamA, "decrypt-a", refT, decrypt("team-a-app"))
			WaitESReason(t, c, 30*time.Second, teamA, "decrypt-b", v1alpha1.ReasonKeyNotAllowed)
			WaitESReason(t, c, 30*time.Second, teamA, "decrypt-a", v1alpha1.ReasonSynced)
			if s := GetSecret(t, c, teamA, "decrypt-a"); s == nil || string(s.Data["api-key"]) != e.value("team-a-app") {
				t.Errorf("decrypt with team-a-app: Secret keys %v, want api-key with the plaintext", tntKeys(s))
			}
			if GetSecret(t, c, teamA, "decrypt-b") != nil {
				t.Error("a Secret was written for the foreign transit key")
			}
			seen := map[string]int{}
			for _, en := range e.audit(t) {
				seen[en.Request.Path]++
			}
			if n := seen["transit/decrypt/team-b-app"]; n != 0 {
				t.Errorf("OpenBao audited %d entries for transit/decrypt/team-b-app, want 0", n)
			}
			if seen["transit/decrypt/team-a-app"] == 0 {
				t.Error("no decrypt of team-a-app in the audit log: the check proves nothing")
			}
		})

		t.Run("4 endless NextToken: ProviderError in bounded time, keys kept", func(t *testing.T) {
			t.Parallel()
			ns := e.namespace(t, "tnt-pages")
			emu := awsemu.NewTestServer(t, awsemu.Options{})
			tntAWSStores(t, e, emu, ns)
			must(t, emu.Seed(&awsemu.Seed{
				Parameters: []awsemu.SeedParameter{
					{Name: "/tnt/app/a", Type: "SecureString", Value: e.value("ps-a")},
					{Name: "/tnt/app/b", Type: "SecureString", Value: e.value("ps-b")},
				},
				Secrets: []awsemu.SeedSecret{
					{Name: "tnt/app/x", Value: tntPtr(e.value("sm-x"))},
					{Name: "tnt/app/y", Value: tntPtr(e.value("sm-y"))},
				},
			}))
			find := func(store, path, prefix string) func(*v1alpha1.ExternalSecret) {
				return func(es *v1alpha1.ExternalSecret) {
					es.Spec.SecretStoreRef.Name = store
					es.Spec.RefreshInterval = tntEvery(time.Second)
					es.Spec.DataFrom = []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: path},
						Rewrite: []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "^" + prefix, Target: ""}}}}}
				}
			}
			e.es(t, ns, "ps-find", v1alpha1.StoreRef{}, find("ps", "/tnt/app/", "/tnt/app/"))
			e.es(t, ns, "sm-find", v1alpha1.StoreRef{}, find("sm", "tnt/app/", "tnt/app/"))
			WaitESReason(t, c, 30*time.Second, ns, "ps-find", v1alpha1.ReasonSynced)
			WaitESReason(t, c, 30*time.Second, ns, "sm-find", v1alpha1.ReasonSynced)
			psBefore, smBefore := GetSecret(t, c, ns, "ps-find"), GetSecret(t, c, ns, "sm-find")
			if len(psBefore.Data) != 2 || len(smBefore.Data) != 2 {
				t.Fatalf("finds before the fault: keys %v / %v", tntKeys(psBefore), tntKeys(smBefore))
			}

			must(t, emu.InjectFault(awsemu.Fault{Op: "GetParametersByPath", Kind: awsemu.FaultEndlessTokenFresh}))
			must(t, emu.InjectFault(awsemu.Fault{Op: "ListSecrets", Kind: awsemu.FaultEndlessTokenRepeat}))
			start := time.Now()
			WaitESReason(t, c, 30*time.Second, ns, "ps-find", v1alpha1.ReasonProviderError)
			WaitESReason(t, c, 30*time.Second, ns, "sm-find", v1alpha1.ReasonProviderError)
			t.Logf("endless listings failed after %v (GetParametersByPath calls %d, ListSecrets calls %d)",
				time.Since(start).Round(time.Millisecond), emu.Calls("GetParametersByPath"), emu.Calls("ListSecrets"))
			tntSameSecret(t, psBefore, GetSecret(t, c, ns, "ps-find"))
			tntSameSecret(t, smBefore, GetSecret(t, c, ns, "sm-find"))
		})

		t.Run("5 a 64 MiB response: ProviderError in bounded time, keys kept, body not read to its end", func(t *testing.T) {
			t.Parallel()
			ns := e.namespace(t, "tnt-huge")
			emu := awsemu.NewTestServer(t, awsemu.Options{})
			tntAWSStores(t, e, emu, ns)
			must(t, emu.Seed(&awsemu.Seed{Secrets: []awsemu.SeedSecret{{Name: "tnt/big", Value: tntPtr(`{"v":"` + e.value("sm-big") + `"}`)}}}))
			fv := newTNTFakeVault(t)
			fv.put("big", map[string]any{"v": e.value("vault-big")})
			e.secret(t, ns, "fake-token", map[string]string{"token": fv.token})
			e.vaultStore(t, ns, "fake", fv.URL(), "fake-token")
			for _, store := range []string{"sm", "fake"} {
				e.es(t, ns, store+"-big", v1alpha1.StoreRef{Name: store}, func(es *v1alpha1.ExternalSecret) {
					es.Spec.RefreshInterval = tntEvery(time.Second)
					key := "tnt/big"
					if store == "fake" {
						key = "big"
					}
					es.Spec.Data = []v1alpha1.DataItem{tntKV("v", key, "v")}
				})
			}
			WaitESReason(t, c, 30*time.Second, ns, "sm-big", v1alpha1.ReasonSynced)
			WaitESReason(t, c, 30*time.Second, ns, "fake-big", v1alpha1.ReasonSynced)
			smBefore, fvBefore := GetSecret(t, c, ns, "sm-big"), GetSecret(t, c, ns, "fake-big")

			for _, op := range []string{"GetSecretValue", "BatchGetSecretValue"} {
				must(t, emu.InjectFault(awsemu.Fault{Op: op, Kind: awsemu.FaultHugeResponse}))
			}
			fv.set("big", tntHuge)
			start := time.Now()
			WaitESReason(t, c, 30*time.Second, ns, "sm-big", v1alpha1.ReasonProviderError)
			WaitESReason(t, c, 30*time.Second, ns, "fake-big", v1alpha1.ReasonProviderError)
			t.Logf("64 MiB answers failed after %v", time.Since(start).Round(time.Millisecond))
			tntSameSecret(t, smBefore, GetSecret(t, c, ns, "sm-big"))
			tntSameSecret(t, fvBefore, GetSecret(t, c, ns, "fake-big"))
			if started, done := fv.huge(); started == 0 || done != 0 {
				t.Errorf("fake Vault: %d huge answers begun, %d written to the end; want every one cut short by the client", started, done)
			}
		})

		t.Run("6 template bombs: InvalidTemplate quickly, other ExternalSecrets keep syncing", func(t *testing.T) {
			t.Parallel()
			ns := e.namespace(t, "tnt-tpl")
			e.secret(t, ns, "bao-token", map[string]string{"token": e.baoToken(t)})
			e.vaultStore(t, ns, "bao", bao.Addr, "bao-token")
			e.kvPut(t, "tpl/src", map[string]any{"v": e.value("tpl-aaaa")})
			ref := v1alpha1.StoreRef{Name: "bao"}
			templated := func(tpl string, every time.Duration) func(*v1alpha1.ExternalSecret) {
				return func(es *v1alpha1.ExternalSecret) {
					es.Spec.RefreshInterval = tntEvery(every)
					es.Spec.Data = []v1alpha1.DataItem{tntKV("src", "tpl/src", "v")}
					es.Spec.Target.Template = &v1alpha1.Template{Data: map[string]string{"out": tpl}}
				}
			}
			e.es(t, ns, "good-before", ref, templated("{{ .src }}-ok", time.Second))
			WaitESReason(t, c, 30*time.Second, ns, "good-before", v1alpha1.ReasonSynced)

			bombs := map[string]string{
				"loop":    "{{ range 1000000000 }}x{{ end }}",
				"recurse": `{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}`,
				// Each step replaces every "a" by the whole string: the length grows
				// far past 1 MiB within a few steps.
				"replace": `{{ $a := .src }}` + strings.Repeat(`{{ $a = replace "a" $a $a }}`, 6) + `{{ $a }}`,
			}
			start := time.Now()
			for name, tpl := range bombs {
				e.es(t, ns, name, ref, templated(tpl, time.Hour))
			}
			for name := range bombs {
				WaitESReason(t, c, 15*time.Second, ns, name, v1alpha1.ReasonInvalidTemplate)
				if GetSecret(t, c, ns, name) != nil {
					t.Errorf("template bomb %s wrote a Secret", name)
				}
			}
			t.Logf("template bombs refused after %v", time.Since(start).Round(time.Millisecond))

			// The others still sync: a refresh picks up a new value, a new one syncs.
			e.kvPut(t, "tpl/src", map[string]any{"v": e.value("tpl-v2")})
			e.es(t, ns, "good-after", ref, templated("{{ .src }}-ok", time.Hour))
			Eventually(t, 15*time.Second, "good-before to follow the remote value", func() bool {
				s := GetSecret(t, c, ns, "good-before")
				return s != nil && string(s.Data["out"]) == e.value("tpl-v2")+"-ok"
			})
			WaitESReason(t, c, 15*time.Second, ns, "good-after", v1alpha1.ReasonSynced)
			// A new ExternalSecret may be served the value the read-ahead cached a moment
			// ago (the cache window is half its refresh interval): either value will do.
			if s := GetSecret(t, c, ns, "good-after"); s == nil || !strings.HasSuffix(string(s.Data["out"]), e.canary+"-ok") {
				t.Errorf("good-after Secret keys %v, want out with a synced value", tntKeys(s))
			}
		})

		t.Run("7 ambiguous Vault answers (404 no route, empty 200): ProviderError, every key kept despite deletionPolicy Delete", func(t *testing.T) {
			t.Parallel()
			ns := e.namespace(t, "tnt-ambig")
			fv := newTNTFakeVault(t)
			for _, k := range []string{"app", "app2", "gone"} {
				fv.put(k, map[string]any{"user": e.value(k + "-user"), "password": e.value(k + "-password")})
			}
			e.secret(t, ns, "fake-token", map[string]string{"token": fv.token})
			e.vaultStore(t, ns, "fake", fv.URL(), "fake-token")
			names := map[string]string{"noroute": "app", "empty": "app2", "gone": "gone"}
			for name, key := range names {
				e.es(t, ns, name, v1alpha1.StoreRef{Name: "fake"}, func(es *v1alpha1.ExternalSecret) {
					es.Spec.RefreshInterval = tntEvery(time.Second)
					es.Spec.Target = v1alpha1.Target{CreationPolicy: v1alpha1.CreationOwner, DeletionPolicy: v1alpha1.DeletionDelete}
					es.Spec.Data = []v1alpha1.DataItem{tntKV("user", key, "user"), tntKV("password", key, "password")}
				})
			}
			before := map[string]*corev1.Secret{}
			for name := range names {
				WaitESReason(t, c, 30*time.Second, ns, name, v1alpha1.ReasonSynced)
				before[name] = GetSecret(t, c, ns, name)
				if len(before[name].Data) != 2 {
					t.Fatalf("%s synced keys %v", name, tntKeys(before[name]))
				}
			}
			fv.set("app", tntNoRoute)
			fv.set("app2", tntEmpty)
			fv.set("gone", tntGone) // control: Vault's own "not found" does delete
			WaitESReason(t, c, 30*time.Second, ns, "noroute", v1alpha1.ReasonProviderError)
			WaitESReason(t, c, 30*time.Second, ns, "empty", v1alpha1.ReasonProviderError)
			WaitESReason(t, c, 30*time.Second, ns, "gone", v1alpha1.ReasonRemoteNotFound)
			Eventually(t, 15*time.Second, "the control Secret to be deleted (deletionPolicy Delete)", func() bool {
				return GetSecret(t, c, ns, "gone") == nil
			})
			// A few more failing refreshes must not change the verdict either.
			n1, n2 := fv.readsOf("app"), fv.readsOf("app2")
			Eventually(t, 20*time.Second, "two more reads of each ambiguous key", func() bool {
				return fv.readsOf("app") >= n1+2 && fv.readsOf("app2") >= n2+2
			})
			for _, name := range []string{"noroute", "empty"} {
				if r := e.readyOf(t, ns, name); r == nil || r.Reason != v1alpha1.ReasonProviderError {
					t.Errorf("%s: Ready = %+v, want ProviderError", name, r)
				}
				tntSameSecret(t, before[name], GetSecret(t, c, ns, name))
			}
		})

		t.Run("8 Merge: foreign, SA-token and taken keys refused; disjoint writers share a Secret", func(t *testing.T) {
			t.Parallel()
			ns := e.namespace(t, "tnt-merge")
			e.secret(t, ns, "bao-token", map[string]string{"token": e.baoToken(t)})
			e.vaultStore(t, ns, "bao", bao.Addr, "bao-token")
			ref := v1alpha1.StoreRef{Name: "bao"}
			for _, k := range []string{"one", "two", "other"} {
				e.kvPut(t, "merge/"+k, map[string]any{"v": e.value("merge-" + k)})
			}
			merge := func(target, key, remote string) func(*v1alpha1.ExternalSecret) {
				return func(es *v1alpha1.ExternalSecret) {
					es.Spec.Target = v1alpha1.Target{Name: target, CreationPolicy: v1alpha1.CreationMerge}
					es.Spec.Data = []v1alpha1.DataItem{tntKV(key, "merge/"+remote, "v")}
				}
			}
			must(t, c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}))
			must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sa-token",
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "app"}},
				Type: corev1.SecretTypeServiceAccountToken, StringData: map[string]string{"token": e.value("sa-token")}}))
			must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bootstrap-token-abcdef"},
				Type: corev1.SecretTypeBootstrapToken, StringData: map[string]string{"token-id": "abcdef", "token-secret": e.value("bootstrap")}}))
			must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"},
				StringData: map[string]string{"pre": e.value("pre")}}))
			saBefore, bootBefore := GetSecret(t, c, ns, "sa-token"), GetSecret(t, c, ns, "bootstrap-token-abcdef")

			e.es(t, ns, "m-sa", ref, merge("sa-token", "one", "one"))
			e.es(t, ns, "m-boot", ref, merge("bootstrap-token-abcdef", "one", "one"))
			e.es(t, ns, "owner", ref, func(es *v1alpha1.ExternalSecret) {
				es.Spec.Target = v1alpha1.Target{Name: "owned"}
				es.Spec.Data = []v1alpha1.DataItem{tntKV("owned-key", "merge/other", "v")}
			})
			e.es(t, ns, "m1", ref, merge("shared", "one", "one"))
			e.es(t, ns, "m2", ref, merge("shared", "two", "two"))

			WaitESReason(t, c, 30*time.Second, ns, "m-sa", v1alpha1.ReasonTargetOwnedElsewhere)
			WaitESReason(t, c, 30*time.Second, ns, "m-boot", v1alpha1.ReasonTargetOwnedElsewhere)
			tntSameSecret(t, saBefore, GetSecret(t, c, ns, "sa-token"))
			tntSameSecret(t, bootBefore, GetSecret(t, c, ns, "bootstrap-token-abcdef"))

			WaitESReason(t, c, 30*time.Second, ns, "owner", v1alpha1.ReasonSynced)
			owned := GetSecret(t, c, ns, "owned")
			e.es(t, ns, "m-owned", ref, merge("owned", "one", "one"))
			WaitESReason(t, c, 30*time.Second, ns, "m-owned", v1alpha1.ReasonTargetOwnedElsewhere)
			tntSameSecret(t, owned, GetSecret(t, c, ns, "owned"))
			if s := GetSecret(t, c, ns, "owned"); s != nil && len(s.Data) != 1 {
				t.Errorf("Owner-created Secret has keys %v, want only owned-key", tntKeys(s))
			}

			WaitESReason(t, c, 30*time.Second, ns, "m1", v1alpha1.ReasonSynced)
			WaitESReason(t, c, 30*time.Second, ns, "m2", v1alpha1.ReasonSynced)
			want := map[string]string{"pre": e.value("pre"), "one": e.value("merge-one"), "two": e.value("merge-two")}
			shared := GetSecret(t, c, ns, "shared")
			for k, v := range want {
				if string(shared.Data[k]) != v {
					t.Errorf("shared Secret key %q does not hold its writer's value (keys %v)", k, tntKeys(shared))
				}
			}
			if len(shared.Data) != len(want) {
				t.Errorf("shared Secret has %d keys, want %d", len(shared.Data), len(want))
			}

			e.es(t, ns, "m3", ref, merge("shared", "one", "other"))
			WaitESReason(t, c, 30*time.Second, ns, "m3", v1alpha1.ReasonTargetOwnedElsewhere)
			tntSameSecret(t, shared, GetSecret(t, c, ns, "shared"))
		})
	})

	t.Run("9 canary: no secret value in events, statuses or the operator's logs", func(t *testing.T) {
		for _, ns := range e.namespaces {
			Eventually(t, 15*time.Second, "an event in "+ns, func() bool {
				var l eventsv1.EventList
				return c.List(ctx, &l, client.InNamespace(ns)) == nil && len(l.Items) > 0
			})
			AssertNoCanary(t, c, ns, e.canary)
		}
	})

	t.Run("10 audit: over the whole run, team-a's store token stayed in team-a's keys", func(t *testing.T) {
		if violations, _, _ := teamAViolations(t); len(violations) > 0 {
			t.Errorf("team-a's store token made requests outside team-a's keys: %v", violations)
		}
	})
}

// tntAWSStores creates static credentials and SecretStores "sm" and "ps" on emu in ns.
func tntAWSStores(t *testing.T, e *tntEnv, emu *awsemu.Server, ns string) {
	t.Helper()
	akid, secret := emu.StaticCredentials()
	e.secret(t, ns, "aws-creds", map[string]string{"access-key-id": akid, "secret-access-key": secret})
	var stores []*v1alpha1.SecretStore
	for name, svc := range map[string]v1alpha1.AWSService{"sm": v1alpha1.AWSServiceSecretsManager, "ps": v1alpha1.AWSServiceParameterStore} {
		p := &v1alpha1.AWSProvider{Service: svc, Region: "eu-west-1", Endpoint: emu.URL()}
		awsStaticAuth(p)
		ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: p}}}
		must(t, e.c.Create(context.Background(), ss))
		stores = append(stores, ss)
	}
	for _, ss := range stores {
		e.waitStoreReady(t, ss)
	}
}

func tntReady(es *v1alpha1.ExternalSecret) metav1.Condition {
	for _, c := range es.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c
		}
	}
	return metav1.Condition{}
}
