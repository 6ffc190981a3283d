package main

import "testing"

// TestBenchKeys: the multi-key mix is BENCH_MULTI percent of the ExternalSecrets,
// each reading 3–5 keys of its store's M, and the floors count distinct keys.
func TestBenchKeys(t *testing.T) {
	cases := []struct {
		name    string
		cfg     config
		multi   int
		keys    storeKeys
		minRefs int
		maxRefs int
	}{
		{"no multi-key mix", config{N: 300, M: 30}, 0, storeKeys{30, 30, 30}, 300, 300},
		{"20 percent, M = N/10", config{N: 1000, M: 100, Multi: 20}, 200, storeKeys{100, 100, 100}, 1000 + 200*2, 1000 + 200*4},
		{"extra keys beyond the single-key ones are counted", config{N: 30, M: 100, Multi: 100}, 30, storeKeys{}, 90, 150},
		{"one key: no duplicates", config{N: 30, M: 1, Multi: 100}, 0, storeKeys{1, 1, 1}, 30, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, multi, refs := keysPerStore(c.cfg)
			if multi != c.multi || refs < c.minRefs || refs > c.maxRefs {
				t.Fatalf("%d multi-key, %d refs; want %d, refs in [%d, %d]", multi, refs, c.multi, c.minRefs, c.maxRefs)
			}
			if c.keys != (storeKeys{}) && keys != c.keys {
				t.Fatalf("distinct keys %+v, want %+v", keys, c.keys)
			}
			single := c.cfg
			single.Multi = 0
			base, _, _ := keysPerStore(single)
			if keys.SM < base.SM || keys.SSM < base.SSM || keys.Vault < base.Vault {
				t.Fatalf("distinct keys %+v below the single-key ones %+v", keys, base)
			}
			for g := range c.cfg.N {
				ks := benchKeys(g, c.cfg)
				if len(ks) > 5 || ks[0] != (g/3)%c.cfg.M {
					t.Fatalf("ES %d: keys %v", g, ks)
				}
				for _, i := range ks {
					if i < 0 || i >= c.cfg.M {
						t.Fatalf("ES %d: key %d outside [0, %d)", g, i, c.cfg.M)
					}
				}
			}
		})
	}
}
