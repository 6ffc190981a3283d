package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/cost"
)

// StatusReport is what status prints: what is not Ready, by reason, and the
// projected backend cost per store.
type StatusReport struct {
	Scope       string            `json:"scope"` // a namespace, or "all namespaces"
	Total       Totals            `json:"total"`
	NotReady    []ReasonGroup     `json:"notReady"`
	Cost        []cost.Projection `json:"cost"`
	PriceTable  string            `json:"priceTable"`
	CostCaveats []string          `json:"costCaveats"`
}

// Totals counts what was looked at.
type Totals struct {
	ExternalSecrets int `json:"externalSecrets"`
	Stores          int `json:"stores"`
	NotReady        int `json:"notReady"`
}

// ReasonGroup is the objects of one kind not Ready for one reason.
type ReasonGroup struct {
	Kind    string   `json:"kind"`
	Reason  string   `json:"reason"`
	Count   int      `json:"count"`
	Fix     string   `json:"fix,omitempty"`
	Objects []string `json:"objects"`
}

// PriceTable states the prices and their date (internal/cost).
var PriceTable = fmt.Sprintf("AWS API call prices as of %s: Secrets Manager $%.2f per 10,000 calls; Parameter Store standard throughput free, higher throughput $%.2f per 10,000; Vault no per-call price. Excludes per-secret storage fees.",
	cost.PriceDate, cost.Prices.SecretsManager, cost.Prices.ParameterStoreHigh)

var costCaveats = []string{
	"periodic refreshes only (30-day month); force-syncs, spec edits and drift repairs are extra",
	"a store marked lower-bound has find entries: listing pages and the keys found are not counted",
}

// Status builds the report for namespace ns ("" = all namespaces).
func Status(ctx context.Context, c client.Client, ns string) (*StatusReport, error) {
	r := &StatusReport{Scope: ns, PriceTable: PriceTable, CostCaveats: costCaveats}
	if ns == "" {
		r.Scope = "all namespaces"
	}
	var ess v1alpha1.ExternalSecretList
	var sss v1alpha1.SecretStoreList
	var csss v1alpha1.ClusterSecretStoreList
	if err := c.List(ctx, &ess, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list ExternalSecrets: %w", err)
	}
	if err := c.List(ctx, &sss, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list SecretStores: %w", err)
	}
	if err := c.List(ctx, &csss); err != nil {
		return nil, fmt.Errorf("list ClusterSecretStores: %w", err)
	}
	groups := map[[2]string]*ReasonGroup{}
	note := func(kind, name string, conds []metav1.Condition, gen int64) {
		reason := notReadyReason(conds, gen)
		if reason == "" {
			return
		}
		r.Total.NotReady++
		k := [2]string{kind, reason}
		if groups[k] == nil {
			groups[k] = &ReasonGroup{Kind: kind, Reason: reason, Fix: fixFor(reason)}
		}
		groups[k].Count++
		groups[k].Objects = append(groups[k].Objects, name)
	}
	stores := map[string]*cost.Store{}
	for i := range csss.Items {
		s := &csss.Items[i]
		note("ClusterSecretStore", s.Name, s.Status.Conditions, s.Generation)
		stores["css/"+s.Name] = &cost.Store{Kind: "ClusterSecretStore", Name: s.Name, Backend: cost.BackendOf(&s.Spec)}
	}
	for i := range sss.Items {
		s := &sss.Items[i]
		note("SecretStore", s.Namespace+"/"+s.Name, s.Status.Conditions, s.Generation)
		stores["ss/"+s.Namespace+"/"+s.Name] = &cost.Store{Kind: "SecretStore", Namespace: s.Namespace, Name: s.Name, Backend: cost.BackendOf(&s.Spec)}
	}
	r.Total.Stores = len(csss.Items) + len(sss.Items)
	r.Total.ExternalSecrets = len(ess.Items)
	for i := range ess.Items {
		es := &ess.Items[i]
		note("ExternalSecret", es.Namespace+"/"+es.Name, es.Status.Conditions, es.Generation)
		key := "ss/" + es.Namespace + "/" + es.Spec.SecretStoreRef.Name
		if es.Spec.SecretStoreRef.Kind == v1alpha1.KindClusterSecretStore {
			key = "css/" + es.Spec.SecretStoreRef.Name
		}
		if s := stores[key]; s != nil {
			s.Reads = append(s.Reads, cost.ReadsOf(es)...)
		}
	}
	for _, g := range groups {
		sort.Strings(g.Objects)
		r.NotReady = append(r.NotReady, *g)
	}
	sort.Slice(r.NotReady, func(i, j int) bool {
		a, b := r.NotReady[i], r.NotReady[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Reason < b.Reason
	})
	r.Cost = []cost.Projection{}
	for _, s := range stores {
		r.Cost = append(r.Cost, cost.Project(*s))
	}
	cost.Sort(r.Cost)
	if r.NotReady == nil {
		r.NotReady = []ReasonGroup{}
	}
	return r, nil
}

// notReadyReason is "" for a Ready object processed at its generation, else why not.
func notReadyReason(conds []metav1.Condition, gen int64) string {
	c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	switch {
	case c == nil:
		return "NoStatus"
	case c.Status != metav1.ConditionTrue:
		return c.Reason
	case c.ObservedGeneration != 0 && c.ObservedGeneration < gen:
		return "NotObservedYet"
	}
	return ""
}

func (r *StatusReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "Scope: %s — %d ExternalSecrets, %d stores, %d not Ready\n\n", r.Scope, r.Total.ExternalSecrets, r.Total.Stores, r.Total.NotReady)
	if len(r.NotReady) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tREASON\tCOUNT\tOBJECTS")
		for _, g := range r.NotReady {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", g.Kind, g.Reason, g.Count, joinMax(g.Objects, 5))
		}
		tw.Flush()
		fmt.Fprintln(w)
		for _, g := range r.NotReady {
			if g.Fix != "" {
				fmt.Fprintf(w, "  %s: %s\n", g.Reason, g.Fix)
			}
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "Everything is Ready.")
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tBACKEND\tREFS\tREADS/MONTH\tCALLS/MONTH\tBATCH\tUSD/MONTH")
	for _, p := range r.Cost {
		name := p.Kind + "/" + p.Name
		if p.Namespace != "" {
			name = p.Kind + "/" + p.Namespace + "/" + p.Name
		}
		usd := fmt.Sprintf("%.2f", p.USD)
		switch p.Backend {
		case cost.ParameterStore:
			usd = fmt.Sprintf("%.2f (higher throughput: %.2f)", p.USD, p.USDHighThroughput)
		case cost.Vault:
			usd = "-"
		}
		calls := fmt.Sprintf("%.0f", p.CallsPerMo)
		if p.LowerBound {
			calls = "≥" + calls
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%d\t%s\n", name, p.Backend, p.DistinctRefs, p.ReadsPerMo, calls, p.BatchSize, usd)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", r.PriceTable)
	for _, c := range r.CostCaveats {
		fmt.Fprintf(w, "Note: %s.\n", c)
	}
}

func joinMax(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s, … (%d more)", strings.Join(s[:n], ", "), len(s)-n)
}
