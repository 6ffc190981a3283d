// Command bench is the scale benchmark behind `make bench` (docs/benchmarks.md).
//
// It runs the REAL operator binary against a real kube-apiserver + etcd (envtest,
// with an audit log), the in-process AWS emulator (Secrets Manager and Parameter
// Store) and an OpenBao dev server (KV v2, AppRole, file audit device), all on
// 127.0.0.1, and measures:
//
//  1. cold burst: N ExternalSecrets, split over 3 stores, each reading 1 of M keys
//     (BENCH_MULTI percent of them 3–5 keys, shared with the single-key ones),
//     until all are Ready;
//  2. steady state: two refresh intervals after every ExternalSecret has refreshed
//     once, reported per round (the mean of the two): backend calls by operation,
//     Vault requests and logins, Kubernetes API writes of the operator's user;
//     operator RSS and CPU;
//  3. 100 new ExternalSecrets created while refreshes run: p50/p99 time to Ready;
//  4. RSS growth after 2,000 unrelated 100 KiB Secrets;
//  5. restart herd: AWS calls and Vault requests per second for 60 s after an
//     operator restart, and their peak/mean ratio;
//  6. ClusterExternalSecret: BENCH_CES_NAMESPACES namespaces labelled at once, time
//     until every stamped ExternalSecret is Ready and the ClusterExternalSecret lists
//     them all in provisionedNamespaces (also after BENCH_COLD_ONLY's cold burst).
//
// The operator has no refresh rounds: each ExternalSecret refreshes at its own slot,
// hash(store, remote key) mod refreshInterval, so the refreshes of every store run
// continuously over the whole interval, and the fetch layer reads values slightly
// ahead at a smoothed rate. A "round" here is just one refresh interval's worth.
//
// Configuration (flags override the environment): BENCH_N (1000), BENCH_M (N/10),
// BENCH_LATENCY (20ms, every AWS call), BENCH_REFRESH (1m, refreshInterval of the
// ExternalSecrets), BENCH_NEW (100), BENCH_BIG_SECRETS (2000), BENCH_HERD (60s),
// BENCH_VAULT_AUTH (approle|token), BENCH_OPERATOR_ARGS (extra operator flags),
// BENCH_KEEP=1 (keep the work directory), BENCH_PROFILE_DIR (heap profiles, and a CPU profile of the
// cold burst: its first 30 s, or N x 8 ms if longer), BENCH_OPERATOR_ENV (KEY=VALUE ..., the operator's only), BENCH_COLD_ONLY=1 (stop after the cold
// burst; BENCH_COLD_ROUNDS=k with it: k rounds of floor and cold burst, the median ratio),
// BENCH_FLOOR=0 (no floor), BENCH_FLOOR_WATCH=1 (the floor again with the operator's
// watches open; BENCH_FLOOR_PAIRS=k: k such pairs), BENCH_CES_NAMESPACES (1000; 0 skips the ClusterExternalSecret phase, run last),
// BENCH_CES_ONLY=1 (only that phase), BENCH_MULTI (20: percent of ExternalSecrets
// reading 3–5 keys). The last line of stdout is one JSON object.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type config struct {
	N, M int
	// Multi is the percentage of ExternalSecrets reading 3–5 keys (benchKeys).
	Multi        int
	Latency      time.Duration
	Refresh      time.Duration
	New          int
	BigSecrets   int
	Herd         time.Duration
	VaultAuth    string
	OperatorArgs []string
	Keep         bool
	ProfileDir   string
	ColdOnly     bool
	Floor        bool // measure the null operator first (floor.go)
	FloorWatch   bool // and again with the watches open (floor.go, watchFloor)
	FloorPairs   int  // with FloorWatch: this many (floor, watched floor) pairs, order alternating
	ColdRounds   int  // with ColdOnly: this many (floor, cold burst) rounds
	// CESNamespaces: namespaces of the ClusterExternalSecret phase (0 skips it);
	// CESOnly skips every other phase.
	CESNamespaces int
	CESOnly       bool
}

func envInt(k string, def int) int {
	if v := os.Getenv(k); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "bench: ignoring %s=%q (not an integer)\n", k, v)
	}
	return def
}

func envDur(k string, def time.Duration) time.Duration {
	if v := os.Getenv(k); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "bench: ignoring %s=%q (not a duration)\n", k, v)
	}
	return def
}

func parseConfig() config {
	var c config
	flag.IntVar(&c.N, "n", envInt("BENCH_N", 1000), "ExternalSecrets (BENCH_N)")
	flag.IntVar(&c.M, "m", envInt("BENCH_M", 0), "distinct keys per backend, default N/10 (BENCH_M)")
	flag.IntVar(&c.Multi, "multi", envInt("BENCH_MULTI", 20), "percent of ExternalSecrets reading 3-5 keys (BENCH_MULTI)")
	flag.DurationVar(&c.Latency, "latency", envDur("BENCH_LATENCY", 20*time.Millisecond), "AWS emulator latency per call (BENCH_LATENCY)")
	flag.DurationVar(&c.Refresh, "refresh", envDur("BENCH_REFRESH", time.Minute), "refreshInterval of the ExternalSecrets (BENCH_REFRESH)")
	flag.IntVar(&c.New, "new", envInt("BENCH_NEW", 100), "ExternalSecrets created while refreshes run (BENCH_NEW)")
	flag.IntVar(&c.BigSecrets, "big-secrets", envInt("BENCH_BIG_SECRETS", 2000), "unrelated 100 KiB Secrets (BENCH_BIG_SECRETS)")
	flag.DurationVar(&c.Herd, "herd", envDur("BENCH_HERD", 60*time.Second), "observation after the operator restart (BENCH_HERD)")
	va := os.Getenv("BENCH_VAULT_AUTH")
	if va == "" {
		va = "approle"
	}
	flag.StringVar(&c.VaultAuth, "vault-auth", va, "approle or token (BENCH_VAULT_AUTH)")
	opArgs := flag.String("operator-args", os.Getenv("BENCH_OPERATOR_ARGS"), "extra operator flags, space separated (BENCH_OPERATOR_ARGS)")
	flag.BoolVar(&c.Floor, "floor", os.Getenv("BENCH_FLOOR") != "0", "measure the null operator before the cold burst (BENCH_FLOOR=0 skips it)")
	flag.BoolVar(&c.FloorWatch, "floor-watch", os.Getenv("BENCH_FLOOR_WATCH") == "1", "measure the null operator a second time with the operator's two watches open (BENCH_FLOOR_WATCH=1)")
	flag.IntVar(&c.FloorPairs, "floor-pairs", envInt("BENCH_FLOOR_PAIRS", 1), "with BENCH_FLOOR_WATCH=1: measure this many pairs of floor and watched floor, the watched one first in every second pair (BENCH_FLOOR_PAIRS)")
	flag.IntVar(&c.ColdRounds, "cold-rounds", envInt("BENCH_COLD_ROUNDS", 1), "with BENCH_COLD_ONLY=1: measure this many rounds of floor and cold burst, a new operator for each, and report the median ratio (BENCH_COLD_ROUNDS)")
	flag.BoolVar(&c.ColdOnly, "cold-only", os.Getenv("BENCH_COLD_ONLY") == "1", "stop after the cold burst (BENCH_COLD_ONLY=1)")
	flag.IntVar(&c.CESNamespaces, "ces-namespaces", envInt("BENCH_CES_NAMESPACES", 1000), "namespaces of the ClusterExternalSecret phase, 0 skips it (BENCH_CES_NAMESPACES)")
	flag.BoolVar(&c.CESOnly, "ces-only", os.Getenv("BENCH_CES_ONLY") == "1", "run only the ClusterExternalSecret phase (BENCH_CES_ONLY=1)")
	flag.StringVar(&c.ProfileDir, "profile-dir", os.Getenv("BENCH_PROFILE_DIR"), "write the operator's heap profiles here (BENCH_PROFILE_DIR)")
	flag.BoolVar(&c.Keep, "keep", os.Getenv("BENCH_KEEP") == "1", "keep the work directory (BENCH_KEEP=1)")
	flag.Parse()
	if c.M <= 0 {
		c.M = max(1, c.N/10)
	}
	c.Multi = min(max(c.Multi, 0), 100)
	if c.ColdRounds > 1 && (!c.ColdOnly || !c.Floor) {
		fmt.Fprintln(os.Stderr, "BENCH_COLD_ROUNDS needs BENCH_COLD_ONLY=1 and the floor: the later phases run on the first burst's ExternalSecrets")
		os.Exit(2)
	}
	c.OperatorArgs = strings.Fields(*opArgs)
	return c
}

func main() {
	cfg := parseConfig()
	ctrllog.SetLogger(logr.Discard())
	cl := &cleanups{}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logf("received %v: stopping", s)
		cancel()
		<-sigs // a second signal: clean up now and leave
		cl.run()
		os.Exit(130)
	}()
	code := 0
	func() {
		defer func() {
			if r := recover(); r != nil {
				logf("panic: %v", r)
				code = 2
			}
		}()
		defer cl.run()
		if err := run(ctx, cfg, cl); err != nil {
			logf("FAILED: %v", err)
			code = 1
		}
	}()
	cancel()
	os.Exit(code)
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}
