package aws

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strings"

	"github.com/aws/smithy-go/middleware"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// maxErrorBody is how much of an error answer is read to find its AWS error code.
// AWS error bodies are a few hundred bytes; whatever follows is handed on unread.
const maxErrorBody = 64 << 10

// metricsName is the provider label of a store's requests, STS calls made for its
// credentials included: the registry name of the store's provider.
func metricsName(s v1alpha1.AWSService) string {
	switch s {
	case v1alpha1.AWSServiceSecretsManager:
		return "aws-secretsmanager"
	case v1alpha1.AWSServiceParameterStore:
		return "aws-parameterstore"
	}
	return "aws"
}

// requests names AWS requests for provider.CountRequests: the operation is the API
// action, the result comes from the AWS error code (Secrets Manager answers "not
// found" and "throttled" with a 400, so the status alone cannot say).
type requests struct{}

// Operation is the action of X-Amz-Target ("secretsmanager.GetSecretValue") for the
// JSON protocols, else the SDK's operation name, which for STS's query protocol is
// the Action form field ("AssumeRoleWithWebIdentity"). Both come from the SDK's own
// model, never from user input; anything that does not look like an action name is
// "other".
func (requests) Operation(req *http.Request) string {
	op := ""
	if t := req.Header.Get("X-Amz-Target"); t != "" {
		op = t[strings.LastIndexByte(t, '.')+1:]
	} else {
		op = middleware.GetOperationName(req.Context())
	}
	if !isActionName(op) {
		return provider.OperationOther
	}
	return op
}

func isActionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// Result classifies the answer as MapError would classify the call's error.
func (requests) Result(resp *http.Response) (string, *http.Response) {
	if resp.StatusCode < 300 {
		return provider.ResultOK, resp
	}
	var head []byte
	if resp.Body != nil {
		var err error
		head, err = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		// The SDK reads the same bytes, then the rest (and any read error) after them.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), errReader{err}, resp.Body), resp.Body}
	}
	code := ErrorCode(resp.Header, head)
	return provider.ResultOf(KindForCode(code, "", resp.StatusCode)), resp
}

// ErrorCode reads the AWS error code of an error answer as the SDK's deserializers
// do: the X-Amzn-ErrorType header, else the JSON body's __type or code, else the XML
// body's Error/Code (STS). Namespaces ("aws.protocols#Code") and suffixes
// ("Code:http://...") are removed. "" when there is none.
func ErrorCode(h http.Header, body []byte) string {
	code := h.Get("X-Amzn-ErrorType")
	if code == "" {
		code = bodyCode(body)
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	return strings.TrimSpace(code)
}

func bodyCode(body []byte) string {
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return ""
	case body[0] == '{':
		var j struct {
			Type  string `json:"__type"`
			Code  string `json:"code"`
			Code2 string `json:"Code"`
		}
		if json.Unmarshal(body, &j) != nil {
			return ""
		}
		for _, c := range []string{j.Type, j.Code, j.Code2} {
			if c != "" {
				return c
			}
		}
	case body[0] == '<':
		// <ErrorResponse><Error><Code>…</Code></Error></ErrorResponse>, or <Error> alone.
		var x struct {
			Code  string `xml:"Error>Code"`
			Code2 string `xml:"Code"`
		}
		if xml.Unmarshal(body, &x) != nil {
			return ""
		}
		if x.Code != "" {
			return x.Code
		}
		return x.Code2
	}
	return ""
}
