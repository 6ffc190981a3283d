package awsemu

import "testing"

// NewTestServer starts a Server on 127.0.0.1 and closes it when t ends.
func NewTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatalf("awsemu: start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
