// Package connrounds checks that an HTTP client keeps its connections: it
// sends rounds of calls at once to a server that counts the connections
// dialed to it.
package connrounds

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server answers calls that arrive in rounds and counts the connections
// dialed to it.
type Server struct {
	URL     string
	dialed  atomic.Int64
	arrived sync.WaitGroup
}

// Start serves answer, stopped when the test ends.
func Start(t *testing.T, answer http.HandlerFunc) *Server {
	s := &Server{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.arrived.Done()
		all := make(chan struct{})
		go func() { s.arrived.Wait(); close(all) }()
		select {
		case <-all: // every call of the round is open at once
		case <-time.After(10 * time.Second): // a call that never came fails the test itself
		}
		answer(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.dialed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Dialed makes rounds of atOnce calls at once and returns how many
// connections were dialed in all: atOnce for a client that keeps them.
func (s *Server) Dialed(t *testing.T, atOnce, rounds int, call func() error) int64 {
	t.Helper()
	for round := range rounds {
		s.arrived.Add(atOnce)
		var calls sync.WaitGroup
		for range atOnce {
			calls.Add(1)
			go func() {
				defer calls.Done()
				if err := call(); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		calls.Wait()
	}
	return s.dialed.Load()
}
