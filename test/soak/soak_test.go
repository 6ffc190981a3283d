package soak

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

// config is read from the environment; `go test ./...` (make test) gets the
// three-minute, fixed-seed, 60-ExternalSecret soak, `make soak` ten minutes and 300.
type config struct {
	duration time.Duration
	seed     int64
	n        int
	refresh  time.Duration
}

func envConfig(t *testing.T) config {
	c := config{duration: 3 * time.Minute, seed: 1, refresh: 30 * time.Second}
	var err error
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		if c.duration, err = time.ParseDuration(v); err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
	}
	if v := os.Getenv("SOAK_SEED"); v != "" {
		if c.seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("SOAK_SEED: %v", err)
		}
	}
	if v := os.Getenv("SOAK_REFRESH"); v != "" {
		if c.refresh, err = time.ParseDuration(v); err != nil {
			t.Fatalf("SOAK_REFRESH: %v", err)
		}
	}
	c.n = 60
	if c.duration >= 10*time.Minute {
		c.n = 300
	}
	if v := os.Getenv("SOAK_ES"); v != "" {
		if c.n, err = strconv.Atoi(v); err != nil || c.n < 10 {
			t.Fatalf("SOAK_ES: want a number ≥ 10")
		}
	}
	return c
}

// kindOf spreads ExternalSecrets over the backends: 30% SM, 30% SSM, 30% Vault KV,
// 10% Vault dynamic database credentials.
func kindOf(i int) string {
	switch i % 10 {
	case 0, 1, 2:
		return kindSM
	case 3, 4, 5:
		return kindSSM
	case 9:
		return kindDB
	}
	return kindKV
}

func TestSoak(t *testing.T) {
	testenv.RequireIntegration(t, "the fault soak")
	ctrllog.SetLogger(logr.Discard())
	cfg := envConfig(t)
	t.Logf("SOAK_SEED=%d SOAK_DURATION=%s ExternalSecrets=%d refresh=%s", cfg.seed, cfg.duration, cfg.n, cfg.refresh)
	ctx := t.Context()
	dir := t.TempDir()
	bin := buildOperator(t, dir)

	kube := testenv.StartKube(t)
	api := findAPIServer(t, kube.Env.ControlPlane.APIServer.CertDir, dir+"/kube-apiserver.log")
	t.Cleanup(api.stop)
	emu := awsemu.NewTestServer(t, awsemu.Options{})
	bao := testenv.StartOpenBao(t)
	pg := testenv.StartPostgres(t)
	w := &world{t: t, ess: map[string]*es{}, owner: map[string]string{}, emu: emu, bao: bao, pg: pg,
		kube: kube.Client, refresh: cfg.refresh, kvToken: "soak-kv-0"}
	if err := w.setupVault(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{operatorNS, soakNS} {
		if err := kube.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	if err := w.stores(ctx); err != nil {
		t.Fatal(err)
	}
	probe := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: soakNS, Name: "probe"}, Spec: v1alpha1.ExternalSecretSpec{
		SecretStoreRef: v1alpha1.StoreRef{Name: "probe"}, RefreshInterval: &metav1.Duration{Duration: time.Hour},
		Data: []v1alpha1.DataItem{{SecretKey: "v", RemoteRef: &v1alpha1.RemoteRef{Key: "probe", Property: "v"}}}}}
	if err := kube.Client.Create(ctx, probe); err != nil {
		t.Fatal(err)
	}

	ops := &operators{t: t, bin: bin, dir: dir, kubeconfig: kube.Kubeconfig, ns: soakNS}
	t.Cleanup(ops.stopAll)
	ops.start()
	ops.start()

	for i := range cfg.n {
		if err := w.add(ctx, kindOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	logf := func(format string, args ...any) {
		t.Logf("%s %s", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	sctx, stopSupervisor := context.WithCancel(ctx)
	defer stopSupervisor()
	go ops.supervise(sctx, logf)
	chk := newChecker(w, ops, logf)
	if left := waitConverged(ctx, chk, 5*time.Minute); len(left) > 0 {
		t.Fatalf("initial sync: %d not converged after 5m, e.g. %v", len(left), left[:min(5, len(left))])
	}
	logf("initial sync done: %d ExternalSecrets Ready", cfg.n)

	cctx, stopChecks := context.WithCancel(ctx)
	checksDone := make(chan struct{})
	go func() { defer close(checksDone); chk.run(cctx) }()

	plan := schedule(cfg.seed, cfg.duration)
	var planText []string
	for _, ev := range plan {
		planText = append(planText, fmt.Sprintf("+%s %s", ev.at.Round(time.Second), ev.kind))
	}
	t.Logf("fault schedule (seed %d): %s", cfg.seed, strings.Join(planText, ", "))
	in := &injector{w: w, ops: ops, api: api, chk: chk, r: rand.New(rand.NewSource(cfg.seed)), logf: logf}
	start := time.Now()
	in.run(ctx, plan, start)
	if d := time.Until(start.Add(cfg.duration)); d > 0 {
		time.Sleep(d)
	}
	in.wait()
	emu.ClearFaults()
	emu.SetLatency("", 0)
	stop := time.Now()
	logf("faults stopped; waiting for convergence (bound %s)", 2*cfg.refresh)
	left := waitConverged(ctx, chk, 2*cfg.refresh+2*time.Minute)
	conv := time.Since(stop).Seconds()
	if len(left) > 0 {
		chk.violate("not converged %.0fs after the faults stopped: %d, e.g. %v", conv, len(left), left[:min(10, len(left))])
	} else if conv > (2 * cfg.refresh).Seconds() {
		chk.violate("converged after %.1fs, more than two refresh intervals (%s)", conv, 2*cfg.refresh)
	}
	// A last look at every invariant with all the logs written so far.
	time.Sleep(2 * time.Second)
	stopChecks()
	<-checksDone
	chk.tick(ctx, true)

	checks, violations := chk.totals()
	maxFO := 0.0
	for _, s := range in.fo {
		maxFO = max(maxFO, s)
	}
	summary := fmt.Sprintf("SOAK seed=%d duration=%s externalsecrets=%d faults=%d checks=%d violations=%d max_failover_s=%.1f max_convergence_s=%.1f (leader kills %d, replica self-exits %d)",
		cfg.seed, cfg.duration, cfg.n, in.faults, checks, len(violations), maxFO, conv, len(in.fo), ops.selfExits)
	for _, v := range violations {
		t.Log("violation: " + v)
	}
	t.Log(summary)
	fmt.Println(summary)
	if len(violations) > 0 {
		t.Fail()
	}
}

// waitConverged polls until everything matches backend truth or timeout; it returns
// what still differs.
func waitConverged(ctx context.Context, chk *checker, timeout time.Duration) []string {
	var left []string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		if left = chk.unconverged(ctx); len(left) == 0 {
			return nil
		}
	}
	return left
}
