package externalsecret

import (
	"testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func TestPolicyAllows(t *testing.T) {
	cases := []struct {
		name                string
		policy              v1alpha1.RefreshPolicy
		targetExists, ready bool
		want                allowed
	}{
		{"unset is Periodic", "", true, true, allowed{sync: true, periodic: true}},
		{"Periodic refreshes on the interval", v1alpha1.RefreshPeriodic, true, true, allowed{sync: true, periodic: true}},
		{"Periodic creates a missing target", v1alpha1.RefreshPeriodic, false, false, allowed{sync: true, periodic: true}},
		{"OnChange never on the interval", v1alpha1.RefreshOnChange, true, true, allowed{sync: true}},
		{"OnChange creates a missing target", v1alpha1.RefreshOnChange, false, false, allowed{sync: true}},
		{"CreatedOnce creates a missing target", v1alpha1.RefreshCreatedOnce, false, false, allowed{sync: true}},
		{"CreatedOnce re-creates a deleted target", v1alpha1.RefreshCreatedOnce, false, true, allowed{sync: true}},
		{"CreatedOnce never writes a synced target again", v1alpha1.RefreshCreatedOnce, true, true, allowed{}},
		{"CreatedOnce finishes a first sync whose status was not written", v1alpha1.RefreshCreatedOnce, true, false, allowed{sync: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := policyAllows(c.policy, c.targetExists, c.ready); got != c.want {
				t.Fatalf("policyAllows(%q, exists=%v, ready=%v) = %+v, want %+v", c.policy, c.targetExists, c.ready, got, c.want)
			}
		})
	}
}
