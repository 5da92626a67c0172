package licensing

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// limiter counts requests per key (a client address) in fixed windows, in
// process: each instance of the function keeps its own, which bounds a
// brute force per instance; the per-code limit, kept in the store, bounds it
// across instances.
type limiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	start  time.Time
	counts map[string]int
}

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{limit: limit, window: window, counts: map[string]int{}}
}

// allow counts one request of key at now and says whether it is within the limit.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := now.Truncate(l.window); !w.Equal(l.start) {
		l.start, l.counts = w, map[string]int{} // a new window forgets the old one
	}
	l.counts[key]++
	return l.counts[key] <= l.limit
}

// forwarding says where the caller's address is: the peer, or an entry of
// X-Forwarded-For counted from the end. Each front end appends the address
// it received the request from, so the last entries are written by our own
// front ends and everything before them by whoever sent the request.
type forwarding struct {
	// trust takes the address from X-Forwarded-For (behind Cloud Run's
	// front end, which appends the client's address).
	trust bool
	// hops are the entries our own proxies append after the one that
	// recorded the client: 0 when callers reach Cloud Run directly, 1 behind
	// a gateway or load balancer in front of it (its own address follows).
	hops int
}

// clientIP is the caller's address as f says to find it. A header shorter
// than our chain takes its first entry; an entry that is not an address
// keys on the peer, so a caller cannot get a fresh bucket per request by
// writing garbage there.
func clientIP(r *http.Request, f forwarding) string {
	if f.trust {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(strings.Join(xff, ","), ",")
			i := max(len(parts)-1-f.hops, 0)
			if ip := net.ParseIP(strings.TrimSpace(parts[i])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
