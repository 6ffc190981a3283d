package main

import "testing"

// TestMedian: the rounds' and pairs' headline figure, for odd and even counts.
func TestMedian(t *testing.T) {
	cases := []struct {
		name   string
		sorted []float64
		want   float64
	}{
		{"none", nil, 0},
		{"one", []float64{1.3}, 1.3},
		{"odd: the middle one", []float64{0.95, 1.2, 1.5}, 1.2},
		{"even: the mean of the middle two", []float64{0.95, 1.19, 1.31, 1.5}, 1.25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := median(c.sorted); got < c.want-1e-9 || got > c.want+1e-9 {
				t.Fatalf("median(%v) = %v, want %v", c.sorted, got, c.want)
			}
		})
	}
}
