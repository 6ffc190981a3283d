package externalsecret

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// TestEchoes: the watch event of our own write is dropped once; every other event
// of the Secret passes, and a deletion always does.
func TestEchoes(t *testing.T) {
	secret := func(name, rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
	}
	type step struct {
		ev   string // create, update, delete
		obj  *corev1.Secret
		pass bool
	}
	for _, c := range []struct {
		name  string
		wrote []*corev1.Secret
		steps []step
	}{
		{"create echo dropped, then drift passes", []*corev1.Secret{secret("a", "5")},
			[]step{{"create", secret("a", "5"), false}, {"update", secret("a", "6"), true}}},
		{"update echo dropped", []*corev1.Secret{secret("a", "7")},
			[]step{{"update", secret("a", "7"), false}}},
		{"the same version again passes (a relist)", []*corev1.Secret{secret("a", "7")},
			[]step{{"update", secret("a", "7"), false}, {"update", secret("a", "7"), true}}},
		{"someone else's write before the echo passes, and the echo after it too", []*corev1.Secret{secret("a", "8")},
			[]step{{"update", secret("a", "9"), true}, {"update", secret("a", "8"), true}}},
		{"a deletion always passes", []*corev1.Secret{secret("a", "5")},
			[]step{{"delete", secret("a", "5"), true}, {"create", secret("a", "5"), true}}},
		{"another Secret passes", []*corev1.Secret{secret("a", "5")},
			[]step{{"create", secret("b", "5"), true}, {"create", secret("a", "5"), false}}},
		{"a write without a version is not recorded", []*corev1.Secret{secret("a", "")},
			[]step{{"create", secret("a", ""), true}}},
		{"the latest write counts", []*corev1.Secret{secret("a", "5"), secret("a", "6")},
			[]step{{"update", secret("a", "6"), false}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e echoes
			for _, s := range c.wrote {
				e.wrote(s)
			}
			p := e.predicate()
			for i, s := range c.steps {
				var got bool
				switch s.ev {
				case "create":
					got = p.Create(event.CreateEvent{Object: s.obj})
				case "update":
					got = p.Update(event.UpdateEvent{ObjectOld: secret(s.obj.Name, "1"), ObjectNew: s.obj})
				case "delete":
					got = p.Delete(event.DeleteEvent{Object: s.obj})
				}
				if got != s.pass {
					t.Errorf("step %d (%s %s@%s): passes %v, want %v", i, s.ev, s.obj.Name, s.obj.ResourceVersion, got, s.pass)
				}
			}
			if len(e.rv) != 0 {
				t.Errorf("entries left: %v", e.rv)
			}
		})
	}
}
