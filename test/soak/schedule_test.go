package soak

import (
	"reflect"
	"testing"
	"time"
)

// TestSchedule: the plan is a function of the seed alone, and a run long enough for
// one event per kind has every kind.
func TestSchedule(t *testing.T) {
	cases := []struct {
		name     string
		seed     int64
		d        time.Duration
		allKinds bool
	}{
		{"three minutes", 1, 3 * time.Minute, true},
		{"ten minutes", 42, 10 * time.Minute, true},
		{"too short for every kind", 7, 20 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := schedule(tc.seed, tc.d), schedule(tc.seed, tc.d)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d gave two plans", tc.seed)
			}
			seen := map[string]bool{}
			for i, ev := range a {
				if ev.at >= tc.d || (i > 0 && ev.at <= a[i-1].at) {
					t.Fatalf("event %d at %s: outside the run or out of order", i, ev.at)
				}
				seen[ev.kind] = true
			}
			if tc.allKinds && len(seen) != len(weights) {
				t.Errorf("kinds %v, want all %d", seen, len(weights))
			}
		})
	}
}

func TestRedact(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"none", "plain line", "plain line"},
		{"one", `{"v":"CNRY0123456789abcdef"}`, `{"v":"<canary>"}`},
		{"two", "CNRYaa and CNRYbb.", "<canary> and <canary>."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := redact(tc.in); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
