package providertest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// BlackHole listens on 127.0.0.1, accepts connections and never answers nor closes
// them: a backend that hangs. Everything is closed when the test ends.
type BlackHole struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

// NewBlackHole starts a BlackHole for t.
func NewBlackHole(t testing.TB) *BlackHole {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &BlackHole{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			_ = c.Close()
		}
	})
	return b
}

// URL is the endpoint to configure ("http://127.0.0.1:port").
func (b *BlackHole) URL() string { return "http://" + b.ln.Addr().String() }

// Accepted is how many connections were accepted so far.
func (b *BlackHole) Accepted() int64 { return b.accepted.Load() }
