package aws_test

import (
	"net/http"
	"strings"
	"testing"

	awsp "github.com/secretsync/secretsync/internal/provider/aws"
)

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name, header, body, want string
	}{
		{"JSON __type", "", `{"__type":"ResourceNotFoundException","message":"no"}`, "ResourceNotFoundException"},
		{"JSON namespaced __type", "", `{"__type":"com.amazonaws.secretsmanager#ThrottlingException"}`, "ThrottlingException"},
		{"JSON code", "", `{"code":"AccessDeniedException"}`, "AccessDeniedException"},
		{"header wins, suffix removed", "UnrecognizedClientException:http://internal.amazon.com/coral/", `{"__type":"Other"}`, "UnrecognizedClientException"},
		{"STS XML", "", `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>x</Message></Error></ErrorResponse>`, "AccessDenied"},
		{"bare XML Error", "", `<Error><Code>Throttling</Code></Error>`, "Throttling"},
		{"HTML page", "", `<html><body>404</body></html>`, ""},
		{"broken JSON", "", `{"__type":`, ""},
		{"empty", "", ``, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("X-Amzn-ErrorType", tc.header)
			}
			if got := awsp.ErrorCode(h, []byte(tc.body)); got != tc.want {
				t.Fatalf("ErrorCode = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzErrorCode: any answer body is parsed without panicking, and the code never
// holds the separators it is cut at.
func FuzzErrorCode(f *testing.F) {
	for _, s := range []string{`{"__type":"a#B:c"}`, `<ErrorResponse><Error><Code>X</Code></Error></ErrorResponse>`, `{"code":1}`, `<`, `{`} {
		f.Add("", s)
	}
	f.Add("Throttling:x", "")
	f.Fuzz(func(t *testing.T, header, body string) {
		h := http.Header{}
		h.Set("X-Amzn-ErrorType", header)
		if c := awsp.ErrorCode(h, []byte(body)); strings.ContainsAny(c, ":#") {
			t.Fatalf("code %q keeps a separator", c)
		}
	})
}
