package testenv

import (
	"testing"
	"time"
)

// TestRaftClusterFailover: data written through the front survives SIGKILL of the
// active node, another node takes over, and the killed node rejoins as a voter.
func TestRaftClusterFailover(t *testing.T) {
	start := time.Now()
	c := StartRaftCluster(t)
	t.Logf("3-node cluster ready in %s", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	c.MountKV2(t, "secret")
	if _, err := c.Client.KVv2("secret").Put(ctx, "app", map[string]any{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	if n := c.AuditCount(t, "secret/data/app"); n != 1 {
		t.Errorf("audited writes of secret/data/app = %d, want 1", n)
	}

	old := c.Active(t, 10*time.Second)
	killed := time.Now()
	c.Kill(t, old)
	now := c.Active(t, 60*time.Second)
	t.Logf("node%d active %s after node%d was killed", now, time.Since(killed).Round(time.Millisecond), old)
	if now == old {
		t.Fatalf("the killed node is still active")
	}
	got, err := c.Client.KVv2("secret").Get(ctx, "app")
	if err != nil || got.Data["v"] != "1" {
		t.Fatalf("read through the front after failover: %v %v", got, err)
	}
	c.Restart(t, old)
	if a := c.Active(t, 10*time.Second); a != now {
		t.Errorf("restarting node%d moved the active node from node%d to node%d", old, now, a)
	}
}
