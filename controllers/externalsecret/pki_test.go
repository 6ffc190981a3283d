package externalsecret

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// pkiES issues a certificate and maps it to a kubernetes.io/tls Secret by rewrite.
func pkiES(name string) *v1alpha1.ExternalSecret {
	es := dynamicES(name, "pki/issue/web")
	d := &es.Spec.DataFrom[0]
	d.Dynamic.Method, d.Dynamic.RenewPercent = "POST", 50
	d.Dynamic.Parameters = map[string]string{"common_name": "web.example"}
	d.Rewrite = []v1alpha1.Rewrite{
		{Regexp: v1alpha1.RewriteRegexp{Source: "^certificate$", Target: "tls.crt"}},
		{Regexp: v1alpha1.RewriteRegexp{Source: "^private_key$", Target: "tls.key"}},
	}
	es.Spec.Target.Template = &v1alpha1.Template{Type: string(corev1.SecretTypeTLS)}
	return es
}

// TestCertificateLifecycle: issued once, re-issued at renewPercent of its lifetime
// (not before, not on restart), superseded certificates kept until they expire and
// never revoked at rotation, every unexpired one revoked on delete.
func TestCertificateLifecycle(t *testing.T) {
	es := pkiES("web")
	es.Spec.DataFrom[0].Dynamic.RenewPercent = 80 // re-issue at 75-80 s of 100 (jitter at most 5 s)
	e := newEnv(t, es)
	e.backend.SetCertificates(100 * time.Second)
	mustReconcile(t, e, "web")
	s := e.secret("web")
	if s == nil || s.Type != corev1.SecretTypeTLS || string(s.Data["tls.crt"]) != "cert-1" || string(s.Data["tls.key"]) != "key-1" {
		t.Fatalf("target = %+v", s)
	}
	ls := e.es("web").Status.Leases
	if len(ls) != 1 || ls[0].Kind != v1alpha1.LeaseKindCertificate || ls[0].ID != "00:01" {
		t.Fatalf("status.leases = %+v", ls)
	}

	e.clock.Step(40 * time.Second) // before renewPercent
	mustReconcile(t, e, "web")
	e.restart()
	mustReconcile(t, e, "web") // a restart re-issues nothing
	if n := e.backend.Issued(); n != 1 {
		t.Fatalf("issued %d certificates before renewPercent or on restart", n)
	}

	e.clock.Step(45 * time.Second) // 85 s: due
	mustReconcile(t, e, "web")
	if n := e.backend.Issued(); n != 2 {
		t.Fatalf("issued = %d, want a re-issue at renewPercent", n)
	}
	if string(e.secret("web").Data["tls.crt"]) != "cert-2" {
		t.Fatal("target not updated with the new certificate")
	}
	ls = e.es("web").Status.Leases
	if len(ls) != 2 || ls[0].ID != "00:01" || ls[1].ID != "00:02" {
		t.Fatalf("status.leases = %+v, want the superseded and the current certificate", ls)
	}
	if live := e.backend.LiveLeases(); len(live) != 2 {
		t.Fatalf("a superseded certificate was revoked at rotation: live %v", live)
	}

	e.clock.Step(20 * time.Second) // 105 s: the first certificate expired, the second is not due
	e.forceSync("web", "prune")
	mustReconcile(t, e, "web")
	if ls = e.es("web").Status.Leases; len(ls) != 1 || ls[0].ID != "00:02" {
		t.Fatalf("status.leases = %+v, want only the unexpired certificate", ls)
	}

	if err := e.c.Delete(context.Background(), e.es("web")); err != nil {
		t.Fatal(err)
	}
	mustReconcile(t, e, "web")
	if e.exists("web") {
		t.Fatal("finalizer kept")
	}
	if live := e.backend.LiveLeases(); len(live) != 1 || live[0] != "00:01" {
		t.Fatalf("live after delete = %v, want only the expired 00:01 (not revoked: expired)", live)
	}
}

func TestTLSTargetNeedsKeyPair(t *testing.T) {
	es := pkiES("web")
	es.Spec.DataFrom[0].Rewrite = nil // certificate/private_key, not tls.crt/tls.key
	e := newEnv(t, es)
	e.backend.SetCertificates(time.Hour)
	_, _ = e.reconcile("web")
	if c := e.ready("web"); c == nil || c.Reason != v1alpha1.ReasonInvalidTemplate {
		t.Fatalf("Ready = %+v, want InvalidTemplate", c)
	}
}
