package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/controllers/externalsecret"
)

// Explanation is everything explain says about one ExternalSecret. It holds key
// names, versions, lease ids and times only — never a value.
type Explanation struct {
	Namespace       string           `json:"namespace"`
	Name            string           `json:"name"`
	Store           StoreExplained   `json:"store"`
	Keys            []KeyExplained   `json:"keys,omitempty"`
	Targets         []TargetKey      `json:"targets,omitempty"`
	Sources         []SourceVersion  `json:"sources,omitempty"`
	Ready           ReadyExplained   `json:"ready"`
	SyncedAt        *time.Time       `json:"syncedAt,omitempty"`
	RefreshPolicy   string           `json:"refreshPolicy"`
	RefreshInterval string           `json:"refreshInterval"`
	NextRefresh     *time.Time       `json:"nextRefresh,omitempty"`
	Leases          []LeaseExplained `json:"leases,omitempty"`
	Rollout         string           `json:"rollout"`
}

// StoreExplained is the store the ExternalSecret resolves to and its admission.
type StoreExplained struct {
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Found       bool   `json:"found"`
	Ready       string `json:"ready"` // the store's Ready reason
	Admitted    *bool  `json:"admitted,omitempty"`
	AdmittedBy  []int  `json:"admittedBy,omitempty"` // conditions[] indexes (ClusterSecretStore)
	Description string `json:"description"`
}

// KeyExplained is one remote key the spec names and whether admission allows it.
type KeyExplained struct {
	Path      string `json:"path"`
	Key       string `json:"key"`
	Allowed   bool   `json:"allowed"`
	AllowedBy string `json:"allowedBy"` // e.g. "conditions[1]", "SecretStore (own namespace)"
}

// TargetKey is one target Secret key and where it comes from.
type TargetKey struct {
	SecretKey string `json:"secretKey"` // "*" for dataFrom entries
	From      string `json:"from"`      // remote key, find path or dynamic path
	Property  string `json:"property,omitempty"`
	Version   string `json:"version,omitempty"`
	Via       string `json:"via"` // data, extract, find, dynamic, decrypt
}

// SourceVersion is a remote key's version now in the Secret (status.sources).
type SourceVersion struct {
	Key     string `json:"key"`
	Version string `json:"version,omitempty"`
}

// ReadyExplained is the Ready condition with the fix for its reason.
type ReadyExplained struct {
	Status             string     `json:"status"`
	Reason             string     `json:"reason"`
	Message            string     `json:"message,omitempty"`
	Fix                string     `json:"fix,omitempty"`
	LastTransitionTime *time.Time `json:"lastTransitionTime,omitempty"`
	ObservedGeneration int64      `json:"observedGeneration"`
	Generation         int64      `json:"generation"`
}

// LeaseExplained is one entry of status.leases.
type LeaseExplained struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind,omitempty"`
	Path      string     `json:"path,omitempty"`
	Renewable bool       `json:"renewable"`
	IssuedAt  *time.Time `json:"issuedAt,omitempty"`
	ExpiresAt time.Time  `json:"expiresAt"`
	Keys      []string   `json:"keys,omitempty"`
}

// rolloutOf describes spec.target.rollout and the last restart (status.rollout).
func rolloutOf(es *v1alpha1.ExternalSecret) string {
	r := es.Spec.Target.Rollout
	if r == nil || (r.Consumers != v1alpha1.RolloutAuto && len(r.Targets) == 0) {
		return "none (workloads are not restarted when the Secret changes)"
	}
	var parts []string
	if r.Consumers == v1alpha1.RolloutAuto {
		parts = append(parts, "Auto (Deployments, StatefulSets, DaemonSets using the Secret)")
	}
	for _, w := range r.Targets {
		parts = append(parts, string(w.Kind)+"/"+w.Name)
	}
	out := strings.Join(parts, ", ")
	if st := es.Status.Rollout; st != nil && st.LastRestartAt != nil {
		out += fmt.Sprintf("; last restart %s of %d workload(s)", st.LastRestartAt.UTC().Format(time.RFC3339), len(st.Restarted))
	}
	return out
}

// Explain gathers the explanation of ExternalSecret ns/name.
func Explain(ctx context.Context, c client.Client, ns, name string, now time.Time) (*Explanation, error) {
	es := &v1alpha1.ExternalSecret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, es); err != nil {
		return nil, fmt.Errorf("get ExternalSecret %s/%s: %w", ns, name, err)
	}
	x := &Explanation{Namespace: ns, Name: name, Rollout: rolloutOf(es)}
	if err := explainStore(ctx, c, es, x); err != nil {
		return nil, err
	}
	x.Targets = targetKeys(es)
	for _, s := range es.Status.Sources {
		x.Sources = append(x.Sources, SourceVersion{Key: s.Key, Version: s.Version})
	}
	x.Ready = readyOf(es.Status.Conditions, es.Generation)
	x.Ready.ObservedGeneration = es.Status.ObservedGeneration
	if es.Status.SyncedAt != nil {
		t := es.Status.SyncedAt.Time
		x.SyncedAt = &t
	}
	x.RefreshPolicy = string(es.Spec.RefreshPolicy)
	if x.RefreshPolicy == "" {
		x.RefreshPolicy = string(v1alpha1.RefreshPeriodic)
	}
	x.RefreshInterval = externalsecret.RefreshInterval(es).String()
	if next := externalsecret.NextRefresh(es, lastRefresh(es), now); !next.IsZero() {
		x.NextRefresh = &next
	}
	for _, l := range es.Status.Leases {
		x.Leases = append(x.Leases, LeaseExplained{ID: l.ID, Kind: l.Kind, Path: l.Path, Renewable: l.Renewable,
			IssuedAt: timePtr(l.IssuedAt), ExpiresAt: l.ExpiresAt.Time, Keys: l.Keys})
	}
	return x, nil
}

// lastRefresh is the latest refresh the status proves: the last data change
// (syncedAt) or the last time Ready changed. A refresh that changed nothing leaves
// no trace, so the next slot shown is the one the controller keeps unless it
// refreshed off-slot since (force-sync, spec edit, drift repair).
func lastRefresh(es *v1alpha1.ExternalSecret) time.Time {
	var t time.Time
	if es.Status.SyncedAt != nil {
		t = es.Status.SyncedAt.Time
	}
	if c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.LastTransitionTime.After(t) {
		t = c.LastTransitionTime.Time
	}
	return t
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

func readyOf(conds []metav1.Condition, generation int64) ReadyExplained {
	r := ReadyExplained{Status: "Unknown", Reason: "NoStatus", Generation: generation,
		Fix: "the operator has not processed this object yet: is it running? (see docs/troubleshooting.md, The operator itself)"}
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		t := c.LastTransitionTime.Time
		r = ReadyExplained{Status: string(c.Status), Reason: c.Reason, Message: c.Message, Fix: fixFor(c.Reason),
			LastTransitionTime: &t, ObservedGeneration: c.ObservedGeneration, Generation: generation}
	}
	return r
}

// explainStore resolves the store and admission with the controller's own rules.
func explainStore(ctx context.Context, c client.Client, es *v1alpha1.ExternalSecret, x *Explanation) error {
	ref := es.Spec.SecretStoreRef
	x.Store = StoreExplained{Kind: string(v1alpha1.KindSecretStore), Name: ref.Name}
	var store v1alpha1.GenericStore
	if ref.Kind == v1alpha1.KindClusterSecretStore {
		x.Store.Kind = string(ref.Kind)
		store = &v1alpha1.ClusterSecretStore{}
	} else {
		store = &v1alpha1.SecretStore{}
	}
	key := types.NamespacedName{Name: ref.Name}
	if store.GetKind() == string(v1alpha1.KindSecretStore) {
		key.Namespace = es.Namespace
	}
	err := c.Get(ctx, key, store.(client.Object))
	if apierrors.IsNotFound(err) {
		x.Store.Description = fmt.Sprintf("%s %q does not exist", x.Store.Kind, ref.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s %q: %w", x.Store.Kind, ref.Name, err)
	}
	x.Store.Found = true
	x.Store.Ready = readyOf(store.GetStatus().Conditions, store.GetGeneration()).Reason
	x.Store.Description = describeProvider(store.GetSpec())
	css, ok := store.(*v1alpha1.ClusterSecretStore)
	if !ok {
		for _, k := range externalsecret.SpecKeys(es) {
			x.Keys = append(x.Keys, KeyExplained{Path: k.Path, Key: k.Key, Allowed: true, AllowedBy: "SecretStore (own namespace)"})
		}
		return nil
	}
	idx, err := externalsecret.AdmittingConditions(ctx, c, css, es.Namespace)
	if err != nil {
		return fmt.Errorf("admission of namespace %q: %w", es.Namespace, err)
	}
	admitted := len(idx) > 0
	x.Store.Admitted, x.Store.AdmittedBy = &admitted, idx
	for _, k := range externalsecret.SpecKeys(es) {
		ke := KeyExplained{Path: k.Path, Key: k.Admitted, AllowedBy: "none"}
		if i := externalsecret.KeyAllowedBy(css, idx, k.Admitted); i >= 0 {
			ke.Allowed, ke.AllowedBy = true, fmt.Sprintf("conditions[%d]", i)
		}
		x.Keys = append(x.Keys, ke)
	}
	return nil
}

func describeProvider(spec *v1alpha1.SecretStoreSpec) string {
	switch p := spec.Provider; {
	case p.AWS != nil:
		return fmt.Sprintf("AWS %s in %s", p.AWS.Service, p.AWS.Region)
	case p.Vault != nil:
		return fmt.Sprintf("Vault %s, mount %q", p.Vault.Server, p.Vault.Path)
	}
	return "no provider"
}

func targetKeys(es *v1alpha1.ExternalSecret) []TargetKey {
	var out []TargetKey
	for _, d := range es.Spec.Data {
		switch {
		case d.RemoteRef != nil:
			out = append(out, TargetKey{SecretKey: d.SecretKey, From: d.RemoteRef.Key, Property: d.RemoteRef.Property, Version: d.RemoteRef.Version, Via: "data"})
		case d.Decrypt != nil:
			out = append(out, TargetKey{SecretKey: d.SecretKey, From: d.Decrypt.Mount + "/" + d.Decrypt.Key, Via: "decrypt"})
		}
	}
	for _, d := range es.Spec.DataFrom {
		switch {
		case d.Extract != nil:
			out = append(out, TargetKey{SecretKey: "*", From: d.Extract.Key, Version: d.Extract.Version, Via: "extract"})
		case d.Find != nil:
			out = append(out, TargetKey{SecretKey: "*", From: d.Find.Path, Via: "find"})
		case d.Dynamic != nil:
			out = append(out, TargetKey{SecretKey: "*", From: d.Dynamic.Path, Via: "dynamic"})
		}
	}
	return out
}

// Healthy is what explain's exit code says: Ready and (for a cluster store) admitted.
func (x *Explanation) Healthy() bool {
	return x.Ready.Status == string(metav1.ConditionTrue) && (x.Store.Admitted == nil || *x.Store.Admitted)
}

func fmtTime(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), d)
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), -d)
}

// writeTable prints the explanation for people.
func (x *Explanation) writeTable(w io.Writer, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "ExternalSecret:\t%s/%s\n", x.Namespace, x.Name)
	fmt.Fprintf(tw, "Ready:\t%s  %s\n", x.Ready.Status, x.Ready.Reason)
	if x.Ready.Message != "" {
		fmt.Fprintf(tw, "Message:\t%s\n", x.Ready.Message)
	}
	if x.Ready.Fix != "" {
		fmt.Fprintf(tw, "Fix:\t%s\n", x.Ready.Fix)
	}
	fmt.Fprintf(tw, "Generation:\t%d (observed %d)\n", x.Ready.Generation, x.Ready.ObservedGeneration)
	st := fmt.Sprintf("%s %q", x.Store.Kind, x.Store.Name)
	if x.Store.Found {
		st += fmt.Sprintf(": %s, store Ready reason %s", x.Store.Description, x.Store.Ready)
	} else {
		st += ": " + x.Store.Description
	}
	fmt.Fprintf(tw, "Store:\t%s\n", st)
	if x.Store.Admitted != nil {
		adm := "NO: no condition admits namespace " + x.Namespace
		if *x.Store.Admitted {
			parts := make([]string, len(x.Store.AdmittedBy))
			for i, c := range x.Store.AdmittedBy {
				parts[i] = fmt.Sprintf("conditions[%d]", c)
			}
			adm = "yes, by " + strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "Admission:\t%s\n", adm)
	}
	fmt.Fprintf(tw, "Synced at:\t%s\n", fmtTime(x.SyncedAt, now))
	fmt.Fprintf(tw, "Refresh:\t%s every %s, next %s\n", x.RefreshPolicy, x.RefreshInterval, fmtTime(x.NextRefresh, now))
	fmt.Fprintf(tw, "Rollout:\t%s\n", x.Rollout)
	tw.Flush()
	section(w, "\nREMOTE KEY\tFIELD\tALLOWED\tBY", len(x.Keys), func(tw io.Writer) {
		for _, k := range x.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", k.Key, k.Path, k.Allowed, k.AllowedBy)
		}
	})
	section(w, "\nSECRET KEY\t\tFROM\tPROPERTY\tVERSION\tVIA", len(x.Targets), func(tw io.Writer) {
		for _, t := range x.Targets {
			fmt.Fprintf(tw, "%s\t←\t%s\t%s\t%s\t%s\n", t.SecretKey, t.From, dash(t.Property), dash(t.Version), t.Via)
		}
	})
	section(w, "\nIN THE SECRET (status.sources)\tVERSION", len(x.Sources), func(tw io.Writer) {
		for _, s := range x.Sources {
			fmt.Fprintf(tw, "%s\t%s\n", s.Key, dash(s.Version))
		}
	})
	section(w, "\nLEASE\tKIND\tPATH\tRENEWABLE\tEXPIRES", len(x.Leases), func(tw io.Writer) {
		for _, l := range x.Leases {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", l.ID, dash(l.Kind), dash(l.Path), l.Renewable, fmtTime(&l.ExpiresAt, now))
		}
	})
}

func section(w io.Writer, header string, n int, rows func(io.Writer)) {
	if n == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
