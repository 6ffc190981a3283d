package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

func fmtMap(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// report prints the human table, then (last line) the JSON object.
func report(r *results) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	fmt.Fprintln(w, "\nsecretsync benchmark")
	row("machine", "%d CPUs (%s), %d MiB, %s", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemMiB, r.Machine.Go)
	row("setup", "N=%d ExternalSecrets over 3 stores, M=%d keys per backend (distinct referenced: SM %d, SSM %d, Vault %d), AWS latency %.0f ms, refresh %.0fs, Vault auth %s, operator args %v",
		r.N, r.M, r.KeysPerStore.SM, r.KeysPerStore.SSM, r.KeysPerStore.Vault, r.LatencyMs, r.RefreshS, r.VaultAuth, r.OperatorArgs)
	row("multi-key mix", "%d%% of ExternalSecrets read 3-5 keys: %d of %d, %d named keys in all", r.MultiPct, r.MultiES, r.N, r.KeyRefs)
	if r.ColdReadyS > 0 {
		row("cold burst: all Ready", "%.2f s (%.0f ExternalSecrets/s; creates took %.2f s)", r.ColdReadyS, r.ColdRate, r.ColdCreateS)
	} else {
		row("cold burst: all Ready", "NOT MEASURED (%d of %d Ready)", r.ColdReady, r.N)
	}
	floorRow := func(name string, f *floorResult) {
		parts := []string{}
		for _, k := range sortedKeys(f.CPU) {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, f.CPU[k]))
		}
		row(name, "%.2f s (creates %.2f s; CPU seconds %s; load average at start %s)", f.AllReadyS, f.CreateS, strings.Join(parts, ", "), f.LoadAvg)
	}
	if f := r.Floor; f != nil && f.AllReadyS > 0 {
		floorRow("floor (null operator): all done", f)
		if fw := r.FloorWatched; fw != nil && fw.AllReadyS > 0 {
			floorRow("floor with watches: all done", fw)
			row("floor with watches / floor", "%.2f (the cost of the operator's two watches alone)", fw.AllReadyS/f.AllReadyS)
		}
		if len(r.FloorPairs) > 1 {
			var ratios []float64
			var parts []string
			for _, p := range r.FloorPairs {
				ratios = append(ratios, p.Ratio)
				parts = append(parts, fmt.Sprintf("%.2f/%.2f s", p.Watched.AllReadyS, p.Floor.AllReadyS))
			}
			slices.Sort(ratios)
			row("floor pairs: watched / floor", "median %.2f of %d pairs (%s; watched/unwatched: %s)", median(ratios), len(ratios), fmtRatios(ratios), strings.Join(parts, ", "))
		}
		row("cold burst / floor", "%.2f (target <= 1.2 at N = 3000, <= 1.3 at N = 10,000)", r.ColdVsFloor)
		if len(r.ColdRounds) > 1 {
			var parts []string
			for _, c := range r.ColdRounds {
				parts = append(parts, fmt.Sprintf("%.2f (%.2f/%.2f s)", c.Ratio, c.ColdS, c.FloorS))
			}
			row("cold burst / floor, rounds", "median %.2f of %d rounds: %s", r.ColdVsFloorMedian, len(r.ColdRounds), strings.Join(parts, ", "))
		}
	}
	row("cold burst: RSS peak", "%.0f MiB", r.ColdRSSMiB)
	if len(r.ColdCPU) > 0 {
		parts := []string{}
		for _, k := range sortedKeys(r.ColdCPU) {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, r.ColdCPU[k]))
		}
		row("cold burst: CPU seconds", "%s (load average at start %s)", strings.Join(parts, ", "), r.ColdLoadAvg)
	}
	if r.ColdVault != nil && r.ColdKubeWrites != nil {
		row("cold burst: backend / kube", "AWS %s; Vault %d requests (logins %d, KV reads %d); Kubernetes writes %d (%s)",
			fmtMap(r.ColdAWSCalls), r.ColdVault.Total, r.ColdVault.Logins, r.ColdVault.Reads, r.ColdKubeWrites.Total, fmtMap(r.ColdKubeWrites.ByKind))
	}
	if len(r.ColdKubeRequests) > 0 {
		row("cold burst: operator's API requests", "%s (verb resource code; watches not counted)", fmtMap(r.ColdKubeRequests))
	}
	if s := r.Steady; s != nil {
		per := fmt.Sprintf("steady per round (mean of %d): ", s.RoundsMeasured)
		row(per+"AWS calls", "%d (%s)", s.AWSTotal, fmtMap(s.AWSCalls))
		row("  floor", "GetParameters %d (= ceil(SSM keys/10)), BatchGetSecretValue %d (= ceil(SM keys/20)): got %s and %s",
			s.FloorGetParameters, s.FloorBatchGetSecretValue, vsFloor(s.AWSCalls["ssm.GetParameters"], s.FloorGetParameters),
			vsFloor(s.AWSCalls["secretsmanager.BatchGetSecretValue"], s.FloorBatchGetSecretValue))
		row(per+"Vault requests", "%d (logins %d, KV reads %d = %s, token ops %d; floor: %d reads, one per distinct key, 0 logins) [%s]",
			s.Vault.Total, s.Vault.Logins, s.Vault.Reads, vsFloor(s.Vault.Reads, s.FloorVaultReads), s.Vault.Token, s.FloorVaultReads, fmtMap(s.Vault.ByPath))
		row(per+"Kubernetes writes", "%d (%s; floor 0)", s.KubeWrites.Total, fmtMap(s.KubeWrites.ByKind))
		row(per+"rollout", "workload LISTs %d, restart patches %d (every ExternalSecret has rollout consumers Auto; floor 0 and 0)", s.WorkloadLists, s.WorkloadPatches)
		row("steady: operator", "RSS %.0f MiB, CPU %.2f s over %.0f s (%.1f%% of one core)", s.RSSMiB, s.CPUSeconds, s.WindowS, s.CPUPercent)
	} else {
		row("steady state", "NOT MEASURED")
	}
	if n := r.New; n != nil {
		row("new during refresh", "%d/%d Ready, p50 %.0f ms, p99 %.0f ms, max %.0f ms", n.Ready, n.Count, n.P50ms, n.P99ms, n.MaxMs)
	} else {
		row("new during refresh", "NOT MEASURED")
	}
	if b := r.Big; b != nil {
		row("unrelated Secrets", "%d x 100 KiB (created in %.1f s): RSS %.0f -> %.0f MiB after 30 s (%+.1f%%)", b.Count, b.CreateS, b.RSSBeforeMiB, b.RSSAfterMiB, b.GrowthPct)
	} else {
		row("unrelated Secrets", "NOT MEASURED")
	}
	row("operator RSS peak (VmHWM)", "%.0f MiB", r.RSSPeakMiB)
	if h := r.Herd; h != nil {
		row("restart: AWS calls/s", "peak %d, mean %.2f, ratio %.2f (%d calls in %.0f s: %s)",
			h.PeakPerS, h.MeanPerS, h.AWSPeakToMean, h.AWSTotal, h.WindowS, fmtMap(h.AWSCalls))
		row("restart: Vault requests/s", "peak %d, mean %.2f, ratio %.2f (%d requests: logins %d, KV reads %d)",
			h.VaultPeakPerS, h.VaultMeanPerS, h.VaultPeakToMean, h.Vault.Total, h.Vault.Logins, h.Vault.Reads)
		row("restart: all backends/s", "peak %d, mean %.2f, ratio %.2f (target: ratio <= %.1f)",
			h.AllPeakPerS, h.AllMeanPerS, h.AllPeakToMean, herdTargetPeakToMean)
		row("restart: operator down", "%.1f s", h.DownS)
		row("restart: Kubernetes writes", "%d (%s)", h.KubeWrites.Total, fmtMap(h.KubeWrites.ByKind))
		row("restart: still Ready / RSS peak", "%d, %.0f MiB", h.ReadyAfter, h.RSSPeakMiB)
	} else {
		row("restart herd", "NOT MEASURED")
	}
	if ce := r.CES; ce != nil && ce.AllReadyS > 0 {
		row("ClusterExternalSecret: all Ready", "%.2f s for %d namespaces labelled at once (stamped ExternalSecrets Ready %.2f s, provisionedNamespaces complete %.2f s; labelling took %.2f s; load average at start %s; RSS peak %.0f MiB)",
			ce.AllReadyS, ce.Namespaces, ce.ESReadyS, ce.StatusS, ce.LabelS, ce.LoadAvg, ce.RSSPeakMiB)
	} else if ce != nil {
		row("ClusterExternalSecret: all Ready", "NOT MEASURED (%d of %d Ready, %d provisioned)", ce.Ready, ce.Namespaces, ce.Provisioned)
	} else {
		row("ClusterExternalSecret", "NOT MEASURED (BENCH_CES_NAMESPACES=0 or an earlier phase failed)")
	}
	for _, m := range r.Missing {
		row("MISSING", "%s", m)
	}
	if r.Error != "" {
		row("ERROR", "%s", r.Error)
	}
	w.Flush()
	b, err := json.Marshal(r)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	fmt.Println(string(b))
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// vsFloor is a steady count against its floor: "1.00x floor".
func vsFloor(got, floor int) string {
	if floor == 0 {
		return fmt.Sprintf("%d (floor 0)", got)
	}
	return fmt.Sprintf("%.2fx floor", float64(got)/float64(floor))
}

// median of sorted values.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func fmtRatios(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, ", ")
}
