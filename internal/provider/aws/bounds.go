package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/secretsync/secretsync/internal/provider"
)

// MaxPages bounds one paginated listing. A server that keeps answering with a
// NextToken (a bug, a hostile endpoint, an emulator fault) would otherwise hold the
// caller forever; 1000 pages is 100,000 secrets or 10,000 parameters, far past what a
// find may return.
const MaxPages = 1000

// Pages guards one paginated listing: Next fails on a NextToken already seen (the
// listing would loop) and after MaxPages pages. Either is an error for the whole
// listing, never a partial result: a partial listing read as complete would prune
// the keys it missed. The zero value is ready to use.
type Pages struct {
	// Max overrides MaxPages (tests).
	Max  int
	n    int
	seen map[[sha256.Size]byte]struct{} // digests: a token may be large
}

// Next takes the NextToken of the page just read and reports whether another page
// should be read with it.
func (p *Pages) Next(token *string) (bool, error) {
	p.n++
	if token == nil || *token == "" {
		return false, nil
	}
	limit := p.Max
	if limit <= 0 {
		limit = MaxPages
	}
	if p.n >= limit {
		return false, Wrap(provider.ErrUnavailable, "TooManyPages", errors.New("listing did not end"))
	}
	if p.seen == nil {
		p.seen = map[[sha256.Size]byte]struct{}{}
	}
	d := sha256.Sum256([]byte(*token))
	if _, dup := p.seen[d]; dup {
		return false, Wrap(provider.ErrUnavailable, "RepeatedNextToken", errors.New("listing returned a NextToken it returned before"))
	}
	p.seen[d] = struct{}{}
	return true, nil
}

// deadline bounds every API call of a client built from the config (all attempts
// and the credentials fetch included), so no call outlives d whatever the caller's
// context says.
func deadline(d time.Duration) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("secretsyncDeadline",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				ctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// limitResponses wraps c so every response body fails past provider.MaxResponseBytes
// (provider.LimitResponses around c as the round trip), and every request is counted
// under the provider label name. The failure is marked not retryable: asking again
// would only read another oversized answer.
func limitResponses(c awssdk.HTTPClient, name string) awssdk.HTTPClient {
	rt := provider.LimitResponses(roundTrip(c.Do), provider.MaxResponseBytes)
	return limitedClient{rt: provider.CountRequests(rt, name, requests{})}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type limitedClient struct{ rt http.RoundTripper }

func (c limitedClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		return resp, noRetryIfTooLarge(err)
	}
	if resp.Body != nil {
		resp.Body = noRetryBody{resp.Body}
	}
	return resp, nil
}

type noRetryBody struct{ io.ReadCloser }

func (b noRetryBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	return n, noRetryIfTooLarge(err)
}

func noRetryIfTooLarge(err error) error {
	if err != nil && errors.Is(err, provider.ErrResponseTooLarge) {
		return notRetryable{err}
	}
	return err
}

// notRetryable answers the SDK retryer's RetryableError check with no.
type notRetryable struct{ error }

func (e notRetryable) RetryableError() bool { return false }
func (e notRetryable) Unwrap() error        { return e.error }

// refuseEmptySuccess fails a 2xx answer with an empty body. Every AWS success has a
// body (at least "{}" for JSON, a document for STS's XML), but the SDK reads an empty
// one as a success with every field absent: a listing of nothing, a secret without a
// value. From a broken proxy that would read as "no keys" and prune. It sits between
// the transport and the operation's deserializer, so it sees the raw response.
func refuseEmptySuccess(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("secretsyncRefuseEmptySuccess",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			resp, ok := out.RawResponse.(*smithyhttp.Response)
			if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode > 299 {
				return out, md, err
			}
			if resp.Body == nil || resp.ContentLength == 0 {
				return out, md, emptySuccess()
			}
			if resp.ContentLength < 0 { // unknown length: peek at one byte
				var b [1]byte
				n, rerr := io.ReadFull(resp.Body, b[:])
				if n == 0 && (rerr == io.EOF || rerr == io.ErrUnexpectedEOF) {
					return out, md, emptySuccess()
				}
				resp.Body = readCloser{io.MultiReader(bytes.NewReader(b[:n]), errReader{rerr}, resp.Body), resp.Body}
			}
			return out, md, err
		}), middleware.After)
}

func emptySuccess() error {
	return Wrap(provider.ErrUnavailable, "EmptyResponse", errors.New("success status with an empty body"))
}

type readCloser struct {
	io.Reader
	io.Closer
}

// errReader replays a read error met while peeking (nil: nothing to replay).
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}
