package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// floorNamespace holds the null operator's objects; they are deleted before the
// operator starts, so it never sees them.
const floorNamespace = "bench-floor"

// floorWorkers is the null operator's pool: the operator's default --concurrent.
const floorWorkers = 20

// floorResult is the null operator's run: the API server's own limit for the cold
// burst on this control plane, measured before the operator starts.
type floorResult struct {
	AllReadyS float64            `json:"all_ready_s"`
	CreateS   float64            `json:"create_s"`
	CPU       map[string]float64 `json:"cpu_s,omitempty"`
	LoadAvg   string             `json:"loadavg_at_start,omitempty"`
}

// runFloor measures a null operator: the benchmark's N ExternalSecret creates (same
// 16 workers, same objects) and, for each, the writes the operator makes for a new
// ExternalSecret — create the target Secret (same labels, annotation, controller
// reference and data size) and merge-patch the status to Ready (same fields) — from
// a pool of floorWorkers fed by the creates, timed from the first create until the
// last status patch returned. It costs nothing else: no watch, no cache, no backend.
func runFloor(ctx context.Context, c client.Client, cfg config, cpuPIDs map[string]int) (*floorResult, error) {
	if err := ensureNS(ctx, c, floorNamespace); err != nil {
		return nil, err
	}
	res := &floorResult{LoadAvg: loadAvg()}
	cpu0 := cpuNow(cpuPIDs)
	created := make(chan *v1alpha1.ExternalSecret, cfg.N)
	var firstErr error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	t0 := time.Now()
	var workers sync.WaitGroup
	for range floorWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for es := range created {
				if err := floorSync(ctx, c, es, cfg); err != nil {
					fail(err)
				}
			}
		}()
	}
	var next atomic.Int64
	var creators sync.WaitGroup
	for range 16 {
		creators.Add(1)
		go func() {
			defer creators.Done()
			for {
				g := int(next.Add(1)) - 1
				if g >= cfg.N || ctx.Err() != nil {
					return
				}
				es := benchES(floorNamespace, fmt.Sprintf("es-%05d", g), g, cfg)
				if err := c.Create(ctx, es); err != nil {
					fail(fmt.Errorf("floor: create ExternalSecret: %w", err))
					return
				}
				created <- es
			}
		}()
	}
	creators.Wait()
	res.CreateS = time.Since(t0).Seconds()
	close(created)
	workers.Wait()
	res.AllReadyS = time.Since(t0).Seconds()
	res.CPU = cpuSince(cpuPIDs, cpu0)
	if firstErr != nil {
		return res, firstErr
	}
	// Gone before the operator starts (no finalizers yet, no garbage collector in
	// envtest: delete both kinds).
	if err := c.DeleteAllOf(ctx, &v1alpha1.ExternalSecret{}, client.InNamespace(floorNamespace)); err != nil {
		return res, fmt.Errorf("floor: delete ExternalSecrets: %w", err)
	}
	if err := c.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(floorNamespace)); err != nil {
		return res, fmt.Errorf("floor: delete Secrets: %w", err)
	}
	return res, nil
}

// floorSync makes the operator's two writes for a new ExternalSecret g.
func floorSync(ctx context.Context, c client.Client, es *v1alpha1.ExternalSecret, cfg config) error {
	g := 0
	if _, err := fmt.Sscanf(strings.TrimPrefix(es.Name, "es-"), "%d", &g); err != nil {
		return err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: es.Namespace, Name: es.Name,
			Labels:      map[string]string{v1alpha1.LabelManaged: "true"},
			Annotations: map[string]string{"secretsync.dev/external-secret": es.Name}},
		Type: corev1.SecretTypeOpaque,
		Data: benchData(g, cfg),
	}
	if err := controllerutil.SetControllerReference(es, s, c.Scheme()); err != nil {
		return err
	}
	if err := c.Create(ctx, s); err != nil {
		return fmt.Errorf("floor: create Secret: %w", err)
	}
	orig := es.DeepCopy()
	now := metav1.Now()
	es.Status = v1alpha1.ExternalSecretStatus{
		ObservedGeneration: es.Generation,
		SyncedAt:           &now,
		Target:             &v1alpha1.TargetStatus{Name: es.Name},
		Sources:            floorSources(es),
		// The operator's keyed hash has this length.
		DataHash: "hmac-sha256:" + strings.Repeat("0", 64),
	}
	meta.SetStatusCondition(&es.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady,
		Status: metav1.ConditionTrue, ObservedGeneration: es.Generation, Reason: v1alpha1.ReasonSynced,
		Message: "target Secret is in sync"})
	if err := c.Status().Patch(ctx, es, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("floor: patch status: %w", err)
	}
	return nil
}

// floorSources is status.sources as the operator writes it: one per key, sorted.
func floorSources(es *v1alpha1.ExternalSecret) []v1alpha1.SourceStatus {
	var out []v1alpha1.SourceStatus
	for _, d := range es.Spec.Data {
		out = append(out, v1alpha1.SourceStatus{Key: d.RemoteRef.Key, Version: "1"})
	}
	slices.SortFunc(out, func(a, b v1alpha1.SourceStatus) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func cpuNow(pids map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range pids {
		if pid > 0 {
			out[name], _ = cpuSeconds(pid)
		}
	}
	return out
}

func cpuSince(pids map[string]int, start map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for name, c0 := range start {
		if c1, err := cpuSeconds(pids[name]); err == nil {
			out[name] = c1 - c0
		}
	}
	return out
}
