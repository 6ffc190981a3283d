package aws_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
)

// secretText stands for anything a backend might echo; it must never be rendered.
const secretText = "s3cr3t-value-echoed-by-backend"

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: secretText}
}

func httpErr(status int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err,
	}}
}

func opErr(service string, err error) error {
	return &smithy.OperationError{ServiceID: service, OperationName: "Op", Err: err}
}

func TestMapError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     error
		wantCode string
	}{
		{"SM not found", apiErr("ResourceNotFoundException"), provider.ErrNotFound, "ResourceNotFoundException"},
		{"SSM not found", apiErr("ParameterNotFound"), provider.ErrNotFound, "ParameterNotFound"},
		{"SSM version not found", apiErr("ParameterVersionNotFound"), provider.ErrNotFound, "ParameterVersionNotFound"},
		{"access denied", apiErr("AccessDeniedException"), provider.ErrAccessDenied, "AccessDeniedException"},
		{"KMS decrypt refused", apiErr("DecryptionFailure"), provider.ErrAccessDenied, "DecryptionFailure"},
		{"unknown key id", apiErr("UnrecognizedClientException"), provider.ErrAuth, "UnrecognizedClientException"},
		{"bad signature", apiErr("InvalidSignatureException"), provider.ErrAuth, "InvalidSignatureException"},
		{"expired session", apiErr("ExpiredTokenException"), provider.ErrAuth, "ExpiredTokenException"},
		{"throttling", apiErr("ThrottlingException"), provider.ErrThrottled, "ThrottlingException"},
		{"too many requests", apiErr("TooManyRequestsException"), provider.ErrThrottled, "TooManyRequestsException"},
		{"SM 5xx", apiErr("InternalServiceError"), provider.ErrUnavailable, "InternalServiceError"},
		{"SSM 5xx", apiErr("InternalServerError"), provider.ErrUnavailable, "InternalServerError"},
		{"validation", apiErr("ValidationException"), provider.ErrInvalid, "ValidationException"},
		{"not-found code with a 5xx status", httpErr(500, apiErr("ResourceNotFoundException")), provider.ErrUnavailable, "ResourceNotFoundException"},
		{"unknown code, 5xx status", httpErr(502, apiErr("Weird")), provider.ErrUnavailable, "UnrecognizedErrorCode"},
		{"unknown code, 429 status", httpErr(429, apiErr("Weird")), provider.ErrThrottled, "UnrecognizedErrorCode"},
		{"backend text as the code is not rendered", httpErr(400, apiErr(secretText)), provider.ErrInvalid, "UnrecognizedErrorCode"},
		{"404 without an AWS error code", httpErr(404, &smithy.GenericAPIError{Code: "UnknownError", Message: secretText}), provider.ErrUnavailable, "HTTP 404"},
		{"404 with an HTML page", httpErr(404, &smithy.DeserializationError{Err: errors.New(secretText)}), provider.ErrUnavailable, "HTTP 404"},
		{"400 with an HTML page", httpErr(400, &smithy.DeserializationError{Err: errors.New(secretText)}), provider.ErrUnavailable, "HTTP 400"},
		{"403 without a code", httpErr(403, &smithy.GenericAPIError{Code: "UnknownError"}), provider.ErrAccessDenied, "HTTP 403"},
		{"200 whose body does not parse", httpErr(200, &smithy.DeserializationError{Err: errors.New(secretText)}), provider.ErrUnavailable, "MalformedResponse"},
		{"response over the size limit", opErr("Secrets Manager", httpErr(200, &smithy.DeserializationError{Err: fmt.Errorf("read %s: %w", secretText, provider.Wrap(provider.ErrUnavailable, "response-too-large", provider.ErrResponseTooLarge))})), provider.ErrUnavailable, "response-too-large"},
		{"secret scheduled for deletion is not gone", &smithy.GenericAPIError{Code: "InvalidRequestException", Message: "You can't perform this operation on the secret because it was marked for deletion."}, provider.ErrInvalid, "InvalidRequestException"},
		{"other invalid request", apiErr("InvalidRequestException"), provider.ErrInvalid, "InvalidRequestException"},
		{"HTTP error without AWS body", httpErr(503, errors.New(secretText)), provider.ErrUnavailable, "HTTP 503"},
		{"STS refused the role", opErr("Secrets Manager", fmt.Errorf("failed to refresh cached credentials, %w", opErr("STS", apiErr("AccessDenied")))), provider.ErrAccessDenied, "sts:AccessDenied"},
		{"retry quota exhausted", errors.Join(apiErr("ThrottlingException"), errors.New("failed to get rate limit token")), provider.ErrThrottled, "ThrottlingException"},
		{"connection refused", &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: errors.New(secretText)}}, provider.ErrUnavailable, "ConnectionError"},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), provider.ErrUnavailable, "Timeout"},
		{"anything else", errors.New(secretText), provider.ErrUnavailable, "Unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := awsp.MapError(tc.err)
			if !errors.Is(got, tc.want) || !errors.Is(provider.Classify(got), tc.want) {
				t.Fatalf("MapError = %v, want %v", got, tc.want)
			}
			msg := provider.SafeMessage(fmt.Errorf("spec.data[0].remoteRef: key %q: %w", "prod/db", got))
			if want := `spec.data[0].remoteRef: key "prod/db": ` + tc.want.Error() + " (" + tc.wantCode + ")"; msg != want {
				t.Fatalf("SafeMessage = %q, want %q", msg, want)
			}
			if strings.Contains(got.Error(), secretText) || strings.Contains(msg, secretText) {
				t.Fatal("backend text rendered")
			}
			if !errors.Is(got, tc.err) {
				t.Fatal("the cause is not kept for errors.Is/As")
			}
		})
	}
	if awsp.MapError(nil) != nil {
		t.Fatal("MapError(nil) != nil")
	}
	already := awsp.Wrap(provider.ErrThrottled, "X", nil)
	if awsp.MapError(already) != already { //nolint:errorlint // identity on purpose: an error that is already ours comes back unchanged
		t.Fatal("a provider error is mapped again")
	}
}

func TestCodeError(t *testing.T) {
	tests := []struct {
		name     string
		code     string
		want     error
		wantSafe string
	}{
		{"not found", "ResourceNotFoundException", provider.ErrNotFound, "not found (ResourceNotFoundException)"},
		{"no code", "", provider.ErrUnavailable, "backend unavailable (NoErrorCode)"},
		{"server failure", "InternalServiceError", provider.ErrUnavailable, "backend unavailable (InternalServiceError)"},
		{"access denied", "AccessDeniedException", provider.ErrAccessDenied, "access denied (AccessDeniedException)"},
		{"backend text as the code", secretText, provider.ErrInvalid, "invalid request (UnrecognizedErrorCode)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := awsp.CodeError(tc.code, secretText)
			if !errors.Is(err, tc.want) || strings.Contains(err.Error(), secretText) || provider.SafeMessage(err) != tc.wantSafe {
				t.Fatalf("CodeError = %v (safe %q)", err, provider.SafeMessage(err))
			}
		})
	}
}

func TestMapManyError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     error
		wantSafe string
	}{
		{"not found for a whole batch", apiErr("ResourceNotFoundException"), provider.ErrUnavailable, "backend unavailable (ResourceNotFoundException)"},
		{"not found for a listing", apiErr("ParameterNotFound"), provider.ErrUnavailable, "backend unavailable (ParameterNotFound)"},
		{"other kinds unchanged", apiErr("ThrottlingException"), provider.ErrThrottled, "throttled (ThrottlingException)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := awsp.MapManyError(tc.err)
			if !errors.Is(provider.Classify(got), tc.want) || provider.SafeMessage(got) != tc.wantSafe || !errors.Is(got, tc.err) {
				t.Fatalf("MapManyError = %v (%s)", got, provider.SafeMessage(got))
			}
		})
	}
}
