package externalsecret

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// TestIssuedButUnwritten: new credentials were issued but the Secret write failed (the
// API server restarting: found by the fault soak, 3 leases per dynamic ExternalSecret).
// The retries write those credentials instead of issuing new ones each time, and the
// superseded lease is revoked once the Secret holds the new ones.
func TestIssuedButUnwritten(t *testing.T) {
	cases := []struct {
		name string
		fail func(verb string, obj client.Object) error
	}{
		{"Secret update fails", func(verb string, obj client.Object) error {
			if _, ok := obj.(*corev1.Secret); ok && verb == "update" {
				return apierrors.NewServiceUnavailable("apiserver restarting")
			}
			return nil
		}},
		{"Secret update conflicts", func(verb string, obj client.Object) error {
			if _, ok := obj.(*corev1.Secret); ok && verb == "update" {
				return apierrors.NewConflict(corev1.Resource("secrets"), "db", errors.New("changed"))
			}
			return nil
		}},
		{"Secret and status writes fail", func(verb string, obj client.Object) error {
			if verb == "update" || verb == "status" {
				return apierrors.NewServiceUnavailable("apiserver restarting")
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, dynamicES("db", "database/creds/app"))
			e.backend.SetLeases(time.Hour, false) // not renewable: re-issued at 67 %
			mustReconcile(t, e, "db")
			first := e.backend.LiveLeases()
			e.clock.Step(45 * time.Minute)
			e.fail = c.fail
			for range 3 {
				_, _ = e.reconcile("db")
			}
			if n := e.backend.Issued(); n != 2 {
				t.Fatalf("issued %d leases over 3 failing retries, want 2 (one re-issue, kept for the retries)", n)
			}
			e.fail = nil
			mustReconcile(t, e, "db")
			if n := e.backend.Issued(); n != 2 {
				t.Fatalf("issued %d, want 2", n)
			}
			if got := string(e.secret("db").Data["username"]); got != "user-2" {
				t.Fatalf("username %q, want the re-issued user-2", got)
			}
			live := e.backend.LiveLeases()
			if len(live) != 1 || live[0] == first[0] {
				t.Fatalf("live leases %v (first %v), want only the new one", live, first)
			}
			if ls := e.es("db").Status.Leases; len(ls) != 1 || ls[0].ID != live[0] {
				t.Fatalf("status.leases = %+v, want the new lease only", ls)
			}
		})
	}
}

// TestRevokeUnwrittenAtShutdown: credentials issued but not written when the process
// stops are revoked (nobody else knows them); the ones the Secret holds are not. After
// a successful write nothing is left to revoke.
func TestRevokeUnwrittenAtShutdown(t *testing.T) {
	e := newEnv(t, dynamicES("db", "database/creds/app"))
	e.backend.SetLeases(time.Hour, false)
	mustReconcile(t, e, "db")
	inSecret := e.backend.LiveLeases()
	e.clock.Step(45 * time.Minute)
	e.fail = func(verb string, obj client.Object) error {
		if verb == "update" || verb == "status" {
			return apierrors.NewServiceUnavailable("apiserver restarting")
		}
		return nil
	}
	_, _ = e.reconcile("db")
	if n := e.r.RevokeUnwritten(context.Background()); n != 1 {
		t.Fatalf("revoked %d at shutdown, want the 1 unwritten lease", n)
	}
	if live := e.backend.LiveLeases(); len(live) != 1 || live[0] != inSecret[0] {
		t.Fatalf("live leases %v, want only the one the Secret holds %v", live, inSecret)
	}
	if n := e.r.RevokeUnwritten(context.Background()); n != 0 {
		t.Fatalf("revoked %d on a second call, want 0", n)
	}

	t.Run("written on retry: nothing to revoke", func(t *testing.T) {
		e := newEnv(t, dynamicES("db", "database/creds/app"))
		e.backend.SetLeases(time.Hour, false)
		mustReconcile(t, e, "db")
		e.clock.Step(45 * time.Minute)
		e.fail = func(verb string, obj client.Object) error {
			if verb == "update" {
				return apierrors.NewServiceUnavailable("apiserver restarting")
			}
			return nil
		}
		_, _ = e.reconcile("db")
		e.fail = nil
		mustReconcile(t, e, "db")
		if n := e.r.RevokeUnwritten(context.Background()); n != 0 {
			t.Fatalf("revoked %d after the retry wrote them, want 0", n)
		}
	})
}

func TestMergeLeases(t *testing.T) {
	l := func(id, path string, exp int) v1alpha1.LeaseStatus {
		return v1alpha1.LeaseStatus{ID: id, Path: path, ExpiresAt: metav1.NewTime(time.Unix(int64(exp), 0))}
	}
	cases := []struct {
		name         string
		prior, now   []v1alpha1.LeaseStatus
		want         []string // id@expiry in order
		wantCurrentA string
	}{
		{"renewed: once, new expiry", []v1alpha1.LeaseStatus{l("a1", "a", 1)}, []v1alpha1.LeaseStatus{l("a1", "a", 2)}, []string{"a1@2"}, "a1"},
		{"re-issued: old before new", []v1alpha1.LeaseStatus{l("a1", "a", 1)}, []v1alpha1.LeaseStatus{l("a2", "a", 3)}, []string{"a1@1", "a2@3"}, "a2"},
		{"another path's source failed: its lease stays", []v1alpha1.LeaseStatus{l("a1", "a", 1), l("b1", "b", 1)}, []v1alpha1.LeaseStatus{l("a2", "a", 3)}, []string{"a1@1", "b1@1", "a2@3"}, "a2"},
		{"retry after a failed write: the unwritten one is renewed in place", []v1alpha1.LeaseStatus{l("a1", "a", 1), l("a2", "a", 3)}, []v1alpha1.LeaseStatus{l("a2", "a", 4)}, []string{"a1@1", "a2@4"}, "a2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mergeLeases(c.prior, c.now)
			var ids []string
			for _, x := range got {
				ids = append(ids, fmt.Sprintf("%s@%d", x.ID, x.ExpiresAt.Unix()))
			}
			if strings.Join(ids, ",") != strings.Join(c.want, ",") {
				t.Fatalf("merged %v, want %v", ids, c.want)
			}
			if cur := currentLease(got, "a"); cur == nil || cur.ID != c.wantCurrentA {
				t.Fatalf("current lease of a = %+v, want %s", cur, c.wantCurrentA)
			}
		})
	}
}
