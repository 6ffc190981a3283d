package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

const (
	operatorUser      = "secretsync-bench-operator"
	operatorNamespace = "secretsync-system"
	benchNamespace    = "bench"
	unrelatedNS       = "bench-unrelated"
)

// repoRoot walks up from the working directory to the module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/secretsync/secretsync\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the secretsync checkout (go.mod not found)")
		}
		dir = parent
	}
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
# Every request of the operator but watches, to count its requests per sync by verb.
- level: Metadata
  users: ["` + operatorUser + `"]
  verbs: ["get", "list"]
# Rollout discovery: reads of workloads are counted too (0 per unchanged round).
- level: Metadata
  verbs: ["get", "list"]
  resources: [{group: "apps", resources: ["deployments", "statefulsets", "daemonsets"]}]
- level: None
`

type kube struct {
	env        *envtest.Environment
	cfg        *rest.Config
	c          client.Client
	auditLog   string
	kubeconfig string // the operator's user
	// PIDs of kube-apiserver and etcd (0 if not found), for CPU accounting.
	apiPID, etcdPID int
}

func startKube(root, dir string, cl *cleanups) (*kube, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make tools`", b, assets)
		}
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	k := &kube{auditLog: filepath.Join(dir, "kube-audit.log")}
	k.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	args := k.env.ControlPlane.GetAPIServer().Configure()
	args.Append("audit-policy-file", policy)
	args.Append("audit-log-path", k.auditLog)
	// Never rotate (0 means lumberjack's default, 100 MB): the counts read the log by
	// offset, and BENCH_COLD_ROUNDS at N = 10,000 writes more than that.
	args.Append("audit-log-maxsize", "1000000")
	cl.add(func() {
		if err := k.env.Stop(); err != nil {
			logf("stop envtest: %v", err)
		}
	})
	cfg, err := k.env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	k.cfg = cfg
	if k.c, err = client.New(cfg, client.Options{Scheme: newScheme()}); err != nil {
		return nil, err
	}
	u, err := k.env.ControlPlane.AddUser(envtest.User{Name: operatorUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("operator user: %w", err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return nil, err
	}
	k.kubeconfig = filepath.Join(dir, "operator.kubeconfig")
	if pids := findPIDs("kube-apiserver", k.auditLog); len(pids) == 1 {
		k.apiPID = pids[0]
		for _, a := range strings.Fields(cmdline(k.apiPID)) {
			if url, ok := strings.CutPrefix(a, "--etcd-servers="); ok {
				if pids := findPIDs("etcd", "--listen-client-urls="+url); len(pids) == 1 {
					k.etcdPID = pids[0]
				}
			}
		}
	}
	return k, os.WriteFile(k.kubeconfig, kc, 0o600)
}

func ensureNS(ctx context.Context, c client.Client, name string) error {
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// ---- the operator process

type operatorProc struct {
	p       *proc
	rss     *rssSampler
	probe   string
	binary  string
	pprof   string // base URL of /debug/pprof
	metrics string // URL of /metrics
}

// saveHeap writes the operator's heap profile to dir/name (BENCH_PROFILE_DIR), for
// `go tool pprof`; a failure is reported, not fatal.
func (o *operatorProc) saveHeap(ctx context.Context, dir, name string) {
	if dir == "" {
		return
	}
	resp, err := httpGet(ctx, o.pprof+"/heap?gc=1")
	if err != nil {
		logf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		logf("heap profile: %v", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		logf("heap profile: %v", err)
		return
	}
	logf("heap profile written to %s", f.Name())
	// The text form ends with runtime.MemStats: heap in use versus what RSS holds.
	if r2, err := httpGet(ctx, o.pprof+"/heap?debug=1"); err == nil {
		defer r2.Body.Close()
		if b, err := io.ReadAll(r2.Body); err == nil {
			// and what RSS is made of: anonymous (Go heap, stacks) versus the mapped binary
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", o.p.pid())); err == nil {
				for _, l := range strings.Split(string(st), "\n") {
					if strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "Vm") {
						b = append(b, "# "+l+"\n"...)
					}
				}
			}
			_ = os.WriteFile(filepath.Join(dir, strings.TrimSuffix(name, ".pb.gz")+".txt"), b, 0o644)
		}
	}
}

// saveCPU writes a CPU profile of the operator's next d to dir/name (BENCH_PROFILE_DIR)
// in the background; a failure is reported, not fatal.
func (o *operatorProc) saveCPU(ctx context.Context, dir, name string, d time.Duration) {
	if dir == "" {
		return
	}
	go func() {
		resp, err := httpGet(ctx, fmt.Sprintf("%s/profile?seconds=%d", o.pprof, int(d.Seconds())))
		if err != nil {
			logf("cpu profile: %v", err)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			logf("cpu profile: %v", err)
			return
		}
		logf("cpu profile written to %s", filepath.Join(dir, name))
	}()
}

// readyGauge is the operator's count of ExternalSecrets whose Ready condition it
// last computed True (secretsync_externalsecret_ready{condition="True"}): read from
// its metrics endpoint, it costs the API server nothing.
func (o *operatorProc) readyGauge(ctx context.Context) (int, error) {
	resp, err := httpGet(ctx, o.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return parseReadyGauge(string(b))
}

func parseReadyGauge(text string) (int, error) {
	const series = `secretsync_externalsecret_ready{condition="True"} `
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, nil // no ExternalSecret computed yet
}

// httpGet is http.Get bound to ctx.
func httpGet(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

func buildOperator(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "secretsync")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	return out, nil
}

func startOperator(bin, kubeconfig, dir string, extra []string, cl *cleanups) (*operatorProc, error) {
	mp, err := freePort()
	if err != nil {
		return nil, err
	}
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--leader-elect=false",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", mp),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", hp),
		"--operator-namespace=" + operatorNamespace,
	}
	pp, err := freePort()
	if err != nil {
		return nil, err
	}
	args = append(args, fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", pp))
	args = append(args, extra...)
	cmd := exec.Command(bin, args...) //nolint:noctx // runs until the cleanups stop it (gracefully), not until a context ends
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "VAULT_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "KUBECONFIG="+kubeconfig)
	// BENCH_OPERATOR_ENV (e.g. GODEBUG=gctrace=1) reaches the operator only, not the
	// control plane or OpenBao the benchmark also starts.
	env = append(env, strings.Fields(os.Getenv("BENCH_OPERATOR_ENV"))...)
	cmd.Env = env
	p, err := startProc("operator", cmd, filepath.Join(dir, "operator.log"))
	if err != nil {
		return nil, err
	}
	op := &operatorProc{p: p, rss: sampleRSS(p.pid()), probe: fmt.Sprintf("http://127.0.0.1:%d/readyz", hp), binary: bin,
		pprof: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", pp), metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", mp)}
	cl.add(op.stop)
	return op, nil
}

func (o *operatorProc) stop() {
	o.p.stop(20 * time.Second)
	o.rss.Stop()
}

// ---- ExternalSecret readiness, observed through a watch

type readiness struct {
	mu      sync.Mutex
	readyAt map[string]time.Time
	reason  map[string]string
}

func isReady(es *v1alpha1.ExternalSecret) bool {
	c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && es.Status.ObservedGeneration == es.Generation
}

func (r *readiness) on(obj any) {
	now := time.Now()
	es, ok := obj.(*v1alpha1.ExternalSecret)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		r.reason[es.Name] = c.Reason
	}
	if _, seen := r.readyAt[es.Name]; !seen && isReady(es) {
		r.readyAt[es.Name] = now
	}
}

func (r *readiness) get(name string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.readyAt[name]
	return t, ok
}

// countReady is how many of names are Ready; notReady summarises the others by reason.
func (r *readiness) countReady(names []string) (int, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, other := 0, map[string]int{}
	for _, name := range names {
		if _, ok := r.readyAt[name]; ok {
			n++
		} else {
			reason := r.reason[name]
			if reason == "" {
				reason = "(no status)"
			}
			other[reason]++
		}
	}
	return n, other
}

func watchReadiness(ctx context.Context, cfg *rest.Config, cl *cleanups) (*readiness, error) {
	r := &readiness{readyAt: map[string]time.Time{}, reason: map[string]string{}}
	ctx, cancel := context.WithCancel(ctx)
	c, err := cache.New(cfg, cache.Options{Scheme: newScheme(), DefaultNamespaces: map[string]cache.Config{benchNamespace: {}}})
	if err != nil {
		cancel()
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &v1alpha1.ExternalSecret{})
	if err != nil {
		cancel()
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.on(o) },
		UpdateFunc: func(_, o any) { r.on(o) },
	}); err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Start(ctx) }()
	cl.add(func() { cancel(); <-done })
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("ExternalSecret informer did not sync")
	}
	return r, nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
