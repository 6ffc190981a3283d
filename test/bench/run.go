package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/test/awsemu"
)

var stores = []string{"sm", "ssm", "vault"}

type storeKeys struct {
	SM    int `json:"sm"`
	SSM   int `json:"ssm"`
	Vault int `json:"vault"`
}

// steadyResult's counts are per round: the totals over RoundsMeasured intervals
// divided by RoundsMeasured, rounded up; RSS and CPU are over the whole window.
type steadyResult struct {
	WindowS        float64        `json:"window_s"`
	RoundsMeasured int            `json:"rounds_measured"`
	AWSTotal       int            `json:"aws_calls_total"`
	AWSCalls       map[string]int `json:"aws_calls"`
	Vault          vaultCounts    `json:"vault"`
	KubeWrites     kubeWrites     `json:"kube_writes"`
	// Rollout (every ExternalSecret has spec.target.rollout consumers Auto): workload
	// LISTs and restart patches by the operator; both must be 0 in an unchanged round.
	WorkloadLists   int     `json:"workload_lists"`
	WorkloadPatches int     `json:"workload_patches"`
	RSSMiB          float64 `json:"rss_mib"`
	CPUSeconds      float64 `json:"cpu_s"`
	CPUPercent      float64 `json:"cpu_pct_of_one_core"`
	// Floors per round from docs/design/performance.md for the keys referenced.
	FloorGetParameters       int `json:"floor_getparameters"`
	FloorBatchGetSecretValue int `json:"floor_batchgetsecretvalue"`
	FloorVaultReads          int `json:"floor_vault_reads"`
}

type newResult struct {
	Count int     `json:"count"`
	Ready int     `json:"ready"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

type bigResult struct {
	Count        int     `json:"count"`
	CreateS      float64 `json:"create_s"`
	RSSBeforeMiB float64 `json:"rss_before_mib"`
	RSSAfterMiB  float64 `json:"rss_after_mib"`
	GrowthPct    float64 `json:"growth_pct"`
}

type herdResult struct {
	WindowS    float64        `json:"window_s"`
	AWSTotal   int            `json:"aws_calls_total"`
	PeakPerS   int            `json:"aws_calls_peak_per_s"`
	MeanPerS   float64        `json:"aws_calls_mean_per_s"`
	PerSecond  []int          `json:"aws_calls_per_s"`
	AWSCalls   map[string]int `json:"aws_calls"`
	Vault      vaultCounts    `json:"vault"`
	KubeWrites kubeWrites     `json:"kube_writes"`
	ReadyAfter int            `json:"ready_after"`
	DownS      float64        `json:"operator_down_s"`
	RSSPeakMiB float64        `json:"rss_peak_mib"`
	// Vault responses per second of the window (from the audit log), and AWS calls
	// plus Vault requests per second; the ratios are peak/mean (0 when idle).
	VaultPerSecond  []int   `json:"vault_per_second"`
	VaultPeakPerS   int     `json:"vault_peak_per_s"`
	VaultMeanPerS   float64 `json:"vault_mean_per_s"`
	AllPeakPerS     int     `json:"all_peak_per_s"`
	AllMeanPerS     float64 `json:"all_mean_per_s"`
	AWSPeakToMean   float64 `json:"aws_peak_to_mean"`
	VaultPeakToMean float64 `json:"vault_peak_to_mean"`
	AllPeakToMean   float64 `json:"all_peak_to_mean"`
}

// herdTargetPeakToMean is the target for backend calls per second in the
// minute after a restart: peak/mean at most this.
const herdTargetPeakToMean = 1.5

type results struct {
	N            int      `json:"n"`
	M            int      `json:"m"`
	LatencyMs    float64  `json:"aws_latency_ms"`
	RefreshS     float64  `json:"refresh_s"`
	VaultAuth    string   `json:"vault_auth"`
	OperatorArgs []string `json:"operator_args"`
	Machine      struct {
		CPUs     int    `json:"cpus"`
		CPUModel string `json:"cpu_model"`
		MemMiB   int64  `json:"mem_mib"`
		Go       string `json:"go"`
	} `json:"machine"`
	// KeysPerStore counts the DISTINCT keys referenced (multi-key ExternalSecrets'
	// extra keys included): the steady-round floors are computed from it.
	KeysPerStore storeKeys `json:"keys_referenced_per_store"`
	// MultiPct of the ExternalSecrets read 3–5 keys (BENCH_MULTI): MultiES of them,
	// KeyRefs named keys over all N.
	MultiPct int `json:"multi_pct"`
	MultiES  int `json:"multi_key_es"`
	KeyRefs  int `json:"key_refs"`

	ColdCreateS float64 `json:"cold_create_s"`
	ColdReadyS  float64 `json:"cold_all_ready_s"`
	ColdRate    float64 `json:"cold_ready_per_s"`
	ColdReady   int     `json:"cold_ready"`
	ColdRSSMiB  float64 `json:"cold_rss_peak_mib"`
	// Backend calls and Kubernetes writes from the first create until all were Ready.
	ColdAWSCalls   map[string]int `json:"cold_aws_calls,omitempty"`
	ColdVault      *vaultCounts   `json:"cold_vault,omitempty"`
	ColdKubeWrites *kubeWrites    `json:"cold_kube_writes,omitempty"`
	// Every request of the operator (but watches) by "verb resource code".
	ColdKubeRequests map[string]int `json:"cold_kube_requests,omitempty"`
	// The null operator (floor.go) on the same control plane before the operator
	// starts, and the cold burst's time over it.
	FloorReadyS float64      `json:"floor_all_ready_s,omitempty"`
	ColdVsFloor float64      `json:"cold_vs_floor,omitempty"`
	Floor       *floorResult `json:"floor,omitempty"`
	// FloorWatched is the floor run again with the operator's two watches open
	// (BENCH_FLOOR_WATCH=1); cold_vs_floor stays against Floor.
	FloorWatched *floorResult `json:"floor_watched,omitempty"`
	// FloorPairs are BENCH_FLOOR_PAIRS such pairs, the first being Floor and
	// FloorWatched: one pair's ratio carries the machine's run-to-run noise.
	FloorPairs []floorPair `json:"floor_pairs,omitempty"`
	// ColdRounds are the (floor, cold burst) pairs of BENCH_COLD_ROUNDS, the first
	// being FloorReadyS and ColdReadyS, and ColdVsFloorMedian the median of their
	// ratios: one round's ratio carries the machine's run-to-run noise.
	ColdRounds        []coldRound `json:"cold_rounds,omitempty"`
	ColdVsFloorMedian float64     `json:"cold_vs_floor_median,omitempty"`
	// CPU seconds used during the cold burst by each process, and the machine's load
	// average when it started (other work on the machine shows up there).
	ColdCPU     map[string]float64 `json:"cold_cpu_s,omitempty"`
	ColdLoadAvg string             `json:"cold_loadavg_at_start,omitempty"`

	Steady     *steadyResult `json:"steady,omitempty"`
	New        *newResult    `json:"new_during_refresh,omitempty"`
	Big        *bigResult    `json:"unrelated_secrets,omitempty"`
	RSSPeakMiB float64       `json:"rss_peak_mib"`
	Herd       *herdResult   `json:"restart,omitempty"`
	// ClusterExternalSecret phase (BENCH_CES_NAMESPACES, 0 = skipped): namespaces and
	// seconds from labelling them until all stamped ExternalSecrets are Ready and
	// provisionedNamespaces lists them all; details in "ces".
	CESNamespaces int        `json:"ces_namespaces"`
	CESAllReadyS  float64    `json:"ces_all_ready_s"`
	CES           *cesResult `json:"ces,omitempty"`
	Missing       []string   `json:"missing,omitempty"`
	Error         string     `json:"error,omitempty"`
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func run(ctx context.Context, cfg config, cl *cleanups) (err error) {
	res := &results{N: cfg.N, M: cfg.M, LatencyMs: float64(cfg.Latency) / 1e6, RefreshS: cfg.Refresh.Seconds(),
		VaultAuth: cfg.VaultAuth, OperatorArgs: cfg.OperatorArgs, MultiPct: cfg.Multi}
	res.KeysPerStore, res.MultiES, res.KeyRefs = keysPerStore(cfg)
	fillMachine(res)
	// Whatever happens, print what was measured.
	defer func() {
		if err != nil {
			res.Error = err.Error()
		}
		report(res)
	}()

	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "secretsync-bench-")
	if err != nil {
		return err
	}
	if cfg.Keep {
		logf("work directory %s (kept)", dir)
	} else {
		cl.add(func() { _ = os.RemoveAll(dir) })
	}

	logf("building the operator")
	bin, err := buildOperator(ctx, root, dir)
	if err != nil {
		return err
	}
	logf("starting kube-apiserver + etcd (envtest, audit log)")
	k, err := startKube(root, dir, cl)
	if err != nil {
		return err
	}
	logf("starting the AWS emulator (latency %s)", cfg.Latency)
	emu := awsemu.New(awsemu.Options{})
	if err := emu.Start(); err != nil {
		return err
	}
	cl.add(emu.Close)
	logf("starting OpenBao dev server")
	baoBin := os.Getenv("BAO")
	if baoBin == "" {
		baoBin = filepath.Join(root, "bin", "bao")
	}
	b, err := startBao(ctx, baoBin, filepath.Join(dir, "bao"), cl)
	if err != nil {
		return err
	}

	// ---- seed
	logf("seeding %d keys in each backend", cfg.M)
	seed := &awsemu.Seed{}
	for i := range cfg.M {
		v := fmt.Sprintf("sm-value-%05d", i)
		seed.Secrets = append(seed.Secrets, awsemu.SeedSecret{Name: smKey(i), Value: &v})
		seed.Parameters = append(seed.Parameters, awsemu.SeedParameter{Name: ssmKey(i), Type: "SecureString", Value: fmt.Sprintf("ssm-value-%05d", i)})
	}
	if err := emu.Seed(seed); err != nil {
		return err
	}
	kv := b.client.KVv2("secret")
	for i := range cfg.M {
		if _, err := kv.Put(ctx, vaultKey(i), map[string]any{"value": fmt.Sprintf("vault-value-%05d", i)}); err != nil {
			return fmt.Errorf("vault seed: %w", err)
		}
	}
	emu.SetLatency("", cfg.Latency)

	c := k.c
	for _, ns := range []string{operatorNamespace, benchNamespace, unrelatedNS} {
		if err := ensureNS(ctx, c, ns); err != nil {
			return err
		}
	}
	if err := createStores(ctx, c, emu, b, cfg.VaultAuth); err != nil {
		return err
	}

	if cfg.Floor && !cfg.CESOnly {
		logf("floor: a null operator for %d ExternalSecrets", cfg.N)
		pids := map[string]int{"kube-apiserver": k.apiPID, "etcd": k.etcdPID, "bench (incl. AWS emulator)": os.Getpid()}
		f, err := runFloor(ctx, c, k.cfg, cfg, pids, false)
		res.Floor = f
		if err != nil {
			return err
		}
		res.FloorReadyS = f.AllReadyS
		logf("floor: all %d done in %.2fs (creates %.2fs)", cfg.N, f.AllReadyS, f.CreateS)
		if cfg.FloorWatch {
			pairs, err := floorPairs(ctx, c, k.cfg, cfg, pids, f)
			res.FloorPairs = pairs
			if len(pairs) > 0 {
				res.FloorWatched = pairs[0].Watched
			}
			if err != nil {
				return err
			}
		}
	}

	logf("starting the operator %v", cfg.OperatorArgs)
	op, err := startOperator(bin, k.kubeconfig, dir, cfg.OperatorArgs, cl)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, op.probe, 60*time.Second, op.p); err != nil {
		return fmt.Errorf("operator: %w (log %s)", err, filepath.Join(dir, "operator.log"))
	}
	if err := waitStoresReady(ctx, c); err != nil {
		return err
	}
	if cfg.CESOnly {
		res.Missing = append(res.Missing, "BENCH_CES_ONLY=1: only the ClusterExternalSecret phase was run")
		res.CESNamespaces = cfg.CESNamespaces
		err := runCES(ctx, k, emu, op, cfg, res, cl)
		res.RSSPeakMiB = mib(op.rss.Peak())
		return err
	}

	// ---- 1. cold burst
	names := make([]string, cfg.N)
	for j := range cfg.N {
		names[j] = fmt.Sprintf("es-%05d", j)
	}
	logf("cold burst: creating %d ExternalSecrets", cfg.N)
	emu.ResetCalls()
	cva0, cka0 := fileSize(b.auditLog), fileSize(k.auditLog)
	res.ColdLoadAvg = loadAvg()
	op.saveCPU(ctx, cfg.ProfileDir, "cpu-cold.pb.gz", max(30*time.Second, time.Duration(cfg.N)*8*time.Millisecond))
	first, err := coldBurst(ctx, k, b, op, names, cfg)
	res.ColdReady, res.ColdCreateS, res.ColdRSSMiB = first.Ready, first.CreateS, mib(op.rss.Peak())
	if err != nil {
		if first.Ready < len(names) {
			res.Missing = append(res.Missing, err.Error())
		}
		return err
	}
	res.ColdReadyS, res.ColdCPU = first.ReadyS, first.CPU
	res.ColdAWSCalls = map[string]int{}
	for op, n := range emu.CallCounts() {
		if strings.Contains(op, ".") {
			res.ColdAWSCalls[op] = n
		}
	}
	if vc, err := countVault(b.auditLog, cva0, fileSize(b.auditLog)); err == nil {
		res.ColdVault = &vc
	}
	if kw, err := countKubeWrites(k.auditLog, operatorUser, cka0, fileSize(k.auditLog)); err == nil {
		res.ColdKubeWrites = &kw
	}
	if kr, err := countKubeRequests(k.auditLog, operatorUser, cka0, fileSize(k.auditLog)); err == nil {
		res.ColdKubeRequests = kr
	}
	if res.FloorReadyS > 0 {
		res.ColdVsFloor = res.ColdReadyS / res.FloorReadyS
		res.ColdRounds = []coldRound{{FloorS: res.FloorReadyS, ColdS: res.ColdReadyS, Ratio: res.ColdVsFloor, CPU: res.ColdCPU, FloorCPU: res.Floor.CPU}}
	}
	res.ColdRate = float64(cfg.N) / res.ColdReadyS
	logf("cold burst: all %d Ready in %.2fs (%.0f/s), RSS peak so far %.0f MiB", cfg.N, res.ColdReadyS, res.ColdRate, res.ColdRSSMiB)

	op.saveHeap(ctx, cfg.ProfileDir, "heap-cold.pb.gz")
	if cfg.ColdRounds > 1 {
		if op, err = moreColdRounds(ctx, k, b, op, names, cfg, bin, dir, res, cl); err != nil {
			return err
		}
	}
	if cfg.ColdOnly {
		res.RSSPeakMiB = mib(op.rss.Peak())
		res.Missing = append(res.Missing, "BENCH_COLD_ONLY=1: steady state, new during refresh, unrelated Secrets and restart not run")
		return runCES(ctx, k, emu, op, cfg, res, cl)
	}

	// The later phases time single ExternalSecrets through a watch; opened only now,
	// so the cold burst pays for no watch the floor does not have.
	ready, err := watchReadiness(ctx, k.cfg, cl)
	if err != nil {
		return err
	}

	// ---- 2. steady state
	// Every ExternalSecret's next refresh is 0.5–1.5 intervals after its sync; after
	// that each refreshes once per interval at its own slot. With refreshes running
	// continuously, a window of exactly one interval can catch a key's read at both
	// edges: measuring steadyRounds intervals and dividing removes that edge effect
	// without changing what is counted. The first two intervals are left out: after a
	// mass first sync, a multi-key ExternalSecret keeps each key's very next slot, so
	// about half the keys are due within half an interval on top of the even pace, and
	// the read-ahead, at 1.15x the demand, absorbs that backlog over about two
	// intervals (Vault audit log at N = 1000: one key read +52 s, +55 s, then every
	// 60 s; a window starting 1.5 intervals after the burst counted 107 reads in its
	// first round and 100, the floor, in its second).
	w0 := first.Last.Add(cfg.Refresh*3 + 2*time.Second)
	logf("steady state: waiting until %s, then measuring %d rounds (%s)", w0.Format("15:04:05"), steadyRounds, steadyRounds*cfg.Refresh)
	if err := sleepUntil(ctx, w0); err != nil {
		return err
	}
	st := &steadyResult{RoundsMeasured: steadyRounds, AWSCalls: map[string]int{}}
	emu.ResetCalls()
	va0, ka0 := fileSize(b.auditLog), fileSize(k.auditLog)
	cpu0, _ := cpuSeconds(op.p.pid())
	tw := time.Now()
	if err := sleepUntil(ctx, w0.Add(steadyRounds*cfg.Refresh)); err != nil {
		return err
	}
	st.WindowS = time.Since(tw).Seconds()
	cpu1, _ := cpuSeconds(op.p.pid())
	va1, ka1 := fileSize(b.auditLog), fileSize(k.auditLog)
	for op, n := range emu.CallCounts() {
		if op == "*" {
			st.AWSTotal = perRound(n)
		} else if strings.Contains(op, ".") {
			st.AWSCalls[op] = perRound(n)
		}
	}
	if st.Vault, err = countVault(b.auditLog, va0, va1); err != nil {
		return err
	}
	if st.KubeWrites, err = countKubeWrites(k.auditLog, operatorUser, ka0, ka1); err != nil {
		return err
	}
	st.Vault = vaultPerRound(st.Vault)
	st.KubeWrites = kubeWrites{Total: perRound(st.KubeWrites.Total), ByKind: perRoundMap(st.KubeWrites.ByKind)}
	lists, patches, err := countWorkloadCalls(k.auditLog, operatorUser, ka0, ka1)
	if err != nil {
		return err
	}
	st.WorkloadLists, st.WorkloadPatches = perRound(lists), perRound(patches)
	if m, err := readMem(op.p.pid()); err == nil {
		st.RSSMiB = mib(m.RSS)
	}
	st.CPUSeconds = cpu1 - cpu0
	st.CPUPercent = 100 * st.CPUSeconds / st.WindowS
	st.FloorGetParameters = (res.KeysPerStore.SSM + 9) / 10
	st.FloorBatchGetSecretValue = (res.KeysPerStore.SM + 19) / 20
	st.FloorVaultReads = res.KeysPerStore.Vault
	res.Steady = st
	op.saveHeap(ctx, cfg.ProfileDir, "heap-steady.pb.gz")
	logf("steady, per round: AWS %d calls %v, Vault %d requests (%d logins, %d reads), kube writes %d; RSS %.0f MiB, CPU %.1f%%",
		st.AWSTotal, st.AWSCalls, st.Vault.Total, st.Vault.Logins, st.Vault.Reads, st.KubeWrites.Total, st.RSSMiB, st.CPUPercent)

	// ---- 3. new ExternalSecrets while refreshes run (they always do)
	if cfg.New > 0 {
		logf("creating %d ExternalSecrets", cfg.New)
		newNames := make([]string, cfg.New)
		for j := range cfg.New {
			newNames[j] = fmt.Sprintf("es-new-%05d", j)
		}
		created, err := createESs(ctx, c, newNames, cfg.N, cfg)
		if err != nil {
			return err
		}
		n, err := waitAllReady(ctx, ready, newNames, 3*time.Minute)
		if err != nil {
			return err
		}
		nr := &newResult{Count: cfg.New, Ready: n}
		var lat []float64
		for i, name := range newNames {
			if t, ok := ready.get(name); ok {
				lat = append(lat, float64(t.Sub(created[i]))/1e6)
			}
		}
		sort.Float64s(lat)
		if len(lat) > 0 {
			nr.P50ms, nr.P99ms, nr.MaxMs = percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1]
		}
		res.New = nr
		logf("new during refresh: %d/%d Ready, p50 %.0f ms, p99 %.0f ms", n, cfg.New, nr.P50ms, nr.P99ms)
		if n < cfg.New {
			res.Missing = append(res.Missing, fmt.Sprintf("new during refresh: only %d of %d Ready", n, cfg.New))
		}
	}

	// ---- 4. unrelated Secrets
	if cfg.BigSecrets > 0 {
		br := &bigResult{Count: cfg.BigSecrets}
		if m, err := readMem(op.p.pid()); err == nil {
			br.RSSBeforeMiB = mib(m.RSS)
		}
		logf("creating %d unrelated 100 KiB Secrets in %s (RSS now %.0f MiB)", cfg.BigSecrets, unrelatedNS, br.RSSBeforeMiB)
		tb := time.Now()
		if err := createBigSecrets(ctx, c, cfg.BigSecrets); err != nil {
			return err
		}
		br.CreateS = time.Since(tb).Seconds()
		if err := sleepUntil(ctx, time.Now().Add(30*time.Second)); err != nil {
			return err
		}
		if m, err := readMem(op.p.pid()); err == nil {
			br.RSSAfterMiB = mib(m.RSS)
		}
		if br.RSSBeforeMiB > 0 {
			br.GrowthPct = 100 * (br.RSSAfterMiB - br.RSSBeforeMiB) / br.RSSBeforeMiB
		}
		res.Big = br
		logf("unrelated Secrets: created in %.1fs, RSS %.0f -> %.0f MiB (%+.1f%%)", br.CreateS, br.RSSBeforeMiB, br.RSSAfterMiB, br.GrowthPct)
	}

	// ---- 5. restart herd
	if m, err := readMem(op.p.pid()); err == nil {
		res.RSSPeakMiB = mib(max(m.HWM, op.rss.Peak()))
	} else {
		res.RSSPeakMiB = mib(op.rss.Peak())
	}
	if cfg.Herd > 0 {
		// The operator is started again at once: refresh slots are spread over the whole
		// interval, so no moment is better or worse to restart at. The restart's own cost
		// (cache-cold reads, logins) shows as the per-second peak over the continuous
		// refreshes, AWS sampled live and Vault from its audit log's timestamps.
		logf("restart: stopping the operator")
		stopAt := time.Now()
		op.stop()
		emu.ResetCalls()
		va0, ka0 := fileSize(b.auditLog), fileSize(k.auditLog)
		logf("restart: starting it again")
		op2, err := startOperator(bin, k.kubeconfig, dir, cfg.OperatorArgs, cl)
		if err != nil {
			return err
		}
		op = op2
		h := &herdResult{AWSCalls: map[string]int{}}
		ts := time.Now()
		h.DownS = ts.Sub(stopAt).Seconds()
		prev := 0
		for i := 1; time.Duration(i)*time.Second <= cfg.Herd; i++ {
			if err := sleepUntil(ctx, ts.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
			tot := emu.TotalCalls()
			h.PerSecond = append(h.PerSecond, tot-prev)
			prev = tot
		}
		h.WindowS = time.Since(ts).Seconds()
		h.AWSTotal = prev
		for op, n := range emu.CallCounts() {
			if op != "*" && strings.Contains(op, ".") {
				h.AWSCalls[op] = n
			}
		}
		va1, ka1 := fileSize(b.auditLog), fileSize(k.auditLog)
		if h.Vault, err = countVault(b.auditLog, va0, va1); err != nil {
			return err
		}
		if h.VaultPerSecond, err = vaultPerSecond(b.auditLog, va0, va1, ts, len(h.PerSecond)); err != nil {
			return err
		}
		if h.KubeWrites, err = countKubeWrites(k.auditLog, operatorUser, ka0, ka1); err != nil {
			return err
		}
		allPerS := make([]int, len(h.PerSecond))
		for i := range allPerS {
			allPerS[i] = h.PerSecond[i] + h.VaultPerSecond[i]
		}
		h.PeakPerS, h.MeanPerS, h.AWSPeakToMean = peakMean(h.PerSecond)
		h.VaultPeakPerS, h.VaultMeanPerS, h.VaultPeakToMean = peakMean(h.VaultPerSecond)
		h.AllPeakPerS, h.AllMeanPerS, h.AllPeakToMean = peakMean(allPerS)
		h.RSSPeakMiB = mib(op2.rss.Peak())
		all := append(append([]string{}, names...), newNamesOf(cfg.New)...)
		h.ReadyAfter = countStillReady(ctx, c, all)
		res.Herd = h
		logf("restart: AWS %d calls in %.0fs (peak %d/s, mean %.2f/s), Vault %d requests (peak %d/s, mean %.2f/s), all backends peak/mean %.2f, kube writes %d, %d/%d still Ready",
			h.AWSTotal, h.WindowS, h.PeakPerS, h.MeanPerS, h.Vault.Total, h.VaultPeakPerS, h.VaultMeanPerS, h.AllPeakToMean, h.KubeWrites.Total, h.ReadyAfter, len(all))
	}

	// ---- 6. ClusterExternalSecret: last, so it disturbs no other measurement
	return runCES(ctx, k, emu, op, cfg, res, cl)
}

// peakMean is the peak, mean and peak/mean of per-second counts; the ratio is 0 when
// there were none (JSON has no NaN).
func peakMean(perS []int) (peak int, mean, ratio float64) {
	total := 0
	for _, n := range perS {
		peak = max(peak, n)
		total += n
	}
	if total == 0 {
		return peak, 0, 0
	}
	mean = float64(total) / float64(len(perS))
	return peak, mean, float64(peak) / mean
}

// steadyRounds is how many refresh intervals the steady state measures.
const steadyRounds = 2

// perRound is a count over steadyRounds intervals per interval, rounded up so that a
// comparison with a floor is never flattered.
func perRound(n int) int { return (n + steadyRounds - 1) / steadyRounds }

func perRoundMap(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, n := range m {
		out[k] = perRound(n)
	}
	return out
}

func vaultPerRound(vc vaultCounts) vaultCounts {
	return vaultCounts{Total: perRound(vc.Total), Logins: perRound(vc.Logins), Reads: perRound(vc.Reads),
		Token: perRound(vc.Token), ByPath: perRoundMap(vc.ByPath)}
}

func newNamesOf(n int) []string {
	out := make([]string, n)
	for j := range n {
		out[j] = fmt.Sprintf("es-new-%05d", j)
	}
	return out
}

func smKey(i int) string    { return fmt.Sprintf("bench/sm/k%05d", i) }
func ssmKey(i int) string   { return fmt.Sprintf("/bench/ssm/k%05d", i) }
func vaultKey(i int) string { return fmt.Sprintf("bench/k%05d", i) }

// keysPerStore counts the distinct keys the N ExternalSecrets reference in each
// store (benchKeys), the multi-key ExternalSecrets and all named keys.
func keysPerStore(cfg config) (keys storeKeys, multi, refs int) {
	seen := [3]map[int]bool{{}, {}, {}}
	for g := range cfg.N {
		ks := benchKeys(g, cfg)
		if len(ks) > 1 {
			multi++
		}
		refs += len(ks)
		for _, i := range ks {
			seen[g%3][i] = true
		}
	}
	return storeKeys{SM: len(seen[0]), SSM: len(seen[1]), Vault: len(seen[2])}, multi, refs
}

// burst is one cold burst: N new ExternalSecrets until all are Ready.
type burst struct {
	CreateS, ReadyS float64
	Last            time.Time // the operator's last status patch
	Ready           int
	CPU             map[string]float64 // CPU seconds by process
}

// coldBurst creates names (none may exist) and waits until the operator has made all
// of them Ready. ReadyS runs from the first create to the operator's last status patch
// in the API server's audit log: timed without a watch, like the floor.
func coldBurst(ctx context.Context, k *kube, b *bao, op *operatorProc, names []string, cfg config) (burst, error) {
	var out burst
	cpuPIDs := map[string]int{"operator": op.p.pid(), "kube-apiserver": k.apiPID, "etcd": k.etcdPID, "openbao": b.p.pid(), "bench (incl. AWS emulator)": os.Getpid()}
	cpu0 := cpuNow(cpuPIDs)
	cka0 := fileSize(k.auditLog)
	t0 := time.Now()
	if _, err := createESs(ctx, k.c, names, 0, cfg); err != nil {
		return out, err
	}
	out.CreateS = time.Since(t0).Seconds()
	logf("created in %.1fs; waiting for Ready", out.CreateS)
	timeout := 10*time.Minute + time.Duration(cfg.N)*100*time.Millisecond
	n, err := waitColdReady(ctx, k.c, op, names, timeout)
	out.Ready = n
	if err != nil {
		return out, err
	}
	if n < len(names) {
		return out, fmt.Errorf("cold burst: only %d of %d Ready after %s", n, len(names), timeout)
	}
	last, err := lastStatusPatch(k.auditLog, operatorUser, benchNamespace, cka0, fileSize(k.auditLog))
	if err != nil {
		return out, err
	}
	if last.IsZero() {
		return out, fmt.Errorf("cold burst: no status patch of the operator in the API audit log %s", k.auditLog)
	}
	out.Last, out.ReadyS = last, last.Sub(t0).Seconds()
	out.CPU = cpuSince(cpuPIDs, cpu0)
	return out, nil
}

// coldRound is one (floor, cold burst) pair of BENCH_COLD_ROUNDS.
type coldRound struct {
	FloorS float64            `json:"floor_s"`
	ColdS  float64            `json:"cold_s"`
	Ratio  float64            `json:"cold_vs_floor"`
	CPU    map[string]float64 `json:"cold_cpu_s,omitempty"`
	// FloorCPU is the floor's CPU seconds by process (no operator, no OpenBao).
	FloorCPU map[string]float64 `json:"floor_cpu_s,omitempty"`
}

// moreColdRounds measures cfg.ColdRounds-1 more rounds after the first cold burst:
// stop the operator, delete its ExternalSecrets and Secrets, measure the floor again,
// start a new operator and time a new cold burst. Each round's ratio pairs a floor and
// a burst measured a minute apart on the same control plane, so a drift of the
// machine's speed between runs cancels out; the median of the rounds is the figure.
// It returns the operator now running.
func moreColdRounds(ctx context.Context, k *kube, b *bao, op *operatorProc, names []string, cfg config, bin, dir string, res *results, cl *cleanups) (*operatorProc, error) {
	floorPIDs := map[string]int{"kube-apiserver": k.apiPID, "etcd": k.etcdPID, "bench (incl. AWS emulator)": os.Getpid()}
	for i := 2; i <= cfg.ColdRounds; i++ {
		op.stop()
		if err := k.c.DeleteAllOf(ctx, &v1alpha1.ExternalSecret{}, client.InNamespace(benchNamespace)); err != nil {
			return op, fmt.Errorf("round %d: delete ExternalSecrets: %w", i, err)
		}
		if err := k.c.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(benchNamespace),
			client.MatchingLabels{v1alpha1.LabelManaged: "true"}); err != nil {
			return op, fmt.Errorf("round %d: delete Secrets: %w", i, err)
		}
		// The stopped operator's store status would let waitStoresReady return before
		// the new one has validated its stores, and its start-up would count in the burst.
		if err := clearStoreStatus(ctx, k.c); err != nil {
			return op, fmt.Errorf("round %d: %w", i, err)
		}
		f, err := runFloor(ctx, k.c, k.cfg, cfg, floorPIDs, false)
		if err != nil {
			return op, err
		}
		logf("round %d: floor %.2fs; starting a new operator", i, f.AllReadyS)
		if op, err = startOperator(bin, k.kubeconfig, dir, cfg.OperatorArgs, cl); err != nil {
			return op, err
		}
		if err := waitHTTP(ctx, op.probe, 60*time.Second, op.p); err != nil {
			return op, fmt.Errorf("operator: %w", err)
		}
		if err := waitStoresReady(ctx, k.c); err != nil {
			return op, err
		}
		logf("round %d: cold burst: creating %d ExternalSecrets", i, cfg.N)
		cb, err := coldBurst(ctx, k, b, op, names, cfg)
		if err != nil {
			return op, fmt.Errorf("round %d: %w", i, err)
		}
		r := coldRound{FloorS: f.AllReadyS, ColdS: cb.ReadyS, Ratio: cb.ReadyS / f.AllReadyS, CPU: cb.CPU, FloorCPU: f.CPU}
		logf("round %d: cold burst %.2fs, floor %.2fs: %.2f", i, r.ColdS, r.FloorS, r.Ratio)
		res.ColdRounds = append(res.ColdRounds, r)
	}
	var ratios []float64
	for _, r := range res.ColdRounds {
		ratios = append(ratios, r.Ratio)
	}
	slices.Sort(ratios)
	res.ColdVsFloorMedian = median(ratios)
	return op, nil
}

func percentile(sorted []float64, p float64) float64 {
	// nearest rank
	r := int(p/100*float64(len(sorted)) + 0.999999)
	r = max(1, min(r, len(sorted)))
	return sorted[r-1]
}

func createStores(ctx context.Context, c client.Client, emu *awsemu.Server, b *bao, vaultAuth string) error {
	akid, secret := emu.StaticCredentials()
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "aws-creds"},
			StringData: map[string]string{"access-key-id": akid, "secret-access-key": secret}},
	}
	awsAuth := &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
		AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "access-key-id"},
		SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "secret-access-key"},
	}}
	for _, s := range []struct {
		name string
		svc  v1alpha1.AWSService
	}{{"sm", v1alpha1.AWSServiceSecretsManager}, {"ssm", v1alpha1.AWSServiceParameterStore}} {
		objs = append(objs, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: s.name},
			Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{
				Service: s.svc, Region: awsemu.DefaultRegion, Endpoint: emu.URL(), Auth: awsAuth}}}})
	}
	vp := &v1alpha1.VaultProvider{Server: b.addr, Path: "secret", Version: v1alpha1.VaultKVv2}
	switch vaultAuth {
	case "token":
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "vault-token"},
			StringData: map[string]string{"token": b.root}})
		vp.Auth.TokenSecretRef = &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}
	case "approle":
		rid, sid, err := setupAppRole(ctx, b)
		if err != nil {
			return fmt.Errorf("vault approle: %w", err)
		}
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "vault-approle"},
			StringData: map[string]string{"role-id": rid, "secret-id": sid}})
		vp.Auth.AppRole = &v1alpha1.VaultAppRoleAuth{
			RoleRef:   &v1alpha1.SecretKeySelector{Name: "vault-approle", Key: "role-id"},
			SecretRef: v1alpha1.SecretKeySelector{Name: "vault-approle", Key: "secret-id"}}
	default:
		return fmt.Errorf("BENCH_VAULT_AUTH=%q: want approle or token", vaultAuth)
	}
	objs = append(objs, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "vault"},
		Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: vp}}})
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

func setupAppRole(ctx context.Context, b *bao) (string, string, error) {
	lc := b.client.Logical()
	if err := b.client.Sys().PutPolicyWithContext(ctx, "bench-read", `path "secret/data/bench/*" { capabilities = ["read"] }
path "secret/metadata/bench/*" { capabilities = ["read"] }
`); err != nil {
		return "", "", err
	}
	if err := b.client.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		return "", "", err
	}
	if _, err := lc.WriteWithContext(ctx, "auth/approle/role/bench", map[string]any{"token_policies": "bench-read", "token_ttl": "1h", "token_max_ttl": "24h"}); err != nil {
		return "", "", err
	}
	r, err := lc.ReadWithContext(ctx, "auth/approle/role/bench/role-id")
	if err != nil {
		return "", "", err
	}
	s, err := lc.WriteWithContext(ctx, "auth/approle/role/bench/secret-id", nil)
	if err != nil {
		return "", "", err
	}
	rid, _ := r.Data["role_id"].(string)
	sid, _ := s.Data["secret_id"].(string)
	if rid == "" || sid == "" {
		return "", "", fmt.Errorf("no role id / secret id")
	}
	return rid, sid, nil
}

// clearStoreStatus empties the benchmark's SecretStores' status, so that the next
// waitStoresReady waits for an operator started after it.
func clearStoreStatus(ctx context.Context, c client.Client) error {
	for _, s := range stores {
		st := &v1alpha1.SecretStore{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: s}, st); err != nil {
			return err
		}
		st.Status = v1alpha1.SecretStoreStatus{}
		if err := c.Status().Update(ctx, st); err != nil {
			return fmt.Errorf("clear the status of SecretStore %s: %w", s, err)
		}
	}
	return nil
}

func waitStoresReady(ctx context.Context, c client.Client) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		notReady := []string{}
		for _, s := range stores {
			st := &v1alpha1.SecretStore{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: s}, st); err != nil {
				return err
			}
			cond := meta.FindStatusCondition(st.Status.Conditions, v1alpha1.ConditionReady)
			if cond == nil || cond.Status != metav1.ConditionTrue {
				msg := "(no status)"
				if cond != nil {
					msg = cond.Reason + ": " + cond.Message
				}
				notReady = append(notReady, s+" "+msg)
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SecretStores not Ready: %v", notReady)
		}
		if err := sleepUntil(ctx, time.Now().Add(200*time.Millisecond)); err != nil {
			return err
		}
	}
}

// createESs creates ExternalSecrets names[j] (global index base+j) with 16 workers and
// returns when each create was sent.
func createESs(ctx context.Context, c client.Client, names []string, base int, cfg config) ([]time.Time, error) {
	sent := make([]time.Time, len(names))
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1)) - 1
				if j >= len(names) || ctx.Err() != nil {
					return
				}
				es := benchES(benchNamespace, names[j], base+j, cfg)
				sent[j] = time.Now()
				if err := c.Create(ctx, es); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("create ExternalSecret %s: %w", names[j], err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return sent, firstErr
}

// benchES is ExternalSecret g of the benchmark (store g mod 3, the keys benchKeys
// of that store) in namespace ns; the floor creates the same objects.
func benchES(ns, name string, g int, cfg config) *v1alpha1.ExternalSecret {
	store := stores[g%3]
	var data []v1alpha1.DataItem
	for j, i := range benchKeys(g, cfg) {
		data = append(data, v1alpha1.DataItem{SecretKey: dataKey(j), RemoteRef: benchRef(store, i)})
	}
	return &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef:  v1alpha1.StoreRef{Name: store},
			RefreshInterval: &metav1.Duration{Duration: cfg.Refresh},
			Data:            data,
			// Rollout on: an unchanged round must still list and patch no workload.
			Target: v1alpha1.Target{Rollout: &v1alpha1.Rollout{Consumers: v1alpha1.RolloutAuto}},
		}}
}

// benchKeys are the indexes of the keys ExternalSecret g reads in its store: key
// (g / 3) mod M, and for cfg.Multi percent of them (deterministic, evenly among
// every 100) 2–4 more, spread over the store's key space. Every one of them is
// also some single-key ExternalSecret's key (when N/3 ≥ M), so single- and
// multi-key ExternalSecrets share keys.
func benchKeys(g int, cfg config) []int {
	m := cfg.M
	first := (g / 3) % m
	if (g*7)%100 >= cfg.Multi {
		return []int{first}
	}
	n, stride := 3+(g/3)%3, m/5+1
	out := []int{first}
	for j := 1; j < n; j++ {
		if i := (first + j*stride) % m; !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

// dataKey is the target key of ExternalSecret key j: "value" for the first.
func dataKey(j int) string {
	if j == 0 {
		return "value"
	}
	return fmt.Sprintf("value%d", j)
}

func benchRef(store string, idx int) *v1alpha1.RemoteRef {
	switch store {
	case "sm":
		return &v1alpha1.RemoteRef{Key: smKey(idx)}
	case "ssm":
		return &v1alpha1.RemoteRef{Key: ssmKey(idx)}
	default:
		return &v1alpha1.RemoteRef{Key: vaultKey(idx), Property: "value"}
	}
}

// benchData is the target data of ExternalSecret g (the values seeded in run).
func benchData(g int, cfg config) map[string][]byte {
	out := map[string][]byte{}
	for j, i := range benchKeys(g, cfg) {
		out[dataKey(j)] = []byte(fmt.Sprintf("%s-value-%05d", stores[g%3], i))
	}
	return out
}

// waitColdReady waits until every name is Ready or timeout and returns how many are,
// without a watch: the floor has none, and the benchmark's own readiness watch on
// ExternalSecrets cost the API server about a third of what floor_watched measures
// for three watches. It polls the operator's Ready gauge once a second (no API
// request) and confirms with one LIST once the gauge counts them all; the end time is
// then the last status patch in the audit log (lastStatusPatch).
func waitColdReady(ctx context.Context, c client.Client, op *operatorProc, names []string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	n, full := 0, 0
	for {
		g, err := op.readyGauge(ctx)
		if err != nil {
			return n, err
		}
		// The gauge is set as the status patch is sent: the LIST waits one more poll,
		// so it does not compete with the last patches.
		full++
		if g < len(names) {
			full = 0
		}
		if full >= 2 {
			if n = countStillReady(ctx, c, names); n == len(names) {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			logf("timed out: the operator counts %d/%d Ready", g, len(names))
			return n, nil
		}
		if time.Since(lastLog) > 10*time.Second {
			logf("  the operator counts %d/%d Ready", g, len(names))
			lastLog = time.Now()
		}
		if err := sleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
			return n, err
		}
	}
}

// waitAllReady waits until every name is Ready or timeout; it returns how many are.
func waitAllReady(ctx context.Context, r *readiness, names []string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		n, other := r.countReady(names)
		if n == len(names) {
			return n, nil
		}
		if time.Now().After(deadline) {
			logf("timed out: %d/%d Ready; others by reason: %v", n, len(names), other)
			return n, nil
		}
		if time.Since(lastLog) > 10*time.Second {
			logf("  %d/%d Ready; others by reason: %v", n, len(names), other)
			lastLog = time.Now()
		}
		if err := sleepUntil(ctx, time.Now().Add(50*time.Millisecond)); err != nil {
			return n, err
		}
	}
}

func createBigSecrets(ctx context.Context, c client.Client, count int) error {
	blob := make([]byte, 100<<10)
	for i := range blob {
		blob[i] = byte('a' + i%26)
	}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1)) - 1
				if j >= count || ctx.Err() != nil {
					return
				}
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: unrelatedNS, Name: fmt.Sprintf("big-%05d", j)},
					Data: map[string][]byte{"blob": blob}}
				if err := c.Create(ctx, s); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("create Secret %s: %w", s.Name, err)
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

func countStillReady(ctx context.Context, c client.Client, names []string) int {
	list := &v1alpha1.ExternalSecretList{}
	if err := c.List(ctx, list, client.InNamespace(benchNamespace)); err != nil {
		return -1
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	n := 0
	for i := range list.Items {
		if want[list.Items[i].Name] && isReady(&list.Items[i]) {
			n++
		}
	}
	return n
}

func fillMachine(res *results) {
	res.Machine.CPUs = runtime.NumCPU()
	res.Machine.Go = runtime.Version()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					res.Machine.CPUModel = strings.TrimSpace(v)
					break
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "MemTotal:" {
				var kb int64
				_, _ = fmt.Sscan(f[1], &kb) // unreadable: MemMiB stays 0
				res.Machine.MemMiB = kb >> 10
			}
		}
	}
}
