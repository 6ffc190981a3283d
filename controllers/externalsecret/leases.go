package externalsecret

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
)

func renewPercent(d *v1alpha1.DynamicRef) int64 {
	if d.RenewPercent == 0 {
		return v1alpha1.DefaultRenewPercent
	}
	return int64(d.RenewPercent)
}

// renewAt is when a lease should be renewed: renewPercent of its TTL after it was
// last issued or renewed, with a small deterministic jitter so leases issued
// together are not renewed in the same second.
func renewAt(l v1alpha1.LeaseStatus, pct int64) time.Time {
	ttl := time.Duration(l.TTLSeconds) * time.Second
	start := l.ExpiresAt.Add(-ttl)
	at := start.Add(ttl * time.Duration(pct) / 100)
	jitter := time.Duration(hash64(l.ID) % uint64(max(ttl/20, time.Second)))
	return at.Add(-jitter)
}

func dynamicSources(es *v1alpha1.ExternalSecret) map[string]*v1alpha1.DynamicRef {
	out := map[string]*v1alpha1.DynamicRef{}
	for _, d := range es.Spec.DataFrom {
		if d.Dynamic != nil {
			out[d.Dynamic.Path] = d.Dynamic
		}
	}
	return out
}

// currentLease is the newest entry for path: the credentials in the Secret now.
// Older entries of the same path are superseded certificates, kept until they expire.
func currentLease(ls []v1alpha1.LeaseStatus, path string) *v1alpha1.LeaseStatus {
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].Path == path {
			return &ls[i]
		}
	}
	return nil
}

// keptCertificates are the superseded certificates of path that have not expired:
// pods may still serve them, so they stay recorded (and are revoked on delete).
func keptCertificates(ls []v1alpha1.LeaseStatus, path string, cur *v1alpha1.LeaseStatus, now time.Time) []v1alpha1.LeaseStatus {
	var out []v1alpha1.LeaseStatus
	for i := range ls {
		if l := &ls[i]; l.Path == path && l != cur && l.Kind == v1alpha1.LeaseKindCertificate && now.Before(l.ExpiresAt.Time) {
			out = append(out, *l)
		}
	}
	return out
}

// olderLeases are the entries of path other than cur that are not certificates.
func olderLeases(ls []v1alpha1.LeaseStatus, path string, cur *v1alpha1.LeaseStatus) []v1alpha1.LeaseStatus {
	var out []v1alpha1.LeaseStatus
	for i := range ls {
		if l := &ls[i]; l.Path == path && l != cur && l.Kind != v1alpha1.LeaseKindCertificate {
			out = append(out, *l)
		}
	}
	return out
}

// hasOlderLeases: a path has a lease besides its current one, i.e. credentials were
// issued and the write of the Secret failed (unwritten); the next refresh writes them.
func hasOlderLeases(es *v1alpha1.ExternalSecret, leases []v1alpha1.LeaseStatus) bool {
	for path := range dynamicSources(es) {
		if len(olderLeases(leases, path, currentLease(leases, path))) > 0 {
			return true
		}
	}
	return false
}

// leaseRenewalDue reports whether any current lease has reached its renewal time.
func leaseRenewalDue(es *v1alpha1.ExternalSecret, leases []v1alpha1.LeaseStatus, now time.Time) bool {
	next := nextLeaseEvent(es, leases)
	return !next.IsZero() && !now.Before(next)
}

// nextLeaseEvent is the earliest renewal (or re-issue) time of the current leases
// (zero: none).
func nextLeaseEvent(es *v1alpha1.ExternalSecret, leases []v1alpha1.LeaseStatus) time.Time {
	var next time.Time
	for path, d := range dynamicSources(es) {
		if l := currentLease(leases, path); l != nil {
			if at := renewAt(*l, renewPercent(d)); next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	return next
}

// dynamic returns a dynamic source's data. A recorded lease that is still valid is
// kept (renewed when due) and its data is taken from memory or, after a restart,
// from the target Secret, so a restart issues no new credentials. Otherwise new
// credentials are issued; an old lease is revoked after the Secret is written, an
// old certificate is kept in status until it expires.
func (r *Reconciler) dynamic(ctx context.Context, sc *scope, path string, src v1alpha1.DataFromSource, f *fetched) (map[string][]byte, *outcome) {
	d, h, leases := src.Dynamic, sc.h, sc.leases
	leaser, ok := h.Client().(provider.Leaser)
	if !ok {
		o := failTerminal(v1alpha1.ReasonInvalidSpec, "%s.dynamic: provider %q does not issue dynamic secrets", path, h.Provider())
		return nil, &o
	}
	if f.dynamicData == nil {
		f.dynamicData = map[string]map[string][]byte{}
	}
	now := r.Clock.Now()
	cur := currentLease(leases, d.Path)
	kept := keptCertificates(leases, d.Path, cur, now)
	// Older leases of the path (credentials issued before a Secret write that failed,
	// see unwritten) are superseded: revoked once the Secret holds the current ones.
	f.superseded = append(f.superseded, olderLeases(leases, d.Path, cur)...)
	if cur != nil && now.Before(cur.ExpiresAt.Time) {
		if data := r.leaseData(sc.es, cur, src, sc.existing); data != nil {
			l := *cur
			if !now.Before(renewAt(l, renewPercent(d))) {
				renewed, ok := r.renew(ctx, leaser, l)
				if !ok {
					goto issue // not renewable (certificates), capped by max TTL, or renewal failed
				}
				l = renewed
			}
			f.leases = append(append(f.leases, kept...), l)
			f.dynamicData[d.Path] = data
			return data, nil
		}
	}
issue:
	method := d.Method
	if method == "" {
		method = "GET"
	}
	data, lease, err := leaser.Issue(ctx, provider.DynamicRequest{Path: d.Path, Method: method, Parameters: d.Parameters})
	if err != nil {
		o := providerFailure(path+".dynamic: path \""+d.Path+"\"", err)
		return nil, &o
	}
	switch {
	case cur == nil:
	case cur.Kind == v1alpha1.LeaseKindCertificate:
		if now.Before(cur.ExpiresAt.Time) {
			kept = append(kept, *cur)
		}
	default:
		f.superseded = append(f.superseded, *cur)
	}
	issued := metav1.NewTime(now)
	entry := v1alpha1.LeaseStatus{ID: lease.ID, Path: d.Path, TTLSeconds: int64(lease.TTL / time.Second),
		Renewable: lease.Renewable, IssuedAt: &issued, ExpiresAt: metav1.NewTime(now.Add(lease.TTL).Truncate(time.Second)),
		Keys: sortedKeys(data)}
	if lease.Certificate {
		entry.Kind = v1alpha1.LeaseKindCertificate
	}
	log.FromContext(ctx).V(1).Info("dynamic secret issued", "path", d.Path, "ttl", lease.TTL.String(), "certificate", lease.Certificate)
	f.leases = append(append(f.leases, kept...), entry)
	f.issued = append(f.issued, entry)
	f.dynamicData[d.Path] = data
	return data, nil
}

// renew extends l. It reports false when the lease cannot be renewed or the
// backend capped it so close to expiry that new credentials should be issued.
func (r *Reconciler) renew(ctx context.Context, leaser provider.Leaser, l v1alpha1.LeaseStatus) (v1alpha1.LeaseStatus, bool) {
	if !l.Renewable {
		return l, false
	}
	ttl := time.Duration(l.TTLSeconds) * time.Second
	got, err := leaser.Renew(ctx, l.ID, ttl)
	if err != nil {
		log.FromContext(ctx).Info("lease renewal failed; issuing new credentials", "error", provider.SafeMessage(err))
		return l, false
	}
	// A TTL well below the one asked for means max TTL is near: rotate instead.
	if got.TTL < ttl/3 {
		return l, false
	}
	now := r.Clock.Now()
	l.ExpiresAt = metav1.NewTime(now.Add(got.TTL).Truncate(time.Second))
	l.TTLSeconds = int64(got.TTL / time.Second)
	l.Renewable = got.Renewable
	return l, true
}

// leaseData returns a valid lease's data: from memory, else from the target Secret
// when the Secret holds the dynamic source's keys as written (its own names, or the
// names its rewrite rules give them) and no template replaces them.
func (r *Reconciler) leaseData(es *v1alpha1.ExternalSecret, l *v1alpha1.LeaseStatus, src v1alpha1.DataFromSource, existing *corev1.Secret) map[string][]byte {
	if mem, ok := r.mem.get(es.UID); ok && mem.dynamic[l.Path] != nil {
		return mem.dynamic[l.Path]
	}
	t := es.Spec.Target.Template
	if existing == nil || len(l.Keys) == 0 || (t != nil && len(t.Data) > 0 && t.MergePolicy != v1alpha1.TemplateMerge) {
		return nil
	}
	out := map[string][]byte{}
	for _, k := range l.Keys {
		name := k
		if len(src.Rewrite) > 0 {
			renamed, o := rewrite("", map[string][]byte{k: nil}, src.Rewrite)
			if o != nil || len(renamed) != 1 {
				return nil
			}
			for n := range renamed {
				name = n
			}
		}
		v, ok := existing.Data[name]
		if !ok {
			return nil
		}
		out[k] = v
	}
	return out
}

func (r *Reconciler) revoke(ctx context.Context, es *v1alpha1.ExternalSecret, h *fetch.Handle, leases []v1alpha1.LeaseStatus) {
	leaser, ok := h.Client().(provider.Leaser)
	if !ok {
		return
	}
	for _, l := range leases {
		if err := leaser.Revoke(ctx, l.ID); err != nil {
			log.FromContext(ctx).Info("revoking superseded lease failed", "error", provider.SafeMessage(err))
			continue
		}
		r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, v1alpha1.EventLeaseRevoked, "Revoke", "superseded lease revoked")
	}
}

// unwrittenLeases are the credentials this process issued whose Secret write failed
// and that no later refresh has written yet, with the handle that issued them. The
// retry writes them (memory keeps their data); if the process stops first, nobody
// else knows them (status names the leases the Secret holds), so RevokeUnwritten
// revokes them on the way out instead of leaving them to their TTL.
type unwrittenLeases struct{ m sync.Map }

type unwrittenEntry struct {
	h      *fetch.Handle
	leases []v1alpha1.LeaseStatus
}

func (u *unwrittenLeases) put(uid types.UID, h *fetch.Handle, ls []v1alpha1.LeaseStatus) {
	u.m.Store(uid, unwrittenEntry{h: h, leases: ls})
}
func (u *unwrittenLeases) forget(uid types.UID) { u.m.Delete(uid) }

// RevokeUnwritten revokes every unwritten lease (best effort, within ctx) and
// returns how many were revoked. The operator calls it once its manager stopped,
// also after a lost leader election: the Secrets do not hold these credentials, so
// no new leader and no workload can be using them.
func (r *Reconciler) RevokeUnwritten(ctx context.Context) int {
	n := 0
	r.unwritten.m.Range(func(k, v any) bool {
		e := v.(unwrittenEntry)
		leaser, ok := e.h.Client().(provider.Leaser)
		if !ok {
			return true
		}
		for _, l := range e.leases {
			if err := leaser.Revoke(ctx, l.ID); err != nil {
				log.FromContext(ctx).Info("revoking unwritten lease at shutdown failed; it expires at its TTL", "path", l.Path, "error", provider.SafeMessage(err))
				continue
			}
			n++
		}
		r.unwritten.m.Delete(k)
		return ctx.Err() == nil
	})
	return n
}
