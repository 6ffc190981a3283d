package testenv

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Front is a round-robin TCP proxy on loopback standing where a Kubernetes Service
// stands in front of a StatefulSet: each new connection goes to the next backend
// that passed its readiness probe (probed every probeEvery, like a readiness probe,
// so a dead backend still gets connections until the next probe notices it);
// established connections stay where they are until either side closes.
type Front struct {
	l        net.Listener
	backends []string
	ready    func(backend string) bool

	mu     sync.Mutex
	next   int
	up     []bool
	prefer int // -1: plain round robin
	conns  map[net.Conn]struct{}
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup
}

const probeEvery = 500 * time.Millisecond

// StartFront listens on a free loopback port and proxies to backends (host:port).
// ready is the readiness probe (nil: always ready). Everything stops when t ends.
func StartFront(t testing.TB, backends []string, ready func(backend string) bool) *Front {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("front: %v", err)
	}
	if ready == nil {
		ready = func(string) bool { return true }
	}
	f := &Front{l: l, backends: backends, ready: ready, up: make([]bool, len(backends)), prefer: -1,
		conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	f.probe()
	f.wg.Add(2)
	go f.probeLoop()
	go f.acceptLoop()
	t.Cleanup(f.Close)
	return f
}

// URL is the front's http URL.
func (f *Front) URL() string { return "http://" + f.l.Addr().String() }

// Prefer routes every new connection to backend i while it is ready (a client
// whose connections all landed on one pod); -1 restores round robin.
func (f *Front) Prefer(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prefer = i
}

// DropConnections closes every proxied connection, so clients open new ones
// (and land where Prefer says).
func (f *Front) DropConnections() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.Close()
	}
}

// Close stops accepting, closes every connection and waits for the goroutines.
func (f *Front) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.stop)
	_ = f.l.Close()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *Front) probeLoop() {
	defer f.wg.Done()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
			f.probe()
		}
	}
}

func (f *Front) probe() {
	up := make([]bool, len(f.backends))
	for i, b := range f.backends {
		up[i] = f.ready(b)
	}
	f.mu.Lock()
	f.up = up
	f.mu.Unlock()
}

// pick is the backend for a new connection: the preferred one if ready, else the
// next ready one in turn, else the next one (a Service with no ready endpoint
// still resolves; the client sees the failure).
func (f *Front) pick() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prefer >= 0 && f.up[f.prefer] {
		return f.backends[f.prefer]
	}
	for range f.backends {
		i := f.next % len(f.backends)
		f.next++
		if f.up[i] {
			return f.backends[i]
		}
	}
	i := f.next % len(f.backends)
	f.next++
	return f.backends[i]
}

func (f *Front) acceptLoop() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(c) {
			_ = c.Close()
			return
		}
		f.wg.Add(1)
		go f.serve(c)
	}
}

func (f *Front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Front) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
	_ = c.Close()
}

// serve pipes c to a backend; a backend that refuses closes c at once, as a dead
// endpoint does to a client.
func (f *Front) serve(c net.Conn) {
	defer f.wg.Done()
	defer f.untrack(c)
	d := net.Dialer{Timeout: 2 * time.Second}
	b, err := d.DialContext(context.Background(), "tcp", f.pick())
	if err != nil {
		return
	}
	if !f.track(b) {
		_ = b.Close()
		return
	}
	defer f.untrack(b)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Either side ending ends the pair, like a pod that goes away.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}
