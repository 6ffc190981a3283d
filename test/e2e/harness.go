// Package e2e runs the operator's real wiring (internal/operator) in-process
// against a real kube-apiserver + etcd (envtest) and real or in-memory backends.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/operator"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/testenv"
)

// OperatorNamespace is where the harness runs the operator (HMAC key Secret).
const OperatorNamespace = "secretsync-system"

// Logs captures everything the operator logs, for canary checks.
var Logs = &syncBuffer{}

var setLogger sync.Once

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Writes counts the operator's writes to the API server, by kind of object.
type Writes struct {
	secrets, status, other atomic.Int64
	mu                     sync.Mutex
	byNamespace            map[string]int64
}

// InNamespace is every write to objects in namespace ns.
func (w *Writes) InNamespace(ns string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byNamespace[ns]
}

func (w *Writes) ns(obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byNamespace == nil {
		w.byNamespace = map[string]int64{}
	}
	w.byNamespace[obj.GetNamespace()]++
}

// Secrets is the number of Secret creates/updates/patches/deletes.
func (w *Writes) Secrets() int64 { return w.secrets.Load() }

// Status is the number of status subresource writes.
func (w *Writes) Status() int64 { return w.status.Load() }

// Total is every write.
func (w *Writes) Total() int64 { return w.secrets.Load() + w.status.Load() + w.other.Load() }

func (w *Writes) count(obj client.Object) {
	w.ns(obj)
	if _, ok := obj.(*corev1.Secret); ok {
		w.secrets.Add(1)
		return
	}
	w.other.Add(1)
}

// Operator is a running operator.
type Operator struct {
	Writes *Writes
	stop   context.CancelFunc
	done   chan struct{}
}

// Stop stops the operator and waits for it.
func (o *Operator) Stop() {
	o.stop()
	<-o.done
}

// StartOperator runs the operator's wiring against kube with reg until the test ends.
func StartOperator(t testing.TB, kube *testenv.Kube, reg *provider.Registry, mutate ...func(*operator.Options)) *Operator {
	t.Helper()
	setLogger.Do(func() {
		ctrl.SetLogger(zap.New(zap.WriteTo(Logs), zap.UseDevMode(true)))
	})
	ensureNamespace(t, kube, OperatorNamespace)
	w := &Writes{}
	o := operator.Options{
		MetricsAddr:       "0",
		ProbeAddr:         "0",
		OperatorNamespace: OperatorNamespace,
		Workers:           10,
		StoreRecheck:      time.Minute,
		// Several operators run in one test process (one per top-level test).
		SkipNameValidation: true,
		NewClient: func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, opts)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					w.count(obj)
					return c.Create(ctx, obj, opts...)
				},
				Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
					w.count(obj)
					return c.Update(ctx, obj, opts...)
				},
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
					w.count(obj)
					return c.Patch(ctx, obj, p, opts...)
				},
				Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
					w.count(obj)
					return c.Delete(ctx, obj, opts...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
					w.ns(obj)
					if sub == "status" {
						w.status.Add(1)
					} else {
						w.other.Add(1)
					}
					return c.SubResource(sub).Patch(ctx, obj, p, opts...)
				},
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					w.ns(obj)
					if sub == "status" {
						w.status.Add(1)
					} else {
						w.other.Add(1)
					}
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
			}), nil
		},
	}
	for _, m := range mutate {
		m(&o)
	}
	mgr, err := operator.New(kube.Config, o, reg)
	if err != nil {
		t.Fatalf("operator: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	op := &Operator{Writes: w, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(op.done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("operator stopped: %v", err)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-op.done:
		default:
			op.Stop()
		}
	})
	return op
}

func ensureNamespace(t testing.TB, kube *testenv.Kube, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := kube.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("namespace %s: %v", name, err)
	}
}

// Eventually polls cond every 50ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !WaitUntil(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// WaitUntil polls cond every 50ms and reports whether it returned true before
// timeout passed, for callers whose timeout is not fatal.
func WaitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// WaitStable waits until value returns the same number for stableFor (e.g. the
// writes a burst of reconciles makes have stopped), failing after timeout.
func WaitStable(t testing.TB, timeout, stableFor time.Duration, what string, value func() int64) {
	t.Helper()
	last, since := value(), time.Now()
	Eventually(t, timeout, what+" to stay unchanged for "+stableFor.String(), func() bool {
		if v := value(); v != last {
			last, since = v, time.Now()
		}
		return time.Since(since) >= stableFor
	})
}

// LetTimePass waits d on purpose: the test proves that nothing (a write, a read,
// a change) happens while time passes, so there is no condition to poll. why says
// what must not happen, and is logged so a slow test explains itself.
func LetTimePass(t testing.TB, d time.Duration, why string) {
	t.Helper()
	t.Logf("letting %v pass: %s", d, why)
	time.Sleep(d)
}

// AssertNoCanary fails t if canary appears in the namespace's ExternalSecrets,
// SecretStores, events (both event APIs) or the operator's logs. It also fails when
// there are no events at all, since then the check would prove nothing.
func AssertNoCanary(t testing.TB, c client.Client, ns, canary string) {
	t.Helper()
	ctx := context.Background()
	lists := map[string]client.ObjectList{
		"ExternalSecret objects": &v1alpha1.ExternalSecretList{},
		"SecretStore objects":    &v1alpha1.SecretStoreList{},
		"events":                 &eventsv1.EventList{},
		"core events":            &corev1.EventList{},
	}
	for what, l := range lists {
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatalf("list %s: %v", what, err)
		}
		if b, _ := json.Marshal(l); strings.Contains(string(b), canary) {
			t.Errorf("canary found in %s", what)
		}
	}
	if strings.Contains(Logs.String(), canary) {
		t.Error("canary found in the operator's logs")
	}
	if len(lists["events"].(*eventsv1.EventList).Items) == 0 {
		t.Error("no events recorded: the event check proves nothing")
	}
}

// GetSecret returns Secret ns/name, or nil when it does not exist.
func GetSecret(t testing.TB, c client.Client, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// WaitESReason waits until ExternalSecret ns/name's Ready condition has reason for
// its current generation; on timeout it fails with the last condition seen.
func WaitESReason(t testing.TB, c client.Client, timeout time.Duration, ns, name, reason string) *v1alpha1.ExternalSecret {
	t.Helper()
	es := &v1alpha1.ExternalSecret{}
	var last *metav1.Condition
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es); err == nil {
			last = meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
			if last != nil && last.Reason == reason && es.Status.ObservedGeneration == es.Generation {
				return es
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s/%s reason %s; last Ready condition: %+v", timeout, ns, name, reason, last)
	return nil
}
