// Package awsemu is an AWS-compatible test server for Secrets Manager, SSM Parameter
// Store and STS. It speaks the real wire protocols, so the real aws-sdk-go-v2 clients
// are exercised with BaseEndpoint pointed at it:
//
//   - Secrets Manager and SSM: AWS JSON 1.1, POST / with
//     X-Amz-Target: secretsmanager.<Op> or AmazonSSM.<Op>; errors are HTTP 400 (500
//     for server faults) with a body {"__type": "<Code>", "message": "..."}.
//   - STS: the query protocol (form POST Action=AssumeRole / AssumeRoleWithWebIdentity /
//     GetCallerIdentity), XML responses and <ErrorResponse> errors.
//
// Requests must carry SigV4 headers (Authorization: AWS4-HMAC-SHA256 Credential=<AKID>/...,
// X-Amz-Date); the signature itself is not verified. The access key id must be the
// configured static key (Options.AccessKeyID) or one issued by this server's STS and not
// expired (then X-Amz-Security-Token must match too). AssumeRoleWithWebIdentity is
// unsigned, as on AWS.
//
// Beyond AWS, tests get per-operation call counters (Calls, ResetCalls), injected
// latency (SetLatency), faults (InjectFault: throttling, 5xx, 503, closed connections,
// and the misbehaviour a client must survive, below), a web identity token hook
// (SetWebIdentityValidator) and the caller of the last request per operation
// (LastCaller). The same controls are served over HTTP under /_emu/ for
// the standalone binary (cmd/awsemu):
//
//	GET    /_emu/health                 200 "ok"
//	GET    /_emu/calls                  {"GetSecretValue": 3, "secretsmanager.GetSecretValue": 3, ...}
//	GET    /_emu/calls?op=GetParameter  {"op": "GetParameter", "calls": 2}
//	DELETE /_emu/calls                  reset the counters
//	POST   /_emu/faults                 {"op": "GetParameter", "kind": "throttle", "times": 2}
//	                                    kinds: throttle | server-error | unavailable | close |
//	                                    endless-token-repeat | endless-token-fresh |
//	                                    huge-response | empty-200 | 404-no-code
//	                                    (huge-response takes "size": bytes, default 64 MiB)
//	DELETE /_emu/faults                 clear every fault
//	POST   /_emu/latency                {"op": "", "duration": "50ms"}  ("" = every operation)
//	POST   /_emu/seed                   a seed document (below), added to the data
//	POST   /_emu/expire-credentials     expire every credential issued by STS
//	POST   /_emu/reset                  delete every secret, parameter and issued credential
//	GET    /_emu/caller?op=ListSecrets  the Caller of the last request to op (404: none)
//	GET    /_emu/web-identity           claims of the last web identity token accepted (404: none)
//
// # Faults a client must survive
//
// Besides failing requests the way AWS does, a Fault can make the server misbehave the
// way a broken endpoint, proxy or emulator would (Fault.Times bounds each, 0 = until
// ClearFaults; Op narrows it to one operation):
//
//   - endless-token-repeat (FaultEndlessTokenRepeat): the request is served, then the
//     answer's NextToken is replaced by the same token every time. A request carrying
//     that token is served as the first page, so a client that follows tokens pages
//     forever through the same items. endless-token-fresh (FaultEndlessTokenFresh) is
//     the same with a new token on every answer. Aim them at a listing (ListSecrets,
//     GetParametersByPath, DescribeParameters); once cleared, their tokens are refused
//     as InvalidNextToken(Exception).
//   - huge-response (FaultHugeResponse): HTTP 200 with a well-formed body of Size bytes
//     (default HugeResponseSize, 64 MiB; JSON {"SecretString":"AAA…"}, XML for STS),
//     streamed in chunks without Content-Length, never held in memory at once.
//   - empty-200 (FaultEmpty200): HTTP 200 with an empty body; the SDK reads it as a
//     success with every field absent.
//   - 404-no-code (Fault404NoCode): HTTP 404 with an HTML page and no AWS error code
//     (neither a __type nor an X-Amzn-ErrorType header), as a wrong endpoint answers.
//   - omit-selector (FaultOmitSelector): the request is served, then Selector is
//     removed from every parameter of the answer (GetParameter, GetParameters), as
//     LocalStack-style emulators answer "name:version" and "name:label" reads.
//
// These are answered before authentication (the endless kinds and omit-selector after
// it: the request is really served).
//
// # Seed format
//
// A seed (Options.Seed, Server.Seed, LoadSeed, --seed) is JSON:
//
//	{
//	  "secrets": [
//	    {"name": "prod/db", "value": "{\"password\":\"pw\"}", "tags": {"team": "a"}},
//	    {"name": "prod/cert", "binaryBase64": "AAEC/w==", "description": "optional"}
//	  ],
//	  "parameters": [
//	    {"name": "/prod/db/password", "type": "SecureString", "value": "pw", "tags": {"team": "a"}},
//	    {"name": "/prod/hosts", "type": "StringList", "value": "a,b", "labels": ["live"]}
//	  ]
//	}
//
// A secret has exactly one of value (SecretString) or binaryBase64 (SecretBinary) and
// becomes version AWSCURRENT. A parameter's type is String (default), StringList or
// SecureString; labels go on its version 1. Seeding an existing name adds a new
// version, as PutSecretValue / PutParameter with Overwrite would.
package awsemu
