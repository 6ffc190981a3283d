package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/test/awsemu"
)

// The ClusterExternalSecret phase: cfg.CESNamespaces namespaces exist unlabelled, one
// ClusterExternalSecret selects bench-ces=yes and reads one Secrets Manager key through
// a ClusterSecretStore admitting the same label; then every namespace is labelled at
// once, and the phase measures until every stamped ExternalSecret is Ready and the
// ClusterExternalSecret lists every namespace in status.provisionedNamespaces.

const (
	cesName     = "bench-ces"
	cesStore    = "bench-ces-sm"
	cesLabelKey = "bench-ces"
	cesLabelVal = "yes"
)

type cesResult struct {
	Namespaces  int     `json:"namespaces"`
	LabelS      float64 `json:"label_s"`        // labelling all namespaces (part of the total)
	ESReadyS    float64 `json:"es_all_ready_s"` // last stamped ExternalSecret Ready
	StatusS     float64 `json:"status_all_s"`   // provisionedNamespaces complete (and Ready=True)
	AllReadyS   float64 `json:"all_ready_s"`    // max of the two
	Ready       int     `json:"es_ready"`
	Provisioned int     `json:"provisioned"`
	RSSPeakMiB  float64 `json:"rss_peak_mib"`
	LoadAvg     string  `json:"loadavg_at_start"`
}

func cesNS(i int) string { return fmt.Sprintf("bench-ces-%05d", i) }

// cesWatch records, from informers, when each stamped ExternalSecret (by namespace)
// became Ready and when the ClusterExternalSecret's status first listed every
// namespace with Ready=True.
type cesWatch struct {
	mu          sync.Mutex
	readyAt     map[string]time.Time
	reason      map[string]string
	want        int
	provisioned int
	statusAt    time.Time
}

func (w *cesWatch) onES(obj any) {
	now := time.Now()
	es, ok := obj.(*v1alpha1.ExternalSecret)
	if !ok || es.Labels[v1alpha1.LabelClusterExternalSecret] != cesName {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		w.reason[es.Namespace] = c.Reason
	}
	if _, seen := w.readyAt[es.Namespace]; !seen && isReady(es) {
		w.readyAt[es.Namespace] = now
	}
}

func (w *cesWatch) onCES(obj any) {
	now := time.Now()
	ces, ok := obj.(*v1alpha1.ClusterExternalSecret)
	if !ok || ces.Name != cesName {
		return
	}
	n := 0
	for _, ns := range ces.Status.ProvisionedNamespaces {
		if len(ns) > len("bench-ces-") && ns[:len("bench-ces-")] == "bench-ces-" {
			n++
		}
	}
	c := meta.FindStatusCondition(ces.Status.Conditions, v1alpha1.ConditionReady)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.provisioned = n
	if w.statusAt.IsZero() && w.want > 0 && n >= w.want && c != nil && c.Status == metav1.ConditionTrue {
		w.statusAt = now
	}
}

func (w *cesWatch) snapshot() (ready, provisioned int, statusAt, lastReady time.Time, other map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	other = map[string]int{}
	for ns, r := range w.reason {
		if _, ok := w.readyAt[ns]; !ok {
			other[r]++
		}
	}
	if missing := w.want - len(w.reason); missing > 0 {
		other["(not stamped or no status yet)"] = missing
	}
	for _, t := range w.readyAt {
		if t.After(lastReady) {
			lastReady = t
		}
	}
	return len(w.readyAt), w.provisioned, w.statusAt, lastReady, other
}

func startCESWatch(ctx context.Context, cfg *rest.Config, cl *cleanups) (*cesWatch, error) {
	w := &cesWatch{readyAt: map[string]time.Time{}, reason: map[string]string{}}
	ctx, cancel := context.WithCancel(ctx)
	c, err := cache.New(cfg, cache.Options{Scheme: newScheme(), ByObject: map[client.Object]cache.ByObject{
		&v1alpha1.ExternalSecret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelClusterExternalSecret: cesName})},
	}})
	if err != nil {
		cancel()
		return nil, err
	}
	for _, h := range []struct {
		obj client.Object
		fn  func(any)
	}{{&v1alpha1.ExternalSecret{}, w.onES}, {&v1alpha1.ClusterExternalSecret{}, w.onCES}} {
		inf, err := c.GetInformer(ctx, h.obj)
		if err != nil {
			cancel()
			return nil, err
		}
		fn := h.fn
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { fn(o) },
			UpdateFunc: func(_, o any) { fn(o) },
		}); err != nil {
			cancel()
			return nil, err
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Start(ctx) }()
	cl.add(func() { cancel(); <-done })
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("ClusterExternalSecret informers did not sync")
	}
	return w, nil
}

// parallel runs fn(i) for i in [0, n) with workers goroutines; the first error wins.
func parallel(ctx context.Context, n, workers int, fn func(int) error) error {
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func runCES(ctx context.Context, k *kube, emu *awsemu.Server, op *operatorProc, cfg config, res *results, cl *cleanups) error {
	nns := cfg.CESNamespaces
	if nns <= 0 {
		return nil
	}
	c := k.c
	cr := &cesResult{Namespaces: nns}
	res.CES = cr
	res.CESNamespaces = nns
	fail := func(format string, args ...any) error {
		err := fmt.Errorf("ClusterExternalSecret phase: "+format, args...)
		res.Missing = append(res.Missing, err.Error())
		return err
	}

	logf("ClusterExternalSecret: creating %d namespaces, a ClusterSecretStore and the ClusterExternalSecret", nns)
	if err := parallel(ctx, nns, 16, func(i int) error { return ensureNS(ctx, c, cesNS(i)) }); err != nil {
		return fail("create namespaces: %w", err)
	}
	// The bench's aws-creds Secret in benchNamespace, referenced with its namespace.
	css := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: cesStore},
		Spec: v1alpha1.SecretStoreSpec{
			Provider: v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{
				Service: v1alpha1.AWSServiceSecretsManager, Region: awsemu.DefaultRegion, Endpoint: emu.URL(),
				Auth: &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
					AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "access-key-id", Namespace: benchNamespace},
					SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "secret-access-key", Namespace: benchNamespace},
				}}}},
			Conditions: []v1alpha1.StoreCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{cesLabelKey: cesLabelVal}}}},
		}}
	if err := c.Create(ctx, css); err != nil {
		return fail("create ClusterSecretStore: %w", err)
	}
	if err := waitCSSReady(ctx, c); err != nil {
		return fail("%w", err)
	}
	w, err := startCESWatch(ctx, k.cfg, cl)
	if err != nil {
		return fail("watch: %w", err)
	}
	ces := &v1alpha1.ClusterExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: cesName},
		Spec: v1alpha1.ClusterExternalSecretSpec{
			NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{cesLabelKey: cesLabelVal}}},
			ExternalSecretSpec: v1alpha1.ExternalSecretSpec{
				SecretStoreRef:  v1alpha1.StoreRef{Name: cesStore, Kind: v1alpha1.KindClusterSecretStore},
				RefreshInterval: &metav1.Duration{Duration: cfg.Refresh},
				Data:            []v1alpha1.DataItem{{SecretKey: "value", RemoteRef: &v1alpha1.RemoteRef{Key: smKey(0)}}},
			},
		}}
	if err := c.Create(ctx, ces); err != nil {
		return fail("create ClusterExternalSecret: %w", err)
	}
	// Let the controller see the (still empty) selection before the labels arrive, so
	// the measurement starts from a settled ClusterExternalSecret.
	if err := waitCESObserved(ctx, c); err != nil {
		logf("ClusterExternalSecret: %v (continuing)", err)
	}

	w.mu.Lock()
	w.want = nns
	w.mu.Unlock()
	cr.LoadAvg = loadAvg()
	logf("ClusterExternalSecret: labelling %d namespaces %s=%s (load average %s)", nns, cesLabelKey, cesLabelVal, cr.LoadAvg)
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, cesLabelKey, cesLabelVal))
	t0 := time.Now()
	if err := parallel(ctx, nns, 16, func(i int) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cesNS(i)}}
		return c.Patch(ctx, ns, client.RawPatch(types.MergePatchType, patch))
	}); err != nil {
		return fail("label namespaces: %w", err)
	}
	cr.LabelS = time.Since(t0).Seconds()
	logf("ClusterExternalSecret: labelled in %.1fs; waiting for %d ExternalSecrets Ready and provisionedNamespaces complete", cr.LabelS, nns)

	timeout := 5*time.Minute + time.Duration(nns)*100*time.Millisecond
	deadline := t0.Add(timeout)
	lastLog := time.Now()
	for {
		ready, prov, statusAt, lastReady, other := w.snapshot()
		cr.Ready, cr.Provisioned = ready, prov
		if ready >= nns && !statusAt.IsZero() {
			cr.ESReadyS = lastReady.Sub(t0).Seconds()
			cr.StatusS = statusAt.Sub(t0).Seconds()
			cr.AllReadyS = max(cr.ESReadyS, cr.StatusS)
			break
		}
		if time.Now().After(deadline) {
			cr.RSSPeakMiB = mib(op.rss.Peak())
			return fail("after %s only %d of %d ExternalSecrets Ready (others by reason %v), %d provisioned", timeout, ready, nns, other, prov)
		}
		if time.Since(lastLog) > 10*time.Second {
			logf("  %d/%d Ready, %d provisioned; others by reason: %v", ready, nns, prov, other)
			lastLog = time.Now()
		}
		if err := sleepUntil(ctx, time.Now().Add(50*time.Millisecond)); err != nil {
			return err
		}
	}
	cr.RSSPeakMiB = mib(op.rss.Peak())
	res.CESAllReadyS = cr.AllReadyS
	logf("ClusterExternalSecret: %d namespaces all Ready in %.2fs (ExternalSecrets %.2fs, provisionedNamespaces %.2fs; labelling took %.2fs)",
		nns, cr.AllReadyS, cr.ESReadyS, cr.StatusS, cr.LabelS)
	return nil
}

func waitCSSReady(ctx context.Context, c client.Client) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := &v1alpha1.ClusterSecretStore{}
		if err := c.Get(ctx, client.ObjectKey{Name: cesStore}, st); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(st.Status.Conditions, v1alpha1.ConditionReady)
		if cond != nil && cond.Status == metav1.ConditionTrue {
			return nil
		}
		if time.Now().After(deadline) {
			msg := "(no status)"
			if cond != nil {
				msg = cond.Reason + ": " + cond.Message
			}
			return fmt.Errorf("ClusterSecretStore %s not Ready: %s", cesStore, msg)
		}
		if err := sleepUntil(ctx, time.Now().Add(200*time.Millisecond)); err != nil {
			return err
		}
	}
}

func waitCESObserved(ctx context.Context, c client.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ces := &v1alpha1.ClusterExternalSecret{}
		if err := c.Get(ctx, client.ObjectKey{Name: cesName}, ces); err != nil {
			return err
		}
		if ces.Status.ObservedGeneration == ces.Generation && meta.FindStatusCondition(ces.Status.Conditions, v1alpha1.ConditionReady) != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no status 30s after create (is the ClusterExternalSecret controller registered?)")
		}
		if err := sleepUntil(ctx, time.Now().Add(100*time.Millisecond)); err != nil {
			return err
		}
	}
}
