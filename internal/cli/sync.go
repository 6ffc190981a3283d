package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// SyncResult is one ExternalSecret after a force-sync.
type SyncResult struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Observed  bool   `json:"observed"` // the operator handled this force-sync value
	Ready     string `json:"ready"`
	Reason    string `json:"reason"`
	Message   string `json:"message,omitempty"`
	Fix       string `json:"fix,omitempty"`
}

// pending is one ExternalSecret waiting for its force-sync to be observed.
type pending struct {
	key   types.NamespacedName
	value string
	since time.Time // Ready's lastTransitionTime before the annotation
	gen   int64     // Ready's observedGeneration before
}

// ForceSync sets the force-sync annotation on each ExternalSecret to a new value
// and waits until the operator observed it (status.observedForceSync equals it, or
// the Ready condition moved), printing a progress line to progress.
func ForceSync(ctx context.Context, c client.Client, keys []types.NamespacedName, timeout, poll time.Duration, progress io.Writer, now func() time.Time) ([]SyncResult, error) {
	var waiting []pending
	for _, k := range keys {
		p, err := annotate(ctx, c, k, now)
		if err != nil {
			return nil, err
		}
		waiting = append(waiting, p)
	}
	results := make(map[types.NamespacedName]SyncResult, len(keys))
	start := now()
	deadline := start.Add(timeout)
	for {
		var left []pending
		for _, p := range waiting {
			r, done, err := observe(ctx, c, p)
			if err != nil {
				return nil, err
			}
			results[p.key] = r
			if !done {
				left = append(left, p)
			}
		}
		waiting = left
		fmt.Fprintf(progress, "\rwaiting for the operator: %d/%d observed (%s)   ", len(keys)-len(waiting), len(keys), now().Sub(start).Round(time.Second))
		if len(waiting) == 0 || !now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
	fmt.Fprintln(progress)
	if len(waiting) > 0 {
		// The operator records status.observedForceSync after every forced refresh,
		// failed or not: one not observed was not reached at all.
		fmt.Fprintf(progress, "%d not observed within %s: is the operator running and leading (kubectl -n <operator namespace> get pods,leases)? The reason shown is the last one recorded\n", len(waiting), timeout)
	}
	out := make([]SyncResult, 0, len(keys))
	for _, k := range keys {
		out = append(out, results[k])
	}
	return out, nil
}

func annotate(ctx context.Context, c client.Client, k types.NamespacedName, now func() time.Time) (pending, error) {
	es := &v1alpha1.ExternalSecret{}
	if err := c.Get(ctx, k, es); err != nil {
		return pending{}, fmt.Errorf("get ExternalSecret %s: %w", k, err)
	}
	p := pending{key: k, value: strconv.FormatInt(now().UnixNano(), 10)}
	if r := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady); r != nil {
		p.since, p.gen = r.LastTransitionTime.Time, r.ObservedGeneration
	}
	patch := client.MergeFrom(es.DeepCopy())
	if es.Annotations == nil {
		es.Annotations = map[string]string{}
	}
	es.Annotations[v1alpha1.AnnotationForceSync] = p.value
	if err := c.Patch(ctx, es, patch); err != nil {
		return pending{}, fmt.Errorf("annotate ExternalSecret %s: %w", k, err)
	}
	return p, nil
}

func observe(ctx context.Context, c client.Client, p pending) (SyncResult, bool, error) {
	es := &v1alpha1.ExternalSecret{}
	if err := c.Get(ctx, p.key, es); err != nil {
		return SyncResult{}, false, fmt.Errorf("get ExternalSecret %s: %w", p.key, err)
	}
	r := SyncResult{Namespace: p.key.Namespace, Name: p.key.Name, Ready: "Unknown", Reason: "NoStatus"}
	cond := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
	if cond != nil {
		r.Ready, r.Reason, r.Message, r.Fix = string(cond.Status), cond.Reason, cond.Message, fixFor(cond.Reason)
	}
	moved := cond != nil && (cond.LastTransitionTime.After(p.since) || cond.ObservedGeneration > p.gen)
	r.Observed = es.Status.ObservedForceSync == p.value || moved
	return r, r.Observed, nil
}

// targets lists the ExternalSecrets a sync applies to.
func syncTargets(ctx context.Context, c client.Client, ns string, names []string, all bool) ([]types.NamespacedName, error) {
	if !all {
		return []types.NamespacedName{{Namespace: ns, Name: names[0]}}, nil
	}
	var l v1alpha1.ExternalSecretList
	if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list ExternalSecrets: %w", err)
	}
	var out []types.NamespacedName
	for _, es := range l.Items {
		out = append(out, types.NamespacedName{Namespace: es.Namespace, Name: es.Name})
	}
	return out, nil
}

func writeSyncTable(w io.Writer, rs []SyncResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tOBSERVED\tREADY\tREASON\tMESSAGE")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", r.Namespace, r.Name, r.Observed, r.Ready, r.Reason, r.Message)
	}
}

func syncHealthy(rs []SyncResult) bool {
	for _, r := range rs {
		if !r.Observed || r.Ready != string(metav1.ConditionTrue) {
			return false
		}
	}
	return true
}
