package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// canaryPrefix starts every backend value of a static ExternalSecret.
const canaryPrefix = "CNRY"

// checker evaluates the invariants every second and records violations.
type checker struct {
	w    *world
	ops  *operators
	logf func(string, ...any)

	mu         sync.Mutex
	checks     int
	violations []string
	prev       map[string]map[string]bool // ES -> keys seen last tick
	logOffsets map[string]int64
	skipped    int // ticks the API server did not answer
	// passwords are the dynamic database passwords seen in target Secrets: like the
	// canaries, none may appear in a log, event or status.
	passwords map[string]bool
}

func newChecker(w *world, ops *operators, logf func(string, ...any)) *checker {
	return &checker{w: w, ops: ops, logf: logf, prev: map[string]map[string]bool{}, logOffsets: map[string]int64{}, passwords: map[string]bool{}}
}

func (c *checker) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.violations = append(c.violations, time.Now().UTC().Format("15:04:05 ")+msg)
	c.mu.Unlock()
	c.logf("VIOLATION %s", msg)
}

func (c *checker) count(n int) {
	c.mu.Lock()
	c.checks += n
	c.mu.Unlock()
}

func (c *checker) totals() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checks, append([]string(nil), c.violations...)
}

// run ticks every second until ctx ends.
func (c *checker) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		c.tick(ctx, n%5 == 0)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *checker) tick(ctx context.Context, slow bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ess, secrets, err := c.list(ctx)
	if err != nil {
		c.mu.Lock()
		c.skipped++
		c.mu.Unlock()
		return
	}
	c.secrets(ess, secrets)
	c.statuses(ess)
	if slow {
		c.events(ctx)
		c.logs()
		c.leaseBound(ctx)
	}
}

func (c *checker) list(ctx context.Context) (map[string]*v1alpha1.ExternalSecret, map[string]*corev1.Secret, error) {
	var el v1alpha1.ExternalSecretList
	if err := c.w.kube.List(ctx, &el, client.InNamespace(soakNS)); err != nil {
		return nil, nil, err
	}
	var sl corev1.SecretList
	if err := c.w.kube.List(ctx, &sl, client.InNamespace(soakNS)); err != nil {
		return nil, nil, err
	}
	ess := map[string]*v1alpha1.ExternalSecret{}
	for i := range el.Items {
		ess[el.Items[i].Name] = &el.Items[i]
	}
	secrets := map[string]*corev1.Secret{}
	for i := range sl.Items {
		secrets[sl.Items[i].Name] = &sl.Items[i]
	}
	return ess, secrets, nil
}

// asked is the set of keys the ExternalSecret's current spec asks for.
func asked(x *v1alpha1.ExternalSecret, kind string) map[string]bool {
	out := map[string]bool{}
	if kind == kindDB {
		out["username"], out["password"] = true, true
		return out
	}
	for _, d := range x.Spec.Data {
		out[d.SecretKey] = true
	}
	return out
}

// secrets checks every target Secret: no lost key, no empty, partial or foreign value.
func (c *checker) secrets(ess map[string]*v1alpha1.ExternalSecret, secrets map[string]*corev1.Secret) {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	vaultExcused := w.vaultDown || now.Before(w.vaultBackAt.Add(15*time.Second))
	n := 0
	for name, e := range w.ess {
		x, ok := ess[name]
		if e.deleted || !ok || x.DeletionTimestamp != nil {
			delete(c.prev, name)
			continue
		}
		n++
		s := secrets[name]
		keys := map[string]bool{}
		if s != nil {
			for k := range s.Data {
				keys[k] = true
			}
		}
		ask := asked(x, e.kind)
		for k := range c.prev[name] {
			if keys[k] || !ask[k] {
				continue
			}
			excused := (k == "b" && now.Sub(e.bChanged) < 2*w.refresh+time.Minute) ||
				((e.kind == kindKV || e.kind == kindDB) && vaultExcused)
			if !excused {
				c.violateLocked("%s: Secret lost key %q that the ExternalSecret asks for and the backend holds", name, k)
			}
		}
		if len(keys) > 0 {
			c.prev[name] = keys
		}
		if s == nil {
			continue
		}
		for k, v := range s.Data {
			c.value(e, k, string(v), ask[k])
		}
	}
	c.count(n)
}

func (c *checker) violateLocked(format string, args ...any) {
	// w.mu is held; c.mu is separate.
	c.violate(format, args...)
}

// value classifies one value of e's Secret (w.mu held).
func (c *checker) value(e *es, key, v string, isAsked bool) {
	if owner, ok := c.w.owner[v]; ok && owner != e.name {
		c.violate("%s: key %q holds a value of ExternalSecret %s", e.name, key, owner)
		return
	}
	if !isAsked {
		return
	}
	if v == "" {
		c.violate("%s: key %q is empty", e.name, key)
		return
	}
	if e.kind == kindDB {
		if key == "password" {
			c.mu.Lock()
			c.passwords[v] = true
			c.mu.Unlock()
		}
		return
	}
	if _, ok := e.history[v]; !ok {
		c.violate("%s: key %q holds a value its backend never held (partial or corrupt, %d bytes)", e.name, key, len(v))
	}
}

// statuses: no canary in any ExternalSecret status.
func (c *checker) statuses(ess map[string]*v1alpha1.ExternalSecret) {
	for name, x := range ess {
		b, _ := json.Marshal(x.Status)
		if c.leaks(string(b)) {
			c.violate("%s: a backend value appears in status", name)
		}
	}
	c.count(len(ess))
}

// events: no canary in any Event of the namespace (core and events.k8s.io).
func (c *checker) events(ctx context.Context) {
	var el corev1.EventList
	if err := c.w.kube.List(ctx, &el, client.InNamespace(soakNS)); err == nil {
		for _, e := range el.Items {
			if c.leaks(e.Message) || c.leaks(e.Reason) {
				c.violate("event %s: a backend value appears in the message", e.Name)
			}
		}
		c.count(len(el.Items))
	}
	var nl eventsv1.EventList
	if err := c.w.kube.List(ctx, &nl, client.InNamespace(soakNS)); err == nil {
		for _, e := range nl.Items {
			if c.leaks(e.Note) {
				c.violate("event %s: a backend value appears in the note", e.Name)
			}
		}
		c.count(len(nl.Items))
	}
}

// logs: no canary in what any replica printed since the last look.
func (c *checker) logs() {
	for _, path := range c.ops.logFiles() {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		off := c.logOffsets[path]
		if _, err := f.Seek(off, io.SeekStart); err == nil {
			b, _ := io.ReadAll(f)
			// Only whole lines: a canary split at the end is seen next time.
			if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
				b = b[:i+1]
				for _, line := range bytes.Split(b, []byte("\n")) {
					if c.leaks(string(line)) {
						c.violate("log %s: a backend value appears: %.200s", path, c.redact(string(line)))
					}
				}
				c.logOffsets[path] = off + int64(len(b))
			}
		}
		f.Close()
		c.count(1)
	}
}

// leaks reports whether s holds a canary or a dynamic password seen so far.
func (c *checker) leaks(s string) bool {
	if strings.Contains(s, canaryPrefix) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.passwords {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// redact hides canaries and passwords in a reported line.
func (c *checker) redact(s string) string {
	c.mu.Lock()
	for p := range c.passwords {
		s = strings.ReplaceAll(s, p, "<password>")
	}
	c.mu.Unlock()
	return redact(s)
}

// redact hides canaries in a reported line (the report itself must not leak them).
func redact(s string) string {
	for {
		i := strings.Index(s, canaryPrefix)
		if i < 0 {
			return s
		}
		j := i + len(canaryPrefix)
		for j < len(s) && strings.IndexByte("0123456789abcdef", s[j]) >= 0 {
			j++
		}
		s = s[:i] + "<canary>" + s[j:]
	}
}

// leaseIDs lists OpenBao's live leases of the dynamic role (nil, err: unavailable).
func (c *checker) leaseIDs(ctx context.Context) ([]string, error) {
	sec, err := c.w.bao.Client.Logical().ListWithContext(ctx, "sys/leases/lookup/"+dbCreds+"/")
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return []string{}, nil
	}
	raw, _ := sec.Data["keys"].([]any)
	out := make([]string, 0, len(raw))
	for _, k := range raw {
		if s, ok := k.(string); ok {
			out = append(out, dbCreds+"/"+s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// leaseBound: at most two live leases per dynamic ExternalSecret at any time.
func (c *checker) leaseBound(ctx context.Context) {
	ids, err := c.leaseIDs(ctx)
	if err != nil {
		return
	}
	c.w.mu.Lock()
	live := 0
	for _, e := range c.w.ess {
		if e.kind == kindDB && !e.deleted {
			live++
		}
	}
	c.w.mu.Unlock()
	if len(ids) > 2*live+2 { // +2: a deleted ExternalSecret's lease is revoked by its finalizer, a moment later
		c.violate("OpenBao holds %d leases for %d dynamic ExternalSecrets", len(ids), live)
	}
	c.count(1)
}

// unconverged lists what does not match backend truth yet (empty: converged), and
// checks leases exactly: one per dynamic ExternalSecret, the one its status names.
func (c *checker) unconverged(ctx context.Context) []string {
	ess, secrets, err := c.list(ctx)
	if err != nil {
		return []string{"API: " + err.Error()}
	}
	ids, err := c.leaseIDs(ctx)
	if err != nil {
		return []string{"OpenBao leases: " + err.Error()}
	}
	inBao := map[string]bool{}
	for _, id := range ids {
		inBao[id] = true
	}
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	want := map[string]bool{}
	for name, e := range w.ess {
		if e.deleted {
			continue
		}
		x := ess[name]
		if x == nil {
			out = append(out, name+": no ExternalSecret")
			continue
		}
		cond := meta.FindStatusCondition(x.Status.Conditions, v1alpha1.ConditionReady)
		if cond == nil || cond.Status != metav1.ConditionTrue || x.Status.ObservedGeneration != x.Generation {
			out = append(out, name+": not Ready")
			continue
		}
		s := secrets[name]
		if s == nil {
			out = append(out, name+": no Secret")
			continue
		}
		if e.kind == kindDB {
			if len(x.Status.Leases) != 1 {
				out = append(out, fmt.Sprintf("%s: %d leases in status", name, len(x.Status.Leases)))
				continue
			}
			id := x.Status.Leases[0].ID
			want[id] = true
			if !inBao[id] {
				out = append(out, name+": its lease is not live in OpenBao")
			}
			continue
		}
		for k := range asked(x, e.kind) {
			if string(s.Data[k]) != e.current[k] {
				out = append(out, fmt.Sprintf("%s: key %q differs from the backend", name, k))
			}
		}
	}
	for _, id := range ids {
		if !want[id] {
			out = append(out, "OpenBao lease not held by any ExternalSecret (leaked): "+id)
		}
	}
	sort.Strings(out)
	return out
}
