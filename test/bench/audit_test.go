package main

import (
	"os"
	"path/filepath"
	"testing"
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
