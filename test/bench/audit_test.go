package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAuditCounters: the three counters read one audit log the same way: only
// completed requests of the operator's user count.
func TestAuditCounters(t *testing.T) {
	lines := `{"stage":"ResponseComplete","verb":"create","user":{"username":"op"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":201}}
{"stage":"ResponseComplete","verb":"patch","user":{"username":"op"},"objectRef":{"resource":"externalsecrets","subresource":"status"},"responseStatus":{"code":200}}
{"stage":"ResponseStarted","verb":"create","user":{"username":"op"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":201}}
{"stage":"ResponseComplete","verb":"get","user":{"username":"op"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":404}}
{"stage":"ResponseComplete","verb":"create","user":{"username":"someone"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":201}}
{"stage":"ResponseComplete","verb":"list","user":{"username":"op"},"objectRef":{"apiGroup":"apps","resource":"deployments"},"responseStatus":{"code":200}}
{"stage":"ResponseComplete","verb":"patch","user":{"username":"op"},"objectRef":{"apiGroup":"apps","resource":"deployments"},"responseStatus":{"code":200}}
`
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	end := int64(len(lines))
	kw, err := countKubeWrites(path, "op", 0, end)
	if err != nil || kw.Total != 3 || kw.ByKind["create secrets"] != 1 || kw.ByKind["patch externalsecrets/status"] != 1 || kw.ByKind["patch deployments"] != 1 {
		t.Fatalf("writes %+v, %v", kw, err)
	}
	req, err := countKubeRequests(path, "op", 0, end)
	if err != nil || len(req) != 5 || req["get secrets 404"] != 1 || req["patch externalsecrets/status 200"] != 1 {
		t.Fatalf("requests %v, %v", req, err)
	}
	lists, patches, err := countWorkloadCalls(path, "op", 0, end)
	if err != nil || lists != 1 || patches != 1 {
		t.Fatalf("workload lists %d patches %d, %v", lists, patches, err)
	}
}

func TestFloorWorkers(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"default", nil, 20},
		{"equals form", []string{"--kube-api-qps=500", "--concurrent=50"}, 50},
		{"separate value", []string{"--concurrent", "64"}, 64},
		{"not a number keeps the default", []string{"--concurrent=x"}, 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := floorWorkers(c.args); got != c.want {
				t.Fatalf("floorWorkers(%q) = %d, want %d", c.args, got, c.want)
			}
		})
	}
}

// TestLastStatusPatch: the cold burst ends at the last completed, successful status
// patch of the operator in the benchmark's namespace.
func TestLastStatusPatch(t *testing.T) {
	lines := `{"stage":"ResponseComplete","stageTimestamp":"2026-11-30T10:00:01.000100Z","verb":"patch","user":{"username":"op"},"objectRef":{"resource":"externalsecrets","subresource":"status","namespace":"bench"},"responseStatus":{"code":200}}
{"stage":"ResponseComplete","stageTimestamp":"2026-11-30T10:00:03.500000Z","verb":"patch","user":{"username":"op"},"objectRef":{"resource":"externalsecrets","subresource":"status","namespace":"bench"},"responseStatus":{"code":200}}
{"stage":"ResponseComplete","stageTimestamp":"2026-11-30T10:00:04Z","verb":"patch","user":{"username":"op"},"objectRef":{"resource":"externalsecrets","subresource":"status","namespace":"bench"},"responseStatus":{"code":409}}
{"stage":"ResponseComplete","stageTimestamp":"2026-11-30T10:00:05Z","verb":"patch","user":{"username":"op"},"objectRef":{"resource":"externalsecrets","subresource":"status","namespace":"other"},"responseStatus":{"code":200}}
{"stage":"ResponseComplete","stageTimestamp":"2026-11-30T10:00:06Z","verb":"patch","user":{"username":"someone"},"objectRef":{"resource":"externalsecrets","subresource":"status","namespace":"bench"},"responseStatus":{"code":200}}
{"stage":"ResponseComplete","stageTimestamp":"2026-11-30T10:00:07Z","verb":"create","user":{"username":"op"},"objectRef":{"resource":"secrets","namespace":"bench"},"responseStatus":{"code":201}}
`
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := lastStatusPatch(path, "op", "bench", 0, int64(len(lines)))
	want := time.Date(2026, 11, 30, 10, 0, 3, 500000000, time.UTC)
	if err != nil || !got.Equal(want) {
		t.Fatalf("lastStatusPatch = %v, %v; want %v", got, err, want)
	}
}

func TestParseReadyGauge(t *testing.T) {
	cases := []struct {
		name, text string
		want       int
	}{
		{"counted", "# HELP x\nsecretsync_externalsecret_ready{condition=\"False\"} 3\nsecretsync_externalsecret_ready{condition=\"True\"} 9997\n", 9997},
		{"no ExternalSecret yet", "go_goroutines 12\n", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, err := parseReadyGauge(c.text); err != nil || got != c.want {
				t.Fatalf("parseReadyGauge = %d, %v; want %d", got, err, c.want)
			}
		})
	}
}
