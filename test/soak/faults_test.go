package soak

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/test/awsemu"
)

// Fault kinds of the schedule. The infrastructure ones (leader kill, API server and
// OpenBao outages) run one at a time, each in the background; the others overlap them.
const (
	fLeaderKill = "leader-kill"
	fAPIRestart = "apiserver-restart"
	fBaoSeal    = "openbao-seal"
	fBaoRestart = "openbao-restart"
	fAWSFault   = "aws-fault"
	fAWSLatency = "aws-latency"
	fRotate     = "backend-rotate"
	fEdit       = "es-edit"
	fDelete     = "es-delete"
	fHandEdit   = "secret-hand-edit"
	fCredRotate = "store-credential-rotate"
)

var weights = map[string]int{
	fLeaderKill: 2, fAPIRestart: 1, fBaoSeal: 1, fBaoRestart: 1, fAWSFault: 4, fAWSLatency: 2,
	fRotate: 3, fEdit: 2, fDelete: 2, fHandEdit: 2, fCredRotate: 1,
}

func infra(kind string) bool {
	return kind == fLeaderKill || kind == fAPIRestart || kind == fBaoSeal || kind == fBaoRestart
}

type event struct {
	at   time.Duration
	kind string
}

// schedule is the seeded fault plan over d: every kind once, then weighted draws,
// one every 4–10 s.
func schedule(seed int64, d time.Duration) []event {
	r := rand.New(rand.NewSource(seed))
	var kinds []string
	for k := range weights {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var bag []string
	for _, k := range kinds {
		for range weights[k] {
			bag = append(bag, k)
		}
	}
	var times []time.Duration
	for t := 5 * time.Second; t < d; t += time.Duration(4000+r.Intn(6000)) * time.Millisecond {
		times = append(times, t)
	}
	plan := append([]string(nil), kinds...)
	r.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	for len(plan) < len(times) {
		plan = append(plan, bag[r.Intn(len(bag))])
	}
	var out []event
	for i, t := range times {
		out = append(out, event{at: t, kind: plan[i]})
	}
	return out
}

// injector runs the schedule.
type injector struct {
	w      *world
	ops    *operators
	api    *apiserver
	chk    *checker
	r      *rand.Rand
	logf   func(string, ...any)
	infra  sync.Mutex
	bg     sync.WaitGroup
	mu     sync.Mutex
	faults int
	fo     []float64 // failover seconds
	foN    int
}

func (in *injector) inc() {
	in.mu.Lock()
	in.faults++
	in.mu.Unlock()
}

func (in *injector) run(ctx context.Context, plan []event, start time.Time) {
	for _, ev := range plan {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(ev.at))):
		}
		in.logf("fault %s at +%s", ev.kind, ev.at.Round(time.Second))
		in.inc()
		if infra(ev.kind) {
			seed := in.r.Int63()
			in.bg.Add(1)
			go func() {
				defer in.bg.Done()
				in.infra.Lock()
				defer in.infra.Unlock()
				in.infraFault(ctx, ev.kind, rand.New(rand.NewSource(seed)))
			}()
			continue
		}
		if err := in.dataFault(ctx, ev.kind); err != nil {
			in.logf("fault %s: %v", ev.kind, err)
		}
	}
}

// wait for the background faults to end.
func (in *injector) wait() { in.bg.Wait() }

func (in *injector) infraFault(ctx context.Context, kind string, r *rand.Rand) {
	var err error
	switch kind {
	case fLeaderKill:
		err = in.killLeader(ctx, r)
	case fAPIRestart:
		if err = in.api.restart(time.Duration(2+r.Intn(5)) * time.Second); err == nil {
			err = waitAPI(ctx, in.w.kube)
		}
	case fBaoSeal:
		err = in.seal(ctx, time.Duration(5+r.Intn(10))*time.Second)
	case fBaoRestart:
		err = in.baoRestart(ctx, time.Duration(2+r.Intn(6))*time.Second)
	}
	if err != nil {
		in.chk.violate("fault %s did not complete: %v", kind, err)
	}
}

func waitAPI(ctx context.Context, c client.Client) error {
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var ns corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: soakNS}, &ns); err == nil {
			return nil
		}
	}
	return fmt.Errorf("API server not back after 90s")
}

// killLeader SIGKILLs the leader right after asking for a burst of syncs (so it dies
// mid-sync), starts a replacement, and measures kill → the new leader syncing (the
// probe ExternalSecret observes a new force-sync value).
func (in *injector) killLeader(ctx context.Context, r *rand.Rand) error {
	var leader *replica
	for deadline := time.Now().Add(60 * time.Second); leader == nil; time.Sleep(500 * time.Millisecond) {
		if leader = in.ops.leader(ctx); leader == nil && time.Now().After(deadline) {
			return fmt.Errorf("no leader to kill")
		}
	}
	in.forceSync(ctx, r, 20)
	time.Sleep(time.Duration(r.Intn(300)) * time.Millisecond)
	t0 := time.Now()
	in.ops.kill(leader)
	in.ops.start()
	in.foN++
	token := fmt.Sprintf("failover-%d", in.foN)
	if err := annotate(ctx, in.w.kube, "probe", token); err != nil {
		return err
	}
	for deadline := t0.Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var x v1alpha1.ExternalSecret
		if err := in.w.kube.Get(ctx, client.ObjectKey{Namespace: soakNS, Name: "probe"}, &x); err == nil && x.Status.ObservedForceSync == token && ready(&x) {
			s := time.Since(t0).Seconds()
			in.mu.Lock()
			in.fo = append(in.fo, s)
			in.mu.Unlock()
			in.logf("failover: replica %d killed, new leader synced after %.1fs", leader.id, s)
			return nil
		}
	}
	return fmt.Errorf("no replica synced within 3m of killing the leader")
}

func annotate(ctx context.Context, c client.Client, name, value string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var x v1alpha1.ExternalSecret
		if err := c.Get(ctx, client.ObjectKey{Namespace: soakNS, Name: name}, &x); err != nil {
			return err
		}
		if x.Annotations == nil {
			x.Annotations = map[string]string{}
		}
		x.Annotations[v1alpha1.AnnotationForceSync] = value
		return c.Update(ctx, &x)
	})
}

func (in *injector) forceSync(ctx context.Context, r *rand.Rand, n int) {
	for _, e := range in.pick(r, n, func(e *es) bool { return true }) {
		_ = annotate(ctx, in.w.kube, e.name, fmt.Sprintf("soak-%d", r.Int63()))
	}
}

func (in *injector) seal(ctx context.Context, down time.Duration) error {
	b := in.w.bao
	if err := b.Client.Sys().SealWithContext(ctx); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	time.Sleep(down)
	st, err := b.Client.Sys().UnsealWithContext(ctx, b.UnsealKey)
	if err != nil || st.Sealed {
		return fmt.Errorf("unseal: %w", err)
	}
	return nil
}

// baoRestart stops OpenBao, waits, starts it again (empty: a dev server) and
// restores everything the harness put there (policies, token, KV values, database
// engine); until then Vault keys may legitimately vanish.
func (in *injector) baoRestart(ctx context.Context, down time.Duration) error {
	w := in.w
	w.mu.Lock()
	w.vaultDown = true
	w.mu.Unlock()
	w.bao.Stop(w.t)
	time.Sleep(down)
	w.bao.Restart(w.t)
	err := w.setupVault(ctx)
	w.mu.Lock()
	w.vaultDown, w.vaultBackAt = false, time.Now()
	w.mu.Unlock()
	return err
}

// pick returns up to n live ExternalSecrets matching ok, drawn with r.
func (in *injector) pick(r *rand.Rand, n int, ok func(*es) bool) []*es {
	w := in.w
	w.mu.Lock()
	defer w.mu.Unlock()
	var cand []*es
	for _, name := range w.order {
		if e := w.ess[name]; !e.deleted && ok(e) {
			cand = append(cand, e)
		}
	}
	r.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	return cand[:min(n, len(cand))]
}

func static(e *es) bool { return e.kind != kindDB }

func (in *injector) dataFault(ctx context.Context, kind string) error {
	r := in.r
	switch kind {
	case fAWSFault:
		kinds := []awsemu.FaultKind{awsemu.FaultThrottle, awsemu.FaultServerError, awsemu.FaultUnavailable, awsemu.FaultClose, awsemu.FaultEmpty200}
		ops := []string{"", "GetSecretValue", "BatchGetSecretValue", "GetParameters", "GetParameter", "DescribeSecret"}
		f := awsemu.Fault{Kind: kinds[r.Intn(len(kinds))], Op: ops[r.Intn(len(ops))], Times: 10 + r.Intn(90)}
		in.logf("  aws %s op=%q times=%d", f.Kind, f.Op, f.Times)
		return in.w.emu.InjectFault(f)
	case fAWSLatency:
		d := time.Duration(1+r.Intn(4)) * time.Second
		hold := time.Duration(5+r.Intn(15)) * time.Second
		in.logf("  aws latency %s for %s", d, hold)
		in.w.emu.SetLatency("", d)
		in.bg.Add(1)
		go func() {
			defer in.bg.Done()
			time.Sleep(hold)
			in.w.emu.SetLatency("", 0)
		}()
	case fRotate:
		for _, e := range in.pick(r, 1+r.Intn(8), static) {
			in.rotate(ctx, e)
		}
	case fEdit:
		for _, e := range in.pick(r, 1+r.Intn(3), static) {
			if err := in.toggleB(ctx, e); err != nil {
				return err
			}
		}
	case fDelete:
		for _, e := range in.pick(r, 1, func(*es) bool { return true }) {
			if err := in.replace(ctx, e); err != nil {
				return err
			}
		}
	case fHandEdit:
		for _, e := range in.pick(r, 1+r.Intn(3), static) {
			if err := in.handEdit(ctx, e); err != nil {
				return err
			}
		}
	case fCredRotate:
		// Not during an OpenBao restart: the harness restores the current token then.
		in.infra.Lock()
		defer in.infra.Unlock()
		if err := in.credRotate(ctx); err != nil {
			return err
		}
		return in.awsKeyRotate(ctx)
	}
	return nil
}

// rotate gives e's backend object new values (kept as they were when the backend refuses).
func (in *injector) rotate(ctx context.Context, e *es) {
	w := in.w
	w.mu.Lock()
	old := e.current
	w.newValues(e)
	w.mu.Unlock()
	if err := w.writeBackend(ctx, e); err != nil {
		w.mu.Lock()
		e.current = old
		w.mu.Unlock()
		in.logf("  rotate %s: %v (kept)", e.name, err)
	}
}

func (in *injector) toggleB(ctx context.Context, e *es) error {
	w := in.w
	w.mu.Lock()
	e.askB = !e.askB
	e.bChanged = time.Now()
	items := w.items(e)
	w.mu.Unlock()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var x v1alpha1.ExternalSecret
		if err := w.kube.Get(ctx, client.ObjectKey{Namespace: soakNS, Name: e.name}, &x); err != nil {
			return err
		}
		x.Spec.Data = items
		return w.kube.Update(ctx, &x)
	})
	if err != nil { // not edited (the API server may be restarting)
		w.mu.Lock()
		e.askB = !e.askB
		w.mu.Unlock()
	}
	return err
}

// replace deletes e and creates a new ExternalSecret of the same kind.
func (in *injector) replace(ctx context.Context, e *es) error {
	w := in.w
	w.mu.Lock()
	e.deleted = true
	w.mu.Unlock()
	x := &v1alpha1.ExternalSecret{}
	x.Namespace, x.Name = soakNS, e.name
	if err := w.kube.Delete(ctx, x); err != nil && !apierrors.IsNotFound(err) {
		w.mu.Lock()
		e.deleted = false // still there (the API server may be restarting)
		w.mu.Unlock()
		return err
	}
	return w.add(ctx, e.kind)
}

func (in *injector) handEdit(ctx context.Context, e *es) error {
	w := in.w
	v := "HAND" + canary()[4:]
	w.mu.Lock()
	e.history[v] = struct{}{}
	w.owner[v] = e.name
	w.mu.Unlock()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var s corev1.Secret
		if err := w.kube.Get(ctx, client.ObjectKey{Namespace: soakNS, Name: e.name}, &s); err != nil {
			return err
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data["a"] = []byte(v)
		return w.kube.Update(ctx, &s)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// awsKeyRotate gives the AWS stores a new access key, as a platform team rotates
// one: create the key, update the credential Secret, deactivate the old key 10 s
// later (the emulator then refuses it like AWS refuses an inactive key).
func (in *injector) awsKeyRotate(ctx context.Context) error {
	w := in.w
	akid, secret := w.emu.CreateAccessKey()
	var old string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var s corev1.Secret
		if err := w.kube.Get(ctx, client.ObjectKey{Namespace: soakNS, Name: "aws-creds"}, &s); err != nil {
			return err
		}
		old = string(s.Data["access-key-id"])
		s.Data = map[string][]byte{"access-key-id": []byte(akid), "secret-access-key": []byte(secret)}
		return w.kube.Update(ctx, &s)
	})
	if err != nil {
		return err
	}
	in.logf("  aws access key rotated")
	in.bg.Add(1)
	go func() {
		defer in.bg.Done()
		time.Sleep(10 * time.Second)
		w.emu.DeactivateAccessKey(old)
	}()
	return nil
}

// credRotate gives the KV store a new token and revokes the old one 10 s later.
func (in *injector) credRotate(ctx context.Context) error {
	w := in.w
	w.mu.Lock()
	w.tokens++
	id := fmt.Sprintf("soak-kv-%d-%d", w.tokens, in.r.Int63())
	old := w.kvToken
	w.mu.Unlock()
	if err := w.kvTokenCreate(ctx, id); err != nil {
		return err
	}
	w.mu.Lock()
	w.kvToken = id
	w.mu.Unlock()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var s corev1.Secret
		if err := w.kube.Get(ctx, client.ObjectKey{Namespace: soakNS, Name: "kv-token"}, &s); err != nil {
			return err
		}
		s.Data = map[string][]byte{"token": []byte(id)}
		return w.kube.Update(ctx, &s)
	})
	if err != nil {
		return err
	}
	in.bg.Add(1)
	go func() {
		defer in.bg.Done()
		time.Sleep(10 * time.Second)
		_, _ = w.bao.Client.Logical().WriteWithContext(ctx, "auth/token/revoke", map[string]any{"token": old})
	}()
	return nil
}

// ready: the probe's forced refresh succeeded (a failed one is recorded as
// observed too, and a failover is only over once the new leader synced).
func ready(x *v1alpha1.ExternalSecret) bool {
	c := meta.FindStatusCondition(x.Status.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == x.Generation
}
