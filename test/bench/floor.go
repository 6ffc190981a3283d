package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// floorNamespace holds the null operator's objects; they are deleted before the
// operator starts, so it never sees them.
const floorNamespace = "bench-floor"

// floorWorkers is the null operator's pool: the operator's --concurrent, its default
// unless BENCH_OPERATOR_ARGS sets it, so both sides have the same number of requests
// in flight.
func floorWorkers(operatorArgs []string) int {
	n := 20 // main.go's default
	for i, a := range operatorArgs {
		v, ok := strings.CutPrefix(a, "--concurrent=")
		if !ok && a == "--concurrent" && i+1 < len(operatorArgs) {
			v, ok = operatorArgs[i+1], true
		}
		if w, err := strconv.Atoi(v); ok && err == nil && w > 0 {
			n = w
		}
	}
	return n
}

// floorResult is the null operator's run: the API server's own limit for the cold
// burst on this control plane, measured before the operator starts.
type floorResult struct {
	AllReadyS float64            `json:"all_ready_s"`
	CreateS   float64            `json:"create_s"`
	CPU       map[string]float64 `json:"cpu_s,omitempty"`
	LoadAvg   string             `json:"loadavg_at_start,omitempty"`
}

// floorPair is the floor measured without and with the operator's watches, one
// right after the other.
type floorPair struct {
	Floor        *floorResult `json:"floor"`
	Watched      *floorResult `json:"watched"`
	WatchedFirst bool         `json:"watched_first,omitempty"`
	Ratio        float64      `json:"watched_vs_floor"`
}

// floorPairs measures cfg.FloorPairs pairs, the first completing first (an unwatched
// floor already measured). Every second pair runs the watched floor first, so that
// an effect of order (a control plane that has seen one more burst) does not count
// as the watches' cost.
func floorPairs(ctx context.Context, c client.Client, kcfg *rest.Config, cfg config, pids map[string]int, first *floorResult) ([]floorPair, error) {
	var out []floorPair
	for i := range max(cfg.FloorPairs, 1) {
		p := floorPair{Floor: first, WatchedFirst: i%2 == 1}
		for _, watched := range []bool{p.WatchedFirst, !p.WatchedFirst} {
			if !watched && p.Floor != nil {
				continue
			}
			f, err := runFloor(ctx, c, kcfg, cfg, pids, watched)
			if err != nil {
				return out, err
			}
			if watched {
				p.Watched = f
			} else {
				p.Floor = f
			}
			logf("floor pair %d: %s all %d done in %.2fs (creates %.2fs)", i+1, map[bool]string{true: "watched", false: "unwatched"}[watched], cfg.N, f.AllReadyS, f.CreateS)
		}
		first = nil
		p.Ratio = p.Watched.AllReadyS / p.Floor.AllReadyS
		out = append(out, p)
	}
	return out, nil
}

// runFloor measures a null operator: the benchmark's N ExternalSecret creates (same
// 16 workers, same objects) and, for each, the writes the operator makes for a new
// ExternalSecret — create the target Secret (same labels, annotation, controller
// reference and data size) and merge-patch the status to Ready (same fields) — from
// a pool of floorWorkers fed by the creates, timed from the first create until the
// last status patch returned. It costs nothing else: no watch, no cache, no backend.
//
// With watched (BENCH_FLOOR_WATCH=1; floorPairs orders the runs) the null operator also
// keeps open the watches any controller of these objects keeps: see watchFloor. The
// difference between the two runs is what serving the watches costs.
func runFloor(ctx context.Context, c client.Client, kcfg *rest.Config, cfg config, cpuPIDs map[string]int, watched bool) (*floorResult, error) {
	if err := ensureNS(ctx, c, floorNamespace); err != nil {
		return nil, err
	}
	if watched {
		stop, err := watchFloor(ctx, kcfg)
		if err != nil {
			return nil, err
		}
		defer stop()
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
	for range floorWorkers(cfg.OperatorArgs) {
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

// watchFloor opens, in floorNamespace, the operator's two watches: its informers on
// ExternalSecrets and on Secrets with the managed label, managedFields stripped as the
// operator strips them. Events are decoded and dropped. It returns once both have
// synced. The cold burst is timed without the benchmark's readiness watch (run.go:
// waitColdReady), so none is opened here either.
func watchFloor(ctx context.Context, kcfg *rest.Config) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	stop := func() { cancel(); <-done }
	ch, err := cache.New(kcfg, cache.Options{Scheme: newScheme(),
		DefaultNamespaces: map[string]cache.Config{floorNamespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManaged: "true"})},
		}})
	if err != nil {
		cancel()
		return nil, err
	}
	for _, k := range []client.Object{&v1alpha1.ExternalSecret{}, &corev1.Secret{}} {
		if _, err := ch.GetInformer(ctx, k); err != nil {
			cancel()
			return nil, err
		}
	}
	go func() { defer close(done); _ = ch.Start(ctx) }()
	if !ch.WaitForCacheSync(ctx) {
		stop()
		return nil, errors.New("floor: watches did not sync")
	}
	return stop, nil
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
