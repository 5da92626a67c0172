package bench

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// RPCCounter is a gRPC reverse proxy in front of an emulator that counts
// the calls passing through it by method: a function pointed at it (its
// FIRESTORE_EMULATOR_HOST) shows how many requests it makes, which the
// emulator itself does not tell. gRPC is HTTP/2 without TLS to the
// emulators (h2c), and each call, unary or streaming, is one request.
type RPCCounter struct {
	ln  net.Listener
	srv *http.Server

	mu     sync.Mutex
	counts map[string]int64
}

// StartRPCCounter proxies a free local port to target (host:port).
func StartRPCCounter(target string) (*RPCCounter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &RPCCounter{ln: ln, counts: map[string]int64{}}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	proxy.Transport = &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	proxy.FlushInterval = -1 // streams pass each message on at once
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.counts[r.URL.Path]++
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})
	c.srv = &http.Server{Handler: h2c.NewHandler(count, &http2.Server{})}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// Addr is the host:port to point a client at.
func (c *RPCCounter) Addr() string { return c.ln.Addr().String() }

// Counts is the calls so far by method ("/google.firestore.v1.Firestore/Commit").
func (c *RPCCounter) Counts() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Total is every call so far.
func (c *RPCCounter) Total() int64 {
	var n int64
	for _, v := range c.Counts() {
		n += v
	}
	return n
}

// Close stops the proxy.
func (c *RPCCounter) Close() error { return c.srv.Close() }

// Since is each method's calls in now beyond those in before, by method,
// largest first.
func Since(before, now map[string]int64) []MethodCount {
	var out []MethodCount
	for m, n := range now {
		if d := n - before[m]; d > 0 {
			out = append(out, MethodCount{Method: m, Calls: d})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// MethodCount is one method's calls.
type MethodCount struct {
	Method string
	Calls  int64
}
