package awsemu

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type issuedCred struct {
	secret  string
	token   string
	roleARN string
	session string
	source  string
	expires time.Time
}

var (
	roleARNRe     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
	sessionNameRe = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	externalIDRe  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// STS results. The AWS responses carry an xmlns attribute; the SDK ignores it, so it
// is left out here.
type stsCredentials struct {
	AccessKeyId     string
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

type stsRoleUser struct {
	Arn           string
	AssumedRoleId string
}

type stsMeta struct {
	RequestId string
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	Result  struct {
		Credentials     stsCredentials
		AssumedRoleUser stsRoleUser
	} `xml:"AssumeRoleResult"`
	ResponseMetadata stsMeta
}

type webIdentityResponse struct {
	XMLName xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
	Result  struct {
		SubjectFromWebIdentityToken string
		Audience                    string
		Provider                    string `xml:",omitempty"`
		Credentials                 stsCredentials
		AssumedRoleUser             stsRoleUser
	} `xml:"AssumeRoleWithWebIdentityResult"`
	ResponseMetadata stsMeta
}

type callerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Result  struct {
		Arn     string
		UserId  string
		Account string
	} `xml:"GetCallerIdentityResult"`
	ResponseMetadata stsMeta
}

func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeXMLError(w, errf("MalformedQueryString", "The request body is not a valid form."))
		return
	}
	action := form.Get("Action")
	if action == "" {
		writeXMLError(w, errf("MissingAction", "Missing Action"))
		return
	}
	s.count("*", action, svcSTS+"."+action)
	if proceed, _ := s.applyFaults(w, r, svcSTS, action, true); !proceed {
		return
	}
	var out any
	var e *apiError
	switch action {
	case "AssumeRoleWithWebIdentity":
		out, e = s.stsWebIdentity(form)
	case "AssumeRole", "GetCallerIdentity":
		caller, ae := s.authenticate(r, svcSTS)
		if ae != nil {
			writeXMLError(w, stsAuthError(ae))
			return
		}
		s.callers.Store(action, caller)
		s.callers.Store(svcSTS+"."+action, caller)
		if action == "AssumeRole" {
			out, e = s.stsAssumeRole(form, caller)
		} else {
			var resp callerIdentityResponse
			resp.Result.Arn = s.callerARN(caller)
			resp.Result.UserId = caller.AccessKeyID
			if caller.RoleARN != "" {
				resp.Result.UserId = "AROAEMULATOR:" + caller.SessionName
			}
			resp.Result.Account = s.opts.AccountID
			resp.ResponseMetadata.RequestId = requestID()
			out = resp
		}
	default:
		e = errf("InvalidAction", "Could not find operation %s for version 2011-06-15", action)
	}
	if e != nil {
		writeXMLError(w, e)
		return
	}
	b, err := xml.Marshal(out)
	if err != nil {
		writeXMLError(w, &apiError{status: 500, code: "InternalFailure", msg: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(b)
}

// stsAuthError renames JSON-protocol authentication errors to the query-protocol codes
// STS uses.
func stsAuthError(e *apiError) *apiError {
	switch e.code {
	case "MissingAuthenticationTokenException":
		return &apiError{status: 403, code: "MissingAuthenticationToken", msg: "Request is missing Authentication Token"}
	case "IncompleteSignatureException":
		return &apiError{status: 400, code: "IncompleteSignature", msg: e.msg}
	case "UnrecognizedClientException":
		return &apiError{status: 403, code: "InvalidClientTokenId", msg: e.msg}
	case "ExpiredTokenException":
		return &apiError{status: 403, code: "ExpiredToken", msg: e.msg}
	case "InvalidSignatureException":
		return &apiError{status: 403, code: "SignatureDoesNotMatch", msg: e.msg}
	}
	return e
}

func writeXMLError(w http.ResponseWriter, e *apiError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	var buf strings.Builder
	buf.WriteString("<ErrorResponse><Error><Type>" + typ + "</Type><Code>")
	_ = xml.EscapeText(&buf, []byte(e.code)) // a strings.Builder never fails
	buf.WriteString("</Code><Message>")
	_ = xml.EscapeText(&buf, []byte(e.msg))
	buf.WriteString("</Message></Error><RequestId>" + requestID() + "</RequestId></ErrorResponse>")
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(buf.String()))
}

func stsValidation(format string, args ...any) *apiError {
	return errf("ValidationError", "1 validation error detected: "+format, args...)
}

func validateRoleRequest(form url.Values) (role, session string, dur time.Duration, e *apiError) {
	role, session = form.Get("RoleArn"), form.Get("RoleSessionName")
	if len(role) < 20 || len(role) > 2048 || !roleARNRe.MatchString(role) {
		return "", "", 0, stsValidation("Value '%s' at 'roleArn' failed to satisfy constraint: Member must be a valid IAM role ARN", role)
	}
	if !sessionNameRe.MatchString(session) {
		return "", "", 0, stsValidation("Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64", session)
	}
	dur = time.Hour
	if d := form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			return "", "", 0, stsValidation("Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)
		}
		dur = time.Duration(n) * time.Second
	}
	return role, session, dur, nil
}

// issue records and returns new temporary credentials for role.
func (s *Server) issue(role, session, source string, dur time.Duration) (stsCredentials, stsRoleUser) {
	akid := "ASIA" + randString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
	secret := randString(40, alnum)
	token := "FwoGZXIvYXdzEmu" + randString(180, alnum)
	exp := s.opts.Now().Add(dur).UTC().Truncate(time.Second)
	s.mu.Lock()
	s.creds[akid] = &issuedCred{secret: secret, token: token, roleARN: role, session: session, source: source, expires: exp}
	s.mu.Unlock()
	roleName := role[strings.LastIndex(role, "/")+1:]
	return stsCredentials{AccessKeyId: akid, SecretAccessKey: secret, SessionToken: token, Expiration: exp.Format(time.RFC3339)},
		stsRoleUser{
			Arn:           fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.opts.AccountID, roleName, session),
			AssumedRoleId: "AROAEMULATOR" + strings.ToUpper(randString(9, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")) + ":" + session,
		}
}

func (s *Server) stsAssumeRole(form url.Values, caller Caller) (any, *apiError) {
	role, session, dur, e := validateRoleRequest(form)
	if e != nil {
		return nil, e
	}
	ext := form.Get("ExternalId")
	if ext != "" && (len(ext) < 2 || len(ext) > 1224 || !externalIDRe.MatchString(ext)) {
		return nil, stsValidation("Value '%s' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*", ext)
	}
	if want, ok := s.opts.ExternalIDs[role]; ok && want != ext {
		return nil, &apiError{status: 403, code: "AccessDenied", msg: fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", s.callerARN(caller), role)}
	}
	var resp assumeRoleResponse
	resp.Result.Credentials, resp.Result.AssumedRoleUser = s.issue(role, session, "AssumeRole", dur)
	resp.ResponseMetadata.RequestId = requestID()
	return resp, nil
}

func (s *Server) stsWebIdentity(form url.Values) (any, *apiError) {
	role, session, dur, e := validateRoleRequest(form)
	if e != nil {
		return nil, e
	}
	token := form.Get("WebIdentityToken")
	if len(token) < 4 || len(token) > 20000 {
		return nil, stsValidation("Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000")
	}
	claims, err := DecodeJWTClaims(token)
	if err != nil {
		return nil, errf("InvalidIdentityToken", "Couldn't parse web identity token.")
	}
	if exp, ok := claims["exp"].(float64); ok && !s.opts.Now().Before(time.Unix(int64(exp), 0)) {
		return nil, errf("ExpiredTokenException", "Token expired: current date/time %s must be before the expiration date/time %s", s.opts.Now().UTC().Format(time.RFC3339), time.Unix(int64(exp), 0).UTC().Format(time.RFC3339))
	}
	if f := s.webID.Load(); f != nil {
		if err := (*f)(token, role); err != nil {
			return nil, errf("InvalidIdentityToken", "%s", err.Error())
		}
	}
	s.webClaims.Store(&claims)
	var resp webIdentityResponse
	resp.Result.Credentials, resp.Result.AssumedRoleUser = s.issue(role, session, "AssumeRoleWithWebIdentity", dur)
	resp.Result.SubjectFromWebIdentityToken, _ = claims["sub"].(string)
	switch aud := claims["aud"].(type) {
	case string:
		resp.Result.Audience = aud
	case []any:
		if len(aud) > 0 {
			resp.Result.Audience, _ = aud[0].(string)
		}
	}
	resp.Result.Provider, _ = claims["iss"].(string)
	resp.ResponseMetadata.RequestId = requestID()
	return resp, nil
}

// LastWebIdentityClaims returns the (unverified) claims of the last web identity
// token that STS accepted, nil when none was.
func (s *Server) LastWebIdentityClaims() map[string]any {
	if c := s.webClaims.Load(); c != nil {
		return *c
	}
	return nil
}

// AudienceValidator is a WebIdentityValidator for the standalone server: the token
// must look like a Kubernetes ServiceAccount token (subject
// system:serviceaccount:<namespace>:<name>) whose audience includes audience.
func AudienceValidator(audience string) func(token, roleARN string) error {
	return func(token, _ string) error {
		claims, err := DecodeJWTClaims(token)
		if err != nil {
			return err
		}
		if sub, _ := claims["sub"].(string); !strings.HasPrefix(sub, "system:serviceaccount:") {
			return fmt.Errorf("subject %q is not a ServiceAccount", sub)
		}
		switch aud := claims["aud"].(type) {
		case string:
			if aud == audience {
				return nil
			}
		case []any:
			for _, a := range aud {
				if a == audience {
					return nil
				}
			}
		}
		return fmt.Errorf("token audience does not include %q", audience)
	}
}

// ExpireCredentials makes every credential issued so far expired: the next request
// with one gets ExpiredTokenException.
func (s *Server) ExpireCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.opts.Now().Add(-time.Second)
	for _, c := range s.creds {
		c.expires = past
	}
}

// IssuedCredentials counts credentials issued by STS so far.
func (s *Server) IssuedCredentials() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.creds)
}

// DecodeJWTClaims decodes a JWT's payload WITHOUT verifying its signature (tests use
// it to check audience and subject of the ServiceAccount tokens a client presents).
func DecodeJWTClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT: want three dot-separated parts")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	return claims, nil
}

// UnsignedJWT builds a JWT with claims and a dummy signature, for tests that need a
// web identity token without a Kubernetes API server.
func UnsignedJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("awsemu-unsigned"))
}
