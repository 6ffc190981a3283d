package e2e

// Helpers of TestSecurity (security_test.go): a loopback fake Vault whose answers a
// test switches per key, the OpenBao audit log read by token, and small builders.
// Names start with "tnt" so they do not collide with other files of the package.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/testenv"
)

// tntEnv is TestSecurity's shared setup: one envtest, one audited OpenBao dev server
// and one in-process operator with the Vault and both AWS providers.
type tntEnv struct {
	kube   *testenv.Kube
	c      client.Client
	bao    *testenv.OpenBao
	canary string

	mu         sync.Mutex
	namespaces []string // every namespace holding ExternalSecrets, for the canary check
}

func tntRandom(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// namespace creates namespace name and records it for the final canary check.
func (e *tntEnv) namespace(t *testing.T, name string) string {
	t.Helper()
	ensureNamespace(t, e.kube, name)
	e.mu.Lock()
	e.namespaces = append(e.namespaces, name)
	e.mu.Unlock()
	return name
}

// value is a secret value for what: every value of the test carries the canary.
func (e *tntEnv) value(what string) string { return what + "-" + e.canary }

func (e *tntEnv) kvPut(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := e.bao.Client.KVv2("secret").Put(context.Background(), path, data); err != nil {
		t.Fatalf("kv put %s: %v", path, err)
	}
}

func (e *tntEnv) baoWrite(t *testing.T, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := e.bao.Client.Logical().WriteWithContext(context.Background(), path, data)
	if err != nil {
		t.Fatalf("bao write %s: %v", path, err)
	}
	return s
}

// baoToken creates a token with the root policy for one store. Root: a refusal the
// test observes is the operator's own doing, never OpenBao's policy.
func (e *tntEnv) baoToken(t *testing.T) string {
	t.Helper()
	s, err := e.bao.Client.Auth().Token().CreateWithContext(context.Background(), &vaultapi.TokenCreateRequest{
		Policies: []string{"root"}, TTL: "1h", DisplayName: "tnt"})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return s.Auth.ClientToken
}

func (e *tntEnv) secret(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	must(t, e.c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}))
}

// store creates SecretStore ns/name on a Vault server with the token in Secret
// tokenSecret (key "token") and waits until it is Ready.
func (e *tntEnv) vaultStore(t *testing.T, ns, name, server, tokenSecret string) {
	t.Helper()
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: server, Path: "secret",
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: tokenSecret, Key: "token"}}}}}}
	must(t, e.c.Create(context.Background(), ss))
	e.waitStoreReady(t, ss)
}

func (e *tntEnv) waitStoreReady(t *testing.T, obj client.Object) {
	t.Helper()
	Eventually(t, 30*time.Second, fmt.Sprintf("store %s Ready", client.ObjectKeyFromObject(obj)), func() bool {
		if err := e.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false
		}
		st := obj.(v1alpha1.GenericStore).GetStatus()
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == obj.GetGeneration()
	})
}

func tntES(ns, name string, ref v1alpha1.StoreRef, mutate func(*v1alpha1.ExternalSecret)) *v1alpha1.ExternalSecret {
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: ref}}
	mutate(es)
	return es
}

// es creates an ExternalSecret that must be admitted.
func (e *tntEnv) es(t *testing.T, ns, name string, ref v1alpha1.StoreRef, mutate func(*v1alpha1.ExternalSecret)) {
	t.Helper()
	must(t, e.c.Create(context.Background(), tntES(ns, name, ref, mutate)))
}

// refused creates an ExternalSecret that the API server must refuse (Invalid),
// with a message naming field.
func (e *tntEnv) refused(t *testing.T, ns, name string, ref v1alpha1.StoreRef, field string, mutate func(*v1alpha1.ExternalSecret)) {
	t.Helper()
	err := e.c.Create(context.Background(), tntES(ns, name, ref, mutate))
	switch {
	case err == nil:
		t.Errorf("ExternalSecret %s/%s (%s not canonical) was admitted", ns, name, field)
	case !apierrors.IsInvalid(err):
		t.Errorf("ExternalSecret %s/%s: create failed, but not as Invalid: %v", ns, name, err)
	case !strings.Contains(err.Error(), field):
		t.Errorf("ExternalSecret %s/%s refused, but the error does not name %s: %v", ns, name, field, err)
	}
	if GetSecret(t, e.c, ns, name) != nil {
		t.Errorf("a Secret %s/%s exists for a refused ExternalSecret", ns, name)
	}
}

func (e *tntEnv) readyOf(t *testing.T, ns, name string) *metav1.Condition {
	t.Helper()
	es := &v1alpha1.ExternalSecret{}
	must(t, e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es))
	return meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
}

// waitNotReady waits until ns/name is Ready=False for its generation, in timeout,
// and returns the condition.
func (e *tntEnv) waitNotReady(t *testing.T, timeout time.Duration, ns, name string) *metav1.Condition {
	t.Helper()
	var c *metav1.Condition
	Eventually(t, timeout, fmt.Sprintf("%s/%s Ready=False", ns, name), func() bool {
		es := &v1alpha1.ExternalSecret{}
		if e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es) != nil {
			return false
		}
		c = meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && es.Status.ObservedGeneration == es.Generation
	})
	return c
}

func tntKV(secretKey, key, property string) v1alpha1.DataItem {
	return v1alpha1.DataItem{SecretKey: secretKey, RemoteRef: &v1alpha1.RemoteRef{Key: key, Property: property}}
}

func tntPtr(s string) *string { return &s }

// tntKeys names a Secret's keys (never its values: failure messages stay canary-free).
func tntKeys(s *corev1.Secret) []string {
	if s == nil {
		return nil
	}
	var out []string
	for k := range s.Data {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func tntEvery(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

// tntSameSecret fails unless now is before, untouched (same resourceVersion, so no
// write at all) with every key.
func tntSameSecret(t *testing.T, before, now *corev1.Secret) {
	t.Helper()
	if now == nil {
		t.Errorf("Secret %s/%s was deleted", before.Namespace, before.Name)
		return
	}
	if now.ResourceVersion != before.ResourceVersion {
		t.Errorf("Secret %s/%s was written (resourceVersion %s -> %s)", before.Namespace, before.Name, before.ResourceVersion, now.ResourceVersion)
	}
	for k, v := range before.Data {
		if !bytes.Equal(now.Data[k], v) {
			t.Errorf("Secret %s/%s: key %q changed or is gone", before.Namespace, before.Name, k)
		}
	}
}

// ---- OpenBao audit log

type tntAuditEntry struct {
	Type    string `json:"type"`
	Request struct {
		Path        string `json:"path"`
		Operation   string `json:"operation"`
		ClientToken string `json:"client_token"`
	} `json:"request"`
}

// tntAudit reads every entry (requests and responses) of the audit log so far.
func (e *tntEnv) audit(t *testing.T) []tntAuditEntry {
	t.Helper()
	f, err := os.Open(e.bao.AuditLog)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	var out []tntAuditEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var en tntAuditEntry
		if json.Unmarshal(sc.Bytes(), &en) == nil { // a line being written is skipped
			out = append(out, en)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("audit log: %v", err)
	}
	return out
}

// auditHash is how the file audit device writes token (HMAC), to find its requests.
func (e *tntEnv) auditHash(t *testing.T, token string) string {
	t.Helper()
	s := e.baoWrite(t, "sys/audit-hash/file", map[string]any{"input": token})
	h, _ := s.Data["hash"].(string)
	if h == "" {
		t.Fatalf("sys/audit-hash/file answered %v", s.Data)
	}
	return h
}

// ---- loopback fake Vault

// Modes of a key of tntFakeVault.
const (
	tntOK      = "ok"      // a KV v2 answer with the key's data
	tntNoRoute = "noroute" // 404 "no handler for route" (a missing mount or route)
	tntEmpty   = "empty"   // 200 with an empty body
	tntGone    = "gone"    // Vault's own "not found": 404 with an empty error list
	tntHuge    = "huge"    // 200, a well-formed KV v2 answer of 64 MiB, streamed
)

const tntHugeSize = 64 << 20

// tntFakeVault answers on 127.0.0.1 like Vault for a tokenSecretRef store: token
// lookup-self, the KV mount probe, and KV v2 reads of mount "secret" per key mode.
type tntFakeVault struct {
	srv   *httptest.Server
	token string

	mu    sync.Mutex
	modes map[string]string
	data  map[string]map[string]any
	reads map[string]int
	// hugeStarted / hugeDone count huge answers begun and written to the end.
	hugeStarted, hugeDone int
}

func newTNTFakeVault(t *testing.T) *tntFakeVault {
	t.Helper()
	f := &tntFakeVault{token: "fake-" + tntRandom(t, 8), modes: map[string]string{}, data: map[string]map[string]any{}, reads: map[string]int{}}
	f.srv = httptest.NewServer(f) // 127.0.0.1
	t.Cleanup(f.srv.Close)
	return f
}

func (f *tntFakeVault) URL() string { return f.srv.URL }

func (f *tntFakeVault) put(key string, data map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[key], f.modes[key] = data, tntOK
}

func (f *tntFakeVault) set(key, mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modes[key] = mode
}

func (f *tntFakeVault) readsOf(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[key]
}

func (f *tntFakeVault) huge() (started, done int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hugeStarted, f.hugeDone
}

func tntJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *tntFakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != f.token {
		tntJSON(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case path == "auth/token/lookup-self":
		tntJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"accessor": "fake-accessor", "policies": []string{"default"}, "ttl": 0, "renewable": false, "type": "service"}})
		return
	case path == "sys/internal/ui/mounts/secret":
		tntJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"type": "kv", "path": "secret/", "options": map[string]any{"version": "2"}}})
		return
	case r.Method == http.MethodGet && strings.HasPrefix(path, "secret/data/") && r.URL.Query().Get("list") == "":
	default:
		tntJSON(w, http.StatusNotFound, map[string]any{"errors": []string{fmt.Sprintf("no handler for route %q. route entry not found.", path)}})
		return
	}
	key := strings.TrimPrefix(path, "secret/data/")
	f.mu.Lock()
	mode, data := f.modes[key], f.data[key]
	f.reads[key]++
	if mode == tntHuge {
		f.hugeStarted++
	}
	f.mu.Unlock()
	switch mode {
	case tntOK:
		tntJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"data": data,
			"metadata": map[string]any{"version": 1, "created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": false}}})
	case tntNoRoute:
		tntJSON(w, http.StatusNotFound, map[string]any{"errors": []string{fmt.Sprintf("no handler for route %q. route entry not found.", path)}})
	case tntEmpty:
		w.WriteHeader(http.StatusOK)
	case tntHuge:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if _, err := io.WriteString(w, `{"data":{"data":{"v":"`); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		for n := 0; n < tntHugeSize; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil || r.Context().Err() != nil {
				return // the client stopped reading: the answer was cut short
			}
		}
		if _, err := io.WriteString(w, `"},"metadata":{"version":1}}}`); err != nil {
			return
		}
		f.mu.Lock()
		f.hugeDone++
		f.mu.Unlock()
	default: // tntGone, or a key never put
		tntJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
	}
}
