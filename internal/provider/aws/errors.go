package aws

import (
	"context"
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/secretsync/secretsync/internal/provider"
)

// codeKinds maps AWS error codes (Secrets Manager, SSM, STS, and the codes every AWS
// service shares) to the provider sentinels.
var codeKinds = map[string]error{
	// Missing things.
	"ResourceNotFoundException": provider.ErrNotFound,
	"ParameterNotFound":         provider.ErrNotFound,
	"ParameterVersionNotFound":  provider.ErrNotFound,

	// Authenticated, but not allowed.
	"AccessDeniedException":    provider.ErrAccessDenied,
	"AccessDenied":             provider.ErrAccessDenied,
	"UnauthorizedOperation":    provider.ErrAccessDenied,
	"DecryptionFailure":        provider.ErrAccessDenied, // KMS refused to decrypt for this identity
	"KMSAccessDeniedException": provider.ErrAccessDenied,
	"IDPRejectedClaim":         provider.ErrAccessDenied,

	// Not authenticated: bad, expired or missing credentials or tokens.
	"UnrecognizedClientException":         provider.ErrAuth,
	"InvalidClientTokenId":                provider.ErrAuth,
	"InvalidSignatureException":           provider.ErrAuth,
	"SignatureDoesNotMatch":               provider.ErrAuth,
	"IncompleteSignature":                 provider.ErrAuth,
	"IncompleteSignatureException":        provider.ErrAuth,
	"MissingAuthenticationToken":          provider.ErrAuth,
	"MissingAuthenticationTokenException": provider.ErrAuth,
	"ExpiredTokenException":               provider.ErrAuth,
	"ExpiredToken":                        provider.ErrAuth,
	"InvalidIdentityToken":                provider.ErrAuth,
	"RequestExpired":                      provider.ErrAuth,
	"AuthFailure":                         provider.ErrAuth,
	"InvalidAccessKeyId":                  provider.ErrAuth,

	// Slow down.
	"ThrottlingException":                    provider.ErrThrottled,
	"Throttling":                             provider.ErrThrottled,
	"ThrottledException":                     provider.ErrThrottled,
	"TooManyRequestsException":               provider.ErrThrottled,
	"RequestLimitExceeded":                   provider.ErrThrottled,
	"RequestThrottled":                       provider.ErrThrottled,
	"RequestThrottledException":              provider.ErrThrottled,
	"TooManyUpdates":                         provider.ErrThrottled,
	"SlowDown":                               provider.ErrThrottled,
	"PriorRequestNotComplete":                provider.ErrThrottled,
	"BandwidthLimitExceeded":                 provider.ErrThrottled,
	"ProvisionedThroughputExceededException": provider.ErrThrottled,

	// The service (or the way to it) is failing.
	"InternalServiceError":        provider.ErrUnavailable,
	"InternalServerError":         provider.ErrUnavailable,
	"InternalFailure":             provider.ErrUnavailable,
	"InternalError":               provider.ErrUnavailable,
	"ServiceUnavailable":          provider.ErrUnavailable,
	"ServiceUnavailableException": provider.ErrUnavailable,
	"RequestTimeout":              provider.ErrUnavailable,
	"RequestTimeoutException":     provider.ErrUnavailable,
	"IDPCommunicationError":       provider.ErrUnavailable,
	"RegionDisabledException":     provider.ErrUnavailable,
}

// knownCodes are the client-error codes of the calls we make (Secrets Manager, SSM,
// STS and the codes every AWS service shares) that codeKinds does not list.
var knownCodes = map[string]bool{
	"InvalidRequestException": true, "InvalidParameterException": true, "InvalidNextTokenException": true,
	"LimitExceededException": true, "EncryptionFailure": true, "ResourceExistsException": true,
	"PreconditionNotMetException": true, "MalformedPolicyDocumentException": true,
	"InvalidKeyId": true, "InvalidFilterKey": true, "InvalidFilterOption": true, "InvalidFilterValue": true,
	"InvalidNextToken": true, "InvalidResourceId": true, "InvalidResourceType": true,
	"UnsupportedParameterType": true, "ParameterLimitExceeded": true, "HierarchyLevelLimitExceededException": true,
	"InvalidAllowedPatternException": true, "TooManyTagsError": true,
	"MalformedPolicyDocument": true, "PackedPolicyTooLarge": true,
	"ValidationException": true, "ValidationError": true, "SerializationException": true,
	"UnknownOperationException": true, "InvalidAction": true, "MissingAction": true, "MissingParameter": true,
	"InvalidParameterValue": true, "InvalidParameterCombination": true, "InvalidQueryParameter": true,
	"MalformedQueryString": true, "NotAuthorized": true, "OptInRequired": true,
	"RequestEntityTooLargeException": true,
}

// safeCode is code as SafeMessage may render it. The code is backend text: an
// endpoint that is not AWS may put anything there, a secret value included, so only
// codes AWS documents are rendered; others are kept in the (never rendered) cause.
func safeCode(code string) string {
	if _, ok := codeKinds[code]; ok || knownCodes[code] {
		return code
	}
	return "UnrecognizedErrorCode"
}

// noCode are the codes the SDK reports when the answer carried no AWS error code
// (no __type, no X-Amzn-ErrorType): whatever answered was not the service.
var noCode = map[string]bool{"": true, "UnknownError": true}

// KindForCode maps an AWS error code (and the HTTP status, 0 when unknown; the
// message is not read) to a sentinel. Codes not listed are client errors
// (ErrInvalid) unless the status says otherwise. Only the "does not exist" codes are
// ErrNotFound: Secrets Manager's
// InvalidRequestException for a secret scheduled for deletion is not (the secret can
// still be restored, and telling it apart would mean trusting message text).
//
// Without a code, only the status speaks, and never for "not found": a 404 without an
// AWS error code is a wrong endpoint or a proxy's page, and reading it as "the secret
// is gone" would prune Secrets on an outage. Such answers are ErrUnavailable (401, 403
// and 429 keep their meaning).
func KindForCode(code, _ string, status int) error {
	if k, ok := codeKinds[code]; ok {
		if errors.Is(k, provider.ErrNotFound) && status >= 500 {
			return provider.ErrUnavailable // a failing server's word is not "gone"
		}
		return k
	}
	switch {
	case status >= 500:
		return provider.ErrUnavailable
	case status == 429:
		return provider.ErrThrottled
	case status == 401:
		return provider.ErrAuth
	case status == 403:
		return provider.ErrAccessDenied
	case noCode[code]:
		return provider.ErrUnavailable
	}
	return provider.ErrInvalid
}

// CodeError builds the provider error for an error reported inside a response (e.g.
// one entry of BatchGetSecretValue's Errors). The message is kept as the cause, which
// SafeMessage never renders. An entry without a code is ErrUnavailable.
func CodeError(code, message string) error {
	if noCode[code] {
		return Wrap(KindForCode(code, message, 0), "NoErrorCode", errors.New(message))
	}
	return Wrap(KindForCode(code, message, 0), safeCode(code), fmt.Errorf("%s: %s", code, message))
}

// MapError turns an error from an AWS SDK call into a provider error: a sentinel kind
// and the AWS error code, with the raw SDK error kept as the (never rendered) cause.
// Failures to get a ServiceAccount token keep their own message (it names the
// ServiceAccount, never a secret).
//
// Only an AWS error code can say "not found". An answer that is not an AWS answer
// (an HTML page, a body that does not parse, a status without a code) is
// ErrUnavailable, whatever its status.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	switch err.(type) { //nolint:errorlint // only an error that is already ours at the top is returned as is; a wrapped one is re-wrapped below
	case safeError, *provider.Error:
		return err
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		// Ours, from below the SDK (the response size limit): keep its kind and code,
		// but do not let the SDK's text around it reach SafeMessage.
		return Wrap(pe.Kind, pe.Code, err)
	}
	var te *tokenError
	if errors.As(err, &te) {
		if provider.Classify(te.err) != nil {
			return fmt.Errorf("request ServiceAccount token: %w", te.err)
		}
		return fmt.Errorf("request ServiceAccount token: %w: %w", provider.ErrAuth, te.err)
	}

	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && !noCode[ae.ErrorCode()] {
		code := ae.ErrorCode()
		if viaSTS(err) {
			// The call failed while getting credentials: say so, the role is the problem.
			return Wrap(KindForCode(code, ae.ErrorMessage(), status), "sts:"+safeCode(code), err)
		}
		return Wrap(KindForCode(code, ae.ErrorMessage(), status), safeCode(code), err)
	}
	var de *smithy.DeserializationError
	switch {
	case status >= 300: // no AWS error body (a proxy, a 503 page, a wrong endpoint)
		return Wrap(KindForCode("", "", status), fmt.Sprintf("HTTP %d", status), err)
	case errors.As(err, &de) && errors.Is(err, context.DeadlineExceeded):
		return Wrap(provider.ErrUnavailable, "Timeout", err)
	case errors.As(err, &de):
		// A success status whose body is not what the operation returns.
		return Wrap(provider.ErrUnavailable, "MalformedResponse", err)
	case errors.Is(err, context.DeadlineExceeded):
		return Wrap(provider.ErrUnavailable, "Timeout", err)
	case errors.Is(err, context.Canceled):
		return Wrap(provider.ErrUnavailable, "Canceled", err)
	}
	var ne net.Error
	var se *smithyhttp.RequestSendError
	if errors.As(err, &ne) || errors.As(err, &se) {
		return Wrap(provider.ErrUnavailable, "ConnectionError", err)
	}
	var ce *credentialsError
	if errors.As(err, &ce) { // e.g. the default chain found nothing
		return Wrap(provider.ErrAuth, "NoCredentials", err)
	}
	return Wrap(provider.ErrUnavailable, "Unknown", err)
}

// MissingValue is the error for a success answer that lacks what the call exists to
// return (an empty 200, a value with neither SecretString nor SecretBinary): the
// backend did not say the secret is gone, so it is ErrUnavailable, never ErrNotFound.
func MissingValue(what string) error {
	return Wrap(provider.ErrUnavailable, "EmptyResponse", errors.New("answer without "+what))
}

// viaSTS reports whether err came from an STS call made to get credentials (an STS
// OperationError anywhere in the chain, errors.Join branches included).
func viaSTS(err error) bool {
	if err == nil {
		return false
	}
	// Walked by hand, not with errors.As: As stops at the first OperationError, and an
	// STS one may sit below another service's.
	if oe, ok := err.(*smithy.OperationError); ok && oe.ServiceID == "STS" { //nolint:errorlint // one node of the hand-walked tree
		return true
	}
	switch u := err.(type) { //nolint:errorlint // the walk itself: unwraps one level, both Unwrap forms
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if viaSTS(e) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return viaSTS(u.Unwrap())
	}
	return false
}

// Wrap is provider.Wrap behind a shell that renders itself as "<kind> (<code>)".
// (*provider.Error).Error currently recurses through provider.SafeMessage (which calls
// Error() on the *Error itself), so a bare *provider.Error overflows the stack when
// rendered. The shell unwraps to the *provider.Error, so errors.Is/As and SafeMessage
// see exactly what provider.Wrap builds; it can go once provider.Error renders safely.
func Wrap(kind error, code string, cause error) error {
	return safeError{provider.Wrap(kind, code, cause)}
}

type safeError struct{ err error }

func (e safeError) Error() string {
	var pe *provider.Error
	if errors.As(e.err, &pe) {
		if pe.Code != "" {
			return pe.Kind.Error() + " (" + pe.Code + ")"
		}
		return pe.Kind.Error()
	}
	return e.err.Error()
}

func (e safeError) Unwrap() error { return e.err }

// CheckKey is provider.CheckKey as a provider error: ErrInvalid with code
// NotCanonical, the reason in our context (it never quotes the key), and
// provider.ErrNotCanonical kept for errors.Is. Every name or ARN is checked with it
// before a request is built.
func CheckKey(key string) error {
	if err := provider.CheckKey(key); err != nil {
		return fmt.Errorf("%v: %w", err, Wrap(provider.ErrInvalid, "NotCanonical", err)) //nolint:errorlint // err is quoted for its text; the provider error wrapped here already holds it as its cause
	}
	return nil
}

// CheckFindPath is CheckKey for a find path, which may also be empty or "/" (the
// whole account: admission allows both).
func CheckFindPath(path string) error {
	if path == "" || path == "/" {
		return nil
	}
	return CheckKey(path)
}

// MapManyError is MapError for a call about many secrets (a listing, a batch read).
// Such a call answers "not found" only per item (BatchGetSecretValue's Errors,
// GetParameters' InvalidParameters); a "not found" for the whole call does not say
// which secret is gone, and read as "every one is" it would prune them all, so it is
// ErrUnavailable (the code is kept).
func MapManyError(err error) error {
	mapped := MapError(err)
	var pe *provider.Error
	if errors.Is(provider.Classify(mapped), provider.ErrNotFound) && errors.As(mapped, &pe) {
		return Wrap(provider.ErrUnavailable, pe.Code, err)
	}
	return mapped
}
