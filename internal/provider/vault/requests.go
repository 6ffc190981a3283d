package vault

import (
	"net/http"
	"strings"

	"github.com/secretsync/secretsync/internal/provider"
)

// Operation labels of Vault requests in secretsync_provider_requests_total: a class
// of the method and path, never the path itself (paths name tenants and keys, and
// would grow the label without bound).
var exactOps = map[string]string{
	"auth/token/lookup-self": "token_lookup",
	"auth/token/renew-self":  "token_renew",
	"auth/token/revoke-self": "token_revoke",
	"sys/leases/lookup":      "lease_lookup",
	"sys/leases/renew":       "lease_renew",
	"sys/leases/revoke":      "lease_revoke",
	"sys/renew":              "lease_renew",
	"sys/revoke":             "lease_revoke",
}

// requests names Vault requests for provider.CountRequests. Vault's status says
// everything the result label needs, so no body is read.
type requests struct{}

func (requests) Operation(req *http.Request) string {
	return operation(req.Method, req.URL.Path, req.URL.Query().Get("list") == "true")
}

func (requests) Result(resp *http.Response) (string, *http.Response) {
	return provider.StatusResult(resp.StatusCode), resp
}

// operation classifies one request: urlPath is the HTTP path ("/v1/secret/data/x"),
// list whether it carries list=true.
func operation(method, urlPath string, list bool) string {
	p := strings.Trim(strings.TrimPrefix(urlPath, "/v1/"), "/")
	if op, ok := exactOps[p]; ok {
		return op
	}
	write := method == http.MethodPut || method == http.MethodPost
	segs := strings.Split(p, "/")
	switch {
	case strings.HasPrefix(p, "sys/internal/ui/mounts/"):
		return "mount_lookup"
	case write && len(segs) >= 3 && segs[0] == "auth" && segs[len(segs)-1] == "login":
		return "login"
	case write && len(segs) >= 3 && segs[len(segs)-2] == "decrypt":
		return "transit_decrypt"
	case method == "LIST" || (method == http.MethodGet && list):
		return "list"
	case method == http.MethodGet:
		return "read"
	case write:
		return "write"
	case method == http.MethodDelete:
		return "delete"
	}
	return provider.OperationOther
}
