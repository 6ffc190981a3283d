package provider

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxResponseBytes bounds what one backend response may carry: a Secret holds at
// most 1 MiB, so twice that leaves room for JSON/base64 overhead and metadata. A
// hostile or broken endpoint answering with more gets an error, not our memory.
const MaxResponseBytes = 2 << 20

// ErrResponseTooLarge is returned by a body read past MaxResponseBytes.
var ErrResponseTooLarge = errors.New("backend response larger than 2 MiB")

// LimitResponses wraps rt so that every response body fails with
// ErrResponseTooLarge (wrapped as ErrUnavailable) once more than max bytes are read.
// A Content-Length over max fails before the body is read at all.
func LimitResponses(rt http.RoundTripper, max int64) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return limitRT{rt: rt, max: max}
}

type limitRT struct {
	rt  http.RoundTripper
	max int64
}

func (l limitRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, tooLarge()
	}
	resp.Body = &limitBody{rc: resp.Body, left: l.max}
	return resp, nil
}

func tooLarge() error {
	return Wrap(ErrUnavailable, "response-too-large", fmt.Errorf("%w", ErrResponseTooLarge))
}

type limitBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, tooLarge()
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, tooLarge()
	}
	return n, err
}

func (b *limitBody) Close() error { return b.rc.Close() }
