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

// clientIP is the caller's address: the last X-Forwarded-For entry when the
// function sits behind a front end that appends it, else the peer address.
func clientIP(r *http.Request, trustForwarded bool) string {
	if trustForwarded {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			return strings.TrimSpace(parts[len(parts)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
